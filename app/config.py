"""Service configuration (CONTRACT section 8): the YAML file, the environment and the flags
of `statewriter serve`, merged into one frozen `Config` and checked once, at start.

Flags win over environment variables (`STATEWRITER_*`), which win over the file, which wins
over the defaults below (the one place they are written). The file is strict: unknown keys,
values of the wrong type, out-of-range numbers, unreadable files and credentials of two kinds
at once are refused. Every refusal is a `ConfigError` whose message is one line naming the
key (or variable, or flag) and the problem; it never repeats a value that may be a secret.
"""

from __future__ import annotations

import difflib
import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Annotated, Any, Literal, get_args
from urllib.parse import urlsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from gitops import names
from gitops.bundle import Limits
from gitops.normalize import DEFAULT_PROTECTED
from gitops.redact import without_userinfo
from gitops.store.base import Author
from gitops.store.githubapp import DEFAULT_API_URL, GitHubApp
from gitops.store.remote import Credentials, _split_userinfo

log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
DEFAULT_DATA = Path("./var")
DEFAULT_BRANCH = "main"
DEFAULT_AUTHOR = Author()
DEFAULT_LIMITS = Limits()
DEFAULT_MAX_HEADER_BYTES = 65536
DEFAULT_PUSH_MIN_INTERVAL = 0.0
DEFAULT_PUSH_TIMEOUT = 60.0
DEFAULT_GITHUB_API_URL = DEFAULT_API_URL
MAX_DEPTH = 400  # documents the planner can always reload (gitops.planner._OWN_FILES)
MIN_HEADER_BYTES = 1024  # below this an ordinary request line and its headers do not fit
ENV_PREFIX = "STATEWRITER_"

# Keys CONTRACT section 8 lists whose features are not built yet: they are validated and kept
# in the Config for the code that will act on them, but nothing reads them today (a warning
# says so at start). Remove a key from here when its feature reads it.
NOT_ACTED_ON: tuple[str, ...] = ()


class ConfigError(ValueError):
    """A mistake in the config file, the environment or the flags: one line, naming the key."""


# -- what the service reads ---------------------------------------------------------------


@dataclass(frozen=True)
class Token:
    """One of `auth.tokens`. For a `tokenFile`, `secret` is the token as read at start and
    `file` the file app.auth re-reads when it changes."""

    name: str
    secret: str = field(repr=False)
    promises: frozenset[str]  # "*" for every promise
    destinations: bool = False
    file: Path | None = None

    def may_write(self, promise: str) -> bool:
        return "*" in self.promises or promise in self.promises


@dataclass(frozen=True)
class Push:
    min_interval: float = DEFAULT_PUSH_MIN_INTERVAL  # seconds between two pushes
    timeout: float = DEFAULT_PUSH_TIMEOUT  # seconds before a hung push or fetch is abandoned


@dataclass(frozen=True)
class Notify:
    """`notify`: gitops.notify POSTs destinations' notify URLs, signing each body with the
    token in `hmac_token_file` when there is one (Flux's generic-hmac Receiver). The file is
    checked at start (it must hold a token) and read again whenever it changes."""

    hmac_token_file: Path | None = None


@dataclass(frozen=True)
class Signing:
    """`signing`: every commit is signed with the key in `key_file` (gitops.store.signing),
    read and tried once at start."""

    format: Literal["ssh", "openpgp"]
    key_file: Path


@dataclass(frozen=True)
class Secrets:
    """`secrets` (CONTRACT section 9): the service's own age identity, which gitops.secrets
    encrypts Secrets with (for destinations with recipients and for stored bundles) and keys
    its digests of them with; with `require_encryption`, a Secret for a destination without
    recipients is refused (422)."""

    identity_file: Path
    require_encryption: bool = False


@dataclass(frozen=True)
class Config:
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    data: Path = DEFAULT_DATA
    remote: str | None = None  # never with userinfo: that moved into `credentials`
    branch: str = DEFAULT_BRANCH
    author: Author = DEFAULT_AUTHOR
    tokens: tuple[Token, ...] | None = None  # None: no auth section (loopback only)
    limits: Limits = DEFAULT_LIMITS
    max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES
    protect_from_prune: frozenset[str] = DEFAULT_PROTECTED
    public_url: str | None = None
    credentials: Credentials | None = field(default=None, repr=False)
    # `remoteCredentials.githubApp` (gitops.store.githubapp): the store mints its tokens
    github_app: GitHubApp | None = None
    push: Push = field(default_factory=Push)
    notify: Notify = field(default_factory=Notify)
    signing: Signing | None = None
    secrets: Secrets | None = None

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


