"""The runbooks (docs/runbooks/) run as written: every ```sh block of a page, in bash, with
the page's variables set to a real service's folders (the one substitution), in the order
and at the moments the page says (the service stopped and started between them).

- backup and restore: back up while the service serves, write more, stop, restore, start:
  the state and both branches (`main`, `statewriter-delivery`) are as at the backup, and
  `statewriter verify` is clean;
- revert: a person's bad commit found in the history, the store backed up, the commit
  reverted, the service writing again."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.procs import ROOT, Server, branch_tip, git, running_server
from tests.support import config_map, payload
from tests.test_delivery_status import CONFIG, FAST, KEY, Flux
from tests.test_revert_command import RECORD, by_hand

RUNBOOKS = ROOT / "docs" / "runbooks"
_SH_BLOCK = re.compile(r"^(?P<indent>[ \t]*)```sh\n(?P<body>.*?)^(?P=indent)```[ \t]*$",
                       re.MULTILINE | re.DOTALL)
_ASSIGNMENT = re.compile(r"(?:export\s+)?(?P<name>[A-Z_]+)=")


def sh_blocks(page: str) -> list[str]:
    """The ```sh blocks of a runbook, in order."""
    text = (RUNBOOKS / page).read_text()
    return [re.sub(rf"^{m['indent']}", "", m["body"], flags=re.MULTILINE)
            for m in _SH_BLOCK.finditer(text)]


def block(page: str, needle: str) -> str:
    """The one ```sh block of `page` that holds `needle`."""
    found = [text for text in sh_blocks(page) if needle in text]
    assert len(found) == 1, f"{page}: {len(found)} sh blocks hold {needle!r}"
    return found[0]


class Runbook:
    """One page's commands, run in bash with its variables given the test's values: each
    assignment line of the page (`NAME=...`, `export NAME=...`) must be one the test gives."""

    def __init__(self, page: str, values: dict[str, str]) -> None:
        self.page = page
        self.values = dict(values)
        assigned = {m["name"] for text in sh_blocks(page) for line in text.splitlines()
                    if (m := _ASSIGNMENT.match(line.strip()))}
        assert assigned == set(self.values), f"{page} sets {sorted(assigned)}"

    def set(self, **values: str) -> None:
        self.values.update(values)

    def run(self, needle: str) -> subprocess.CompletedProcess[str]:
        """The block that holds `needle`, as written, its assignments replaced by the values."""
        lines = [line for line in block(self.page, needle).splitlines()
                 if not _ASSIGNMENT.match(line.strip())]
        preamble = [f"export {name}={shlex.quote(value)}" for name, value in self.values.items()]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("STATEWRITER_", "GIT_"))}
        # `statewriter` is this checkout's, as `pip install -e .` makes it
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
        done = subprocess.run(["bash", "-euo", "pipefail", "-c", "\n".join([*preamble, *lines])],
                              cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
                              check=False)
        assert done.returncode == 0, f"{self.page}: {needle}: {done.stdout}{done.stderr}"
        return done


def write(server: Server, value: str, request: str = "team-a/one") -> str:
    with server.client() as http:
        answer = http.post("/v1/bundles", json=payload(
            "shop", request, {"a.yaml": config_map("a", "team-a", value)}, selectors={"env": "dev"}))
    assert answer.status_code == 200, answer.text
    return str(answer.json()["commit"])


def request_state(server: Server) -> dict[str, Any]:
    with server.client() as http:
        answer = http.get("/v1/promises/shop/requests/team-a/one")
    assert answer.status_code == 200, answer.text
    state: dict[str, Any] = answer.json()
    return state


def head(data: Path) -> str:
    """The branch a clone of the store checks out."""
    return git(f"--git-dir={data / 'state.git'}", "symbolic-ref", "HEAD").strip()


def branches(data: Path) -> dict[str, str]:
    listed = git(f"--git-dir={data / 'state.git'}", "for-each-ref", "--format=%(refname) %(objectname)")
    return dict(line.split() for line in listed.splitlines())


def test_back_up_while_serving_then_restore(tmp_path: Path) -> None:
    (tmp_path / "key").write_text(KEY + "\n")
    data = tmp_path / "data"
    config = CONFIG.format(key=tmp_path / "key")
    runbook = Runbook("backup-restore.md", {"DATA": str(data),
                                            "BACKUP": str(tmp_path / "backups" / "one.bundle")})
    (tmp_path / "backups").mkdir()
    with running_server(data, config_yaml=config, keywords=FAST) as server:
        with server.client() as http:
            assert http.put("/v1/destinations/w1", json={"labels": {"env": "dev"}}).status_code == 200
        flux = Flux(server, "w1")
        flux.applied("kratix-workload-resources", write(server, "1"))
        at_backup, state_at_backup = branches(data), request_state(server)
        assert set(at_backup) == {"refs/heads/main", "refs/heads/statewriter-delivery"}
        assert head(data) == "refs/heads/main"  # not the delivery book's branch
        backed_up = runbook.run("bundle create")
        assert "okay" in backed_up.stdout + backed_up.stderr
        assert "refs/heads/statewriter-delivery" in backed_up.stdout
        # the service goes on: a new write, and Flux reports it
        flux.applied("kratix-workload-resources", write(server, "2"))
        assert branches(data).keys() == at_backup.keys()
        assert set(branches(data).values()).isdisjoint(at_backup.values())
    restored = runbook.run("git clone --bare")
    assert "statewriter-delivery" in restored.stdout and "main" in restored.stdout
    assert branches(data) == at_backup and head(data) == "refs/heads/main"
    assert git(f"--git-dir={data / 'state.git'}", "remote") == ""
    assert (data / "state.git.before-restore").is_dir()
    with running_server(data, config_yaml=config, keywords=FAST) as server:
        assert request_state(server) == state_at_backup
        with server.client() as http:
            answer = http.get("/v1/promises/shop/requests/team-a/one")
        assert answer.json()["delivery"]["state"] == "Applied"  # as Flux reported it by then
        verified = runbook.run("statewriter verify")
        assert verified.stdout.strip().endswith(": ok"), verified.stdout
        write(server, "3")  # and it writes on from there


def test_revert_a_persons_bad_commit(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (tmp_path / "backups").mkdir()
    runbook = Runbook("revert.md", {"DATA": str(data),
                                    "BACKUP": str(tmp_path / "backups" / "before-revert.bundle"),
                                    "BAD": "", "STATEWRITER_URL": ""})
    # reads see a commit made elsewhere at once, not within the service's five seconds
    with running_server(data, keywords={"gitops.writer.Writer": {"max_staleness": 0.0}}) as server:
        with server.client() as http:
            assert http.put("/v1/destinations/w1", json={"labels": {"env": "dev"}}).status_code == 200
        write(server, "1")
        bad = by_hand(data, tmp_path / "work", lambda work: (work / RECORD).write_text("{not json"),
                      "fix the record by hand")
        runbook.set(STATEWRITER_URL=server.url)
        found = runbook.run("statewriter history")
        assert found.stdout.count(bad[:12]) == 2  # the service's history and the repository's
    runbook.set(BAD=bad[:12])
    backed_up = runbook.run("bundle create")
    assert "okay" in backed_up.stdout + backed_up.stderr
    reverted = runbook.run("statewriter revert")
    assert f"reverts: {bad}" in reverted.stdout and RECORD in reverted.stdout
    assert branch_tip(data) != bad
    with running_server(data) as server:
        write(server, "2")
        verified = runbook.run("statewriter verify")
        assert verified.stdout.strip().endswith(": ok"), verified.stdout
    # the backup holds the store as it was before the revert
    heads = git("bundle", "list-heads", str(tmp_path / "backups" / "before-revert.bundle"))
    assert f"{bad} refs/heads/main" in heads
