"""The git stores against real repositories: results are checked with git itself."""

from __future__ import annotations

import base64
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gitops.errors import StoreUnavailable
from gitops.git.process import CatFile
from gitops.store import (
    Author,
    Credentials,
    EmbeddedStore,
    RemoteStore,
    Store,
    open_store,
    redact,
)
from gitops.tree import DictTree, Overlay, Tree
from tests.procs import git_daemon, ssh_server

ENV = {**os.environ, "LC_ALL": "C", "GIT_TERMINAL_PROMPT": "0"}
ME = Author("Tess Ter", "tess@example.org")


def git(*args: str, check: bool = True) -> str:
    proc = subprocess.run(["git", *args], capture_output=True, text=True, env=ENV)
    if check and proc.returncode != 0:
        raise AssertionError(f"git {args}: {proc.stderr}")
    return proc.stdout


def content(repo: Path, rev: str) -> dict[str, bytes]:
    """Every file of `rev` as git sees it (ls-tree -r, then one cat-file --batch)."""
    entries = [line.split("\t") for line in
               git(f"--git-dir={repo}", "ls-tree", "-r", rev).splitlines()]
    assert all(meta.split()[:2] == ["100644", "blob"] for meta, _ in entries)
    batch = subprocess.run(
        ["git", f"--git-dir={repo}", "cat-file", "--batch"], capture_output=True, check=True,
        input="".join(meta.split()[2] + "\n" for meta, _ in entries).encode(),
    ).stdout
    files, at = {}, 0
    for _, path in entries:
        header_end = batch.index(b"\n", at)
        size = int(batch[at:header_end].split()[2])
        files[path] = batch[header_end + 1:header_end + 1 + size]
        at = header_end + 2 + size
    return files


def subtrees(repo: Path, rev: str) -> dict[str, str]:
    lines = git(f"--git-dir={repo}", "ls-tree", "-d", rev).splitlines()
    return {line.split("\t")[1]: line.split()[2] for line in lines}


def fsck(repo: Path, *heads: str) -> None:
    """`git fsck --strict` finds nothing; `heads` (unpublished commits) count as reachable."""
    proc = subprocess.run(
        ["git", f"--git-dir={repo}", "fsck", "--strict", "--no-dangling", *heads],
        capture_output=True, text=True, env=ENV,
    )
    problems = [line for line in proc.stderr.splitlines() if not line.startswith("notice:")]
    assert proc.returncode == 0 and not proc.stdout and not problems, proc


def packed_objects(repo: Path) -> int:
    counts = dict(line.split(": ") for line in git(f"--git-dir={repo}", "count-objects", "-v")
                  .splitlines())
    return int(counts["in-pack"])


@pytest.fixture
def store(tmp_path: Path) -> Iterator[EmbeddedStore]:
    with EmbeddedStore(tmp_path / "state.git") as s:
        yield s


# -- commit ---------------------------------------------------------------------------


