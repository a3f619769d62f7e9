"""Bearer tokens from the config (CONTRACT section 8): who may read, write, manage."""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from fastapi import Request

from app.config import Config, Token
from gitops.errors import Forbidden, Unauthorized

ANONYMOUS = "anonymous"


@dataclass(frozen=True)
class Principal:
    name: str
    token: Token | None  # None when auth is off

    def require_promise(self, promise: str) -> None:
        if self.token is not None and not self.token.may_write(promise):
            raise Forbidden(f"token {self.name!r} may not write promise {promise!r}")

    def require_destinations(self) -> None:
        if self.token is not None and not self.token.destinations:
            raise Forbidden(f"token {self.name!r} may not manage destinations")


def authenticated(request: Request) -> Principal:
    """The caller of a route, from its Authorization header (a FastAPI dependency: a router
    that declares it protects every route it holds)."""
    config: Config = request.app.state.config
    return authenticate(config, request.headers.get("authorization"))


def authenticate(config: Config, authorization: str | None) -> Principal:
    """Resolve an Authorization header; every token is compared in constant time."""
    if config.tokens is None:
        return Principal(ANONYMOUS, None)
    secret = _bearer(authorization)
    if secret is None:
        raise Unauthorized("missing bearer token")
    found = None
    for token in config.tokens:
        if hmac.compare_digest(token.secret.encode(), secret.encode()):
            found = token
    if found is None:
        raise Unauthorized("invalid token")
    return Principal(found.name, found)


def token_from_basic(config: Config, authorization: str | None) -> Principal:
    """git over HTTP: Flux sends the token as the basic-auth password."""
    import base64
    import binascii

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
