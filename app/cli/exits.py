"""How a command ends when it cannot do its work: the command line's own errors, the one line
each is told in, and the one table from error to exit status (docs/reference.md section 8).

A command raises what went wrong, with its context (`history: ...`); `app.cli.commands.main` alone
prints it, `statewriter: <line>` on stderr, and exits with the status EXIT_STATUS gives the
error's nearest kind there: 2 for a mistake in what the command was given (flags, the
environment, the config file, its files, a name that names nothing: every `SetupError`,
`UsageError` and `ConfigError`, `NotFound` and `InvalidQuery` among them), 1 for what failed
or was refused at run time (a store, a service, a file, a conflict: `Failure`, any other
`StatewriterError`, an `OSError`). A core error keeps its kind when a command tells its
context (`in_context`), so that the table still decides.
"""

from __future__ import annotations

import signal

from gitops.errors import InvalidQuery, NotFound, SetupError, StatewriterError
from gitops.redact import redact

EXIT_FAILURE = 1  # what failed at run time: a store, a service, a file
EXIT_USAGE = 2  # a mistake in the flags, the environment or the config file
EXIT_CLOSED_PIPE = 128 + signal.SIGPIPE
EXIT_INTERRUPTED = 128 + signal.SIGINT


class UsageError(SetupError):
    """A mistake in a command's flags or arguments, or in the files and folders it was given."""


class Failure(StatewriterError):
    """What a command could not do at run time (a store it cannot open, a port taken, a
    service that answered something else), in the command's own words."""


EXIT_STATUS: dict[type[BaseException], int] = {
    SetupError: EXIT_USAGE,
    NotFound: EXIT_USAGE,  # a commit, branch or store the command was given that is not there
    InvalidQuery: EXIT_USAGE,  # ... or that cannot be used so (a merge commit to revert)
    StatewriterError: EXIT_FAILURE,
    OSError: EXIT_FAILURE,  # a file or folder the command needed
}


def exit_status(error: BaseException) -> int:
    for kind in type(error).__mro__:
        if kind in EXIT_STATUS:
            return EXIT_STATUS[kind]
    return EXIT_FAILURE


def in_context(command: str, error: StatewriterError) -> StatewriterError:
    """`error`, of the same kind, told as `command: <what went wrong>`."""
    error.message = f"{command}: {error.message}"
    error.args = (error.message,)
    return error


def said(error: BaseException) -> str:
    """The line that tells `error`: the command's own words for its own errors and those of
    what it was given (already one line, without credentials), else `describe(error)`."""
    if isinstance(error, Failure | SetupError):
        return error.message
    return describe(error)


# What git and ssh add around the reason a remote failed, and say for every reason.
_BOILERPLATE = ("fatal: could not read from remote repository", "please make sure you have",
                "and the repository exists", "host key verification failed")


def one_line(text: str) -> str:
    """`text` as one line: its first line, unless that says nothing after its colon (git's
    reason came on the next lines, as under ssh's banner of '@'): then the last line that
    gives a reason, past warnings, hints and the advice git and ssh print for any failure."""
    lines = [line.strip(" \t@") for line in text.splitlines()]
    lines = [line for line in lines if line]
    if not lines:
        return text.strip() or "unknown error"
    first = lines[0]
    if first.endswith(":") and len(lines) > 1:
        rest = [line for line in lines[1:]
                if not line.lower().startswith(("hint:", "warning:"))] or lines[1:]
        reasons = [line for line in rest if not line.lower().startswith(_BOILERPLATE)] or rest[:1]
        first = f"{first} {reasons[-1]}"
    return " ".join(first.split())


def describe(error: BaseException) -> str:
    """An exception as one line without credentials: OSErrors as `file: reason`, others by
    their message (or their type when they have none)."""
    if isinstance(error, OSError) and error.strerror:
        text = f"{error.filename}: {error.strerror}" if error.filename else error.strerror
    else:
        text = str(error) or type(error).__name__
    return redact(one_line(text))
