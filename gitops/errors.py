"""One exception hierarchy for everything statewriter refuses or cannot do.

    StatewriterError          a refusal: message plus the details an answer names
    ├── InvalidBundle         the input is malformed (which file, document, field, why)
    │   └── EncryptionRequired  a Secret that cannot be written encrypted (secrets config)
    ├── UnsupportedMediaType  the body is neither JSON nor a gzip'd tar
    ├── LimitExceeded         the input is over a configured limit
    ├── Conflict              the change collides with what others own
    ├── NotFound              nothing is stored under that name
    ├── Unauthorized          no valid credentials
    ├── Forbidden             valid credentials, not allowed this
    └── StoreUnavailable      the state store cannot be read or written now (retry)
        └── RateLimited       the remote answered "too many requests"

The errors say what went wrong, never how to answer it: `app/` maps each to an HTTP answer
in one place.
"""

from __future__ import annotations

from typing import Any


class StatewriterError(Exception):
    """Base: a refusal with details (file, document, object, owners, ...) for the answer."""

    def __init__(self, message: str, **detail: Any) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail


class InvalidBundle(StatewriterError):
    """The bundle (or a destination, or a query) is malformed: which file, which document, why."""


class EncryptionRequired(InvalidBundle):
    """A Secret for a destination without encryption recipients while the service requires
    encryption, or encryption asked of a service without an age identity (CONTRACT section 9)."""


class UnsupportedMediaType(StatewriterError):
    """The body's Content-Type is neither JSON nor a gzip'd tar."""


class LimitExceeded(StatewriterError):
    """Over a configured limit: body, unpacked size, files, documents, bytes per document."""


class Conflict(StatewriterError):
    """The change collides with what others own."""


class NotFound(StatewriterError):
    """Nothing is stored under that name."""


class Unauthorized(StatewriterError):
    """No valid credentials."""


class Forbidden(StatewriterError):
    """Valid credentials that may not do this."""


class StoreUnavailable(StatewriterError):
    """The state store could not be read or written (after retries)."""


class RateLimited(StoreUnavailable):
    """The remote answered "too many requests" (HTTP 429: GitHub's secondary rate limits)."""
