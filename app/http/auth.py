"""Bearer tokens from the config (docs/reference.md section 8): who may read, write, manage. The API
checks them on every /v1 route; git over HTTP and the web pages take the same tokens (the
pages' sign-in sessions are `app.web.sessions`)."""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from fastapi import Request

from app.config import Config, Token, token_secrets
from app.http.access import note
from gitops.errors import Forbidden, Unauthorized

ANONYMOUS = "anonymous"
TOKEN_FILE_CHECK_SECONDS = 1.0  # a rotated tokenFile takes effect within about this long

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Principal:
    name: str
    token: Token | None  # None when auth is off
    # the one of the token's secrets it came with (a web session is signed with it, so that
    # it lives as long as that secret, whatever secret is added beside it)
    secret: str | None = field(default=None, repr=False, compare=False)

    def require_promise(self, promise: str) -> None:
        if self.token is not None and not self.token.may_write(promise):
            raise Forbidden(f"token '{self.name}' may not write promise '{promise}'")

    def require_destinations(self) -> None:
        if self.token is not None and not self.token.destinations:
            raise Forbidden(f"token '{self.name}' may not manage destinations")


async def authenticated(request: Request) -> Principal:
    """The caller of a route, from its Authorization header (a FastAPI dependency: a router
    that declares it protects every route it holds). Async: FastAPI runs a plain function
    dependency in a worker thread, a hand-off that cost more than the check itself."""
    config: Config = request.app.state.config
    principal = authenticate(config, request.headers.get("authorization"))
    note(request, actor=principal.name)  # the request's log line names its caller
    return principal


def authenticate(config: Config, authorization: str | None) -> Principal:
    """Resolve an Authorization header; every token is compared in constant time."""
    if config.tokens is None:
        return Principal(ANONYMOUS, None)
    secret = _bearer(authorization)
    if secret is None:
        raise Unauthorized("missing bearer token")
    presented = secret.encode()
    found = None
    for token in config.tokens:
        for expected in current_secrets(token):  # every one: the time tells nothing
            if hmac.compare_digest(expected.encode(), presented):
                found = token
    if found is None:
        raise Unauthorized("invalid token")
    return Principal(found.name, found, secret)


def current_secrets(token: Token) -> tuple[str, ...]:
    """The secrets a token has now, one or two (a `tokenFile` is read again when it changed;
    none while it cannot be read)."""
    return token.secrets if token.file is None else TOKEN_FILES.secrets(token.file, token.name)


def token_from_basic(config: Config, authorization: str | None) -> Principal:
    """git over HTTP: Flux sends the token as the basic-auth password."""
    if config.tokens is None:
        return Principal(ANONYMOUS, None)
    if not authorization or not authorization.lower().startswith("basic "):
        raise Unauthorized("basic credentials required")
    try:
        decoded = base64.b64decode(authorization[6:], validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise Unauthorized("malformed basic credentials") from None
    return authenticate(config, "Bearer " + decoded.partition(":")[2])


def _bearer(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


@dataclass(frozen=True)
class _Read:
    signature: tuple[int, int, int, int] | None  # device, inode, size, mtime; None: unreadable
    secrets: tuple[str, ...]  # (): missing, empty or unusable, so the token is refused
    checked: float  # time.monotonic() of the last stat


class TokenFiles:
    """The current secrets of `tokenFile` tokens (a secret a line, two at most while a token is
    rotated). A file is looked at (one stat) at most once per `interval` and read again only
    when its inode, size or modification time changed, so rotating a leaked token needs no
    restart. A file that disappears, empties or holds too many secrets disables its token,
    logged once (the file and the token's name, never a secret)."""

    def __init__(self, interval: float = TOKEN_FILE_CHECK_SECONDS) -> None:
        self._interval = interval
        self._reads: dict[Path, _Read] = {}
        self._lock = threading.Lock()

    def secrets(self, path: Path, name: str) -> tuple[str, ...]:
        now = time.monotonic()
        read = self._reads.get(path)
        if read is not None and now - read.checked < self._interval:
            return read.secrets
        with self._lock:
            read = self._reads.get(path)
            if read is None or now - read.checked >= self._interval:
                read = self._reads[path] = self._refresh(path, name, read, now)
            return read.secrets

    def _refresh(self, path: Path, name: str, last: _Read | None, now: float) -> _Read:
        try:
            stat = os.stat(path)
            signature = (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns)
            if last is not None and signature == last.signature:
                return _Read(signature, last.secrets, now)
            secrets, problem = token_secrets(path.read_text()), "is empty"
        except OSError as error:
            signature, secrets, problem = None, (), f"cannot be read ({error.strerror or error})"
        except UnicodeDecodeError:
            signature, secrets, problem = None, (), "is not UTF-8 text"
        except ValueError as error:  # more secrets than a rotation needs
            secrets, problem = (), str(error)
        if not secrets and (last is None or last.secrets):
            log.error("token file %s of token '%s' %s: that token is refused until the file "
                      "holds its secrets again", path, name, problem)
        elif secrets and last is not None and secrets != last.secrets:
            log.info("token file %s of token '%s' changed: its %d secret(s) now in effect",
                     path, name, len(secrets))
        return _Read(signature, secrets, now)


TOKEN_FILES = TokenFiles()
