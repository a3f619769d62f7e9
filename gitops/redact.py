"""Text that leaves the service (a log line, an answer, a command's output) without the
credentials that may hide in it: the one place that knows what a credential looks like.

- `redact(text, secrets)`: any URL's userinfo (`user:token@`), Authorization header values,
  GitHub token formats, and each of `secrets` (as given and URL-encoded), each as `***`;
- `redact_url(url)`: a URL as it may be shown (its userinfo replaced);
- `origin(url)`: `scheme://host[:port]`, for logs that must not show a path either (a Flux
  generic Receiver's path is its only secret).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import quote, urlsplit, urlunsplit

_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s?#]*@")
_AUTH_HEADER = re.compile(r"(?i)(authorization:\s*(?:basic|bearer|token)?\s*)\S+")
# GitHub's token formats (personal, OAuth, user, installation, refresh; fine-grained): a
# second net under the exact secrets a caller names.
_GITHUB_TOKEN = re.compile(r"\b(?:gh[pousr]_|github_pat_)[A-Za-z0-9_.-]+")
HIDDEN = "***"


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """`text` without URL userinfo, Authorization header values or any of `secrets`."""
    for secret in secrets:
        if secret:
            for form in {secret, quote(secret, safe="")}:
                text = text.replace(form, HIDDEN)
    text = _USERINFO.sub(rf"\1{HIDDEN}@", text)
    text = _GITHUB_TOKEN.sub(HIDDEN, text)
    return _AUTH_HEADER.sub(rf"\1{HIDDEN}", text)


def redact_url(url: str) -> str:
    """A URL as it may be printed: its userinfo replaced, the rest as given."""
    return redact(url)


def without_userinfo(url: str) -> str:
    """`url` without `user:password@` (an scp-like `git@host:path` has no password in it):
    what a URL that others are told to use (Flux's GitRepository) may name."""
    parts = urlsplit(url)
    if not parts.scheme or "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def origin(url: str) -> str:
    """`scheme://host[:port]` of a URL, for logs."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"
