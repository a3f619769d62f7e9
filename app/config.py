"""Service configuration (docs/reference.md section 8): one `Config`, a pydantic-settings model read
and checked once, when `statewriter serve` starts.

Each value comes from the first of its sources that gives it:

1. the flags `--host --port --data --remote --branch --config` (the model's arguments);
2. the environment: `STATEWRITER_HOST`, `_PORT`, `_DATA`, `_REMOTE`, `_BRANCH`, `_CONFIG`, for
   those six settings only (an empty variable counts as unset);
3. the YAML file that `--config` or `STATEWRITER_CONFIG` names, for every other key, spelled in
   camelCase (a key given twice is refused; the files it names are relative to its folder);
4. the defaults, each written once: on the fields, as `DEFAULT_*` below or beside the type
   they belong to (`DEFAULT_BRANCH`, `Author`, `Limits`, `DEFAULT_PROTECTED`, `DEFAULT_API_URL`).

The fields are the settings as given (nested sections, frozen, strict types, unknown keys
refused); the properties are what the service reads besides them: the commit `Author`, the
bundle `Limits`, the tokens, the remote's credentials, the URL Flux clones. `load_config`
builds the model from given flags and environment and turns pydantic's errors into one
`ConfigError` line naming the key (or variable, or flag) and the problem, never repeating a
value that may be a secret.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import Annotated, Any, Literal, Self
from urllib.parse import urlsplit

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticCustomError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from app.didyoumean import closest_key, model_keys
from gitops import names
from gitops.bundle import Limits
from gitops.errors import ConfigError
from gitops.normalize import DEFAULT_PROTECTED
from gitops.quoting import quoted
from gitops.redact import without_userinfo
from gitops.store.base import DEFAULT_BRANCH, Author
from gitops.store.githubapp import DEFAULT_API_URL, GitHubApp
from gitops.store.remote import Credentials, _split_userinfo
from gitops.yamldocs import yaml_problem

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
DEFAULT_DATA = Path("./var")
DEFAULT_MAX_HEADER_BYTES = 65536
DEFAULT_PUSH_MIN_INTERVAL = 0.0  # seconds between two pushes
DEFAULT_PUSH_TIMEOUT = 60.0  # seconds before a hung push or fetch is abandoned
MAX_DEPTH = 400  # documents the planner can always reload (gitops.planner._OWN_FILES)
MIN_HEADER_BYTES = 1024  # below this an ordinary request line and its headers do not fit
ENV_PREFIX = "STATEWRITER_"
SERVE_SETTINGS = ("host", "port", "data", "remote", "branch", "config")  # flags and variables


def _problem(message: str, *key: str | int, names_remote: bool = False) -> PydanticCustomError:
    """A mistake that a model's own check found at `key` below the model. With `names_remote`,
    `{remote}` in the message stands for the flag or variable that gave the remote."""
    return PydanticCustomError("config", "{message}", {"message": message, "key": key,
                                                       "names_remote": names_remote})


# -- checks of one value ----------------------------------------------------------------------


def _host(value: object) -> object:
    if not isinstance(value, str) or not value or any(c.isspace() for c in value):
        raise ValueError(f"{quoted(value)} is not a host name or address")
    return value


def _port(value: object) -> int:
    number = value if isinstance(value, int) and not isinstance(value, bool) else None
    if isinstance(value, str) and value.strip().isdigit():
        number = int(value.strip())
    if number is None or not 1 <= number <= 65535:
        raise ValueError(f"{quoted(value)} is not a port number (1-65535)")
    return number


def _data_folder(value: object) -> Path:
    """The data folder, checked (not created: the store creates it) so that one that cannot
    be created or written stops the service now rather than at its first commit."""
    if not isinstance(value, str | Path) or not str(value):
        raise ValueError("is empty")
    path = Path(value)
    existing = path.absolute()
    while not existing.exists():  # the nearest folder that exists must let us create it
        if existing.is_symlink():
            raise ValueError("is a dangling symbolic link")
        existing = existing.parent
    if not existing.is_dir():
        raise ValueError("is not a folder" if existing == path.absolute()
                         else f"cannot be created: {existing} is not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError("cannot be written (permission denied)" if existing == path.absolute()
                         else f"cannot be created: {existing} cannot be written (permission denied)")
    return path


_BAD_BRANCH = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]|\.\.|@\{|//|^[-/.]|[/.]$|\.lock$|/\.")


def _branch(value: object) -> object:
    """git's branch name rules (git-check-ref-format), so a bad one stops the service now."""
    if not isinstance(value, str) or not value or value == "@" or _BAD_BRANCH.search(value):
        raise ValueError(f"{quoted(value)} is not a valid git branch name")
    return value