def test_commit_writes_nested_files_deletes_and_prunes_emptied_folders(
    store: EmbeddedStore,
) -> None:
    # Names around "/" in byte order make git's folder sorting rule matter for fsck.
    first = {
        "a/x.yaml": b"1", "a-b": b"2", "a.b/c": b"3", "a0": b"4", "a/deep/er/f": b"5",
        "z/only/child.yaml": b"6", "top.yaml": b"7",
    }
    c1 = store.commit(None, first, "first\n\nbody", ME)
    store.flush()
    assert content(store.path, c1) == first
    assert git(f"--git-dir={store.path}", "cat-file", "-t", c1).strip() == "commit"
    fsck(store.path, c1)

    c2 = store.commit(c1, {"z/only/child.yaml": None, "a/deep/er/f": None,
                           "n/e/w.yaml": b"8", "top.yaml": b"9", "missing/file": None}, "2", ME)
    store.flush()
    expected = {**first, "n/e/w.yaml": b"8", "top.yaml": b"9"}
    del expected["z/only/child.yaml"], expected["a/deep/er/f"]
    assert content(store.path, c2) == expected
    assert "z" not in subtrees(store.path, c2)
    assert git(f"--git-dir={store.path}", "ls-tree", "-d", f"{c2}:a").strip() == ""
    log = git(f"--git-dir={store.path}", "log", "--format=%P|%an|%ae|%cn|%ce|%s", c2)
    assert log.splitlines() == [f"{c1}|Tess Ter|tess@example.org|Tess Ter|tess@example.org|2",
                                "|Tess Ter|tess@example.org|Tess Ter|tess@example.org|first"]
    fsck(store.path, c2)

    c3 = store.commit(c2, {"nothing/here": None}, "noop", ME)
    store.flush()
    trees = git(f"--git-dir={store.path}", "rev-parse", f"{c3}^{{tree}}", f"{c2}^{{tree}}")
    assert len(set(trees.split())) == 1  # deleting what is not there changes nothing
    c4 = store.commit(c3, dict.fromkeys(expected), "all gone", ME)
    store.flush()
    assert content(store.path, c4) == {}
    fsck(store.path, c4)


def test_commit_refuses_invalid_paths_and_file_folder_clashes(store: EmbeddedStore) -> None:
    c1 = store.commit(None, {"f": b"1", "d/x": b"2"}, "m", ME)
    for bad in ("", "/abs", "a//b", "a/./b", "../up", ".git/config", "trailing/"):
        with pytest.raises(ValueError):
            store.commit(c1, {bad: b"x"}, "m", ME)
    with pytest.raises(ValueError):
        store.commit(c1, {"f/under-a-file": b"x"}, "m", ME)
    with pytest.raises(ValueError):
        store.commit(c1, {"d": b"over-a-folder"}, "m", ME)
    # Replacing a file by a folder (or the reverse) in one change is fine.
    c2 = store.commit(c1, {"f": None, "f/now": b"3", "d/x": None, "d": b"4"}, "m", ME)
    store.flush()
    assert content(store.path, c2) == {"f/now": b"3", "d": b"4"}
    fsck(store.path, c2)


def test_commit_touches_only_the_changed_path(tmp_path: Path) -> None:
    repo = tmp_path / "state.git"
    files = {f"ns{d:03}/app/f{i}.yaml": f"{d}-{i}".encode() for d in range(200) for i in range(10)}
    with EmbeddedStore(repo) as s:
        base = s.commit(None, files, "bulk", ME)
        s.flush()
    before = subtrees(repo, base)
    before_objects = packed_objects(repo)

    calls: list[int] = []
    real = CatFile.read_many

    def counting(self: CatFile, shas: Sequence[str]) -> list[tuple[str, bytes] | None]:
        calls.append(len(shas))
        return real(self, shas)

    with EmbeddedStore(repo) as cold:  # empty cache: reads must follow the path only
        CatFile.read_many = counting  # type: ignore[method-assign]
        try:
            new = cold.commit(base, {"ns123/app/f3.yaml": b"changed"}, "one", ME)
        finally:
            CatFile.read_many = real  # type: ignore[method-assign]
        cold.flush()
    # the parent commit, the root, ns123 and ns123/app
    assert sum(calls) == 4
    after = subtrees(repo, new)
    assert {k for k in before if before[k] != after[k]} == {"ns123"}
    assert git(f"--git-dir={repo}", "ls-tree", f"{new}:ns123/app", "f2.yaml") == \
        git(f"--git-dir={repo}", "ls-tree", f"{base}:ns123/app", "f2.yaml")
    # blob, two folders, root and commit: nothing else was written
    assert packed_objects(repo) - before_objects == 5
    assert content(repo, new) == {**files, "ns123/app/f3.yaml": b"changed"}
    fsck(repo, new)


# -- reading --------------------------------------------------------------------------

