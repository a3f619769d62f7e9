"""The documentation is true and whole: the MkDocs site builds without a warning (broken links
and anchors included), every relative link of the README and the pages resolves, no tracked
file points users at a file they do not have, the README stays a short front page whose
walkthrough prints what the service prints, and the reference pages name every command,
flag, config key, route and metric the code has."""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.routing import APIRoute
from pydantic import BaseModel

from app.cli.commands import build_parser
from app.config import SERVE_SETTINGS, Config
from app.http import api, audit, delivery, ops
from tests.procs import ROOT, running_server

DOCS = ROOT / "docs"
README = ROOT / "README.md"
MAX_README_LINES = 300
# What users' clones do not have; spelt so that this file does not match itself.
# the file, the folder beside the checkout, or a path to that folder built with pathlib
UNSHIPPED = ("CONTRAC[T]", r"\.\./share[d]", r"/ \"share[d]\"", r"/ 'share[d]'")
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
FENCE = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)
CODE_SPAN = re.compile(r"`[^`\n]*`")


def run(command: list[str], cwd: Path | None = None,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=600,
                          check=False)


def pages() -> Iterator[Path]:
    yield README
    yield ROOT / "CHANGELOG.md"
    yield from sorted(DOCS.rglob("*.md"))


def prose(text: str) -> str:
    """The Markdown without its code blocks and code spans, where a link is only text."""
    return CODE_SPAN.sub("", FENCE.sub("", text))


# -- the site -------------------------------------------------------------------------------


def test_the_site_builds_without_a_warning(tmp_path: Path) -> None:
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    done = run([sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file",
                str(ROOT / "mkdocs.yml"), "--site-dir", str(tmp_path / "site")], env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "WARNING" not in done.stdout + done.stderr, done.stdout + done.stderr
    changelog = (tmp_path / "site" / "changelog" / "index.html").read_text()
    assert "Unreleased" in changelog  # the site shows the top-level CHANGELOG.md


def test_every_page_is_in_the_site_nav() -> None:
    nav = (ROOT / "mkdocs.yml").read_text()
    for page in DOCS.rglob("*.md"):
        assert f" {page.relative_to(DOCS).as_posix()}\n" in nav, page


@pytest.mark.parametrize("page", list(pages()), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(page: Path) -> None:
    for target in LINK.findall(prose(page.read_text())):
        if re.match(r"[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            continue  # a URL, or a place on the same page (mkdocs checks anchors)
        path = target.split("#", 1)[0]
        assert (page.parent / path).exists(), f"{page.relative_to(ROOT)}: {target}"


def test_no_tracked_file_points_at_a_file_users_do_not_have() -> None:
    patterns = [argument for pattern in UNSHIPPED for argument in ("-e", pattern)]
    done = run(["git", "grep", "-n", *patterns, "--", ".", ":!tests/fixtures"], cwd=ROOT)
    assert done.returncode == 1, done.stdout + done.stderr  # 1: no line matches


# -- the README -----------------------------------------------------------------------------


def readme_section(title: str) -> str:
    text = README.read_text()
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start:] if end == -1 else text[start:end]


def test_the_readme_is_a_short_front_page_that_starts_with_the_two_commands() -> None:
    lines = README.read_text().splitlines()
    assert len(lines) <= MAX_README_LINES
    assert lines[0] == "# statewriter" and lines[2] == "```sh" and lines[5] == "```"
    serve, tests = (re.sub(r"\s+#\s.*$", "", line) for line in lines[3:5])
    assert serve.endswith("pip install -e . && statewriter serve --data ./var")
    assert tests.endswith("python -m pip install -q -e '.[test]' && python -m pytest")
    ci = [line for line in (ROOT / ".ci" / "run").read_text().splitlines() if line and line[0] != "#"]
    assert ci[-1] == tests  # .ci/run runs exactly the README's test command


def walkthrough() -> list[tuple[str, str]]:
    """The README walkthrough's console block as (command, what it printed) pairs."""
    block = readme_section("Walkthrough: the seed scenario").split("```console\n", 1)[1].split("\n```", 1)[0]
    steps: list[tuple[str, list[str]]] = []
    for line in block.splitlines():
        if line.startswith("$ "):
            steps.append((line[2:], []))
        else:
            steps[-1][1].append(line)
    return [(command, "".join(f"{line}\n" for line in output)) for command, output in steps]


def same_up_to_ids(text: str) -> str:
    """`text` with commit ids and times that differ from run to run numbered in order of
    appearance, so that which commit is which still has to match."""
    ids: dict[str, str] = {}

    def full(match: re.Match[str]) -> str:
        return ids.setdefault(match.group(0), f"<commit {len(ids) + 1}>")

    def short(match: re.Match[str]) -> str:
        named = [label for sha, label in ids.items() if sha.startswith(match.group(0))]
        return named[0] if named else "<unknown commit>"

    text = re.sub(r"\b[0-9a-f]{40}\b", full, text)
    text = re.sub(r"(?m)^[0-9a-f]{12}\b", short, text)
    return re.sub(r"\b\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\b", "<time>", text)


def test_the_walkthrough_prints_what_the_readme_shows(tmp_path: Path) -> None:
    """Every command of the walkthrough, run as a newcomer runs it (a second terminal, the
    virtualenv active, the service started by the README's first command), prints what the
    README shows, but for commit ids and times."""
    steps = walkthrough()
    assert steps and "statewriter push" in " ".join(command for command, _ in steps)
    bin_dir = tmp_path / "bin"  # `statewriter` is this checkout's, as `pip install -e .` makes it
    bin_dir.mkdir()
    (bin_dir / "statewriter").write_text(f'#!/bin/sh\nexec "{sys.executable}" -m app.cli "$@"\n')
    (bin_dir / "statewriter").chmod(0o755)
    terminal = tmp_path / "terminal"  # the clone's folder, where the walkthrough's clone goes
    terminal.mkdir()
    (terminal / "examples").symlink_to(ROOT / "examples")
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("GIT_", "STATEWRITER_"))}
    env.update(PATH=f"{bin_dir}{os.pathsep}{env['PATH']}", PYTHONPATH=str(ROOT), GIT_TERMINAL_PROMPT="0")
    printed, shown = [], []
    with running_server(tmp_path / "data") as server:
        for command, output in steps:
            done = run(["bash", "-c", command.replace("localhost:8080", f"127.0.0.1:{server.port}")],
                       cwd=terminal, env=env)
            assert done.returncode == 0, (command, done.stderr)
            printed.append(f"$ {command}\n{done.stdout}")
            shown.append(f"$ {command}\n{output}")
    assert same_up_to_ids("".join(printed)) == same_up_to_ids("".join(shown))