def _remote(value: object) -> object:
    if not isinstance(value, str) or not value.strip():
        raise ValueError("is empty")
    if value.startswith("-") or any(c.isspace() or ord(c) < 32 for c in value):
        raise ValueError("is not a git URL or path")
    if "://" in value:
        parts = urlsplit(value)
        if parts.scheme.lower() not in ("http", "https") and parts.password is not None:
            raise ValueError("only an http(s) URL may carry a password (use remoteCredentials)")
    return value


def _remote_kind(url: str) -> Literal["http", "ssh", "other"]:
    if "://" in url:
        scheme = urlsplit(url).scheme.lower()
        return "http" if scheme in ("http", "https") else "ssh" if "ssh" in scheme else "other"
    # scp-like `[user@]host:path`, as git reads it: a colon before any slash
    head = url.split("/", 1)[0]
    return "ssh" if ":" in head and not re.fullmatch(r"[A-Za-z]:", head[:2]) else "other"


def _one_line(value: str) -> str:
    """Token names and the author are written into commits."""
    problem = names.line_problem(value)
    if problem is not None:
        raise ValueError(f"{quoted(value)} {problem}")
    return value


def _no_angle_brackets(value: str) -> str:
    if set(value) & {"<", ">"}:  # git's author header is `name <email>`
        raise ValueError(f"{quoted(value)} holds '<' or '>'")
    return value


def _http_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL with a host")
    if "@" in parts.netloc:
        raise ValueError("must not carry credentials (user:password@)")
    if parts.query or parts.fragment:
        raise ValueError("must not have a query or a fragment")
    return url


def _a_list(value: object) -> object:
    if not isinstance(value, list):  # a set is written as a list, and only as one
        raise PydanticCustomError("list_type", "Input should be a valid list")
    return value


def _readable_file(value: object) -> Path:
    """A file the config names (the file source made it relative to the file's folder)."""
    if not isinstance(value, str | Path):
        raise PydanticCustomError("string_type", "Input should be a valid string")
    if not str(value):
        raise ValueError("must not be empty")
    path = Path(value).expanduser()
    if not path.is_file():
        raise ValueError(f"{path} {'is not a file' if path.exists() else 'does not exist'}")
    try:
        with path.open("rb"):
            pass
    except OSError as error:
        raise ValueError(f"cannot read {path} ({error.strerror or error})") from None
    return path


def _read_secret(path: Path) -> str:
    """A secret from a file: its content without surrounding whitespace (a trailing newline
    is what `echo` and most editors leave)."""
    try:
        secret = path.read_text().strip()
    except OSError as error:
        raise ValueError(f"cannot read {path} ({error.strerror or error})") from None
    except UnicodeDecodeError:
        raise ValueError(f"{path} is not UTF-8 text") from None
    if not secret:
        raise ValueError(f"{path} is empty")
    return secret


MAX_TOKEN_SECRETS = 2  # a token's secrets: the old and the new one while it is rotated


def token_secrets(text: str) -> tuple[str, ...]:
    """The secrets a token's file gives: one a non-empty line, surrounding whitespace left
    out, each once (ValueError: more than MAX_TOKEN_SECRETS)."""
    secrets = tuple(dict.fromkeys(line.strip() for line in text.splitlines() if line.strip()))
    if len(secrets) > MAX_TOKEN_SECRETS:
        raise ValueError(f"holds {len(secrets)} secrets: at most {MAX_TOKEN_SECRETS}, the old "
                         "and the new one while the token is rotated")
    return secrets


