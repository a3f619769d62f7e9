"""`statewriter revert --data DIR COMMIT`: one commit of a stopped service's embedded store
reverted (`gitops.revert`), the store opened and locked as `serve` opens it."""

from __future__ import annotations

import argparse
import getpass
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.cli.exits import Failure, UsageError, in_context
from gitops import names
from gitops.errors import FolderInUse, StatewriterError

if TYPE_CHECKING:
    from gitops.store.base import Author
    from gitops.store.signing import Signer

REVERT_HELP = """\
Revert one commit of a STOPPED service's embedded state store: every file the commit changed
goes back to what its parent held, in one new commit on the branch (trailers
Statewriter-Action: revert, Statewriter-Reverts: COMMIT, Statewriter-Actor: --actor). The
repair for a commit made outside the service, such as a person's push that left a state
record the service cannot read (the service then stays up read-only and says so), and a way
back from a bad change. Find the commit with `statewriter history`; back the store up first.

Refused, with nothing written:
  - while a service holds DIR: stop it first;
  - when a later commit changed one of its files again: revert those first, newest first;
  - when the state after it would break the store's invariants (statewriter verify's checks,
    without the kustomize builds), unless --force;
  - for a merge commit, or one that is not on the branch.

Prints the new commit, the one it reverts, its files and (--force) what verify still finds.
Exit 0 when reverted, 1 when refused, 2 on a mistake in what it was given (a flag, a folder
without a store, a commit that is not there or cannot be reverted so).
"""


def add_parser(commands: Any) -> None:
    revert = commands.add_parser(
        "revert", help="revert one commit of a stopped service's embedded store",
        description=REVERT_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    revert.add_argument("commit", metavar="COMMIT",
                        help="the commit to revert: an id, or 4 or more of its first hex digits")
    revert.add_argument("--data", type=Path, metavar="DIR",
                        help="the stopped service's data folder (default: $STATEWRITER_DATA)")
    revert.add_argument("--branch",
                        help="the branch the service writes (default: $STATEWRITER_BRANCH, "
                             "else main)")
    revert.add_argument("--actor",
                        help="who reverts, for the Statewriter-Actor trailer (default: the "
                             "user running the command)")
    revert.add_argument("--config", type=Path, metavar="FILE",
                        help="the service's config file, for the commit's author and its signing "
                             "key (a service that signs its commits needs its reverts signed "
                             "too: Flux refuses an unsigned tip) (default: $STATEWRITER_CONFIG, "
                             "else the default author, unsigned)")
    revert.add_argument("--force", action="store_true",
                        help="revert even when the state after it would break an invariant "
                             "(default: refuse)")


def revert_command(args: argparse.Namespace) -> int:
    from gitops.revert import revert
    from gitops.store import open_existing_store
    from gitops.store.base import DEFAULT_BRANCH, Author

    data, actor = _data(args), _actor(args)
    author, signer, branch = Author(), None, args.branch or os.environ.get("STATEWRITER_BRANCH")
    if args.config is not None or os.environ.get("STATEWRITER_CONFIG"):
        author, signer, branch = _from_config(args)
    branch = branch or DEFAULT_BRANCH
    try:
        store = open_existing_store(data, branch, signer)
    except FolderInUse as error:
        raise Failure(f"revert: {data} is in use by {error.detail.get('holder')}: stop the "
                      "service first") from None
    except StatewriterError as error:
        raise in_context("revert", error) from None
    try:
        done = revert(store, args.commit, author, actor, force=args.force)
    except StatewriterError as error:
        raise in_context("revert", error) from None
    finally:
        store.close()
    print(f"statewriter revert: committed {done.commit} on {branch}")
    print(f"  reverts: {done.reverts}")
    print("  files:")
    for path in done.files:
        print(f"    {path}")
    if done.findings:
        print(f"  findings (forced past {len(done.findings)}):")
        for finding in done.findings:
            print(f"    {finding}")
    return 0


def _from_config(args: argparse.Namespace) -> tuple[Author, Signer | None, str]:
    """The author, signer and branch the service's config gives its own commits."""
    from app.config import load_config
    from gitops.errors import ConfigError, SigningError
    from gitops.store.signing import open_signer

    config = load_config(args.config, branch=args.branch)
    if config.signing is None:
        return config.author, None, config.branch
    try:
        return config.author, open_signer(config.signing.format, config.signing.key_file), \
            config.branch
    except SigningError as error:
        raise ConfigError(f"signing: {error}") from None


def _data(args: argparse.Namespace) -> Path:
    given = args.data or os.environ.get("STATEWRITER_DATA")
    if not given:
        raise UsageError("revert: give --data DIR (or set STATEWRITER_DATA): the stopped "
                         "service's data folder")
    data = Path(given)
    if not data.is_dir():
        raise UsageError(f"revert: {data} is not a folder")
    return data


def _actor(args: argparse.Namespace) -> str:
    actor = args.actor if args.actor is not None else _user()
    if not actor.strip():
        raise UsageError("revert: --actor must not be empty")
    problem = names.line_problem(actor)
    if problem is not None:  # a trailer's value is one line: a line break would add trailers
        raise UsageError(f"revert: --actor {problem}")
    return actor.strip()


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # a uid with no name (a container's), and no $USER
        return f"uid {os.getuid()}"
