"""The shape the design asks of the code, checked on its syntax trees: processes start in one
module (gitops/git/process.py: environment, time limit and process group decided once), and
app/ finds the state store's repository only through the store, never under the data
folder by itself."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
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