# -- the file, exactly as CONTRACT section 8 spells it --------------------------------------


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _given(cls, value: Any) -> Any:
        # `auth:` with nothing under it must not read as "no auth section".
        if value is None:
            raise ValueError("is empty: give it a value or remove the key")
        return value


Text = Annotated[str, Field(min_length=1)]
Count = Annotated[int, Field(ge=1)]


class _AuthorFile(_Section):
    name: Text = DEFAULT_AUTHOR.name
    email: Text = DEFAULT_AUTHOR.email


class _TokenFile(_Section):
    name: Text
    token: Text | None = None
    tokenFile: Text | None = None
    promises: list[Text] = Field(default_factory=list)
    destinations: bool = False


class _AuthFile(_Section):
    tokens: list[_TokenFile] = Field(min_length=1)


class _LimitsFile(_Section):
    maxBundleBytes: Count = DEFAULT_LIMITS.max_bundle_bytes
    maxDocuments: Count = DEFAULT_LIMITS.max_documents
    maxDocumentBytes: Count = DEFAULT_LIMITS.max_document_bytes
    maxFiles: Count = DEFAULT_LIMITS.max_files
    maxDepth: Annotated[int, Field(ge=1, le=MAX_DEPTH)] = DEFAULT_LIMITS.max_depth
    maxNodes: Count = DEFAULT_LIMITS.max_nodes
    maxHeaderBytes: Annotated[int, Field(ge=MIN_HEADER_BYTES)] = DEFAULT_MAX_HEADER_BYTES


class _GitHubAppFile(_Section):
    appId: Count
    installationId: Count
    privateKeyFile: Text
    apiUrl: Text = DEFAULT_GITHUB_API_URL


class _RemoteCredentialsFile(_Section):
    token: Text | None = None
    tokenFile: Text | None = None
    username: Text | None = None
    password: Text | None = None
    passwordFile: Text | None = None
    sshKeyFile: Text | None = None
    knownHostsFile: Text | None = None
    githubApp: _GitHubAppFile | None = None


class _PushFile(_Section):
    minInterval: Annotated[float, Field(ge=0)] = DEFAULT_PUSH_MIN_INTERVAL
    timeout: Annotated[float, Field(gt=0)] = DEFAULT_PUSH_TIMEOUT


class _NotifyFile(_Section):
    hmacTokenFile: Text | None = None


class _SigningFile(_Section):
    format: Literal["ssh", "openpgp"]
    keyFile: Text


class _SecretsFile(_Section):
    identityFile: Text
    requireEncryption: bool = False


class _File(_Section):
    author: _AuthorFile = Field(default_factory=_AuthorFile)
    auth: _AuthFile | None = None
    limits: _LimitsFile = Field(default_factory=_LimitsFile)
    protectFromPrune: list[Text] = Field(default_factory=lambda: sorted(DEFAULT_PROTECTED))
    publicUrl: Text | None = None
    remoteCredentials: _RemoteCredentialsFile | None = None
    push: _PushFile = Field(default_factory=_PushFile)
    notify: _NotifyFile | None = None
    signing: _SigningFile | None = None
    secrets: _SecretsFile | None = None


