"""The command line, `statewriter` (docs/reference.md section 8): one module per command, its flags
and what it runs (`serve`, `verify`, `history`, `push`, `validate`, `delete`, `rollback`,
`revert`, and `kratix`, the work-writer image's entry point), the client the commands that
call the service share (`client`), `push --wait`'s polling (`wait`), argparse as they use it
(`parsing`) and how a command ends (`exits`); `commands` parses the flags, and its `main` is
the one place an error becomes an exit status.

The commands that call the service import nothing of the service's own libraries (the web
framework, the server, the settings, the checks): the work-writer image installs only httpx
besides statewriter itself. What only `serve`, `verify`, `revert` and the offline checks need
is imported inside those commands."""

from app.cli.commands import main

__all__ = ["main"]
