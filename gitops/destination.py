"""A destination: a worker cluster that Flux reconciles from a path of the state store
(CONTRACT sections 1, 2, 9 and 11), as its record under `.statewriter/destinations/` and the
API spell it, and the checks of each of its fields."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit


@dataclass(frozen=True)
class Destination:
    name: str
    labels: dict[str, str]
    path: str
    notify_url: str | None = None  # POSTed after each push that changed a file under `path`
    recipients: tuple[str, ...] = ()  # age recipients its Secrets are encrypted for (sorted)

    def section(self, section: str) -> str:
        """The folder of one of its sections (DEPENDENCIES or RESOURCES)."""
        return f"{self.path}/{section}"

    def as_dict(self) -> dict[str, Any]:
        """The destination as its record and the API spell it; `notify` and `encryption` only
        when it has them, so records written before notify existed read and write back byte for byte."""
        found: dict[str, Any] = {"name": self.name, "labels": self.labels, "path": self.path}
        if self.notify_url is not None:
            found["notify"] = {"url": self.notify_url}
        if self.recipients:
            found["encryption"] = {"age": list(self.recipients)}
        return found

    MAX_NOTIFY_URL = 2048

    @staticmethod
    def notify_url_problem(url: object) -> str | None:
        """Why `url` cannot be a notify URL (CONTRACT section 6), or None. The reason never
        repeats the URL: it may carry a credential, and reasons reach answers and logs."""
        if not isinstance(url, str):
            return "must be a string"
        if len(url) > Destination.MAX_NOTIFY_URL:
            return f"must be at most {Destination.MAX_NOTIFY_URL} characters"
        if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url):
            return "must not contain spaces or control characters"
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018 - raises ValueError for a port that is not one
        except ValueError:
            return "is not a valid URL"
        if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
            return "must be an http:// or https:// URL with a host"
        if "@" in parts.netloc:
            return "must not carry credentials (user:password@): the Receiver's path is its secret"
        if parts.query or parts.fragment or url.endswith(("?", "#")):
            # Flux finds a Receiver by the exact request URI: a query would miss it
            return "must not have a query or a fragment"
        return None
