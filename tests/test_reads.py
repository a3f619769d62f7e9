"""The store's reads (`gitops.store.reads.GitReads`) on a real repository: the log with its
files, trailers and odd messages, one commit's changes and patch, blobs, and where branches
and commit ids point. The read models see nothing else of a store."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from gitops.errors import InvalidQuery, NotFound
from gitops.reads.commits import branch_commit
from gitops.store.reads import open_repository

ENV = {**os.environ, "GIT_AUTHOR_NAME": "Ann", "GIT_AUTHOR_EMAIL": "ann@example.org",
       "GIT_COMMITTER_NAME": "Ann", "GIT_COMMITTER_EMAIL": "ann@example.org",
       "GIT_AUTHOR_DATE": "2024-05-01T10:00:00+02:00", "GIT_COMMITTER_DATE": "2024-05-01T10:00:00+02:00"}
SHA_LIKE = "0123456789abcdef0123456789abcdef01234567"


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True,
                          check=True, env=ENV).stdout


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    repo = tmp_path / "work"
    git(tmp_path, "init", "-q", "-b", "main", str(repo))
    (repo / "a.yaml").write_text("a: 1\n")
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "first\n\nStatewriter-Action: apply\nStatewriter-Promise: p\n")
    (repo / "a.yaml").write_text("a: 2\n")
    (repo / "M").write_text("a file named like a status\n")
    (repo / SHA_LIKE).write_text("a file named like a commit id\n")
    git(repo, "add", ".")
    # a message a person wrote, with every separator a reader could split on
    odd = "second \x1e\x1f\x0b\u2028 done\n\nbody \x1e line\n\nChange-Request: x\x1ey\nKey: v\n"
    git(repo, "commit", "-qm", odd)
    git(repo, "commit", "-q", "--allow-empty", "-m", "third, empty")
    return repo


def test_the_log_newest_first_with_files_subjects_and_messages(repo: Path) -> None:
    reads = open_repository(repo)
    tip = reads.resolve_branch("main")
    assert tip is not None
    third, second, first = list(reads.log([tip], files=True))
    assert (third.subject, third.files) == ("third, empty", ())
    assert second.subject.startswith("second \x1e\x1f\x0b\u2028 done")
    assert "body \x1e line" in second.message
    assert {(c.status, c.path) for c in second.files or ()} == {
        ("M", "a.yaml"), ("A", "M"), ("A", SHA_LIKE)}
    assert [(c.status, c.path) for c in first.files or ()] == [("A", "a.yaml")]
    assert first.author == "Ann <ann@example.org>" and first.authored == "2024-05-01T10:00:00+02:00"
    assert first.parents == () and second.parents == (first.sha,)
    assert all(entry.files is None for entry in reads.log([tip]))  # only when asked for


def test_trailers_only_and_exact_commits_in_the_order_given(repo: Path) -> None:
    reads = open_repository(repo)
    tip = reads.resolve_branch("main")
    assert tip is not None
    shas = [entry.sha for entry in reads.log([tip])]
    given = [shas[2], shas[0]]
    picked = list(reads.log(given, walk=False, trailers_only=True))
    assert [entry.sha for entry in picked] == given
    assert picked[0].message == "Statewriter-Action: apply\nStatewriter-Promise: p\n"
    (found,) = reads.log([tip], grep=["Statewriter-Promise: p"])
    assert found.sha == shas[2]


def test_one_commits_changes_patch_and_blobs(repo: Path) -> None:
    reads = open_repository(repo)
    second = reads.resolve_commit("main~1")
    assert second is not None and reads.resolve_commit(second[:10]) == second
    changes = {change.path: change for change in reads.file_changes(second)}
    assert set(changes) == {"a.yaml", "M", SHA_LIKE}
    change = changes["a.yaml"]
    assert (change.added, change.removed) == (1, 1) and change.before and change.after
    assert reads.blobs([change.before, change.after, "0" * 40]) == [b"a: 1\n", b"a: 2\n", None]
    assert changes["M"].before is None
    patch = reads.patch(second, ["a.yaml"])
    assert "-a: 1" in patch and "+a: 2" in patch and SHA_LIKE not in patch
    assert reads.patch(second, []) == ""


def test_where_branches_and_ids_point(repo: Path, tmp_path: Path) -> None:
    reads = open_repository(repo)
    tip = reads.resolve_branch("main")
    first = reads.resolve_commit("main~2")
    assert tip is not None and first is not None
    assert reads.is_ancestor(first, tip) and not reads.is_ancestor(tip, first)
    assert reads.resolve_commit("nope") is None
    with pytest.raises(NotFound):
        reads.resolve_branch("no-such-branch")
    empty = tmp_path / "empty.git"
    git(tmp_path, "init", "-q", "--bare", str(empty))
    assert open_repository(empty).resolve_branch("main") is None
    with pytest.raises(NotFound):
        open_repository(tmp_path / "nowhere")


def test_a_commit_of_the_branch_by_its_id_or_a_prefix(repo: Path) -> None:
    """What `POST .../rollback` takes as `commit`: a commit of the branch's history only."""
    reads = open_repository(repo)
    tip = reads.resolve_branch("main")
    first = reads.resolve_commit("main~2")
    assert tip is not None and first is not None
    assert branch_commit(reads, tip, first) == first
    assert branch_commit(reads, tip, first[:7].upper()) == first
    assert branch_commit(reads, tip, tip) == tip
    git(repo, "checkout", "-q", "-b", "side", "main~1")
    git(repo, "commit", "-q", "--allow-empty", "-m", "on a side branch")
    side = reads.resolve_commit("side")
    assert side is not None
    refused = {
        "main~1": "must be a commit id",  # what git would resolve, but not an id
        "abc": "must be a commit id",  # too short to name one
        "0" * 40: "there is no commit",
        SHA_LIKE[:8]: "there is no commit",  # a file's name, not a commit's
        side: "is not on the branch's history",
    }
    for given, why in refused.items():
        with pytest.raises(InvalidQuery, match=why) as problem:
            branch_commit(reads, tip, given)
        assert problem.value.detail == {"field": "commit"}
    with pytest.raises(InvalidQuery, match="there is no commit"):
        branch_commit(reads, None, first)  # no branch yet
