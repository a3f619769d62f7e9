"""The shape the design asks of the code, checked on its syntax trees: processes start in one
module (gitops/git/process.py: environment, time limit and process group decided once),
app/ finds the state store's repository only through the store, never under the data
folder by itself, and the imports run one way: from the surfaces (app/cli, app/web,
app/http) down to what they share (app/*.py) and the core (gitops/), never back up and
never in a circle (docs/contributing.md, "Where each kind of change goes")."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PROCESS_MODULE = ROOT / "gitops" / "git" / "process.py"
# os functions that replace or start a process (os.system and os.popen run a shell)
_OS_STARTS = re.compile(r"exec\w*|spawn\w*|posix_spawn\w*|fork\w*|system|popen")
_LOOP_STARTS = ("subprocess_exec", "subprocess_shell")  # an event loop's own
_URL_PATH = "/git/state.git"  # the route Flux clones: a URL, not a folder


def _modules(*folders: str) -> Iterator[Path]:
    for folder in folders:
        yield from sorted((ROOT / folder).rglob("*.py"))


def process_starts(source: str) -> list[str]:
    """Each place `source` imports subprocess or starts a process some other way."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [f"{node.lineno}: import {a.name}" for a in node.names
                      if a.name in ("subprocess", "asyncio.subprocess")]
        elif isinstance(node, ast.ImportFrom):
            names = [a.name for a in node.names]
            if node.module == "subprocess" or (node.module == "asyncio" and any(
                    n == "subprocess" or n.startswith("create_subprocess_") for n in names)) or (
                    node.module == "os" and any(_OS_STARTS.fullmatch(n) for n in names)):
                found.append(f"{node.lineno}: from {node.module} import {', '.join(names)}")
        elif isinstance(node, ast.Attribute):
            owner = node.value.id if isinstance(node.value, ast.Name) else None
            if (node.attr.startswith("create_subprocess_") or node.attr in _LOOP_STARTS
                    or (owner == "asyncio" and node.attr == "subprocess")
                    or (owner == "os" and _OS_STARTS.fullmatch(node.attr))):
                found.append(f"{node.lineno}: {ast.unparse(node)}")
    return found


def store_folder_uses(source: str) -> list[str]:
    """Each place `source` names `state.git` other than in the URL path, or joins a path
    under `config.data`."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            if "state.git" in node.value.replace(_URL_PATH, ""):
                found.append(f"{node.lineno}: {node.value[:60]!r}")
        elif (isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div)
              and ast.unparse(node.left).endswith("config.data")):
            found.append(f"{node.lineno}: {ast.unparse(node)}")
    return found


def test_only_the_process_module_starts_processes() -> None:
    found = [f"{path.relative_to(ROOT)}:{where}" for path in _modules("app", "gitops")
             if path != PROCESS_MODULE for where in process_starts(path.read_text())]
    assert found == [], "start processes through gitops.git.process"


def test_the_process_module_is_where_they_start() -> None:
    assert process_starts(PROCESS_MODULE.read_text())  # else the check above checks nothing


def test_app_finds_the_store_folder_only_through_the_store() -> None:
    found = [f"{path.relative_to(ROOT)}:{where}" for path in _modules("app")
             for where in store_folder_uses(path.read_text())]
    assert found == [], "ask the store (writer.store, gitops.store.http_backend) for its repository"


@pytest.mark.parametrize("source", [
    "import subprocess",
    "import asyncio.subprocess",
    "from subprocess import run",
    "from asyncio import create_subprocess_exec",
    "from os import execvp",
    "asyncio.create_subprocess_shell('x')",
    "asyncio.subprocess.PIPE",
    "asyncio.get_running_loop().subprocess_exec(factory, 'git')",
    "os.execv('/bin/sh', [])",
    "os.posix_spawn('/bin/sh', [], {})",
    "os.system('ls')",
    "os.fork()",
])
def test_the_process_check_finds(source: str) -> None:
    assert process_starts(source)


@pytest.mark.parametrize("source", [
    "from gitops.git import process\nprocess.run(['git'], {})",
    "import os\nos.environ.get('X'); os.killpg",
    "platform.system()",
])
def test_the_process_check_passes(source: str) -> None:
    assert process_starts(source) == []


@pytest.mark.parametrize("source", [
    "root = (config.data / 'state.git').resolve()",
    "where = f\"{config.data / 'x'}\"",
    "path = request.app.state.config.data / 'cache.git'",
    "name = 'state.git'",
    "url = '/git/state.git/' + ' and state.git'",
])
def test_the_folder_check_finds(source: str) -> None:
    assert store_folder_uses(source)


@pytest.mark.parametrize("source", [
    "@app.api_route('/git/state.git/{rest:path}')\ndef f(): ...",
    "url = f\"{base.rstrip('/')}/git/state.git\"",
    "where = f'{store.path} (embedded)'",
    "check(config.data)",
])
def test_the_folder_check_passes(source: str) -> None:
    assert store_folder_uses(source) == []


# -- the import graph ---------------------------------------------------------------------------

# Each part of the code, and the parts it may import. The core (gitops) knows no surface; what
# the surfaces share (app's own modules: config, version, jsonable, logs, eck) knows only the
# core; the web pages stand on the HTTP API (its reads, tokens and the one status table);
# app.main assembles the API and the pages into one app; the command line stands on that.
MAY_IMPORT: dict[str, set[str]] = {
    "gitops": {"gitops"},
    "app": {"app", "gitops"},
    "app.http": {"app.http", "app", "gitops"},
    "app.web": {"app.web", "app.http", "app", "gitops"},
    "app.main": {"app.http", "app.web", "app", "gitops"},
    "app.cli": {"app.cli", "app.main", "app", "gitops"},
}
# ... and the modules of a part that another may import besides: `statewriter serve` runs the
# app that app.main assembles, under the API's uvicorn seam, with the API's metrics as the
# observers of the writer lane, the notifier and the sealer it makes
ALSO: dict[str, set[str]] = {"app.cli": {"app.http.server", "app.http.metrics"}}


def module_files(*folders: str) -> dict[str, Path]:
    """Every module of `folders` by its dotted name (a package by its own)."""
    found = {}
    for path in _modules(*folders):
        parts = path.relative_to(ROOT).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imported(name: str, source: str, known: Iterable[str], package: bool = False) -> set[str]:
    """The modules of `known` that module `name` imports anywhere in `source` (in a function,
    under TYPE_CHECKING too): `from a import b` names a.b when that is a module, else a."""
    known = set(known)

    def nearest(dotted: str) -> str | None:
        while dotted and dotted not in known:
            dotted = dotted.rpartition(".")[0]
        return dotted or None

    found: set[str | None] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(nearest(alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the package this module is in (or is)
                here = name if package else name.rpartition(".")[0]
                for _ in range(node.level - 1):
                    here = here.rpartition(".")[0]
                base = f"{here}.{base}" if base else here
            found.update(f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else nearest(base)
                         for alias in node.names)
    return {module for module in found if module is not None and module != name}


def import_graph(*folders: str) -> dict[str, set[str]]:
    files = module_files(*folders)
    return {name: imported(name, path.read_text(), files, path.name == "__init__.py")
            for name, path in files.items()}


def part_of(module: str) -> str:
    for part in sorted(MAY_IMPORT, key=len, reverse=True):
        if module == part or module.startswith(f"{part}."):
            return part
    raise AssertionError(f"{module} is in no part: add it to MAY_IMPORT")


def upward(graph: Mapping[str, set[str]]) -> list[str]:
    """Each import of a part that the part may not make."""
    return [f"{module} -> {target}" for module, targets in sorted(graph.items())
            for target in sorted(targets)
            if part_of(target) not in MAY_IMPORT[part_of(module)]
            and target not in ALSO.get(part_of(module), set())]


def circles(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """The modules that import each other in a loop, each loop's set sorted (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for target in sorted(graph.get(module, ())):
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            loop = []
            while not loop or loop[-1] != module:
                loop.append(stack.pop())
            if len(loop) > 1:
                found.append(sorted(loop))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return sorted(found)