TREE = {
    "a/x.yaml": b"ax", "a/sub/y.yaml": b"ay", "a-b": b"ab", "a.b/c": b"abc", "a0": b"a0",
    "b/1/2/3/deep.yaml": b"deep", "b/1/other": b"o", "r\u00e9sum\u00e9/file": b"utf8", "z": b"z",
}
PROBES = ["", "a", "a/", "a/sub", "a-b", "a.b", "b", "b/1", "b/1/2", "nope", "a/x.yaml",
          "r\u00e9sum\u00e9", "z", "a/sub/y.yaml", "b/1/2/3/deep.yaml", "b/1/2/3"]


def same_view(tree: Tree, reference: Tree) -> None:
    for probe in PROBES:
        assert tree.read(probe) == reference.read(probe), probe
        assert tree.blob_id(probe) == reference.blob_id(probe), probe
        assert tree.is_folder(probe) == reference.is_folder(probe), probe
        assert tree.listdir(probe) == reference.listdir(probe), probe
        assert list(tree.files(probe)) == list(reference.files(probe)), probe


def test_tree_view_matches_dict_tree_and_overlay(store: EmbeddedStore) -> None:
    c = store.commit(None, TREE, "m", ME)
    view = store.tree(c)  # staged objects are readable before they are written
    same_view(view, DictTree(TREE))
    changes = {"a/x.yaml": None, "a/sub/y.yaml": None, "new/f": b"n", "z": b"zz", "a0": None,
               "b/1/2/3/deep.yaml": None}  # b/1/2 and b/1/2/3 are gone, b/1 stays
    applied = {k: v for k, v in {**TREE, **changes}.items() if v is not None}
    same_view(Overlay(view, changes), Overlay(DictTree(TREE), changes))
    same_view(Overlay(view, changes), DictTree(applied))
    same_view(store.tree(None), DictTree())
    with pytest.raises(ValueError):
        store.tree("f" * 40)


def test_files_reads_thousands_of_files_in_path_order(store: EmbeddedStore) -> None:
    files = {f"d{i % 37}/s{i % 5}/f{i}.yaml": f"v{i}".encode() * 10 for i in range(3000)}
    c = store.commit(None, files, "m", ME)
    assert list(store.tree(c).files("")) == sorted(files.items())
    assert list(store.tree(c).files("d7")) == sorted((k, v) for k, v in files.items()
                                                     if k.startswith("d7/"))


def test_concurrent_readers_while_a_writer_commits(store: EmbeddedStore) -> None:
    tip = store.commit(None, {f"d{i % 20}/f{i}": b"0" for i in range(400)}, "m", ME)
    assert store.publish(None, tip)
    done = threading.Event()
    errors: list[BaseException] = []

    def reader() -> None:
        try:
            while not done.is_set():
                view = store.tree(store.tip())
                files = dict(view.files(""))
                generation = files.pop("generation", b"0")
                assert len(files) == 400
                assert all(v <= generation for v in files.values())
                assert view.read("generation") == (generation if generation != b"0" else None)
                assert len(view.listdir("")) in (20, 21)
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=reader) for _ in range(8)]
    for t in threads:
        t.start()
    try:
        for n in range(1, 40):
            gen, k = str(n).zfill(3).encode(), (n * 7) % 400
            new = store.commit(tip, {f"d{k % 20}/f{k}": gen, "generation": gen}, "m", ME)
            assert store.publish(tip, new)
            tip = new
    finally:
        done.set()
        for t in threads:
            t.join()
    assert not errors, errors[0]
    fsck(store.path)


# -- embedded store -------------------------------------------------------------------


