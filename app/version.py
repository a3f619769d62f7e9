"""The installed version, as pyproject.toml declares it."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    VERSION = version("statewriter")
except PackageNotFoundError:  # running from a checkout that was never installed
    VERSION = "0+unknown"