def _inline_secrets(value: object) -> tuple[str, ...]:
    """`token:` as a string, or a list of at most MAX_TOKEN_SECRETS strings."""
    given = value if isinstance(value, list) else [value]
    if not given or not all(isinstance(secret, str) for secret in given):
        raise ValueError(f"must be a string, or a list of at most {MAX_TOKEN_SECRETS} strings "
                         "(the old and the new secret while the token is rotated)")
    if len(given) > MAX_TOKEN_SECRETS:
        raise ValueError(f"lists {len(given)} secrets: at most {MAX_TOKEN_SECRETS}, the old "
                         "and the new one while the token is rotated")
    if not all(given):
        raise ValueError("must not be empty")
    return tuple(dict.fromkeys(given))


def _secret_file(value: object) -> Path:
    path = _readable_file(value)
    _read_secret(path)  # it holds one now
    return path


def _not_null(value: Any) -> Any:
    # `auth:` with nothing under it must not read as "no auth section".
    if value is None:
        raise ValueError("is empty: give it a value or remove the key")
    return value


Text = Annotated[str, Field(min_length=1)]
Count = Annotated[int, Field(ge=1)]
Line = Annotated[str, Field(min_length=1), AfterValidator(_one_line)]
Url = Annotated[str, Field(min_length=1), AfterValidator(_http_url)]
Names = Annotated[frozenset[Text], BeforeValidator(_a_list), Field(strict=False)]
ReadableFile = Annotated[Path, BeforeValidator(_readable_file)]
SecretFile = Annotated[Path, BeforeValidator(_secret_file)]  # readable, and not empty


# -- the file's sections ----------------------------------------------------------------------


class _Section(BaseModel):
    """A mapping of the file, whose keys are its fields' names in camelCase."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False,
                              alias_generator=to_camel)
    _not_null = field_validator("*", mode="before")(_not_null)


class AuthorSection(_Section):
    name: Annotated[Line, AfterValidator(_no_angle_brackets)] = Author.name
    email: Annotated[Line, AfterValidator(_no_angle_brackets)] = Author.email


class Token(_Section):
    """One of `auth.tokens`. `secrets` are its `token` (a string, or a list of two while it is
    rotated), or what its `tokenFile` held at start (a secret a line, two at most);
    app.http.auth reads `file` again whenever it changes. Each secret authenticates as the
    token's one name."""

    name: Line  # recorded as Statewriter-Actor
    token: Annotated[tuple[str, ...], BeforeValidator(_inline_secrets)] | None = Field(
        None, repr=False)
    file: SecretFile | None = Field(None, alias="tokenFile")
    promises: Names = frozenset()  # "*" for every promise
    destinations: bool = False  # may manage destinations
    _secrets: tuple[str, ...] = PrivateAttr()

    @model_validator(mode="after")
    def _its_secrets(self) -> Self:
        if self.token is not None and self.file is not None:
            raise _problem(f"token '{self.name}' has both token and tokenFile: give one")
        if self.file is not None:
            text = _read_secret(self.file)
            try:
                self._secrets = token_secrets(text)
            except ValueError as error:
                raise _problem(f"{self.file} {error}", "tokenFile") from None
        elif self.token is not None:
            self._secrets = self.token
        else:
            raise _problem(f"token '{self.name}' needs token or tokenFile")
        return self

    @property
    def secrets(self) -> tuple[str, ...]:
        return self._secrets

    def may_write(self, promise: str) -> bool:
        return "*" in self.promises or promise in self.promises


class AuthSection(_Section):
    tokens: list[Token] = Field(min_length=1)

    @model_validator(mode="after")
    def _each_its_own(self) -> Self:
        for i, token in enumerate(self.tokens):
            for earlier in self.tokens[:i]:
                if earlier.name == token.name:
                    raise _problem(f"'{token.name}' is already the name of another token",
                                   "tokens", i, "name")
                if set(earlier.secrets) & set(token.secrets):
                    raise _problem(f"token '{token.name}' has the same secret as '{earlier.name}': "
                                   "give each its own (the name is what commits record)", "tokens", i)
        return self


