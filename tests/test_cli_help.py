"""`statewriter <command> --help` on every flag of every command: what it is, the environment
variable it falls back to when it has one, and its default; read from the very parser the
command line runs, and the defaults `serve --help` names checked against the config's own."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import pytest

from app.cli import serve
from app.cli.commands import COMMANDS, build_parser
from app.config import load_config

# The variable each flag falls back to (every command that calls the service: STATEWRITER_URL)
VARIABLES = {
    **{("serve", f"--{name}"): f"STATEWRITER_{name.upper().replace('-', '_')}"
       for name in ("host", "port", "data", "remote", "branch", "config", "log-format")},
    **{(command, "--url"): "STATEWRITER_URL"
       for command in ("push", "delete", "rollback", "history", "validate")},
    ("delete", "--promise"): "PROMISE", ("delete", "--request"): "REQUEST",
    ("delete", "--pipeline"): "PIPELINE",
    ("rollback", "--promise"): "PROMISE", ("rollback", "--request"): "REQUEST",
    ("revert", "--data"): "STATEWRITER_DATA", ("revert", "--branch"): "STATEWRITER_BRANCH",
    ("revert", "--config"): "STATEWRITER_CONFIG",
}
_READ_AT_PARSE = ("PROMISE", "REQUEST", "PIPELINE")  # delete's and rollback's defaults


def commands(monkeypatch: pytest.MonkeyPatch) -> dict[str, argparse.ArgumentParser]:
    for name in _READ_AT_PARSE:  # the defaults as a fresh shell sees them
        monkeypatch.delenv(name, raising=False)
    (found,) = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(found.choices)


def help_of(parser: argparse.ArgumentParser, action: argparse.Action) -> str:
    """The help text as --help prints it (`%(default)s` filled in), on one line."""
    return " ".join(parser._get_formatter()._expand_help(action).split())


def shown(default: object) -> str:
    return f"{default:g}" if isinstance(default, float) else str(default)


def test_every_command_is_walked(monkeypatch: pytest.MonkeyPatch) -> None:
    assert set(commands(monkeypatch)) == set(COMMANDS)
    assert {command for command, _ in VARIABLES} <= set(COMMANDS)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_flag_says_what_it_is_and_its_default(monkeypatch: pytest.MonkeyPatch,
                                                    command: str) -> None:
    parser = commands(monkeypatch)[command]
    arguments = [a for a in parser._actions if not isinstance(a, argparse._HelpAction)]
    for action in arguments:
        name = action.option_strings[0] if action.option_strings else action.metavar or action.dest
        text = help_of(parser, action)
        assert len(text) >= 10, f"{command} {name}: {text!r} says nothing"
        if not action.option_strings:
            continue  # an argument: described, its default (if any) in its help below
        assert "default: " in text or "(required)" in text, f"{command} {name}: {text!r}"
        if action.default not in (None, False, [], argparse.SUPPRESS):
            assert f"default: {shown(action.default)}" in text, f"{command} {name}: {text!r}"
        variable = VARIABLES.get((command, name))
        if variable is not None:
            assert f"${variable}" in text, f"{command} {name}: {text!r} names no {variable}"
        else:
            assert "$" not in text, f"{command} {name}: {text!r}: add it to VARIABLES"


def test_every_flag_that_names_a_variable_reads_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each (command, flag) of VARIABLES is a flag the command has."""
    parsers = commands(monkeypatch)
    for (command, flag), _ in VARIABLES.items():
        assert flag in parsers[command]._option_string_actions, f"{command} has no {flag}"


def test_serve_names_the_configs_defaults() -> None:
    config = load_config(None, env={})
    assert config.host == serve.SHOWN_DEFAULTS["host"]
    assert str(config.port) == serve.SHOWN_DEFAULTS["port"]
    assert config.branch == serve.SHOWN_DEFAULTS["branch"]
    assert Path(os.path.abspath(config.data)) == Path(serve.SHOWN_DEFAULTS["data"]).absolute()


@pytest.mark.parametrize("command", COMMANDS)
def test_help_prints(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as ended:
        build_parser().parse_args([command, "--help"])
    assert ended.value.code == 0
    printed = capsys.readouterr().out
    assert printed.startswith(f"usage: statewriter {command}") and "default: " in printed
