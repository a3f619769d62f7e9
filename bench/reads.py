"""How long the big reads take: `python -m bench.reads` (a script, not a test: the suite
checks what these reads answer, this times them).

- `statewriter verify` of a tree of more than 10,000 files (three requests of 3,400
  ConfigMaps each): the invariants alone, then with the kustomize builds;
- a filtered page of `/v1/history` over 20,000 commits (`AuditLog.page`, promise and actor
  filters, 50 a page), once the log is read.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from gitops.reads.audit import AuditLog, parse_query
from gitops.store.reads import open_repository
from gitops.tree import DictTree
from gitops.verify import verify_tree
from tests.support import World
from tests.test_audit import fast_import, synthetic


def verify_seconds() -> tuple[int, float, float]:
    store = World()
    store.destination("w1", {})
    for request in range(3):
        documents = "".join(
            f"---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-{request}-{i}\n"
            f"data:\n  value: '{i}'\n" for i in range(3400))
        store.apply({"promise": "many", "request": {"namespace": "team", "name": f"r{request}"},
                     "files": {"all.yaml": documents}})
    tree = DictTree(store.files())
    started = time.monotonic()
    assert verify_tree(tree, kustomize=False) == []
    checks = time.monotonic() - started
    started = time.monotonic()
    assert verify_tree(tree) == []
    return len(store.files()), checks, time.monotonic() - started


def history_page_seconds(count: int, pages: int) -> float:
    with tempfile.TemporaryDirectory() as folder:
        repo = Path(folder) / "state.git"
        tip = fast_import(repo, synthetic(count))
        log = AuditLog(open_repository(repo))
        log.page(tip, parse_query(limit="1"))  # the log read once, as the service keeps it
        started = time.monotonic()
        for _ in range(pages):
            log.page(tip, parse_query(limit="50", promise="promise-3", actor="pipeline-1"))
        return (time.monotonic() - started) / pages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commits", type=int, default=20_000, help="history length (20000)")
    parser.add_argument("--pages", type=int, default=20, help="filtered pages timed (20)")
    args = parser.parse_args()
    files, checks, total = verify_seconds()
    print(f"verify, {files} files: invariants {checks:.1f} s, with the kustomize builds "
          f"{total:.1f} s")
    page = history_page_seconds(args.commits, args.pages)
    print(f"history, {args.commits} commits: a filtered page of 50 in {page * 1000:.1f} ms")


if __name__ == "__main__":
    main()
