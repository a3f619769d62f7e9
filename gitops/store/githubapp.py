"""GitHub App credentials (docs/reference.md section 8, `remoteCredentials.githubApp`): installation
access tokens, minted when a git process needs one and refreshed before they expire.

To mint one, the app signs a JSON web token (RS256: `iat` 60 s in the past against clock
drift, `exp` 9 minutes ahead, GitHub's limit being 10; `iss` the app id) with its private
key, and POSTs it to `{apiUrl}/app/installations/{installationId}/access_tokens`; GitHub
answers a `token` that git sends as the password of user `x-access-token`, valid until
`expires_at` (an hour). The token is cached and used until less than `REFRESH_MARGIN` of its
life is left (half of its life for a shorter-lived one), so a push or fetch never starts with
a token that may expire under it.

Every failure is a one-line `StoreUnavailable` (`RateLimited` when GitHub asks to slow
down) that names the app, never the JSON web token or a token.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from gitops.errors import PrivateKeyError, RateLimited, StoreUnavailable

log = logging.getLogger("statewriter.githubapp")

DEFAULT_API_URL = "https://api.github.com"
USERNAME = "x-access-token"  # the user name git sends with an installation token
JWT_BACKDATE = 60.0  # seconds: GitHub's advice against clock drift
JWT_LIFETIME = 540.0  # seconds after now: under GitHub's 10-minute limit, with room for drift
REFRESH_MARGIN = 300.0  # a token with less life left than this is replaced before use
API_VERSION = "2022-11-28"
_KEPT_TOKENS = 4  # recent tokens still redacted (a git process may outlive a refresh)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


@dataclass(frozen=True)
class GitHubApp:
    """`remoteCredentials.githubApp`: which app, which installation, its key, which API."""

    app_id: int
    installation_id: int
    private_key_file: Path
    api_url: str = DEFAULT_API_URL


def load_private_key(path: Path) -> rsa.RSAPrivateKey:
    """The app's RSA private key from a PEM file (PKCS#1 `RSA PRIVATE KEY`, as GitHub hands
    it out, or PKCS#8 `PRIVATE KEY`)."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise PrivateKeyError(f"cannot read {path} ({error.strerror or error})") from None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise PrivateKeyError(f"{path} is encrypted: give the key without a passphrase") from None
    except (ValueError, UnsupportedAlgorithm):
        raise PrivateKeyError(f"{path} is not a PEM private key (PKCS#1 or PKCS#8)") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise PrivateKeyError(f"{path} is not an RSA private key (GitHub Apps sign with RS256)")
    return key


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def app_jwt(app_id: int, key: rsa.RSAPrivateKey, now: float) -> str:
    """The app's JSON web token at time `now` (seconds since the epoch): RS256 over
    base64url(header) "." base64url(claims), the signature base64url'd after a second dot."""
    header = {"alg": "RS256", "typ": "JWT"}
    claims = {"iat": int(now - JWT_BACKDATE), "exp": int(now + JWT_LIFETIME), "iss": str(app_id)}
    signing_input = ".".join(_b64url(json.dumps(part, separators=(",", ":")).encode())
                             for part in (header, claims))
    signature = key.sign(signing_input.encode("ascii"), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{_b64url(signature)}"


def secret_forms(token: str) -> list[str]:
    """The forms a token may take in git's or curl's output: as is, URL-quoted (`redact`
    does that one itself), and inside a basic Authorization header."""
    basic = base64.b64encode(f"{USERNAME}:{token}".encode()).decode()
    return [token, quote(token, safe=""), basic]


class InstallationTokens:
    """The installation tokens of one GitHub App installation: `token()` answers the cached
    one while it has life enough left, else mints a new one (one at a time: callers wait for
    the mint in progress)."""

    def __init__(
        self,
        app: GitHubApp,
        *,
        timeout: float = 30.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.app = app
        self._timeout = timeout
        self._clock = clock
        self._url = (f"{app.api_url.rstrip('/')}/app/installations/{app.installation_id}"
                     "/access_tokens")
        self._lock = threading.Lock()
        self._key_stamp: tuple[int, int, int] | None = None
        self._key = self._load_key()
        self._token: str | None = None
        self._refresh_at = 0.0
        self._expires_at = 0.0
        self._recent: deque[str] = deque(maxlen=_KEPT_TOKENS)
        self._jwt: str | None = None
        self._shown: tuple[str, ...] = ()  # what secrets() answers, replaced whole
        self.minted = 0  # how many tokens this process minted

    def __repr__(self) -> str:  # never the token
        return f"InstallationTokens(app_id={self.app.app_id}, installation_id={self.app.installation_id})"

    @property
    def expires_at(self) -> float:
        """When the cached token expires (seconds since the epoch; 0 before the first)."""
        return self._expires_at

    def token(self) -> str:
        """A token with at least its refresh margin of life left, minted now if needed.
        While GitHub cannot mint one, the cached token serves as long as a git process
        (bounded by `timeout`) cannot outlive it."""
        with self._lock:
            if self._token is None or self._clock() >= self._refresh_at:
                try:
                    self._mint()
                except StoreUnavailable as error:
                    if self._token is None or self._clock() + self._timeout >= self._expires_at:
                        raise
                    log.warning("%s; the current token serves until %s", error.message,
                                time.strftime("%H:%M:%SZ", time.gmtime(self._expires_at)))
            assert self._token is not None
            return self._token

    def forget(self, token: str) -> None:
        """`token` was refused (revoked, or the installation changed): mint anew next time."""
        with self._lock:
            if token == self._token:
                self._token = None

    def secrets(self) -> list[str]:
        """Every form of the recent tokens and of the last JSON web token: what `redact`
        must remove from anything that could be logged or answered. Does not wait for a
        mint in progress."""
        return list(self._shown)

    def _remember(self, *, token: str | None = None, jwt: str | None = None) -> None:
        if token is not None:
            self._recent.append(token)
        if jwt is not None:
            self._jwt = jwt
        forms = [form for kept in self._recent for form in secret_forms(kept)]
        self._shown = (*forms, *([self._jwt] if self._jwt else []))

    # -- minting ---------------------------------------------------------------------------

    def _what(self) -> str:
        return f"GitHub App {self.app.app_id} (installation {self.app.installation_id})"

    def _load_key(self) -> rsa.RSAPrivateKey:
        """The private key, read again when its file changed (a rotated key needs no
        restart)."""
        path = self.app.private_key_file
        try:
            st = os.stat(path)
        except OSError as error:
            raise StoreUnavailable(f"{self._what()}: cannot read its private key {path} "
                                   f"({error.strerror or error})") from None
        stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        if stamp != self._key_stamp:
            try:
                self._key = load_private_key(path)
            except PrivateKeyError as error:
                raise StoreUnavailable(f"{self._what()}: private key: {error}") from None
            self._key_stamp = stamp
        return self._key

    def _mint(self) -> None:
        key = self._load_key()
        now = self._clock()
        jwt = app_jwt(self.app.app_id, key, now)
        self._remember(jwt=jwt)
        try:
            with httpx.Client(timeout=self._timeout, follow_redirects=False) as client:
                answer = client.post(self._url, headers={
                    "Authorization": f"Bearer {jwt}",
                    "Accept": "application/vnd.github+json",
                    "X-GitHub-Api-Version": API_VERSION,
                    "User-Agent": "statewriter",
                })
        except httpx.TimeoutException:
            raise StoreUnavailable(f"{self._what()}: no token: {self.app.api_url} did not answer "
                                   f"within {self._timeout:g}s") from None
        except httpx.HTTPError as error:
            reason = self._clean(str(error) or type(error).__name__)
            raise StoreUnavailable(f"{self._what()}: no token: cannot reach {self.app.api_url} "
                                   f"({reason})") from None
        if answer.status_code not in (200, 201):
            raise self._refused(answer)
        token, expires_at = self._read_answer(answer)
        lifetime = expires_at - now
        self._token = token
        self._expires_at = expires_at
        # used until REFRESH_MARGIN before expiry; a short-lived token for half its life
        self._refresh_at = now + max(0.0, lifetime - min(REFRESH_MARGIN, lifetime / 2))
        self._remember(token=token)
        self.minted += 1

    def _read_answer(self, answer: httpx.Response) -> tuple[str, float]:
        try:
            body: Any = answer.json()
        except ValueError:
            body = None
        token = body.get("token") if isinstance(body, dict) else None
        expires = body.get("expires_at") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token or _CONTROL.search(token) or " " in token:
            raise StoreUnavailable(f"{self._what()}: {self.app.api_url} answered "
                                   f"{answer.status_code} without a token")
        try:
            if not isinstance(expires, str):
                raise ValueError(expires)
            expires_at = datetime.fromisoformat(expires.replace("Z", "+00:00"))
            if expires_at.tzinfo is None:
                raise ValueError(expires)
        except ValueError:
            self._remember(token=token)  # redacted from here on, though never used
            raise StoreUnavailable(f"{self._what()}: {self.app.api_url} answered a token "
                                   "without a valid expires_at") from None
        return token, expires_at.timestamp()

    def _refused(self, answer: httpx.Response) -> StoreUnavailable:
        status = answer.status_code
        message = ""
        try:
            body: Any = answer.json()
            if isinstance(body, dict) and isinstance(body.get("message"), str):
                message = self._clean(body["message"])
        except ValueError:
            pass
        said = f"{status}: {message}" if message else str(status)
        what, api = self._what(), self.app.api_url
        limited = status == 429 or (status == 403 and (
            answer.headers.get("x-ratelimit-remaining") == "0" or "retry-after" in answer.headers
            or "rate limit" in message.lower()))
        if limited:
            return RateLimited(f"{what}: no token: {api} asks to slow down ({said})")
        if status == 401:
            return StoreUnavailable(f"{what}: no token: {api} refused the app's JSON web token "
                                    f"({said}); check appId and privateKeyFile")
        if status == 404:
            return StoreUnavailable(f"{what}: no token: {api} knows no such installation of "
                                    f"the app ({said}); check installationId and apiUrl")
        return StoreUnavailable(f"{what}: no token: {api} answered {said}")

    def _clean(self, text: str) -> str:
        """Text from the other side made one short line without our secrets in it."""
        for secret in [self._jwt or "", *self._recent]:
            if secret:
                text = text.replace(secret, "***")
        text = re.sub(r"\s+", " ", _CONTROL.sub(" ", text)).strip()
        return text if len(text) <= 200 else text[:199] + "…"