class _Problem(Exception):
    """A mistake at a key path of the file; `load_config` names the file."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key}: {problem}")


# -- loading ------------------------------------------------------------------------------


def load_config(
    path: Path | None = None,
    env: Mapping[str, str] | None = None,
    *,
    host: str | None = None,
    port: int | None = None,
    data: str | Path | None = None,
    remote: str | None = None,
    branch: str | None = None,
) -> Config:
    """The configuration of `statewriter serve` from its flags (these arguments), `env`
    (default: the process environment) and the config file (`path`, else
    `$STATEWRITER_CONFIG`). Raises `ConfigError` for any mistake."""
    env = os.environ if env is None else env
    config_path, config_source = _setting("config", path, env)
    file = _File()
    if config_path is not None:
        file = _read_file(Path(config_path), config_source)
    # Files the config names are relative to the config file's folder, as in kubeconfig.
    base = Path(config_path).absolute().parent if config_path is not None else Path.cwd()
    try:
        config = _from_file(file, base)
        clean_remote, url_credentials, remote_source = _remote(*_setting("remote", remote, env))
        if file.remoteCredentials is not None:
            _check_remote_fits(clean_remote, file.remoteCredentials, url_credentials is not None,
                               remote_source)
    except _Problem as problem:
        raise ConfigError(f"{config_path}: {problem}") from None
    config = replace(
        config,
        host=_host(*_setting("host", host, env)),
        port=_port(*_setting("port", port, env)),
        data=_data(*_setting("data", data, env)),
        remote=clean_remote,
        branch=_branch(*_setting("branch", branch, env)),
        credentials=url_credentials or config.credentials,
    )
    unused = _not_acted_on(file)
    if unused:
        log.warning("config keys %s are accepted but not acted on yet", ", ".join(unused))
    return config


def _setting(name: str, flag: object, env: Mapping[str, str]) -> tuple[Any, str]:
    """A flag's value and where it came from: the flag, else its environment variable (an
    empty one counts as unset, as compose files often leave them), else None."""
    if flag is not None:
        return flag, f"--{name}"
    variable = ENV_PREFIX + name.upper()
    if env.get(variable):
        return env[variable], variable
    return None, f"the default {name}"


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice in one mapping (PyYAML keeps the last)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, str):
                continue  # pydantic names keys that are not strings
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} is given twice", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _read_file(path: Path, source: str) -> _File:
    try:
        raw = yaml.load(path.read_text(), Loader=_UniqueKeyLoader)
    except OSError as error:
        raise ConfigError(f"{source} {path}: cannot read it ({error.strerror or error})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{source} {path}: is not UTF-8 text") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML: {_yaml_problem(error)}") from None
    if raw is None:
        return _File()
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: must be a mapping of keys ({', '.join(_File.model_fields)}), "
                          f"not {_kind(raw)}")
    try:
        return _File.model_validate(raw)
    except ValidationError as error:
        raise ConfigError(f"{path}: {_validation_problem(error)}") from None


def _yaml_problem(error: yaml.YAMLError) -> str:
    if isinstance(error, yaml.MarkedYAMLError):
        mark = error.problem_mark or error.context_mark
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        return f"{error.problem or error.context or 'cannot parse'}{where}"
    return " ".join(str(error).split())


_REASONS = {
    "extra_forbidden": "is not a known key",
    "missing": "is required",
    "bool_type": "must be true or false",
    "int_type": "must be a whole number",
    "float_type": "must be a number",
    "finite_number": "must be a finite number",
    "string_type": "must be a string",
    "list_type": "must be a list",
    "model_type": "must be a mapping",
}
_TYPE_ERRORS = {"bool_type", "int_type", "float_type", "string_type", "list_type", "model_type"}


def _validation_problem(error: ValidationError) -> str:
    """The first problem pydantic found, as `key.path: what is wrong`, without the value."""
    problems = error.errors(include_url=False)
    first = problems[0]
    loc = first["loc"]
    kind, ctx = first["type"], first.get("ctx") or {}
    if kind in _TYPE_ERRORS:
        reason = f"{_REASONS[kind]}, not {_kind(first['input'])}"
    elif kind == "extra_forbidden":
        reason = _REASONS[kind] + _suggestion(loc)
    elif kind in _REASONS:
        reason = _REASONS[kind]
    elif kind == "literal_error":
        reason = f"must be {ctx['expected']}"
    elif kind == "invalid_key":
        loc, reason = loc[:-1], f"key {loc[-1]!r} must be a string"
    elif kind == "greater_than_equal":
        reason = f"must be at least {ctx['ge']:g}"
    elif kind == "less_than_equal":
        reason = f"must be at most {ctx['le']:g}"
    elif kind == "greater_than":
        reason = f"must be more than {ctx['gt']:g}"
    elif kind in ("too_short", "string_too_short"):
        reason = "must not be empty"
    elif kind == "value_error":
        reason = first["msg"].removeprefix("Value error, ")
    else:
        reason = first["msg"][:1].lower() + first["msg"][1:]
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    return f"{_key_path(loc) or 'the file'}: {reason}{more}"


def _key_path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else f".{part}" if path else str(part)
    return path


def _suggestion(loc: tuple[int | str, ...]) -> str:
    """` (did you mean auth?)` for `auht`: the closest key the enclosing section knows."""
    model: type[BaseModel] | None = _File
    for part in loc[:-1]:
        if model is None:
            return ""
        if isinstance(part, str):
            known = model.model_fields.get(part)
            model = _model_in(known.annotation) if known else None
    if model is None:
        return ""
    close = difflib.get_close_matches(str(loc[-1]), list(model.model_fields), n=1)
    return f" (did you mean {close[0]}?)" if close else ""


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for argument in get_args(annotation):
        found = _model_in(argument)
        if found is not None:
            return found
    return None


def _kind(value: Any) -> str:
    if value is None:
        return "empty"
    names = {bool: "true/false", int: "a whole number", float: "a number", str: "a string",
             list: "a list", dict: "a mapping"}
    return names.get(type(value), f"a {type(value).__name__}")


# -- from the file's sections to the Config's ---------------------------------------------


def _from_file(file: _File, base: Path) -> Config:
    """The Config the file alone gives (flags and environment not applied yet)."""
    limits = file.limits
    credentials, github_app = _credentials(file.remoteCredentials, base)
    notify, signing, secrets = file.notify, file.signing, file.secrets
    return Config(
        author=_author(file.author),
        tokens=_tokens(file.auth, base),
        limits=Limits(
            max_bundle_bytes=limits.maxBundleBytes, max_documents=limits.maxDocuments,
            max_files=limits.maxFiles, max_document_bytes=limits.maxDocumentBytes,
            max_depth=limits.maxDepth, max_nodes=limits.maxNodes),
        max_header_bytes=limits.maxHeaderBytes,
        protect_from_prune=frozenset(file.protectFromPrune),
        public_url=_http_url("publicUrl", file.publicUrl),
        credentials=credentials,
        github_app=github_app,
        push=Push(file.push.minInterval, file.push.timeout),
        notify=Notify(_secret("notify.hmacTokenFile", notify.hmacTokenFile, base)[0]
                      if notify and notify.hmacTokenFile else None),
        signing=Signing(signing.format, _readable("signing.keyFile", signing.keyFile, base))
        if signing else None,
        secrets=Secrets(_readable("secrets.identityFile", secrets.identityFile, base),
                        secrets.requireEncryption)
        if secrets else None,
    )


def _author(section: _AuthorFile) -> Author:
    """The commits' author: one line each, as git's commit header takes them."""
    for key, value in (("name", section.name), ("email", section.email)):
        problem = names.line_problem(value) or ("holds '<' or '>'" if set(value) & {"<", ">"}
                                                else None)
        if problem is not None:
            raise _Problem(f"author.{key}", f"{value!r} {problem}")
    return Author(section.name, section.email)


def _tokens(auth: _AuthFile | None, base: Path) -> tuple[Token, ...] | None:
    if auth is None:
        return None
    tokens: list[Token] = []
    for i, item in enumerate(auth.tokens):
        key = f"auth.tokens[{i}]"
        problem = names.line_problem(item.name)
        if problem is not None:  # the name is written into commit trailers
            raise _Problem(f"{key}.name", f"{item.name!r} {problem}")
        for earlier in tokens:
            if earlier.name == item.name:
                raise _Problem(f"{key}.name", f"{item.name!r} is already the name of another token")
        file: Path | None = None
        if item.token is not None and item.tokenFile is not None:
            raise _Problem(key, f"token {item.name!r} has both token and tokenFile: give one")
        if item.tokenFile is not None:
            file, secret = _secret(f"{key}.tokenFile", item.tokenFile, base)
        elif item.token is not None:
            secret = item.token
        else:
            raise _Problem(key, f"token {item.name!r} needs token or tokenFile")
        for earlier in tokens:
            if earlier.secret == secret:
                raise _Problem(key, f"token {item.name!r} has the same secret as {earlier.name!r}: "
                                    "give each its own (the name is what commits record)")
        tokens.append(Token(item.name, secret, frozenset(item.promises), item.destinations, file))
    return tuple(tokens)


def _credentials(
    section: _RemoteCredentialsFile | None, base: Path
) -> tuple[Credentials | None, GitHubApp | None]:
    """`remoteCredentials`: one kind of credentials, secrets read from their files now."""
    if section is None:
        return None, None
    key = "remoteCredentials"
    given = section.model_fields_set
    for inline, from_file in (("token", "tokenFile"), ("password", "passwordFile")):
        if {inline, from_file} <= given:
            raise _Problem(key, f"{inline} and {from_file} are both given: give one")
    kinds = _credential_kinds(section)
    if len(kinds) > 1:
        raise _Problem(key, f"{', '.join(kinds[:-1])} and {kinds[-1]} are different kinds of "
                            "credentials: give one (token, username + password, sshKeyFile or "
                            "githubApp)")
    if not kinds:
        if section.username is not None:
            raise _Problem(f"{key}.username", "needs password, passwordFile, token or tokenFile")
        raise _Problem(key, "names no credentials: give token, username + password, sshKeyFile "
                            "or githubApp, or remove it")
    kind = kinds[0]
    if section.username is not None and kind not in ("token", "password"):
        raise _Problem(f"{key}.username", f"goes with password or token, not {kind}")
    if kind == "token":
        token = section.token
        if section.tokenFile is not None:
            token = _secret(f"{key}.tokenFile", section.tokenFile, base)[1]
        return Credentials(token=token, username=section.username), None
    if kind == "password":
        if section.username is None:
            raise _Problem(f"{key}.password", "needs username")
        password = section.password
        if section.passwordFile is not None:
            password = _secret(f"{key}.passwordFile", section.passwordFile, base)[1]
        return Credentials(username=section.username, password=password), None
    if kind == "sshKeyFile":
        if section.sshKeyFile is None:
            raise _Problem(f"{key}.knownHostsFile", "goes with sshKeyFile")
        return Credentials(
            ssh_key_file=_readable(f"{key}.sshKeyFile", section.sshKeyFile, base),
            known_hosts_file=_readable(f"{key}.knownHostsFile", section.knownHostsFile, base)
            if section.knownHostsFile else None,
        ), None
    app = section.githubApp
    assert app is not None
    # readable now; the store reads the key itself when it opens (a key that is not an RSA
    # PEM stops the start there) and again whenever the file changes
    return None, GitHubApp(
        app.appId, app.installationId,
        _readable(f"{key}.githubApp.privateKeyFile", app.privateKeyFile, base),
        _http_url(f"{key}.githubApp.apiUrl", app.apiUrl) or DEFAULT_GITHUB_API_URL,
    )


def _credential_kinds(section: _RemoteCredentialsFile) -> list[str]:
    given = section.model_fields_set
    return [kind for kind, keys in (
        ("token", {"token", "tokenFile"}),
        ("password", {"password", "passwordFile"}),
        ("sshKeyFile", {"sshKeyFile", "knownHostsFile"}),
        ("githubApp", {"githubApp"}),
    ) if keys & given]


def _secret(key: str, name: str, base: Path) -> tuple[Path, str]:
    """A secret from a file: its content without surrounding whitespace (a trailing newline
    is what `echo` and most editors leave)."""
    path = _readable(key, name, base)
    try:
        secret = path.read_text().strip()
    except OSError as error:
        raise _Problem(key, f"cannot read {path} ({error.strerror or error})") from None
    except UnicodeDecodeError:
        raise _Problem(key, f"{path} is not UTF-8 text") from None
    if not secret:
        raise _Problem(key, f"{path} is empty")
    return path, secret


def _readable(key: str, name: str, base: Path) -> Path:
    path = base / Path(name).expanduser()
    if not path.is_file():
        reason = "is not a file" if path.exists() else "does not exist"
        raise _Problem(key, f"{path} {reason}")
    try:
        with path.open("rb"):
            pass
    except OSError as error:
        raise _Problem(key, f"cannot read {path} ({error.strerror or error})") from None
    return path


def _http_url(key: str, url: str | None) -> str | None:
    if url is None:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise _Problem(key, "must be an http:// or https:// URL with a host")
    if "@" in parts.netloc:
        raise _Problem(key, "must not carry credentials (user:password@)")
    if parts.query or parts.fragment:
        raise _Problem(key, "must not have a query or a fragment")
    return url


def _not_acted_on(file: _File) -> list[str]:
    given = {
        "push.minInterval": "minInterval" in file.push.model_fields_set,
        "signing": file.signing is not None,
        "secrets": file.secrets is not None,
    }
    return [key for key in NOT_ACTED_ON if given.get(key)]


# -- flags and environment ----------------------------------------------------------------


def _host(value: Any, source: str) -> str:
    if value is None:
        return DEFAULT_HOST
    if not isinstance(value, str) or not value or any(c.isspace() for c in value):
        raise ConfigError(f"{source}: {value!r} is not a host name or address")
    return value


def _port(value: Any, source: str) -> int:
    if value is None:
        return DEFAULT_PORT
    number = value if isinstance(value, int) and not isinstance(value, bool) else None
    if isinstance(value, str) and value.strip().isdigit():
        number = int(value.strip())
    if number is None or not 1 <= number <= 65535:
        raise ConfigError(f"{source}: {value!r} is not a port number (1-65535)")
    return number


def _data(value: Any, source: str) -> Path:
    """The data folder, checked (not created: the store creates it) so that one that cannot
    be created or written stops the service now rather than at its first commit."""
    if value is None:
        source, value = "the data folder", DEFAULT_DATA
    if not str(value):
        raise ConfigError(f"{source}: is empty")
    path = Path(value)
    existing = path.absolute()
    while not existing.exists():  # the nearest folder that exists must let us create it
        if existing.is_symlink():
            raise ConfigError(f"{source} {path}: is a dangling symbolic link")
        existing = existing.parent
    if not existing.is_dir():
        problem = ("is not a folder" if existing == path.absolute()
                   else f"cannot be created: {existing} is not a folder")
        raise ConfigError(f"{source} {path}: {problem}")
    if not os.access(existing, os.W_OK | os.X_OK):
        problem = ("cannot be written (permission denied)" if existing == path.absolute()
                   else f"cannot be created: {existing} cannot be written (permission denied)")
        raise ConfigError(f"{source} {path}: {problem}")
    return path


_BAD_BRANCH = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]|\.\.|@\{|//|^[-/.]|[/.]$|\.lock$|/\.")


def _branch(value: Any, source: str) -> str:
    """git's branch name rules (git-check-ref-format), so a bad one stops the service now."""
    if value is None:
        return DEFAULT_BRANCH
    if not isinstance(value, str) or not value or value == "@" or _BAD_BRANCH.search(value):
        raise ConfigError(f"{source}: {value!r} is not a valid git branch name")
    return value