class LimitsSection(_Section):
    """The bundle `Limits` (413 past them, 422 for depth and nodes) and the HTTP server's."""

    max_bundle_bytes: Count = Limits.max_bundle_bytes
    max_documents: Count = Limits.max_documents
    max_document_bytes: Count = Limits.max_document_bytes
    max_files: Count = Limits.max_files
    max_depth: Annotated[int, Field(ge=1, le=MAX_DEPTH)] = Limits.max_depth
    max_nodes: Count = Limits.max_nodes
    max_header_bytes: Annotated[int, Field(ge=MIN_HEADER_BYTES)] = DEFAULT_MAX_HEADER_BYTES


class GitHubAppSection(_Section):
    """Installation tokens are minted (gitops.store.githubapp) and refreshed before expiry."""

    app_id: Count
    installation_id: Count
    # readable now; the store reads the key itself when it opens (a key that is not an RSA PEM
    # stops the start there) and again whenever the file changes
    private_key_file: ReadableFile
    api_url: Url = DEFAULT_API_URL


_CREDENTIAL_KINDS = (  # each kind of remote credentials, and the fields that give it
    ("token", {"token", "token_file"}),
    ("password", {"password", "password_file"}),
    ("sshKeyFile", {"ssh_key_file", "known_hosts_file"}),
    ("githubApp", {"github_app"}),
)


class RemoteCredentials(_Section):
    """One kind of credentials for the remote; secrets are read from their files now."""

    token: Text | None = Field(None, repr=False)
    token_file: SecretFile | None = None
    username: Text | None = None
    password: Text | None = Field(None, repr=False)
    password_file: SecretFile | None = None
    ssh_key_file: ReadableFile | None = None
    known_hosts_file: ReadableFile | None = None
    github_app: GitHubAppSection | None = None
    _credentials: Credentials | None = PrivateAttr(None)

    @property
    def kinds(self) -> list[str]:
        return [kind for kind, fields in _CREDENTIAL_KINDS if fields & self.model_fields_set]

    @property
    def credentials(self) -> Credentials | None:
        """The token, password or ssh key (None for a GitHub App)."""
        return self._credentials

    @model_validator(mode="after")
    def _one_kind(self) -> Self:
        for inline, from_file in (("token", "token_file"), ("password", "password_file")):
            if {inline, from_file} <= self.model_fields_set:
                raise _problem(f"{inline} and {to_camel(from_file)} are both given: give one")
        kinds = self.kinds
        if len(kinds) > 1:
            raise _problem(f"{', '.join(kinds[:-1])} and {kinds[-1]} are different kinds of "
                           "credentials: give one (token, username + password, sshKeyFile or githubApp)")
        if not kinds:
            if self.username is not None:
                raise _problem("needs password, passwordFile, token or tokenFile", "username")
            raise _problem("names no credentials: give token, username + password, sshKeyFile or "
                           "githubApp, or remove it")
        (kind,) = kinds
        if self.username is not None and kind not in ("token", "password"):
            raise _problem(f"goes with password or token, not {kind}", "username")
        if kind == "token":
            token = self.token if self.token_file is None else _read_secret(self.token_file)
            self._credentials = Credentials(token=token, username=self.username)
        elif kind == "password":
            if self.username is None:
                raise _problem("needs username", "password")
            password = self.password if self.password_file is None else _read_secret(self.password_file)
            self._credentials = Credentials(username=self.username, password=password)
        elif kind == "sshKeyFile":
            if self.ssh_key_file is None:
                raise _problem("goes with sshKeyFile", "knownHostsFile")
            self._credentials = Credentials(ssh_key_file=self.ssh_key_file,
                                            known_hosts_file=self.known_hosts_file)
        return self