def test_the_imports_run_down_from_the_surfaces_to_the_core() -> None:
    assert upward(import_graph("app", "gitops")) == [], \
        "see MAY_IMPORT: move what two parts share down to where both may import it"


def test_the_imports_make_no_circle() -> None:
    assert circles(import_graph("app", "gitops")) == []


def test_every_module_is_in_a_part() -> None:
    graph = import_graph("app", "gitops")
    assert {part_of(module) for module in graph} == set(MAY_IMPORT)


@pytest.mark.parametrize(("name", "source", "expected"), [
    ("app.cli.serve", "from app.http import metrics, server", {"app.http.metrics", "app.http.server"}),
    ("app.cli.serve", "def f():\n    from app.main import create_app", {"app.main"}),
    ("app.web.pages", "import app.http.answers as answers", {"app.http.answers"}),
    ("app.http.api", "from .answers import answer\nfrom . import schemas", {"app.http.answers",
                                                                        "app.http.schemas"}),
    ("app.http", "from .api import router", {"app.http.api"}),
    ("gitops.writer", "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import app.main",
     {"app.main"}),
])
def test_the_import_reading_finds(name: str, source: str, expected: set[str]) -> None:
    known = {"app", "app.main", "app.http", "app.http.answers", "app.http.api", "app.http.metrics",
             "app.http.schemas", "app.http.server", "app.cli", "app.cli.serve", "app.web",
             "app.web.pages", "gitops", "gitops.writer"}
    assert imported(name, source, known, package=name == "app.http") == expected


def test_the_import_checks_find() -> None:
    graph = {"gitops.writer": {"app.http.answers"}, "app.http.answers": {"app.web.pages"},
             "app.web.pages": {"app.cli.history", "app.http.answers"}, "app.cli.history": set(),
             "app.cli.serve": {"app.http.api", "app.http.server", "app.web.pages"},
             "app.config": {"app.http.state"}, "app.http.state": {"app.config"}}
    assert upward(graph) == ["app.cli.serve -> app.http.api", "app.cli.serve -> app.web.pages",
                             "app.config -> app.http.state", "app.http.answers -> app.web.pages",
                             "app.web.pages -> app.cli.history", "gitops.writer -> app.http.answers"]
    assert circles(graph) == [["app.config", "app.http.state"],
                              ["app.http.answers", "app.web.pages"]]
