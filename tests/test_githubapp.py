"""GitHub App credentials (docs/reference.md section 8 `remoteCredentials.githubApp`, issue 11):
installation tokens minted with an RS256 JSON web token, cached, refreshed before expiry,
and never shown.

Against two local stand-ins: GitHub's token endpoint (it verifies the JWT's signature with
the app's public key and its claims, and answers tokens that expire when the test says), and
a git HTTP remote (`git http-backend`) that accepts only a minted, unexpired, unrevoked token
as `x-access-token`'s password. Expiry is driven by a clock the store and both stand-ins
share, or awaited by polling (tests.procs.wait_until): no sleeps.
"""

from __future__ import annotations

import base64
import contextlib
import json
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from gitops.errors import RateLimited, StoreUnavailable
from gitops.store import Credentials, RemoteStore, open_store, redact
from gitops.store.githubapp import USERNAME, GitHubApp, InstallationTokens, app_jwt, load_private_key
from tests.procs import ROOT, _clean_env, free_port, git, running_server, wait_until
from tests.test_store import ME, http_git_server

APP_ID = 4242
INSTALLATION = 777
WAIT = 30.0  # seconds any one wait may take before the test fails


# -- keys ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def app_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def other_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def pem(key: rsa.RSAPrivateKey, form: str = "pkcs1") -> bytes:
    """PKCS#1 (`BEGIN RSA PRIVATE KEY`, what GitHub hands out) or PKCS#8 (`BEGIN PRIVATE KEY`)."""
    fmt = (serialization.PrivateFormat.TraditionalOpenSSL if form == "pkcs1"
           else serialization.PrivateFormat.PKCS8)
    return key.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption())


def b64url_decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def basic(token: str, user: str = USERNAME) -> str:
    return "Basic " + base64.b64encode(f"{user}:{token}".encode()).decode()