class Push(_Section):
    min_interval: Annotated[float, Field(ge=0)] = DEFAULT_PUSH_MIN_INTERVAL
    timeout: Annotated[float, Field(gt=0)] = DEFAULT_PUSH_TIMEOUT


class Notify(_Section):
    """gitops.notify POSTs destinations' notify URLs, signing each body with the token in
    `hmac_token_file` when there is one (Flux's generic-hmac Receiver). The file is checked at
    start (it must hold a token) and read again whenever it changes."""

    hmac_token_file: SecretFile | None = None


class Delivery(_Section):
    """docs/reference.md section 12: Flux on each destination reports what it applied to
    `POST /v1/destinations/{name}/events`, signed with that destination's own key, derived
    from the secret in `hmac_token_file` (read at start)."""

    hmac_token_file: SecretFile

    @property
    def secret(self) -> bytes:
        return _read_secret(self.hmac_token_file).encode()


class Signing(_Section):
    """Every commit is signed with the key in `key_file` (gitops.store.signing), read and tried
    once at start."""

    format: Literal["ssh", "openpgp"]
    key_file: ReadableFile


class Secrets(_Section):
    """docs/reference.md section 9: the service's own age identity, which gitops.secrets encrypts
    Secrets with (for destinations with recipients and for stored bundles) and keys its digests
    of them with; with `require_encryption`, a Secret for a destination without recipients is
    refused (422)."""

    identity_file: ReadableFile
    require_encryption: bool = False


# -- the model --------------------------------------------------------------------------------


class Config(BaseSettings):
    """What `statewriter serve` runs with: `Config(**flags)` reads the environment and the file
    too (`load_config` also says what is wrong in one line). Arguments other than the flags
    take the file's spelling: `Config(publicUrl=...)`."""

    model_config = SettingsConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False,
                                      alias_generator=to_camel, validate_default=False)

    # The file's keys first: pydantic reports mistakes in the fields' order.
    author_section: AuthorSection = Field(AuthorSection(), alias="author")
    auth: AuthSection | None = None  # None: no authentication, allowed only on a loopback address
    limits_section: LimitsSection = Field(LimitsSection(), alias="limits")
    protect_from_prune: Names = DEFAULT_PROTECTED
    public_url: Url | None = None
    remote_credentials: RemoteCredentials | None = None
    push: Push = Push()
    notify: Notify = Notify()
    delivery: Delivery | None = None
    signing: Signing | None = None
    secrets: Secrets | None = None
    # The settings flags and variables give.
    host: Annotated[str, BeforeValidator(_host)] = DEFAULT_HOST
    port: Annotated[int, BeforeValidator(_port)] = DEFAULT_PORT
    data: Annotated[Path, BeforeValidator(_data_folder)] = Field(DEFAULT_DATA, validate_default=True)
    remote: Annotated[str, BeforeValidator(_remote)] | None = None  # never with userinfo
    branch: Annotated[str, BeforeValidator(_branch)] = DEFAULT_BRANCH
    config: Path | None = Field(None, strict=False)  # the file

    _url_credentials: Credentials | None = PrivateAttr(None)
    _not_null = field_validator("*", mode="before")(_not_null)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, _Environment(settings_cls), _ConfigFile(settings_cls)

    @model_validator(mode="wrap")
    @classmethod
    def _remote_and_its_credentials(cls, values: Any, handler: ModelWrapValidatorHandler[Self]) -> Self:
        """The remote's userinfo moves into `credentials` before the remote is kept (as
        gitops.store.remote does, so that it reaches neither git config nor an answer nor a
        log); `remoteCredentials` need a remote of their kind, and none in its URL."""
        in_url = None
        if isinstance(values, dict) and isinstance(values.get("remote"), str):
            with contextlib.suppress(ValueError):  # a URL urlsplit refuses: the remote's check says so
                clean, in_url = _split_userinfo(values["remote"], None)
                values = {**values, "remote": clean}
        config = handler(values)
        config._url_credentials = in_url
        section, key = config.remote_credentials, "remoteCredentials"
        if section is None:
            return config
        if config.remote is None:
            raise _problem("is set but there is no remote (--remote or STATEWRITER_REMOTE)", key)
        if in_url is not None:
            raise _problem("is set and {remote} carries credentials too: give them in one place", key,
                           names_remote=True)
        (kind,) = section.kinds
        wants = "ssh" if kind == "sshKeyFile" else "http"
        if _remote_kind(config.remote) != wants:
            what = "an ssh:// (or host:path)" if wants == "ssh" else "an http(s)://"
            raise _problem(f"needs {what} remote, and {{remote}} is not one", key, kind, names_remote=True)
        return config

    @property
    def author(self) -> Author:
        return Author(self.author_section.name, self.author_section.email)

    @property
    def limits(self) -> Limits:
        return Limits(**self.limits_section.model_dump(exclude={"max_header_bytes"}))

    @property
    def max_header_bytes(self) -> int:
        return self.limits_section.max_header_bytes

    @property
    def tokens(self) -> tuple[Token, ...] | None:
        return None if self.auth is None else tuple(self.auth.tokens)

    @property
    def auth_enabled(self) -> bool:
        return self.auth is not None

    @property
    def credentials(self) -> Credentials | None:
        """The remote's: from its URL's userinfo, else from `remoteCredentials`."""
        if self._url_credentials is not None or self.remote_credentials is None:
            return self._url_credentials
        return self.remote_credentials.credentials

    @property
    def github_app(self) -> GitHubApp | None:
        """`remoteCredentials.githubApp`, whose installation tokens the store mints."""
        app = self.remote_credentials.github_app if self.remote_credentials else None
        return GitHubApp(app.app_id, app.installation_id, app.private_key_file, app.api_url) if app else None

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


