"""Service configuration: flags and environment (CONTRACT section 8) plus the YAML file."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import yaml

from gitops.bundle import Limits
from gitops.normalize import DEFAULT_PROTECTED
from gitops.store.base import Author


class ConfigError(ValueError):
    pass


@dataclass(frozen=True)
class Token:
    name: str
    secret: str
    promises: frozenset[str]  # "*" for every promise
    destinations: bool = False

    def may_write(self, promise: str) -> bool:
        return "*" in self.promises or promise in self.promises


@dataclass(frozen=True)
class Config:
    host: str = "127.0.0.1"
    port: int = 8080
    data: Path = Path("./var")
    remote: str | None = None
    branch: str = "main"
    author: Author = field(default_factory=Author)
    tokens: tuple[Token, ...] | None = None  # None: no auth section (loopback only)
    limits: Limits = field(default_factory=Limits)
    protect_from_prune: frozenset[str] = DEFAULT_PROTECTED
    public_url: str | None = None
    remote_credentials: dict[str, Any] = field(default_factory=dict)

    @property
    def auth_enabled(self) -> bool:
        return self.tokens is not None

    @property
    def source_url(self) -> str:
        """The URL workers' Flux clones: the remote without any credentials in it, else the
        embedded store at `publicUrl` or at the configured host and port (never a URL taken
        from a request)."""
        if self.remote is not None:
            return without_userinfo(self.remote)
        if self.public_url:
            base = self.public_url
        else:
            host = f"[{self.host}]" if ":" in self.host else self.host
            base = f"http://{host}:{self.port}"
        return f"{base.rstrip('/')}/git/state.git"


def without_userinfo(url: str) -> str:
    """`url` without `user:password@` (an scp-like `git@host:path` has no password in it)."""
    parts = urlsplit(url)
    if not parts.scheme or "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


MAX_DEPTH = 400  # documents the planner can always reload (gitops.planner._OWN_FILES)
_LIMIT_KEYS = {
    "maxBundleBytes": "max_bundle_bytes",
    "maxDocuments": "max_documents",
    "maxFiles": "max_files",
    "maxDocumentBytes": "max_document_bytes",
    "maxDepth": "max_depth",
    "maxNodes": "max_nodes",
}


def load_config(
    path: Path | None = None, env: dict[str, str] | None = None, **flags: Any
) -> Config:
    """Flags win over environment variables, which win over defaults."""
    env = dict(os.environ if env is None else env)
    raw: dict[str, Any] = {}
    path = path or (Path(env["STATEWRITER_CONFIG"]) if env.get("STATEWRITER_CONFIG") else None)
    if path is not None:
        try:
            raw = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError) as error:
            raise ConfigError(f"cannot read config {path}: {error}") from None
        if not isinstance(raw, dict):
            raise ConfigError(f"config {path} must be a YAML mapping")

    def pick(name: str, default: Any) -> Any:
        if flags.get(name) is not None:
            return flags[name]
        return env.get(f"STATEWRITER_{name.upper()}", default)

    author = raw.get("author") or {}
    limits = raw.get("limits") or {}
    unknown = set(limits) - set(_LIMIT_KEYS)
    if unknown:
        raise ConfigError(f"unknown limits: {', '.join(sorted(unknown))}")
    if not 1 <= int(limits.get("maxDepth", 64)) <= MAX_DEPTH:
        raise ConfigError(f"limits.maxDepth must be 1-{MAX_DEPTH} (deeper would exhaust the stack)")
    return Config(
        host=str(pick("host", "127.0.0.1")),
        port=int(pick("port", 8080)),
        data=Path(pick("data", "./var")),
        remote=pick("remote", None) or None,
        branch=str(pick("branch", "main")),
        author=Author(str(author.get("name", "statewriter")),
                      str(author.get("email", "statewriter@example.invalid"))),
        tokens=_tokens(raw["auth"]) if "auth" in raw else None,
        limits=Limits(**{_LIMIT_KEYS[k]: int(v) for k, v in limits.items()}),
        protect_from_prune=frozenset(raw.get("protectFromPrune", DEFAULT_PROTECTED)),
        public_url=raw.get("publicUrl"),
        remote_credentials=dict(raw.get("remoteCredentials") or {}),
    )


def _tokens(auth: Any) -> tuple[Token, ...]:
    if not isinstance(auth, dict) or not isinstance(auth.get("tokens"), list):
        raise ConfigError("auth must hold a list of tokens")
    tokens = []
    for item in auth["tokens"]:
        if not isinstance(item, dict) or not item.get("name"):
            raise ConfigError("every token needs a name")
        secret = item.get("token")
        if secret is None and item.get("tokenFile"):
            secret = Path(item["tokenFile"]).read_text().strip()
        if not secret:
            raise ConfigError(f"token {item['name']!r} has neither token nor tokenFile")
        promises = item.get("promises") or []
        tokens.append(Token(str(item["name"]), str(secret), frozenset(map(str, promises)),
                            bool(item.get("destinations", False))))
    return tuple(tokens)
