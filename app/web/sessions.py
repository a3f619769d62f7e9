"""Sign-in sessions of the /ui pages. A signed-in browser holds
`v1.<name>.<issued>.<signature>`, never the token: the signature is an HMAC keyed with the
secret the browser signed in with, so a session dies with that secret (rotated out or
removed; not when a second secret is added beside it) and needs no store shared by replicas
(docs/reference.md: git is the only database)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time

from app.config import Config
from app.http.auth import Principal, current_secrets

SESSION_SECONDS = 12 * 3600
_SESSION_VERSION = "v1"


def session_value(principal: Principal, now: float | None = None) -> str | None:
    """The cookie value that signs `principal` in, with the secret it came with (None when
    auth is off, or that secret is no longer the token's)."""
    token, secret = principal.token, principal.secret
    if token is None or secret is None or secret not in current_secrets(token):
        return None
    issued = str(int(time.time() if now is None else now))
    name = _b64(token.name.encode())
    return f"{_SESSION_VERSION}.{name}.{issued}.{_session_mac(secret, name, issued)}"


def from_session(config: Config, value: str | None, now: float | None = None) -> Principal | None:
    """The principal a cookie value signs in, or None (malformed, expired, or the secret it
    was signed with rotated out or removed). Signatures are compared in constant time."""
    if config.tokens is None or not value or len(value) > 1024:
        return None
    version, _, rest = value.partition(".")
    name_b64, _, rest = rest.partition(".")
    issued, _, mac = rest.partition(".")
    if version != _SESSION_VERSION or not issued.isascii() or not issued.isdigit():
        return None
    age = (time.time() if now is None else now) - int(issued)
    if not -60 <= age <= SESSION_SECONDS:
        return None
    try:
        name = base64.urlsafe_b64decode(name_b64 + "=" * (-len(name_b64) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    for token in config.tokens:
        for secret in current_secrets(token) if token.name == name else ():
            if hmac.compare_digest(_session_mac(secret, name_b64, issued).encode(), mac.encode()):
                return Principal(token.name, token, secret)
    return None


def _session_mac(secret: str, name: str, issued: str) -> str:
    message = f"statewriter web session\0{_SESSION_VERSION}\0{name}\0{issued}".encode()
    return _b64(hmac.new(secret.encode(), message, hashlib.sha256).digest())


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")
