"""The command line, `statewriter` (CONTRACT section 8)."""

from app.cli.commands import main

__all__ = ["main"]
