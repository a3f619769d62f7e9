"""`statewriter serve | verify | history | push | validate | delete | rollback | revert | kratix`
(docs/reference.md section 8).

A mistake in the flags, the environment or the config file, and a store or service that
cannot be reached, end the command with one line on stderr, `statewriter: <what went wrong>`,
and a non-zero exit (2 for usage and configuration, 1 for what failed at run time); never a
traceback. Output cut short by a closed pipe (`statewriter history ... | head -1`) ends
quietly with exit 141, as a tool stopped by SIGPIPE does.
"""

from __future__ import annotations

import argparse
import os
import sys

from app.cli import delete, history, kratix, push, revert, rollback, serve, validate, verify
from app.cli.exits import EXIT_CLOSED_PIPE, EXIT_FAILURE, EXIT_INTERRUPTED, exit_status, said
from app.cli.parsing import OneLineParser, parse
from app.version import VERSION
from gitops.errors import StatewriterError

# Each command's module: its flags (`add_parser`) and what it runs; in the order --help lists them
COMMANDS = {
    "serve": (serve.add_parser, serve.serve_command),
    "verify": (verify.add_parser, verify.verify_command),
    "history": (history.add_parser, history.history_command),
    "push": (push.add_parser, push.push_command),
    "validate": (validate.add_parser, validate.validate_command),
    "delete": (delete.add_parser, delete.delete_command),
    "rollback": (rollback.add_parser, rollback.rollback_command),
    "revert": (revert.add_parser, revert.revert_command),
    "kratix": (kratix.add_parser, kratix.kratix_command),
}


def main(argv: list[str] | None = None) -> int:
    """Run one command; what ends it early is told here, and only here (`app.cli.exits`)."""
    try:
        args = parse(build_parser(), argv)
        _configure_logs(args)
        _, run = COMMANDS[args.command]
        status = run(args)
        sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's exit
        return status
    except BrokenPipeError:
        # Whoever read stdout stopped (`| head -1`): nothing to say, nowhere to say it.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return EXIT_CLOSED_PIPE
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except (StatewriterError, OSError) as error:
        print(f"statewriter: {said(error)}", file=sys.stderr)
        return exit_status(error)
    except ModuleNotFoundError as error:  # an install with the client's libraries only
        print(f"statewriter: {error.name or 'a module'} is not installed here: the work-writer "
              "image has only what push, delete, rollback, history --url, validate --url and "
              "kratix need; install statewriter with its dependencies", file=sys.stderr)
        return EXIT_FAILURE


def _configure_logs(args: argparse.Namespace) -> None:
    """The service logs JSON unless told otherwise; the other commands, plain text."""
    from app import logs

    logs.configure(logs.chosen_format(args.log_format) if args.command == "serve" else "text")


def build_parser() -> argparse.ArgumentParser:
    """The command line's parser: every command of COMMANDS with its flags."""
    parser = OneLineParser(prog="statewriter", description=__doc__,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"statewriter {VERSION}")
    commands = parser.add_subparsers(dest="command", required=True)
    for add_parser, _ in COMMANDS.values():
        add_parser(commands)
    return parser