# -- the sources ------------------------------------------------------------------------------


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
    environ = os.environ if env is None else env
    given = {"config": path, "host": host, "port": port, "data": data, "remote": remote, "branch": branch}
    flags: dict[str, Any] = {name: value for name, value in given.items() if value is not None}
    # which flag or variable gave each serve setting, as the sources' order decides: for messages
    named = {name: ENV_PREFIX + name.upper() for name in _variables(environ)} | {f: f"--{f}" for f in flags}
    file = (_variables(environ) | flags).get("config")
    token = _ENVIRON.set(environ)
    try:
        return Config(**flags)
    except ValidationError as error:
        raise ConfigError(_validation_problem(error, named, file)) from None
    finally:
        _ENVIRON.reset(token)


_ENVIRON: ContextVar[Mapping[str, str]] = ContextVar("environ")  # load_config's env, else os.environ


def _variables(environ: Mapping[str, str]) -> dict[str, str]:
    """The serve settings `environ` gives; an empty variable counts as unset, as compose files
    often leave them."""
    values = {name: environ.get(ENV_PREFIX + name.upper()) for name in SERVE_SETTINGS}
    return {name: value for name, value in values.items() if value}


class _Environment(PydanticBaseSettingsSource):
    """`STATEWRITER_HOST` ... `STATEWRITER_CONFIG`: the serve settings only (the file's keys are
    not environment variables)."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # the variables are read by __call__

    def __call__(self) -> dict[str, Any]:
        return _variables(_ENVIRON.get(os.environ))


class _ConfigFile(PydanticBaseSettingsSource):
    """The YAML file that `--config` or `STATEWRITER_CONFIG` names, as the sources before this
    one decided. Every key that names a file ends in `File`, and the file it names is relative
    to the config file's folder, as in kubeconfig."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # the file is read whole, by __call__

    def __call__(self) -> dict[str, Any]:
        if self.current_state.get("config") is None:
            return {}
        path = Path(self.current_state["config"])
        named = "--config" if "config" in self.settings_sources_data["InitSettingsSource"] \
            else f"{ENV_PREFIX}CONFIG"
        try:
            text = path.read_text()
            raw = yaml.load(text, Loader=_UniqueKeyLoader)
        except OSError as error:
            raise ConfigError(f"{named} {path}: cannot read it ({error.strerror or error})") from None
        except UnicodeDecodeError:
            raise ConfigError(f"{named} {path}: is not UTF-8 text") from None
        except yaml.YAMLError as error:
            raise ConfigError(f"{path}: not valid YAML: {yaml_problem(error, text)}") from None
        if raw is None:
            return {}
        if not isinstance(raw, dict):
            raise ConfigError(f"{path}: must be a mapping of keys ({', '.join(_keys(Config))}), "
                              f"not {_kind(raw)}")
        for key in raw:
            if not isinstance(key, str):
                raise ConfigError(f"{path}: the file: key {quoted(key)} must be a string")
            if key in SERVE_SETTINGS:  # a flag, not a key of the file
                raise ConfigError(f"{path}: {key}: is not a known key{_suggestion((key,))}")
        files_here: dict[str, Any] = _relative_files(raw, path.absolute().parent)
        return files_here