def test_embedded_publish_is_compare_and_swap(store: EmbeddedStore) -> None:
    assert store.tip() is None and store.refresh() is None
    c1 = store.commit(None, {"f": b"1"}, "m", ME)
    c2 = store.commit(c1, {"f": b"2"}, "m", ME)
    assert store.publish(None, c1)
    assert not store.publish(None, c2)
    ref = git(f"--git-dir={store.path}", "rev-parse", "refs/heads/main").strip()
    assert ref == c1 == store.tip()
    stale = store.commit(c1, {"g": b"x"}, "m", ME)
    assert store.publish(c1, c2)
    assert not store.publish(c1, stale)
    assert git(f"--git-dir={store.path}", "rev-parse", "HEAD").strip() == c2 == store.refresh()
    git(f"--git-dir={store.path}", "pack-refs", "--all")
    assert not (store.path / "refs/heads/main").exists() and store.tip() == c2
    with pytest.raises(StoreUnavailable):  # not a CAS failure: the object does not exist
        store.publish(c2, "e" * 40)
    c3 = store.commit(c2, {"f": b"3"}, "m", ME)
    lock = store.path / "refs/heads/main.lock"
    lock.write_text(c1)  # git (a person pushing) holds the branch: refused like a move
    assert not store.publish(c2, c3) and store.tip() == c2 and lock.read_text() == c1
    lock.unlink()
    assert store.publish(c2, c3) and not lock.exists()
    git(f"--git-dir={store.path}", "update-ref", "refs/heads/main", c2, c3)  # git honours ours
    assert store.tip() == c2
    clone = store.path.parent / "clone"
    git("clone", "-q", str(store.path), str(clone))
    assert (clone / "f").read_bytes() == b"2"
    fsck(store.path)


def test_invalid_branch_name_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        EmbeddedStore(tmp_path / "state.git", "bad..name")


def test_objects_are_staged_until_publish_then_written_as_one_pack(store: EmbeddedStore) -> None:
    c1 = store.commit(None, {"a/x.yaml": b"1"}, "m", ME)
    c2 = store.commit(c1, {"a/y.yaml": b"2"}, "m", ME)
    assert store.tree(c2).read("a/x.yaml") == b"1"
    unknown = subprocess.run(["git", f"--git-dir={store.path}", "cat-file", "-e", c2], env=ENV)
    assert unknown.returncode != 0  # nothing on disk yet
    assert store.publish(None, c2)
    packs = list((store.path / "objects" / "pack").glob("pack-*.idx"))
    assert len(packs) == 1 and not list((store.path / "objects").glob("[0-9a-f][0-9a-f]/*"))
    assert content(store.path, c2) == {"a/x.yaml": b"1", "a/y.yaml": b"2"}
    fsck(store.path)


def _packs(repo: Path) -> set[str]:
    return {p.name for p in (repo / "objects" / "pack").iterdir()}


def test_a_failed_publish_leaves_no_pack_behind(tmp_path: Path, remote: Path) -> None:
    with EmbeddedStore(tmp_path / "state.git") as embedded:
        c1 = embedded.commit(None, {"a.yaml": b"1"}, "m", ME)
        assert embedded.publish(None, c1)
        before = _packs(embedded.path)
        moved = embedded.commit(None, {"b.yaml": b"2"}, "m", ME)
        assert not embedded.publish(None, moved)  # the branch is no longer empty
        assert _packs(embedded.path) == before
        assert embedded.tree(c1).read("a.yaml") == b"1"
        fsck(embedded.path)
    with RemoteStore(remote.as_uri(), tmp_path / "cache") as cached:
        c1 = cached.commit(None, {"a.yaml": b"1"}, "m", ME)
        assert cached.publish(None, c1)
        before = _packs(cached.path)
        hidden = remote.with_name("away.git")
        remote.rename(hidden)  # an outage: every push fails
        for attempt in range(3):
            change = cached.commit(c1, {"a.yaml": b"%d" % attempt}, "m", ME)
            with pytest.raises(StoreUnavailable):
                cached.publish(c1, change)
        assert _packs(cached.path) == before
        hidden.rename(remote)
        change = cached.commit(c1, {"a.yaml": b"again"}, "m", ME)
        assert cached.publish(c1, change)  # what the re-plan staged again is all it needs
        assert content(remote, "main") == {"a.yaml": b"again"}
        fsck(cached.path)


