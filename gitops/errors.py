"""One exception hierarchy for everything the core refuses; `app/` maps it to HTTP."""

from __future__ import annotations

from typing import Any


class StatewriterError(Exception):
    """Base: a refusal with a machine-readable detail for the answer body."""

    status = 400

    def __init__(self, message: str, **detail: Any) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail

    def body(self) -> dict[str, Any]:
        return {"error": type(self).__name__, "message": self.message, **self.detail}


class InvalidBundle(StatewriterError):
    """The bundle is malformed: which file, which document, why."""

    status = 422


class Conflict(StatewriterError):
    """The change collides with what others own."""

    status = 409


class NotFound(StatewriterError):
    status = 404


class LimitExceeded(StatewriterError):
    status = 413


class Unauthorized(StatewriterError):
    status = 401


class Forbidden(StatewriterError):
    status = 403


class StoreUnavailable(StatewriterError):
    """The state store could not be read or written (after retries)."""

    status = 503
