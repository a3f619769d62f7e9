"""The command line, `statewriter` (docs/reference.md section 8): one module per command, its flags
and what it runs (`serve`, `verify`, `history`, `push`, `validate`, `delete`, `rollback`),
the client the commands that call the service share (`client`), `push --wait`'s polling
(`wait`), and how a command ends (`exits`); `commands` parses the flags, and its `main` is
the one place an error becomes an exit status."""

from app.cli.commands import main

__all__ = ["main"]
