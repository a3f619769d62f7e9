"""`statewriter serve`: the service, from its config (`app.config`) to its socket. Every
mistake in what it was given stops it before it opens the store, with one line; the store is
opened (a first clone, a migration) while its log lines are held, so that a quick failed
start ends with the one line that says why."""

from __future__ import annotations

import argparse
import errno
import ipaddress
import logging
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from app.cli.exits import EXIT_FAILURE, Failure, describe
from app.version import VERSION
from gitops.errors import ConfigError, StatewriterError
from gitops.redact import redact

# The defaults as --help tells them; app.config owns them (importing it here would load the
# service's libraries for every command), and tests/test_cli_help.py checks the two agree.
SHOWN_DEFAULTS = {"host": "127.0.0.1", "port": "8080", "data": "./var", "branch": "main"}


def add_parser(commands: Any) -> None:
    serve = commands.add_parser("serve", help="run the service")
    shown = SHOWN_DEFAULTS
    serve.add_argument("--host", help="the address to listen on; without an auth section in "
                                      "the config, only a loopback one "
                                      f"(default: $STATEWRITER_HOST, else {shown['host']})")
    serve.add_argument("--port", type=int,
                       help=f"the port to listen on (default: $STATEWRITER_PORT, else {shown['port']})")
    serve.add_argument("--data", metavar="DIR",
                       help="the data folder: the embedded state store, or a remote's "
                            "working copy; one service per folder "
                            f"(default: $STATEWRITER_DATA, else {shown['data']})")
    serve.add_argument("--remote", metavar="URL",
                       help="a git remote (a URL or host:path) the state store is pushed to "
                            "(default: $STATEWRITER_REMOTE, else none: the embedded store)")
    serve.add_argument("--branch", help="the branch the state is written to "
                                        f"(default: $STATEWRITER_BRANCH, else {shown['branch']})")
    serve.add_argument("--config", type=Path, metavar="FILE",
                       help="the YAML config file: tokens, author, limits, signing, secrets... "
                            "(default: $STATEWRITER_CONFIG, else none)")
    serve.add_argument("--log-format", choices=("json", "text"),
                       help="one JSON object per line, or text "
                            "(default: $STATEWRITER_LOG_FORMAT, else json)")


def serve_command(args: argparse.Namespace) -> int:
    # the service's modules load here, not for every command
    from app.config import load_config
    from app.http import metrics, server
    from app.main import create_app, open_writer
    from gitops.errors import CorruptState, IdentityError, SigningError
    from gitops.secrets import Sealer
    from gitops.store.signing import Signer, open_signer

    config = load_config(args.config, host=args.host, port=args.port, data=args.data,
                         remote=args.remote, branch=args.branch)
    if not config.auth_enabled and not _is_loopback(config.host):
        raise ConfigError(f"refusing to listen on {config.host} without an auth section in the "
                          "config; add tokens or listen on 127.0.0.1")
    _check_data(config.data)
    listener = _listen(config.host, config.port)
    try:
        # The writer lane is the critical path, and each zlib or hashlib call in it hands the
        # GIL over; getting it back from busy request threads waits up to the switch interval
        # (5 ms by default; a quarter of the lane's time was spent there under load).
        sys.setswitchinterval(0.0005)
        signer: Signer | None = None
        if config.signing is not None:
            try:  # the key is read and tried once now; the store owns the signer from here on
                signer = open_signer(config.signing.format, config.signing.key_file)
            except SigningError as error:
                raise ConfigError(f"signing: {error}") from None
        sealer: Sealer | None = None
        if config.secrets is not None:  # read and checked once now (docs/reference.md section 9)
            try:
                sealer = Sealer.from_file(config.secrets.identity_file,
                                          config.secrets.require_encryption,
                                          observe=metrics.encryption_operation)
            except (IdentityError, OSError, UnicodeDecodeError) as error:
                raise ConfigError(f"secrets.identityFile: {error}") from None
        held = _HeldLogs()
        if signer is not None:
            logging.getLogger("statewriter").info("commits are signed by the %s key %s",
                                                  signer.format, signer.fingerprint)
        try:
            writer = open_writer(config, signer)
        except (CorruptState, StatewriterError, OSError) as error:
            held.finish(keep=False)
            what = "is corrupt" if isinstance(error, CorruptState) else "cannot be opened"
            raise Failure(f"the state store {what}: {describe(error)}") from None
        except BaseException:
            held.finish(keep=True)  # not a start-up problem we know: the log, then its traceback
            raise
        held.finish(keep=True)
        # uvicorn names the address only for sockets it bound itself
        address = _address(config.host, config.port)
        where = redact(config.remote) if config.remote else f"{writer.store.path} (embedded)"
        logging.getLogger("statewriter").info(
            "statewriter %s on http://%s, state store %s", VERSION, address, where,
            extra={"event": "start", "version": VERSION, "address": address, "store": where})
        try:
            started = server.serve(create_app(config, writer, sealer), config, sockets=[listener])
        finally:
            writer.close_listeners()  # closed with the writer already, unless it never started
        return 0 if started else EXIT_FAILURE  # uvicorn has logged why it did not
    finally:
        listener.close()


class _HeldLogs(logging.Handler):
    """Holds the root logger's records while the service opens its store: written out once
    it has (or at the first warning, or when opening takes long enough for a person to want
    progress: a first fetch, a migration), dropped when it could not, so that a quick failed
    start ends with the one line that says why."""

    HOLD_SECONDS = 3.0

    def __init__(self) -> None:
        super().__init__()
        root = logging.getLogger()
        self._targets = list(root.handlers)
        self._held: list[logging.LogRecord] | None = []
        self._since = time.monotonic()
        root.handlers = [self]

    def emit(self, record: logging.LogRecord) -> None:
        quick = time.monotonic() - self._since < self.HOLD_SECONDS
        if self._held is not None and record.levelno < logging.WARNING and quick:
            self._held.append(record)
            return
        self._write_held()
        self._write(record)

    def finish(self, keep: bool) -> None:
        logging.getLogger().handlers = self._targets
        if keep:
            self._write_held()
        self._held = None

    def _write_held(self) -> None:
        held, self._held = self._held or [], None
        for record in held:
            self._write(record)

    def _write(self, record: logging.LogRecord) -> None:
        for handler in self._targets:
            if record.levelno >= handler.level:
                handler.handle(record)


def _check_data(data: Path) -> None:
    """The data folder, created and written once now, so that one that cannot be stops the
    service with its reason (the config checks what it can by looking; as root, or on a
    file system that refuses, only trying tells)."""
    try:
        data.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=data):
            pass
    except OSError as error:
        raise ConfigError(f"the data folder {data} cannot be used: {error.strerror or error}") from None


def _listen(host: str, port: int) -> socket.socket:
    """The service's socket, bound and listening before the store is opened, so that a port
    in use is one line at once rather than a failure after a long start."""
    address = _address(host, port)
    # as uvicorn binds it: IPv6 when the host is an IPv6 address, else IPv4
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except (OSError, OverflowError) as error:
        sock.close()
        reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
        in_use = isinstance(error, OSError) and error.errno == errno.EADDRINUSE
        hint = " (another process listens there: stop it or choose another --port)" if in_use else ""
        message = f"cannot listen on {address}: {reason}{hint}"
        if in_use:  # another process holds the port: this run failed
            raise Failure(message) from None
        raise ConfigError(message) from None  # the address given cannot be used
    return sock


def _address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