def test_maintain_rolls_small_packs_up_and_keeps_every_object(store: EmbeddedStore) -> None:
    tip = None
    unpublished = []
    for i in range(24):
        new = store.commit(tip, {f"d{i % 5}/f{i}": str(i).encode()}, f"c{i}", ME)
        assert store.publish(tip, new)
        unpublished.append(store.commit(new, {"abandoned": str(i).encode()}, "x", ME))
        store.flush()  # as a rejected publish leaves them: written, unreachable
        tip = new
    pack_dir = store.path / "objects" / "pack"
    assert len(list(pack_dir.glob("pack-*.idx"))) == 48
    store.maintain()
    assert len(list(pack_dir.glob("pack-*.idx"))) <= 6
    assert content(store.path, tip) == {f"d{i % 5}/f{i}": str(i).encode() for i in range(24)}
    for commit in unpublished:  # maintenance never drops objects (a group may be in flight)
        assert git(f"--git-dir={store.path}", "cat-file", "-t", commit).strip() == "commit"
    assert store.tree(tip).read("d0/f0") == b"0"  # the reader survives the packs it had open
    fsck(store.path)


def test_embedded_open_removes_stale_locks(tmp_path: Path) -> None:
    repo = tmp_path / "state.git"
    with EmbeddedStore(repo) as s:
        c1 = s.commit(None, {"f": b"1"}, "m", ME)
        assert s.publish(None, c1)
    for stale in (repo / "refs/heads/main.lock", repo / "packed-refs.lock",
                  repo / "objects/tmp_obj_abc123"):
        stale.write_text("junk")
    with EmbeddedStore(repo) as s:
        assert not list(repo.rglob("*.lock")) and not list(repo.rglob("tmp_obj_*"))
        c2 = s.commit(c1, {"f": b"2"}, "m", ME)
        assert s.publish(c1, c2)
    fsck(repo)


CRASHER = """
import sys
from pathlib import Path
from gitops.store import Author, EmbeddedStore
s = EmbeddedStore(Path(sys.argv[1]))
tip = s.tip()
for i in range(100000):
    new = s.commit(tip, {f"d{i % 13}/f{i % 97}": str(i).encode() * 50, f"x{i}": b"x"}, "m", Author())
    assert s.publish(tip, new)
    tip = new
    print(i, flush=True)
"""