class Clock:
    """The time the store, the token endpoint and the git remote agree on."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


# -- the stand-in of GitHub's token endpoint ---------------------------------------------------


@dataclass
class GitHub:
    """`POST /app/installations/{id}/access_tokens`, as GitHub answers it."""

    public_key: rsa.RSAPublicKey
    clock: Callable[[], float] = time.time
    lifetime: float = 3600.0  # the minted tokens' life, from `clock`
    forced: tuple[int, dict[str, Any]] | None = None  # answer this instead
    echo_jwt: bool = False  # a refusal that repeats the JWT it was given
    tokens: dict[str, float] = field(default_factory=dict)  # token: expires_at
    revoked: set[str] = field(default_factory=set)
    jwts: list[str] = field(default_factory=list)
    claims: list[dict[str, Any]] = field(default_factory=list)  # of the JWTs that minted
    requests: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    @property
    def mints(self) -> int:
        return len(self.tokens)

    def accepts(self, authorization: object) -> bool:
        with self.lock:
            return any(authorization == basic(token) and expires > self.clock()
                       and token not in self.revoked for token, expires in self.tokens.items())

    def secrets(self) -> list[str]:
        """Every token minted, in every form a log could show it, and every JWT seen."""
        with self.lock:
            return [form for token in self.tokens for form in (token, basic(token).split()[1])] \
                + list(self.jwts)

    def verify(self, jwt: str) -> dict[str, Any] | str:
        """The JWT's claims, or why GitHub would refuse it."""
        try:
            header_b64, claims_b64, signature_b64 = jwt.split(".")
            header = json.loads(b64url_decode(header_b64))
            claims: dict[str, Any] = json.loads(b64url_decode(claims_b64))
        except ValueError:
            return "A JSON web token could not be decoded"
        if header.get("alg") != "RS256":
            return "the JWT's alg is not RS256"
        try:
            self.public_key.verify(b64url_decode(signature_b64),
                                   f"{header_b64}.{claims_b64}".encode(), padding.PKCS1v15(),
                                   hashes.SHA256())
        except InvalidSignature:
            return "A JSON web token could not be decoded"
        if str(claims.get("iss")) != str(APP_ID):
            return "Integration not found"
        now, iat, exp = self.clock(), claims.get("iat"), claims.get("exp")
        if not isinstance(iat, int) or not isinstance(exp, int):
            return "'iat' and 'exp' must be integers"
        if not now - 120 <= iat <= now:
            return "'Issued at' claim ('iat') must be an Integer representing a time in the past"
        if not now < exp <= now + 600:
            return "'Expiration time' claim ('exp') is too far in the future"
        return claims

    def answer(self, path: str, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
        with self.lock:
            self.requests += 1
            jwt = headers.get("authorization", "").removeprefix("Bearer ")
            self.jwts.append(jwt)
            if self.forced is not None:
                status, body = self.forced
                if self.echo_jwt:
                    body = {**body, "message": f"{body.get('message', '')} (you sent {jwt})"}
                return status, body
            if headers.get("accept") != "application/vnd.github+json":
                return 415, {"message": "Unsupported 'Accept' header"}
            claims = self.verify(jwt)
            if isinstance(claims, str):
                message = f"{claims}: {jwt}" if self.echo_jwt else claims
                return 401, {"message": message, "documentation_url": "https://docs.github.com/rest"}
            if path != f"/app/installations/{INSTALLATION}/access_tokens":
                return 404, {"message": "Not Found", "documentation_url": "https://docs.github.com/rest"}
            token = "inst-" + secrets.token_hex(20)  # not GitHub's ghs_ form: redact() must
            expires = int(self.clock() + self.lifetime)  # find the token itself, not its prefix
            self.tokens[token] = expires
            self.claims.append(claims)
            return 201, {"token": token,
                         "expires_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(expires)),
                         "permissions": {"contents": "write"}, "repository_selection": "selected"}


@contextlib.contextmanager
def serving(server: ThreadingHTTPServer) -> Iterator[ThreadingHTTPServer]:
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@contextlib.contextmanager
def github_stand_in(github: GitHub) -> Iterator[GitHub]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            status, body = github.answer(self.path, {k.lower(): v for k, v in self.headers.items()})
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    with serving(ThreadingHTTPServer(("127.0.0.1", 0), Handler)) as server:
        github.server = server
        yield github


class Minted(set[str]):
    """The Authorization values the git remote accepts: the stand-in's minted tokens that
    have not expired (by the shared clock) nor been revoked."""

    def __init__(self, github: GitHub) -> None:
        super().__init__()
        self.github = github

    def __contains__(self, authorization: object) -> bool:
        return self.github.accepts(authorization)


@dataclass
class World:
    github: GitHub
    remote: Path  # the bare repository behind `url`
    url: str
    key_file: Path
    clock: Callable[[], float]

    def app(self, **changes: Any) -> GitHubApp:
        fields: dict[str, Any] = {"app_id": APP_ID, "installation_id": INSTALLATION,
                                  "private_key_file": self.key_file, "api_url": self.github.url}
        fields.update(changes)
        return GitHubApp(**fields)

    def store(self, data: Path, **changes: Any) -> tuple[RemoteStore, InstallationTokens]:
        tokens = InstallationTokens(self.app(**changes), clock=self.clock, timeout=10)
        credentials = Credentials(username=USERNAME, token_source=tokens)
        return RemoteStore(self.url, data, credentials=credentials, timeout=30), tokens

    def remote_tip(self) -> str:
        return git(f"--git-dir={self.remote}", "rev-parse", "refs/heads/main").strip()

    def remote_accepts(self, token: str) -> bool:
        answer = httpx.get(f"{self.url}/info/refs?service=git-upload-pack",
                           headers={"Authorization": basic(token)}, timeout=WAIT)
        return answer.status_code == 200


@contextlib.contextmanager
def make_world(tmp_path: Path, key: rsa.RSAPrivateKey, clock: Callable[[], float],
               form: str = "pkcs1", lifetime: float = 3600.0) -> Iterator[World]:
    key_file = tmp_path / "app.pem"
    key_file.write_bytes(pem(key, form))
    key_file.chmod(0o600)
    remote = tmp_path / "remote.git"
    git("init", "-q", "--bare", "--initial-branch=main", str(remote))
    github = GitHub(key.public_key(), clock=clock, lifetime=lifetime)
    with github_stand_in(github), serving(http_git_server(tmp_path, Minted(github))) as server:
        url = f"http://127.0.0.1:{server.server_address[1]}/remote.git"
        yield World(github, remote, url, key_file, clock)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def world(tmp_path: Path, app_key: rsa.RSAPrivateKey, clock: Clock) -> Iterator[World]:
    with make_world(tmp_path, app_key, clock) as w:
        yield w


def files_under(folder: Path) -> Iterator[bytes]:
    for path in folder.rglob("*"):
        if path.is_file():
            yield path.read_bytes()


def shows_no_secret(text: str, github: GitHub) -> bool:
    return not any(secret in text for secret in github.secrets() if secret)


# -- the JSON web token ------------------------------------------------------------------------


@pytest.mark.parametrize("form", ["pkcs1", "pkcs8"])
def test_the_app_jwt_is_rs256_signed_with_the_app_key_and_github_claims(
    tmp_path: Path, app_key: rsa.RSAPrivateKey, form: str
) -> None:
    (tmp_path / "app.pem").write_bytes(pem(app_key, form))
    key = load_private_key(tmp_path / "app.pem")
    now = 1_700_000_000.5
    jwt = app_jwt(APP_ID, key, now)
    header, claims, signature = jwt.split(".")
    assert json.loads(b64url_decode(header)) == {"alg": "RS256", "typ": "JWT"}
    assert json.loads(b64url_decode(claims)) == {"iat": 1_699_999_940, "exp": 1_700_000_540,
                                                 "iss": str(APP_ID)}
    assert "=" not in jwt and "+" not in jwt and "/" not in jwt  # base64url, unpadded
    app_key.public_key().verify(b64url_decode(signature), f"{header}.{claims}".encode(),
                                padding.PKCS1v15(), hashes.SHA256())
    github = GitHub(app_key.public_key(), clock=lambda: now)
    assert isinstance(github.verify(jwt), dict)  # what the stand-in checks, checked


# -- the store fetches and pushes with minted tokens ------------------------------------------


@pytest.mark.parametrize("form", ["pkcs1", "pkcs8"])
def test_the_store_pushes_and_fetches_with_one_minted_token(
    tmp_path: Path, app_key: rsa.RSAPrivateKey, form: str
) -> None:
    clock = Clock()
    with make_world(tmp_path, app_key, clock, form=form) as w:
        store, tokens = w.store(tmp_path / "data")
        with store:
            assert w.github.mints == 0  # nothing minted before git needs it
            assert store.refresh() is None
            c1 = store.commit(None, {"a.yaml": b"a: 1\n"}, "first", ME)
            assert store.publish(None, c1)
            assert w.remote_tip() == c1
            c2 = store.commit(c1, {"a.yaml": b"a: 2\n"}, "second", ME)
            assert store.publish(c1, c2) and store.refresh() == c2 == w.remote_tip()
            assert w.github.mints == 1 == tokens.minted  # one token, cached
            (token,) = w.github.tokens
            claims = w.github.claims[0]
            assert claims["iss"] == str(APP_ID)
            assert claims["iat"] == int(clock.now - 60) and claims["exp"] - claims["iat"] <= 600
            # never in git config, the askpass script or any other file the store keeps
            assert not any(token.encode() in data for data in files_under(tmp_path / "data"))
            assert token not in repr(store) + repr(tokens) + repr(store._credentials)
        # a second store (a second replica) fetches with its own token
        other, _ = w.store(tmp_path / "other")
        with other:
            assert other.refresh() == c2
        assert w.github.mints == 2


def test_a_token_is_refreshed_before_it_expires_and_replaced_after(
    world: World, clock: Clock, tmp_path: Path
) -> None:
    store, tokens = world.store(tmp_path / "data")
    start = clock.now
    with store:
        c1 = store.commit(None, {"f": b"1"}, "one", ME)
        assert store.publish(None, c1)
        (first,) = world.github.tokens
        assert tokens.expires_at == int(start + 3600)
        clock.now = start + 3200  # 400 s left: still used
        assert store.refresh() == c1 and world.github.mints == 1
        clock.now = start + 3400  # 200 s left: replaced before the fetch
        assert store.refresh() == c1 and world.github.mints == 2
        assert world.remote_accepts(first)  # still valid: replaced early, not late
        second = next(t for t in world.github.tokens if t != first)
        # past the second token's expiry (the service slept, or the clock jumped): the remote
        # refuses it, and the next push mints a third and succeeds
        clock.now = world.github.tokens[second] + 1
        assert not world.remote_accepts(second)
        c2 = store.commit(c1, {"f": b"2"}, "two", ME)
        assert store.publish(c1, c2) and world.remote_tip() == c2
        assert world.github.mints == 3 == tokens.minted
        for claims, at in zip(world.github.claims, (start, start + 3400, clock.now),
                              strict=True):
            assert claims["iat"] == int(at - 60) and claims["exp"] == int(at + 540)


def test_while_github_cannot_mint_the_current_token_serves_until_near_its_expiry(
    world: World, clock: Clock, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store, _ = world.store(tmp_path / "data")  # mints bounded to 10 s
    start = clock.now
    with store:
        c1 = store.commit(None, {"f": b"1"}, "one", ME)
        assert store.publish(None, c1)
        world.github.forced = (503, {"message": "Service Unavailable"})
        clock.now = start + 3400  # due for refresh, 200 s left: the old token serves
        assert store.refresh() == c1 and world.github.requests == 2 and world.github.mints == 1
        assert "503" in caplog.text and shows_no_secret(caplog.text, world.github)
        clock.now = start + 3595  # 5 s left: a push could outlive it
        with pytest.raises(StoreUnavailable) as down:
            store.refresh()
        assert "503" in down.value.message and world.github.mints == 1
        world.github.forced = None  # back: the next fetch mints
        assert store.refresh() == c1 and world.github.mints == 2


def test_short_lived_tokens_expire_at_the_remote_and_the_next_push_mints_anew(
    tmp_path: Path, app_key: rsa.RSAPrivateKey
) -> None:
    """Real time: tokens that expire 3 s after minting; the test waits (polling) until the
    remote refuses the first, then pushes."""
    with make_world(tmp_path, app_key, time.time, lifetime=3.0) as w:
        store, _ = w.store(tmp_path / "data")
        with store:
            c1 = store.commit(None, {"f": b"1"}, "one", ME)
            assert store.publish(None, c1)
            first = next(iter(w.github.tokens))
            wait_until(lambda: not w.remote_accepts(first), WAIT, "the first token to expire")
            c2 = store.commit(c1, {"f": b"2"}, "two", ME)
            assert store.publish(c1, c2) and w.remote_tip() == c2
            assert w.github.mints >= 2  # minted after the first expired


def test_concurrent_fetches_share_one_mint(world: World, tmp_path: Path) -> None:
    _, tokens = world.store(tmp_path / "data")
    got: list[str] = []
    threads = [threading.Thread(target=lambda: got.append(tokens.token())) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(got)) == 1 and len(got) == 8 and world.github.mints == 1


def test_a_revoked_token_is_dropped_and_the_next_fetch_mints_anew(world: World,
                                                                  tmp_path: Path) -> None:
    store, _ = world.store(tmp_path / "data")
    with store:
        c1 = store.commit(None, {"f": b"1"}, "one", ME)
        assert store.publish(None, c1)
        world.github.revoked.update(world.github.tokens)  # revoked long before it expires
        with pytest.raises(StoreUnavailable) as refused:
            store.refresh()
        assert "\n" not in refused.value.message
        assert shows_no_secret(refused.value.message, world.github)
        assert store.refresh() == c1 and world.github.mints == 2


def test_every_form_of_the_token_is_redacted_even_from_git_traces(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With curl's trace on and git's own redaction of it off (a debugging session left
    behind), a refused push still shows no token."""
    monkeypatch.setenv("GIT_CURL_VERBOSE", "1")
    monkeypatch.setenv("GIT_TRACE_REDACT", "0")
    store, _ = world.store(tmp_path / "data")
    with store:
        c1 = store.commit(None, {"f": b"1"}, "one", ME)
        assert store.publish(None, c1)
        (token,) = world.github.tokens
        text = " ".join([token, quote(token, safe=""), basic(token), *world.github.jwts])
        assert shows_no_secret(redact(text, store._all_secrets()), world.github)
        world.github.revoked.add(token)
        c2 = store.commit(c1, {"f": b"2"}, "two", ME)
        with pytest.raises(StoreUnavailable) as refused:
            store.publish(c1, c2)
        assert "Authorization" in refused.value.message  # the trace is there, the token is not
        assert shows_no_secret(refused.value.message, world.github)


# -- failures: one line, no JWT, no token -----------------------------------------------------


def refusal(world: World, data: Path, **changes: Any) -> str:
    store, tokens = world.store(data, **changes)
    with store, pytest.raises(StoreUnavailable) as caught:
        store.refresh()
    message = caught.value.message
    assert "\n" not in message and "Traceback" not in message, message
    assert shows_no_secret(message, world.github), message
    assert "eyJ" not in message  # no JSON web token (base64url of '{"'), whole or in part
    assert tokens.minted == 0
    return message


def test_a_key_that_is_not_the_apps_is_refused_in_one_line(
    world: World, tmp_path: Path, other_key: rsa.RSAPrivateKey
) -> None:
    world.key_file.write_bytes(pem(other_key))
    message = refusal(world, tmp_path / "data")
    assert f"GitHub App {APP_ID}" in message and "401" in message and "privateKeyFile" in message
    assert world.github.requests == 1 and world.github.mints == 0


def test_a_wrong_app_id_is_refused_in_one_line(world: World, tmp_path: Path) -> None:
    message = refusal(world, tmp_path / "data", app_id=APP_ID + 1)
    assert "401" in message and "appId" in message


def test_an_unknown_installation_is_refused_in_one_line(world: World, tmp_path: Path) -> None:
    message = refusal(world, tmp_path / "data", installation_id=INSTALLATION + 1)
    assert "404" in message and "installationId" in message


def test_github_down_or_failing_is_one_line(world: World, tmp_path: Path) -> None:
    message = refusal(world, tmp_path / "down", api_url=f"http://127.0.0.1:{free_port()}")
    assert "cannot reach" in message
    world.github.forced = (503, {"message": "Service\nUnavailable"})
    world.github.echo_jwt = True  # a verbose proxy that repeats what it was sent
    message = refusal(world, tmp_path / "failing")
    assert "503" in message and "Service Unavailable" in message and "***" in message
    world.github.forced = (201, {"token": None})
    assert "without a token" in refusal(world, tmp_path / "no-token")


def test_a_refusal_that_repeats_the_jwt_does_not_show_it(world: World, tmp_path: Path,
                                                         other_key: rsa.RSAPrivateKey) -> None:
    world.key_file.write_bytes(pem(other_key))
    world.github.echo_jwt = True
    message = refusal(world, tmp_path / "data")
    assert "401" in message and "***" in message


def test_github_rate_limits_slow_the_writer_down(world: World, tmp_path: Path) -> None:
    world.github.forced = (403, {"message": "API rate limit exceeded for installation"})
    store, _ = world.store(tmp_path / "data")
    with store, pytest.raises(RateLimited):
        store.refresh()


@pytest.mark.parametrize("content", ["garbage", "encrypted", "ec"])
def test_a_private_key_file_that_is_no_rsa_key_is_one_line_at_open(
    world: World, tmp_path: Path, app_key: rsa.RSAPrivateKey, content: str
) -> None:
    if content == "garbage":
        world.key_file.write_text("-----BEGIN RSA PRIVATE KEY-----\nnot a key\n")
    elif content == "encrypted":
        world.key_file.write_bytes(app_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"passphrase")))
    else:
        world.key_file.write_bytes(ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()))
    with pytest.raises(StoreUnavailable) as caught:
        open_store(tmp_path / "data", world.url, github_app=world.app())
    message = caught.value.message
    assert "\n" not in message and str(world.key_file) in message, message
    assert {"garbage": "not a PEM private key", "encrypted": "encrypted",
            "ec": "not an RSA private key"}[content] in message
    assert world.github.requests == 0
    world.key_file.write_bytes(pem(app_key))  # the data folder was let go: a good key opens it
    with open_store(tmp_path / "data", world.url, github_app=world.app()) as store:
        assert store.refresh() is None and world.github.mints == 1


# -- the service -------------------------------------------------------------------------------


def config_file(folder: Path, world: World) -> Path:
    config = folder / "statewriter.yaml"
    config.write_text(
        "remoteCredentials:\n"
        f"  githubApp: {{appId: {APP_ID}, installationId: {INSTALLATION}, "
        f"privateKeyFile: {world.key_file.name}, apiUrl: '{world.github.url}'}}\n"
        "push: {timeout: 30}\n")
    return config


def test_the_service_pushes_with_app_tokens_and_never_shows_them(
    tmp_path: Path, app_key: rsa.RSAPrivateKey
) -> None:
    with make_world(tmp_path, app_key, time.time) as w:
        config = config_file(tmp_path, w)
        with running_server(tmp_path / "data", w.url, config=config) as server, \
                server.client() as http:
            assert w.github.mints == 1  # the fetch at start
            answer = http.put("/v1/destinations/a", json={"labels": {"env": "a"}})
            assert answer.status_code == 200, answer.text
            assert w.remote_tip() == answer.json()["commit"]
            # the remote revokes the token: the push fails (503, logged), the token is
            # dropped, and the next write mints a new one
            w.github.revoked.update(w.github.tokens)
            refused = http.put("/v1/destinations/b", json={"labels": {"env": "b"}})
            assert refused.status_code == 503, refused.text
            assert "Authentication failed" in refused.json()["message"]
            assert shows_no_secret(refused.text, w.github)
            answer = http.put("/v1/destinations/b", json={"labels": {"env": "b"}})
            assert answer.status_code == 200, answer.text
            assert w.remote_tip() == answer.json()["commit"] and w.github.mints == 2
            ready = http.get("/readyz")
            assert shows_no_secret(ready.text, w.github)
        log = server.log.read_text(errors="replace")
        assert shows_no_secret(log, w.github), log
        assert "not acted on" not in log  # githubApp is acted on now
        assert not any(t.encode() in data for t in w.github.tokens
                       for data in files_under(tmp_path / "data"))


def test_a_service_whose_app_is_refused_stops_at_start_in_one_line(
    tmp_path: Path, app_key: rsa.RSAPrivateKey, other_key: rsa.RSAPrivateKey
) -> None:
    with make_world(tmp_path, app_key, time.time) as w:
        w.key_file.write_bytes(pem(other_key))
        config = config_file(tmp_path, w)
        proc = subprocess.run(
            [sys.executable, "-m", "app.cli", "serve", "--port", str(free_port()), "--data",
             str(tmp_path / "data"), "--remote", w.url, "--config", str(config)],
            cwd=ROOT, capture_output=True, text=True, env=_clean_env(), timeout=120)
        assert proc.returncode != 0
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and "401" in lines[0] and "Traceback" not in proc.stderr, proc.stderr
        assert shows_no_secret(proc.stderr + proc.stdout, w.github)
