"""One exception hierarchy for everything statewriter refuses or cannot do.

    StatewriterError            a refusal: message plus the details an answer names
    ├── InvalidBundle           the input is malformed (which file, document, field, why)
    │   ├── EncryptionRequired  a Secret that cannot be written encrypted (secrets config)
    │   ├── InvalidQuery        a query parameter that cannot be used (`field` names it)
    │   ├── InvalidDestination  a destination that cannot be registered as given (`field`)
    │   ├── InvalidObject       objects the destination's API server would refuse (`findings`)
    │   ├── YamlError           a YAML text that cannot be read (`reason`, `document`)
    │   │   └── YamlLimitExceeded   ... over a parse limit (also a LimitExceeded)
    │   └── SopsError           a document sops would refuse to encrypt or decrypt
    ├── UnsupportedMediaType    the body is neither JSON nor a gzip'd tar
    ├── LimitExceeded           the input is over a configured limit
    ├── Conflict                the change collides with what others own
    ├── NotFound                nothing is stored under that name
    │   └── RouteNotFound       nothing is served at that address (a wrong URL)
    ├── MethodNotAllowed        the address takes other methods (`allowed` names them)
    ├── Unauthorized            no valid credentials
    ├── Forbidden               valid credentials, not allowed this
    ├── StoreUnavailable        the state store cannot be read or written now (retry)
    │   ├── RateLimited         the remote answered "too many requests"
    │   ├── CorruptState        a state record at the tip cannot be read (writes wait for a repair)
    │   └── FolderInUse         another process (a running service) holds the data folder
    └── SetupError              what a command was given to start with is unusable (one line)
        ├── ConfigError         a mistake in the config file, the environment or serve's flags
        ├── IdentityError       an age identity file holds no identity
        ├── PrivateKeyError     a GitHub App's private key cannot be used
        └── SigningError        a signing key that cannot sign

The errors say what went wrong, never how to answer it: `app/` maps each in one place per
surface, to an HTTP status (`app/http/answers.py`, which the web pages answer by too) or to
an exit status (`app/cli/exits.py`, which adds the command line's own `UsageError`, a
SetupError, and `Failure`, what a command could not do at run time).
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
    """The input is malformed: which file, which document, which field, why. Its own kinds
    below name what else than a bundle was malformed (a query, a destination)."""


class EncryptionRequired(InvalidBundle):
    """A Secret for a destination without encryption recipients while the service requires
    encryption, or encryption asked of a service without an age identity (docs/reference.md section 9)."""


class InvalidQuery(InvalidBundle):
    """A query parameter that cannot be used (`field` names it)."""


class InvalidDestination(InvalidBundle):
    """A destination's body, name or fields that cannot be registered (`field` names it)."""


class YamlError(InvalidBundle):
    """A YAML text that cannot be read as plain data: the reason, and the document it is in
    (None: the text as a whole). The file is named by whoever read the text
    (`gitops.bundle.yaml_refusal`)."""

    def __init__(self, reason: str, document: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.document = document


class InvalidObject(InvalidBundle):
    """Objects the destination's API server would refuse (docs/reference.md section 11): `findings`
    lists every one (file, document, object, field, reason)."""


class SopsError(InvalidBundle):
    """A document that cannot be encrypted (a key that is not a string) or decrypted."""


class UnsupportedMediaType(StatewriterError):
    """The body's Content-Type is neither JSON nor a gzip'd tar."""


class LimitExceeded(StatewriterError):
    """Over a configured limit: body, unpacked size, files, documents, bytes per document."""


class YamlLimitExceeded(YamlError, LimitExceeded):
    """A YAML text over one of the parse limits (documents, bytes): a YamlError that is also
    over a limit (`app.http.answers` maps it to the limit's status)."""


class Conflict(StatewriterError):
    """The change collides with what others own."""


class NotFound(StatewriterError):
    """Nothing is stored under that name."""


class RouteNotFound(NotFound):
    """Nothing is served at that address: a wrong URL, which a client must not take for a
    NotFound of what it asked about (a request already deleted)."""


class MethodNotAllowed(StatewriterError):
    """The address is served, but not for that method: `allowed` names the methods it takes."""


class Unauthorized(StatewriterError):
    """No valid credentials."""


class Forbidden(StatewriterError):
    """Valid credentials that may not do this."""


class StoreUnavailable(StatewriterError):
    """The state store could not be read or written (after retries)."""


class RateLimited(StoreUnavailable):
    """The remote answered "too many requests" (HTTP 429: GitHub's secondary rate limits)."""


class CorruptState(StoreUnavailable):
    """A state record (under .statewriter/) that cannot be read: the service keeps serving
    reads and refuses writes until the branch is repaired."""


class FolderInUse(StoreUnavailable):
    """Another process holds the data folder's lock (`holder` names it): one service per
    folder, and nothing else writes the store while a service does."""


class SetupError(StatewriterError):
    """A configuration value, flag or file a command needs at start that cannot be used: one
    line naming it, never repeating a secret."""


class ConfigError(SetupError):
    """A mistake in the config file, the environment or the flags of `statewriter serve`
    (`app.config.load_config`): one line naming the key, variable or flag."""


class IdentityError(SetupError):
    """The identity file holds no age identity."""


class PrivateKeyError(SetupError):
    """A GitHub App's private key file that cannot be read or used."""


class SigningError(SetupError):
    """A signing key that cannot sign (unreadable, encrypted, of a kind git does not take)."""