def _relative_files(value: Any, folder: Path) -> Any:
    """`value` with the name in each `...File` key made relative to `folder`."""
    if isinstance(value, list):
        return [_relative_files(item, folder) for item in value]
    if not isinstance(value, dict):
        return value
    return {key: str(folder / Path(item).expanduser())
            if isinstance(key, str) and key.endswith("File") and isinstance(item, str) and item
            else _relative_files(item, folder)
            for key, item in value.items()}


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice in one mapping (PyYAML keeps the last)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, str):
                continue  # refused with the other keys that are not strings
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {quoted(key)} is given twice", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


# -- one line for each mistake ----------------------------------------------------------------


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


def _validation_problem(error: ValidationError, named: Mapping[str, str], file: str | Path | None) -> str:
    """The first problem pydantic found, without the value: `file: key.path: what is wrong`
    for the file's keys, `--flag: what is wrong` (or the variable) for the serve settings."""
    problems = error.errors(include_url=False)
    first = problems[0]
    loc = first["loc"]
    kind, ctx = first["type"], first.get("ctx") or {}
    if kind == "config":  # one of _problem's
        loc, reason = (*loc, *ctx["key"]), str(ctx["message"])
        if ctx["names_remote"]:
            reason = reason.replace("{remote}", named.get("remote", "--remote"))
    elif kind in _TYPE_ERRORS:
        reason = f"{_REASONS[kind]}, not {_kind(first['input'])}"
    elif kind == "extra_forbidden":
        reason = _REASONS[kind] + _suggestion(loc)
    elif kind in _REASONS:
        reason = _REASONS[kind]
    elif kind == "literal_error":
        reason = f"must be {ctx['expected']}"
    elif kind == "invalid_key":
        loc, reason = loc[:-1], f"key {quoted(loc[-1])} must be a string"
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
    if loc and loc[0] in SERVE_SETTINGS:
        setting = str(loc[0])
        where = named.get(setting) or ("the data folder" if setting == "data" else f"the default {setting}")
        if setting == "data" and reason != "is empty":  # the folder, then what is wrong with it
            where += f" {Path(first['input'])}"
        return f"{where}: {reason}{more}"
    return f"{f'{file}: ' if file else ''}{_key_path(loc) or 'the file'}: {reason}{more}"


def _key_path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else f".{part}" if path else str(part)
    return path


def _suggestion(loc: tuple[int | str, ...]) -> str:
    """` (did you mean auth?)` for `auht`: the closest key the enclosing section knows."""
    close = closest_key(Config, loc, _keys)
    return f" (did you mean {close}?)" if close else ""


def _keys(model: type[BaseModel]) -> dict[str, FieldInfo]:
    """A model's fields by their keys in the file."""
    return {key: field for key, field in model_keys(model).items()
            if model is not Config or key not in SERVE_SETTINGS}


def _kind(value: Any) -> str:
    if value is None:
        return "empty"
    kinds = {bool: "true/false", int: "a whole number", float: "a number", str: "a string",
             list: "a list", dict: "a mapping"}
    return kinds.get(type(value), f"a {type(value).__name__}")