def test_embedded_recovers_after_kill_9_mid_commit(tmp_path: Path) -> None:
    repo = tmp_path / "state.git"
    for _ in range(3):
        proc = subprocess.Popen([sys.executable, "-c", CRASHER, str(repo)],
                                stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        for _ in range(15):
            assert proc.stdout.readline()
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
        with EmbeddedStore(repo) as s:
            tip = s.tip()
            assert tip is not None
            assert s.tree(tip).read("x0") == b"x"
            new = s.commit(tip, {"after": b"crash"}, "m", ME)
            assert s.publish(tip, new)
        fsck(repo)


# -- remote store ---------------------------------------------------------------------


@pytest.fixture
def remote(tmp_path: Path) -> Path:
    path = tmp_path / "remote.git"
    git("init", "-q", "--bare", "--initial-branch=main", str(path))
    return path


def test_remote_publish_refresh_and_stale_tip(tmp_path: Path, remote: Path) -> None:
    with RemoteStore(remote.as_uri(), tmp_path / "a") as a, \
            RemoteStore(str(remote), tmp_path / "b") as b:
        assert a.refresh() is None and a.tip() is None  # an empty remote
        c1 = a.commit(None, {"apps/x.yaml": b"1"}, "m", ME)
        assert a.publish(None, c1)
        assert git(f"--git-dir={remote}", "rev-parse", "main").strip() == c1 == a.tip()
        assert git(f"--git-dir={a.path}", "rev-parse", "refs/heads/main").strip() == c1

        stale = b.commit(b.tip(), {"apps/y.yaml": b"2"}, "m", ME)
        assert not b.publish(b.tip(), stale)
        assert git(f"--git-dir={remote}", "rev-parse", "main").strip() == c1
        assert b.refresh() == c1 == b.tip()
        assert b.tree(c1).read("apps/x.yaml") == b"1"
        c2 = b.commit(c1, {"apps/y.yaml": b"2"}, "m", ME)
        assert b.publish(c1, c2)

        # a still believes c1: its lease fails even for a fast-forward of c1
        c3 = a.commit(c1, {"apps/z.yaml": b"3"}, "m", ME)
        assert not a.publish(c1, c3)
        assert a.refresh() == c2
        assert a.tree(c2).read("apps/y.yaml") == b"2"  # fetched while cat-file was running
        assert content(remote, "main") == {"apps/x.yaml": b"1", "apps/y.yaml": b"2"}
    fsck(remote)
    with RemoteStore(remote.as_uri(), tmp_path / "a") as again:
        assert again.tip() == c2  # last seen, without network


def test_open_store_picks_the_store(tmp_path: Path, remote: Path) -> None:
    embedded: Store = open_store(tmp_path / "e", None, "main", None)
    assert isinstance(embedded, EmbeddedStore) and embedded.path == tmp_path / "e/state.git"
    embedded.close()
    with open_store(tmp_path / "r", str(remote), "prod", None) as cached:  # type: ignore[attr-defined]
        assert isinstance(cached, RemoteStore) and cached.path == tmp_path / "r/cache.git"
        c = cached.commit(None, {"f": b"1"}, "m", ME)
        assert cached.publish(None, c)
    assert git(f"--git-dir={remote}", "rev-parse", "prod").strip() == c


def test_a_hung_remote_is_abandoned_after_the_timeout(tmp_path: Path) -> None:
    with socket.socket() as listener:  # takes connections (the kernel's backlog), never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/state.git"
        with RemoteStore(url, tmp_path / "cache", timeout=1) as hung:
            with pytest.raises(StoreUnavailable, match="timed out"):
                hung.refresh()
            change = hung.commit(None, {"a.yaml": b"1"}, "m", ME)
            with pytest.raises(StoreUnavailable, match="timed out"):
                hung.publish(None, change)


def test_one_data_folder_serves_one_store_at_a_time(tmp_path: Path, remote: Path) -> None:
    first = open_store(tmp_path / "data", None)
    try:
        with pytest.raises(StoreUnavailable, match=f"statewriter pid {os.getpid()}"):
            open_store(tmp_path / "data", None)
        with pytest.raises(StoreUnavailable, match="cannot share a data folder"):
            open_store(tmp_path / "data", str(remote))
    finally:
        first.close()
    open_store(tmp_path / "data", None).close()  # free again once closed


def test_remote_over_git_daemon(tmp_path: Path, remote: Path) -> None:
    with git_daemon(tmp_path) as daemon:
        two_replicas_take_turns(daemon.url("remote.git"), tmp_path)
        assert content(remote, "main") == {"f": b"2"}


def two_replicas_take_turns(url: str, tmp_path: Path, creds: Credentials | None = None) -> None:
    """Two stores on one remote: each sees the other's publish; a stale one is refused."""
    with RemoteStore(url, tmp_path / "a", credentials=creds) as a, \
            RemoteStore(url, tmp_path / "b", credentials=creds) as b:
        assert a.refresh() is None
        c1 = a.commit(None, {"f": b"1"}, "m", ME)
        assert a.publish(None, c1)
        assert b.refresh() == c1
        c2 = b.commit(c1, {"f": b"2"}, "m", ME)
        assert b.publish(c1, c2)
        assert not a.publish(c1, a.commit(c1, {"g": b"3"}, "m", ME))
        assert a.refresh() == c2


def test_remote_over_ssh_with_key_and_known_hosts(tmp_path: Path, remote: Path) -> None:
    with ssh_server(tmp_path / "sshd") as sshd:
        url = sshd.url(remote)
        creds = Credentials(ssh_key_file=sshd.key, known_hosts_file=sshd.known_hosts)
        two_replicas_take_turns(url, tmp_path, creds)
        assert content(remote, "main") == {"f": b"2"}

        # a host key that is not the known one: refused, not trusted on first use
        stranger = tmp_path / "other_known_hosts"
        stranger.write_text(f"[127.0.0.1]:{sshd.port} {(tmp_path / 'sshd' / 'client_key.pub').read_text()}")
        wrong = Credentials(ssh_key_file=sshd.key, known_hosts_file=stranger)
        with RemoteStore(url, tmp_path / "c", credentials=wrong) as c, \
                pytest.raises(StoreUnavailable) as refused:
            c.refresh()
        assert "fetch from" in str(refused.value) and "BEGIN" not in str(refused.value)


# -- credentials ----------------------------------------------------------------------


def test_redact_removes_userinfo_tokens_and_auth_headers() -> None:
    text = ("fatal: unable to access 'https://bob:hunter2@git.example/x.git/': denied; "
            "ssh://deploy@host/repo; Authorization: Basic Ym9iOmh1bnRlcjI= and s3cr%2Ft, s3cr/t")
    out = redact(text, ["s3cr/t"])
    for secret in ("hunter2", "bob:", "Ym9iOmh1bnRlcjI=", "s3cr/t", "s3cr%2Ft", "deploy@"):
        assert secret not in out
    assert "git.example/x.git" in out
    assert redact("nothing to hide") == "nothing to hide"


def test_failing_push_does_not_leak_the_token(tmp_path: Path) -> None:
    with RemoteStore("http://user:tok3n-value@127.0.0.1:1/x", tmp_path / "d",
                     timeout=30) as s:
        assert "tok3n" not in git(f"--git-dir={s.path}", "config", "--list")
        c = s.commit(None, {"f": b"1"}, "m", ME)
        with pytest.raises(StoreUnavailable) as push:
            s.publish(None, c)
        with pytest.raises(StoreUnavailable) as fetch:
            s.refresh()
    for error in (push.value, fetch.value):
        assert "tok3n" not in str(error) and "tok3n" not in repr(error.detail)
        assert "127.0.0.1:1" in error.message


def http_git_server(root: Path, accepted: set[str]) -> ThreadingHTTPServer:
    """`git http-backend` behind HTTP basic auth, as a forge would serve it."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            self.cgi()

        def do_POST(self) -> None:
            self.cgi()

        def cgi(self) -> None:
            if self.headers.get("Authorization") not in accepted:
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="git"')
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            path, _, query = self.path.partition("?")
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            env = {**ENV, "GIT_PROJECT_ROOT": str(root), "GIT_HTTP_EXPORT_ALL": "1",
                   "PATH_INFO": path, "QUERY_STRING": query, "REQUEST_METHOD": self.command,
                   "CONTENT_TYPE": self.headers.get("Content-Type", ""), "REMOTE_USER": "u",
                   "REMOTE_ADDR": "127.0.0.1", "GIT_PROTOCOL": self.headers.get("Git-Protocol", ""),
                   "HTTP_CONTENT_ENCODING": self.headers.get("Content-Encoding", "")}
            out = subprocess.run(["git", "http-backend"], input=body, env=env,
                                 capture_output=True, check=True).stdout
            head, _, payload = out.partition(b"\r\n\r\n")
            status, headers = 200, []
            for line in head.decode().split("\r\n"):
                key, _, value = line.partition(":")
                if key.lower() == "status":
                    status = int(value.split()[0])
                else:
                    headers.append((key, value.strip()))
            self.send_response(status)
            for key, value in headers:
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    return ThreadingHTTPServer(("127.0.0.1", 0), Handler)


def test_http_credentials_via_askpass(tmp_path: Path, remote: Path) -> None:
    def basic(user: str, secret: str) -> str:
        return "Basic " + base64.b64encode(f"{user}:{secret}".encode()).decode()

    server = http_git_server(tmp_path, {basic("git", "t0ken"), basic("bob", "pa55"),
                                        basic("ghp_t0ken", "")})
    thread = threading.Thread(target=server.serve_forever)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/remote.git"
        with RemoteStore(url, tmp_path / "a", credentials=Credentials(token="t0ken")) as a:
            c1 = a.commit(None, {"f": b"1"}, "m", ME)
            assert a.publish(None, c1)
            assert (tmp_path / "a/askpass.sh").stat().st_mode & 0o777 == 0o700
            assert "t0ken" not in (tmp_path / "a/askpass.sh").read_text()
        with RemoteStore(url.replace("//", "//bob:pa55@"), tmp_path / "b") as b:
            assert b.refresh() == c1
            assert "pa55" not in git(f"--git-dir={b.path}", "config", "--list")
        with RemoteStore(url.replace("//", "//ghp_t0ken@"), tmp_path / "t") as t:
            assert t.refresh() == c1
            assert "t0ken" not in git(f"--git-dir={t.path}", "config", "--list")
        with RemoteStore(url.replace("//", "//ghp_wr0ng@"), tmp_path / "w") as w, \
                pytest.raises(StoreUnavailable) as bad_user:
            w.refresh()
        assert "wr0ng" not in str(bad_user.value)
        wrong = Credentials(token="wr0ng")
        with RemoteStore(url, tmp_path / "c", credentials=wrong) as c, \
                pytest.raises(StoreUnavailable) as denied:
            c.refresh()
        assert "wr0ng" not in str(denied.value)
        assert git(f"--git-dir={remote}", "rev-parse", "main").strip() == c1
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


# -- changed: the files that differ between two commits ------------------------------------

_NAMES = ("a", "b", "a.yaml", "b/c")  # "b" and "b/c": a file may become a folder and back
_CONTENTS = (b"1", b"2", None)


def _git_changed(repo: Path, old: str | None, new: str, prefix: str) -> list[str]:
    old_tree = old or git(f"--git-dir={repo}", "hash-object", "-t", "tree", "/dev/null").strip()
    out = git(f"--git-dir={repo}", "diff-tree", "-r", "--no-renames", "--name-only", old_tree,
              new, "--", *([prefix] if prefix else []))
    return sorted(out.splitlines())


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(st.dictionaries(
    st.tuples(st.sampled_from(("x", "x/y", "z")), st.sampled_from(_NAMES)).map("/".join),
    st.sampled_from(_CONTENTS), min_size=1, max_size=5), min_size=1, max_size=6),
    start=st.integers(0, 5), prefix=st.sampled_from(("", "x", "x/y", "/x/", "z", "q")))
def test_changed_between_commits_written_here_is_what_git_sees(
    tmp_path: Path, steps: list[dict[str, bytes | None]], start: int, prefix: str
) -> None:
    """The changes recorded by the commits written here (a file changed and changed back
    is no change, a file that became a folder is removed) give exactly the tree walk's and
    git's own answer, from any commit to any later one."""
    repo = tmp_path / f"changed-{len(list(tmp_path.iterdir()))}.git"
    commits: list[str | None] = [None]
    with EmbeddedStore(repo) as store:
        for step in steps:
            tree = store.tree(commits[-1])
            files = dict(tree.files(""))
            changes: dict[str, bytes | None] = {}
            for path, data in step.items():
                # kept when the files after the commit still form a tree (a file may become a
                # folder in one commit: deleted, with a file below it written)
                after = {**files, **changes, path: data}
                paths = [p for p, d in after.items() if d is not None]
                if data is None and path not in files:
                    continue  # deleting nothing
                if not any(q.startswith(p + "/") for p in paths for q in paths):
                    changes[path] = data
            if changes:
                commits.append(store.commit(commits[-1], changes, "step", ME))
        store.flush()
        old, new = commits[min(start, len(commits) - 1)], commits[-1]
        if new is None:
            return
        recorded = store.changed(old, new, prefix)
    with EmbeddedStore(repo) as cold:  # no records: walks both trees
        walked = cold.changed(old, new, prefix)
    assert recorded == walked == _git_changed(repo, old, new, prefix.strip("/"))