# -- the reference pages name everything the code has --------------------------------------


def test_the_reference_keeps_the_numbering_the_code_cites() -> None:
    text = (DOCS / "reference.md").read_text()
    sections = re.findall(r"(?m)^## (\d+)\. ", text)
    assert sections == [str(n) for n in range(1, 13)]
    invariants = text.split("\n## 3. ", 1)[1].split("\n## 4. ", 1)[0]
    assert re.findall(r"(?m)^(\d+)\. ", invariants) == [str(n) for n in range(1, 11)]


def subcommands() -> dict[str, argparse.ArgumentParser]:
    for action in build_parser()._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    raise AssertionError("statewriter has no commands")


def test_every_command_and_flag_is_on_the_command_line_page() -> None:
    text = (DOCS / "cli.md").read_text()
    for name, parser in subcommands().items():
        assert f"\n## {name}\n" in text, name
        section = text.split(f"\n## {name}\n", 1)[1].split("\n## ", 1)[0]
        for action in parser._actions:
            for flag in action.option_strings:
                if flag.startswith("--") and flag != "--help":
                    assert flag in section, f"statewriter {name} {flag}"


def keys(model: type[BaseModel], top: bool = False) -> Iterator[str]:
    for name, field in model.model_fields.items():
        if top and name in SERVE_SETTINGS:
            continue
        yield field.alias or name
        for kind in (field.annotation, *getattr(field.annotation, "__args__", ())):
            if isinstance(kind, type) and issubclass(kind, BaseModel):
                yield from keys(kind)
            for inner in getattr(kind, "__args__", ()):
                if isinstance(inner, type) and issubclass(inner, BaseModel):
                    yield from keys(inner)


def test_every_config_key_and_flag_is_on_the_configuration_page() -> None:
    text = (DOCS / "configuration.md").read_text()
    for key in set(keys(Config, top=True)):
        assert re.search(rf"\b{key}\b", text), key
    for setting in SERVE_SETTINGS:
        assert f"`--{setting}` | `STATEWRITER_{setting.upper()}`" in text, setting


def test_every_route_is_on_the_api_page() -> None:
    text = (DOCS / "api.md").read_text()
    for router in (api.router, audit.router, delivery.router, delivery.events_router, ops.router):
        for route in router.routes:
            if isinstance(route, APIRoute) and route.include_in_schema:
                for method in route.methods or ():
                    assert f"{method} {route.path}" in text, f"{method} {route.path}"


def test_every_metric_is_on_the_operations_page() -> None:
    text = (DOCS / "operations.md").read_text()
    source = (ROOT / "app" / "http" / "metrics.py").read_text()
    for name in set(re.findall(r"\"(statewriter_[a-z_]+)\"", source)):
        assert f"`{name}`" in text, name