def _remote(value: Any, source: str) -> tuple[str | None, Credentials | None, str]:
    """The remote without userinfo, and the credentials that were in it (moved as
    gitops.store.remote does, so they reach neither git config nor an answer nor a log)."""
    if value is None:
        return None, None, source
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{source}: is empty")
    if value.startswith("-") or any(c.isspace() or ord(c) < 32 for c in value):
        raise ConfigError(f"{source}: is not a git URL or path")
    if "://" in value:
        parts = urlsplit(value)
        if parts.scheme.lower() not in ("http", "https") and parts.password is not None:
            raise ConfigError(f"{source}: only an http(s) URL may carry a password "
                              "(use remoteCredentials)")
    clean, credentials = _split_userinfo(value, None)
    return clean, credentials, source


def _remote_kind(url: str) -> Literal["http", "ssh", "other"]:
    if "://" in url:
        scheme = urlsplit(url).scheme.lower()
        return "http" if scheme in ("http", "https") else "ssh" if "ssh" in scheme else "other"
    # scp-like `[user@]host:path`, as git reads it: a colon before any slash
    head = url.split("/", 1)[0]
    return "ssh" if ":" in head and not re.fullmatch(r"[A-Za-z]:", head[:2]) else "other"


def _check_remote_fits(
    remote: str | None, section: _RemoteCredentialsFile, in_url: bool, remote_source: str
) -> None:
    """`remoteCredentials` need a remote of their kind, and no credentials in its URL too."""
    key = "remoteCredentials"
    if remote is None:
        raise _Problem(key, "is set but there is no remote (--remote or STATEWRITER_REMOTE)")
    if in_url:
        raise _Problem(key, f"is set and {remote_source} carries credentials too: give them "
                            "in one place")
    (kind,) = _credential_kinds(section)
    wants = "ssh" if kind == "sshKeyFile" else "http"
    if _remote_kind(remote) != wants:
        what = "an ssh:// (or host:path)" if wants == "ssh" else "an http(s)://"
        raise _Problem(f"{key}.{kind}", f"needs {what} remote, and {remote_source} is not one")
