"""The configuration (docs/reference.md section 8): one strict config from the file, the environment
and the flags. Every mistake stops `statewriter serve` at start with one line naming the key;
token files are re-read when they change; no credential reaches an answer, a repr or a log."""

from __future__ import annotations

import base64
import logging
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from app.config import MAX_DEPTH, Config, load_config, without_userinfo
from app.http.auth import TokenFiles
from gitops.errors import ConfigError
from tests.procs import ROOT, free_port, init_bare, running_server, wait_until
from tests.test_store import http_git_server

# docs/reference.md section 8's example, verbatim but for one comment cut to the line length.
REFERENCE_EXAMPLE = """\
author: {name: statewriter, email: statewriter@example.invalid}
auth:                       # absent: no authentication, allowed only on a loopback address
  tokens:
    - name: elastic-pipeline            # recorded as Statewriter-Actor
      token: s3cret                     # or tokenFile: /path (re-read when it changes)
      promises: [elastic-cloud]         # a list; "*" for every promise
    - name: platform-admin
      tokenFile: /etc/statewriter/admin
      promises: ["*"]
      destinations: true                # a boolean: may manage destinations
limits:                     # defaults shown; 413 past them (422 for depth and nodes)
  maxBundleBytes: 10485760  # received and unpacked
  maxDocuments: 5000
  maxDocumentBytes: 2097152
  maxFiles: 2000
  maxDepth: 64
  maxNodes: 500000
  maxHeaderBytes: 65536
protectFromPrune: [CustomResourceDefinition, Namespace]
publicUrl: https://statewriter.platform.example   # optional
remoteCredentials:          # (v2) one of: token | username+password | sshKeyFile | githubApp
  username: statewriter     # with password / passwordFile, or token / tokenFile
  tokenFile: /etc/statewriter/git-token
  sshKeyFile: /etc/statewriter/id_ed25519
  knownHostsFile: /etc/statewriter/known_hosts
  githubApp: {appId: 12345, installationId: 678, privateKeyFile: /etc/statewriter/app.pem,
              apiUrl: https://api.github.com}   # installation tokens minted and refreshed before expiry
push:                       # (v2)
  minInterval: 0            # seconds between two pushes to the remote; queued changes ride the next push
                            # (GitHub recommends at most 6 pushes a minute per repository: use 10 there)
  timeout: 60               # seconds before a push or fetch that hangs is abandoned (the bundles get 503)
notify:                     # (v2) after a push that changed a destination, POST its notify URL
  hmacTokenFile: /etc/statewriter/receiver-token   # optional: X-Signature: sha256=<hmac of the body>
signing:                    # (v2) optional
  format: ssh               # or openpgp
  keyFile: /etc/statewriter/signing-key
secrets:                    # (v2) section 9
  identityFile: /etc/statewriter/age.key    # the service's own age identity
  requireEncryption: false  # true: refuse Secrets for destinations without recipients (422)
"""
# The example lists every kind of remote credentials; a config gives one of them.
CREDENTIAL_KINDS: dict[str, tuple[dict[str, object], str]] = {
    "username + tokenFile": ({"username": "statewriter", "tokenFile": "/etc/statewriter/git-token"},
                             "https://git.example.invalid/platform/state.git"),
    "sshKeyFile": ({"sshKeyFile": "/etc/statewriter/id_ed25519",
                    "knownHostsFile": "/etc/statewriter/known_hosts"},
                   "ssh://git@git.example.invalid/platform/state.git"),
    "githubApp": ({"githubApp": {"appId": 12345, "installationId": 678,
                                 "privateKeyFile": "/etc/statewriter/app.pem",
                                 "apiUrl": "https://api.github.com"}},
                  "https://github.com/platform/state.git"),
}


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "statewriter.yaml"
    path.write_text(text)
    return path


def load(tmp_path: Path, text: str | None = None, env: dict[str, str] | None = None,
         **flags: Any) -> Config:
    """`load_config` with the file `text`, no environment but `env`, data under tmp_path."""
    flags.setdefault("data", str(tmp_path / "data"))
    return load_config(write(tmp_path, text) if text is not None else None, env=env or {},
                       **flags)


def refusal(tmp_path: Path, text: str | None = None, env: dict[str, str] | None = None,
            **flags: Any) -> str:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, text, env, **flags)
    message = str(caught.value)
    assert "\n" not in message and "Traceback" not in message, message
    return message


def serve_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("STATEWRITER_") and not k.startswith("GIT_")}
    env.update(extra or {})
    return env


# -- limits ---------------------------------------------------------------------------------


def test_limits_are_read_into_the_bundle_limits(tmp_path: Path) -> None:
    config = load(tmp_path, "limits: {maxDepth: 100, maxDocumentBytes: 4096, maxHeaderBytes: 8192}\n")
    assert config.limits.max_depth == 100 and config.limits.max_document_bytes == 4096
    assert config.max_header_bytes == 8192


def test_defaults(tmp_path: Path) -> None:
    config = load(tmp_path)
    assert (config.host, config.port, config.branch, config.remote) == ("127.0.0.1", 8080, "main", None)
    assert config.tokens is None and not config.auth_enabled
    assert config.limits.max_depth == 64 and config.max_header_bytes == 65536
    assert (config.push.min_interval, config.push.timeout) == (0, 60)
    assert config.credentials is None and config.signing is None and config.secrets is None


@pytest.mark.parametrize(("text", "named"), [
    (f"limits: {{maxDepth: {MAX_DEPTH + 1}}}\n", "limits.maxDepth: must be at most 400"),
    ("limits: {maxDepth: 0}\n", "limits.maxDepth: must be at least 1"),
    ("limits: {maxDepht: 10}\n", "limits.maxDepht: is not a known key (did you mean maxDepth?)"),
    ("limits: {maxDepth: abc}\n", "limits.maxDepth: must be a whole number, not a string"),
    ("limits: {maxDocuments: 1.5}\n", "limits.maxDocuments: must be a whole number"),
    ("limits: {maxHeaderBytes: 64}\n", "limits.maxHeaderBytes: must be at least 1024"),
])
def test_bad_limits_are_refused_at_start(tmp_path: Path, text: str, named: str) -> None:
    assert named in refusal(tmp_path, text)


# -- the findings: typos and wrong types ---------------------------------------------


def test_an_unknown_key_stops_with_one_line_naming_it(tmp_path: Path) -> None:
    """`auht:` used to turn authentication off."""
    message = refusal(tmp_path, "auht:\n  tokens:\n    - {name: a, token: x, promises: ['*']}\n")
    assert message == f"{tmp_path / 'statewriter.yaml'}: auht: is not a known key (did you mean auth?)"


@pytest.mark.parametrize(("token", "named"), [
    # used to become the set of its characters
    ("{name: a, token: x, promises: elastic-cloud}",
     "auth.tokens[0].promises: must be a list, not a string"),
    # used to grant destination admin
    ("{name: a, token: x, promises: [e], destinations: 'false'}",
     "auth.tokens[0].destinations: must be true or false, not a string"),
    ("{name: a, token: x, promises: [1]}", "auth.tokens[0].promises[0]: must be a string"),
    ("{name: a, token: x, promise: [e]}",
     "auth.tokens[0].promise: is not a known key (did you mean promises?)"),
    ("{token: x, promises: [e]}", "auth.tokens[0].name: is required"),
    ("{name: a, promises: [e]}", "auth.tokens[0]: token 'a' needs token or tokenFile"),
    ("{name: a, token: '', promises: [e]}", "auth.tokens[0].token: must not be empty"),
])
def test_a_token_of_the_wrong_shape_names_its_key(tmp_path: Path, token: str, named: str) -> None:
    assert named in refusal(tmp_path, f"auth:\n  tokens:\n    - {token}\n")


@pytest.mark.parametrize(("text", "named"), [
    ("auth:\n", "auth: is empty"),  # not "no auth section"
    ("auth: {tokens: []}\n", "auth.tokens: must not be empty"),
    ("auth: {tokens: [{name: a, token: x}, {name: a, token: y}]}\n",
     "auth.tokens[1].name: 'a' is already the name of another token"),
    ("auth: {tokens: [{name: a, token: x}, {name: b, token: x}]}\n",
     "auth.tokens[1]: token 'b' has the same secret as 'a'"),
    ("author: {name: statewriter, email: a@b, name: other}\n", "key 'name' is given twice"),
    ("publicUrl: statewriter.example\n", "publicUrl: must be an http:// or https:// URL"),
    ("publicUrl: https://user:pw@statewriter.example\n", "publicUrl: must not carry credentials"),
    ("push: {timeout: 0}\n", "push.timeout: must be more than 0"),
    ("push: {minInterval: -1}\n", "push.minInterval: must be at least 0"),
    ("push: {timeout: .nan}\n", "push.timeout: must be a finite number"),
    ("push: {timeout: '60'}\n", "push.timeout: must be a number, not a string"),
    ("signing: {format: gpg, keyFile: k}\n", "signing.format: must be 'ssh' or 'openpgp'"),
    ("secrets: {requireEncryption: true}\n", "secrets.identityFile: is required"),
    ("protectFromPrune: Namespace\n", "protectFromPrune: must be a list, not a string"),
    ("- auth\n", "must be a mapping of keys"),
    ("limits: [\n", "not valid YAML"),
    ("author: !!binary é\n", "not valid YAML: a !!binary value is not base64 text (line 1"),
    ("author: !<%C2%85> x\n", "not valid YAML: unknown tag '\\u0085' (line 1"),
])
def test_other_mistakes_name_their_key(tmp_path: Path, text: str, named: str) -> None:
    assert named in refusal(tmp_path, text)


@pytest.mark.parametrize(("given", "problem"), [
    ("{a: hunter2}", "must be a string, or a list of at most 2 strings"),
    ("[hunter2, hunter3, hunter4]", "lists 3 secrets: at most 2"),
    ("[hunter2, 5]", "must be a string, or a list of at most 2 strings"),
    ("[hunter2, '']", "must not be empty"),
])
def test_a_refusal_never_repeats_a_secret(tmp_path: Path, given: str, problem: str) -> None:
    message = refusal(tmp_path, f"auth: {{tokens: [{{name: a, token: {given}, promises: [e]}}]}}\n")
    assert f"auth.tokens[0].token: {problem}" in message
    assert "hunter" not in message


def test_a_token_may_hold_two_secrets_while_it_is_rotated(tmp_path: Path) -> None:
    (tmp_path / "admin").write_text("\n  old-secret  \n\nnew-secret\n")
    config = load(tmp_path, "auth: {tokens: [{name: admin, tokenFile: admin, promises: ['*']}, "
                            "{name: ci, token: [ci-old, ci-new], promises: [e]}]}\n")
    assert {t.name: t.secrets for t in config.tokens or ()} == {
        "admin": ("old-secret", "new-secret"), "ci": ("ci-old", "ci-new")}
    assert "ci-old" not in repr(config) and "old-secret" not in repr(config)


def test_a_token_file_of_more_than_two_secrets_stops_the_service(tmp_path: Path) -> None:
    (tmp_path / "admin").write_text("first-secret\nsecond-secret\nthird-secret\n")
    message = refusal(tmp_path, "auth: {tokens: [{name: admin, tokenFile: admin, promises: ['*']}]}\n")
    assert f"auth.tokens[0].tokenFile: {tmp_path / 'admin'} holds 3 secrets: at most 2" in message
    assert not any(f"{which}-secret" in message for which in ("first", "second", "third"))


def test_two_tokens_sharing_one_of_their_secrets_are_refused(tmp_path: Path) -> None:
    message = refusal(tmp_path, "auth: {tokens: [{name: a, token: [s-old, s-new], promises: [e]}, "
                                "{name: b, token: s-new, promises: [f]}]}\n")
    assert "auth.tokens[1]: token 'b' has the same secret as 'a'" in message and "s-new" not in message


# -- token files -----------------------------------------------------------------------------


def test_token_files_are_read_relative_to_the_config(tmp_path: Path) -> None:
    (tmp_path / "admin").write_text("adm1n\n")
    config = load(tmp_path, "auth: {tokens: [{name: admin, tokenFile: admin, promises: ['*']}]}\n")
    (token,) = config.tokens or ()
    assert (token.secrets, token.file) == (("adm1n",), tmp_path / "admin")
    assert "adm1n" not in repr(config)


@pytest.mark.parametrize(("setup", "problem"), [
    (lambda folder: None, "does not exist"),
    (lambda folder: (folder / "admin").write_text("\n"), "is empty"),
    (lambda folder: (folder / "admin").mkdir(), "is not a file"),
])
def test_a_missing_or_empty_token_file_stops_the_service(
    tmp_path: Path, setup: Callable[[Path], object], problem: str
) -> None:
    setup(tmp_path)
    message = refusal(tmp_path, "auth: {tokens: [{name: admin, tokenFile: admin, promises: ['*']}]}\n")
    assert f"auth.tokens[0].tokenFile: {tmp_path / 'admin'} {problem}" in message


def test_a_token_file_is_re_read_when_it_changes(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    file = tmp_path / "token"
    file.write_text("first\n")
    files = TokenFiles(interval=0)
    assert files.secrets(file, "admin") == ("first",)
    file.write_text("other\n")  # the same size: the modification time tells
    assert files.secrets(file, "admin") == ("other",)
    caplog.set_level(logging.INFO, logger="app.http.auth")
    file.unlink()
    assert files.secrets(file, "admin") == ()
    assert files.secrets(file, "admin") == ()
    file.write_text("")
    assert files.secrets(file, "admin") == ()
    replacement = tmp_path / "token.new"
    replacement.write_text("third\n")
    os.replace(replacement, file)
    assert files.secrets(file, "admin") == ("third",)
    failures = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(failures) == 1 and str(file) in failures[0] and "'admin'" in failures[0], failures
    assert not any(word in caplog.text for word in ("first", "other", "third"))


def test_a_token_file_of_two_lines_gives_both_secrets_and_of_three_none(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    file = tmp_path / "token"
    file.write_text("old-one\n")
    files = TokenFiles(interval=0)
    assert files.secrets(file, "admin") == ("old-one",)
    file.write_text("old-one\nnew-one\n")  # the rotation begins
    assert files.secrets(file, "admin") == ("old-one", "new-one")
    caplog.set_level(logging.INFO, logger="app.http.auth")
    file.write_text("old-one\nnew-one\nthird-one\n")
    assert files.secrets(file, "admin") == ()
    assert files.secrets(file, "admin") == ()
    file.write_text("new-one\n")  # ... and ends
    assert files.secrets(file, "admin") == ("new-one",)
    failures = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(failures) == 1 and "holds 3 secrets: at most 2" in failures[0], failures
    assert str(file) in failures[0] and "'admin'" in failures[0]
    assert not any(word in caplog.text for word in ("old-one", "new-one", "third-one"))


def test_a_token_file_is_looked_at_once_a_second_at_most(tmp_path: Path) -> None:
    file = tmp_path / "token"
    file.write_text("first\n")
    files = TokenFiles(interval=3600)
    assert files.secrets(file, "admin") == ("first",)
    file.write_text("second\n")
    assert files.secrets(file, "admin") == ("first",)


def test_rotating_a_token_file_takes_effect_without_a_restart(tmp_path: Path) -> None:
    """Through the real server: the old token 401, the new one 200; a token whose file
    disappears stops working, logged once naming the file and never the token."""
    token_file = tmp_path / "admin-token"
    token_file.write_text("old-token-0123456789\n")
    config = write(tmp_path, "auth:\n  tokens:\n"
                             f"    - {{name: admin, tokenFile: {token_file}, promises: ['*']}}\n")

    with running_server(tmp_path / "data", config=config, ready_path="/healthz") as server, \
            server.client(timeout=10) as client:
        def status(token: str) -> int:
            code: int = client.get("/v1/destinations",
                                   headers={"authorization": f"Bearer {token}"}).status_code
            return code

        wait_until(lambda: status("old-token-0123456789") == 200, 30, "the first token works")
        token_file.write_text("new-token-9876543210\n")  # in place, the same length
        wait_until(lambda: status("new-token-9876543210") == 200, 10, "the rotated token works")
        assert status("old-token-0123456789") == 401

        token_file.unlink()
        wait_until(lambda: status("new-token-9876543210") == 401, 10, "a deleted token file refuses")
        assert status("new-token-9876543210") == 401
        replacement = tmp_path / "admin-token.new"
        replacement.write_text("third-token\n")
        os.replace(replacement, token_file)  # as a Kubernetes Secret update swaps files
        wait_until(lambda: status("third-token") == 200, 10, "the restored file's token works")
        log = server.log.read_text(errors="replace")
    assert log.count(f"token file {token_file} of token 'admin' cannot be read") == 1, log
    for secret in ("old-token-0123456789", "new-token-9876543210", "third-token"):
        assert secret not in log


def test_a_token_rotated_with_overlap_takes_both_secrets_then_the_new_one(tmp_path: Path) -> None:
    """Through the real server: the old secret, then both (the same actor), then the new one
    only; a list of two in the file does the same."""
    token_file = tmp_path / "admin-token"
    token_file.write_text("old-token-0123456789\n")
    config = write(tmp_path, "auth:\n  tokens:\n"
                             f"    - {{name: admin, tokenFile: {token_file}, promises: ['*'], "
                             "destinations: true}\n")

    with running_server(tmp_path / "data", config=config, ready_path="/healthz") as server, \
            server.client(timeout=10) as client:
        def call(token: str, method: str = "GET", path: str = "/v1/destinations",
                 **kwargs: Any) -> httpx.Response:
            return client.request(method, path, headers={"authorization": f"Bearer {token}"},
                                  **kwargs)

        def status(token: str) -> int:
            return call(token).status_code

        wait_until(lambda: status("old-token-0123456789") == 200, 30, "the first secret works")
        token_file.write_text("old-token-0123456789\nnew-token-9876543210\n")
        wait_until(lambda: status("new-token-9876543210") == 200, 10, "the new secret works")
        assert status("old-token-0123456789") == 200  # both, during the overlap
        for token, name in (("old-token-0123456789", "a"), ("new-token-9876543210", "b")):
            assert call(token, "PUT", f"/v1/destinations/{name}", json={"labels": {}}).status_code == 200
        history = call("new-token-9876543210", path="/v1/history").json()["commits"]
        assert [commit["actor"] for commit in history] == ["admin", "admin"]  # one actor

        token_file.write_text("new-token-9876543210\n")
        wait_until(lambda: status("old-token-0123456789") == 401, 10, "the old secret refused")
        assert status("new-token-9876543210") == 200
        log = server.log.read_text(errors="replace")
    assert "its 2 secret(s) now in effect" in log and "its 1 secret(s) now in effect" in log
    for secret in ("old-token-0123456789", "new-token-9876543210"):
        assert secret not in log


# -- environment and flags -------------------------------------------------------------------


def test_flags_win_over_environment_over_defaults(tmp_path: Path) -> None:
    env = {"STATEWRITER_HOST": "::1", "STATEWRITER_PORT": "9090", "STATEWRITER_BRANCH": "state"}
    config = load(tmp_path, env=env, host="127.0.0.2")
    assert (config.host, config.port, config.branch) == ("127.0.0.2", 9090, "state")
    assert load(tmp_path, env={"STATEWRITER_PORT": ""}).port == 8080  # empty: unset


def test_the_config_file_may_come_from_the_environment(tmp_path: Path) -> None:
    path = write(tmp_path, "limits: {maxDepth: 10}\n")
    config = load_config(env={"STATEWRITER_CONFIG": str(path)}, data=tmp_path / "data")
    assert config.limits.max_depth == 10
    message = refusal(tmp_path, env={"STATEWRITER_CONFIG": str(tmp_path / "missing.yaml")})
    assert message.startswith(f"STATEWRITER_CONFIG {tmp_path / 'missing.yaml'}: cannot read it")


@pytest.mark.parametrize(("env", "flags", "message"), [
    ({"STATEWRITER_PORT": "abc"}, {}, "STATEWRITER_PORT: 'abc' is not a port number (1-65535)"),
    ({"STATEWRITER_PORT": "70000"}, {}, "STATEWRITER_PORT: '70000' is not a port number (1-65535)"),
    ({}, {"port": 0}, "--port: 0 is not a port number (1-65535)"),
    ({"STATEWRITER_BRANCH": "a..b"}, {}, "STATEWRITER_BRANCH: 'a..b' is not a valid git branch name"),
    ({}, {"branch": "-f"}, "--branch: '-f' is not a valid git branch name"),
    ({}, {"host": "a b"}, "--host: 'a b' is not a host name or address"),
])
def test_bad_environment_and_flags_are_named(tmp_path: Path, env: dict[str, str],
                                             flags: dict[str, str], message: str) -> None:
    assert refusal(tmp_path, env=env, **flags) == message


def test_a_data_folder_under_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    message = refusal(tmp_path, data=str(tmp_path / "file" / "data"))
    assert message == (f"--data {tmp_path / 'file' / 'data'}: cannot be created: "
                       f"{tmp_path / 'file'} is not a folder")
    message = refusal(tmp_path, env={"STATEWRITER_DATA": str(tmp_path / "file")}, data=None)
    assert message == f"STATEWRITER_DATA {tmp_path / 'file'}: is not a folder"


def test_a_data_folder_that_cannot_be_written_is_refused(tmp_path: Path) -> None:
    """Checked in a process without privileges: root writes anywhere, so as root the check
    runs with every capability dropped (still uid 0, now bound by the folder's mode)."""
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    check = ("import sys; from app.config import load_config; from gitops.errors import ConfigError\n"
             "try:\n    load_config(None, env={}, data=sys.argv[1])\n"
             "except ConfigError as error:\n    print(error)\n")
    unprivileged = ["setpriv", "--bounding-set=-all", "--inh-caps=-all"] \
        if os.geteuid() == 0 else []
    try:
        for data, expected in ((locked / "data", "cannot be created: "),
                               (locked, "cannot be written")):
            proc = subprocess.run([*unprivileged, sys.executable, "-c", check, str(data)],
                                  capture_output=True, text=True, cwd=ROOT, timeout=60)
            assert expected in proc.stdout, proc.stdout + proc.stderr
    finally:
        locked.chmod(0o755)


def test_a_data_folder_is_not_created_by_loading(tmp_path: Path) -> None:
    load(tmp_path, data=str(tmp_path / "a" / "b"))
    assert not (tmp_path / "a").exists()


# -- credentials -----------------------------------------------------------------------------


def test_credentials_in_the_remote_url_move_out_of_it(tmp_path: Path) -> None:
    config = load(tmp_path, remote="https://user:TOKEN@127.0.0.1:1/repo.git")
    assert config.remote == config.source_url == "https://127.0.0.1:1/repo.git"
    assert config.credentials is not None
    assert (config.credentials.username, config.credentials.password) == ("user", "TOKEN")
    assert "TOKEN" not in repr(config) and "TOKEN" not in str(config)


def test_the_flux_url_never_carries_userinfo() -> None:
    assert without_userinfo("https://user:TOKEN@host/repo.git") == "https://host/repo.git"
    assert without_userinfo("git@host:org/repo.git") == "git@host:org/repo.git"  # a user, no secret
    public = Config(publicUrl="https://statewriter.example/")  # the file's spelling
    assert public.source_url == "https://statewriter.example/git/state.git"
    assert Config(host="::1", port=9000).source_url == "http://[::1]:9000/git/state.git"


def test_camel_case_remote_credentials_are_accepted(tmp_path: Path) -> None:
    (tmp_path / "git-token").write_text("ghp_secret\n")
    config = load(tmp_path, "remoteCredentials: {username: statewriter, tokenFile: git-token}\n",
                  remote="https://git.example.invalid/state.git")
    assert config.credentials is not None
    assert (config.credentials.username, config.credentials.token) == ("statewriter", "ghp_secret")
    assert "ghp_secret" not in repr(config)
    (tmp_path / "key").write_text("key")
    (tmp_path / "known_hosts").write_text("host ssh-ed25519 AAAA")
    config = load(tmp_path, "remoteCredentials: {sshKeyFile: key, knownHostsFile: known_hosts}\n",
                  remote="git@git.example.invalid:platform/state.git")
    assert config.credentials is not None
    assert config.credentials.ssh_key_file == tmp_path / "key"
    assert config.credentials.known_hosts_file == tmp_path / "known_hosts"


@pytest.mark.parametrize(("text", "named"), [
    ("remoteCredentials: {ssh_key_file: key}\n",
     "remoteCredentials.ssh_key_file: is not a known key (did you mean sshKeyFile?)"),
    ("remoteCredentials: {token_file: git-token}\n",
     "remoteCredentials.token_file: is not a known key (did you mean tokenFile?)"),
    ("remoteCredentials: {token: a, tokenFile: git-token}\n",
     "remoteCredentials: token and tokenFile are both given"),
    ("remoteCredentials: {token: a, sshKeyFile: key}\n",
     "remoteCredentials: token and sshKeyFile are different kinds of credentials"),
    ("remoteCredentials: {username: statewriter}\n",
     "remoteCredentials.username: needs password, passwordFile, token or tokenFile"),
    ("remoteCredentials: {password: a}\n", "remoteCredentials.password: needs username"),
    ("remoteCredentials: {}\n", "remoteCredentials: names no credentials"),
    ("remoteCredentials: {tokenFile: missing}\n", "remoteCredentials.tokenFile: "),
    ("remoteCredentials: {sshKeyFile: key}\n", "remoteCredentials.sshKeyFile: needs an ssh://"),
])
def test_wrong_remote_credentials_are_refused(tmp_path: Path, text: str, named: str) -> None:
    (tmp_path / "git-token").write_text("ghp_secret\n")
    (tmp_path / "key").write_text("key")
    assert named in refusal(tmp_path, text, remote="https://git.example.invalid/state.git")


def test_remote_credentials_need_a_remote_and_one_place(tmp_path: Path) -> None:
    text = "remoteCredentials: {token: ghp_secret}\n"
    assert "remoteCredentials: is set but there is no remote" in refusal(tmp_path, text)
    message = refusal(tmp_path, text, env={"STATEWRITER_REMOTE": "https://u:p@git.example.invalid/r"})
    assert "remoteCredentials: is set and STATEWRITER_REMOTE carries credentials too" in message
    assert "u:p" not in message


# -- the examples ---------------------------------------------------------------------------


def contract_example(folder: Path, credentials: dict[str, object] | None) -> str:
    """The example with the files it names created under `folder` and `credentials` for its
    remoteCredentials (None: as written, every kind at once)."""
    folder.mkdir(parents=True, exist_ok=True)
    text = REFERENCE_EXAMPLE.replace("/etc/statewriter/", f"{folder}/")
    for name in ("admin", "git-token", "id_ed25519", "known_hosts", "app.pem", "receiver-token",
                 "signing-key", "age.key"):
        (folder / name).write_text(f"{name}-content\n")
    if credentials is None:
        return text
    raw = yaml.safe_load(text)
    raw["remoteCredentials"] = yaml.safe_load(
        yaml.safe_dump(credentials).replace("/etc/statewriter/", f"{folder}/"))
    return yaml.safe_dump(raw)


@pytest.mark.parametrize("kind", CREDENTIAL_KINDS)
def test_the_contract_example_loads(tmp_path: Path, kind: str) -> None:
    credentials, remote = CREDENTIAL_KINDS[kind]
    files = tmp_path / "etc"
    config = load(tmp_path, contract_example(files, credentials), remote=remote)
    assert [(t.name, t.secrets, t.destinations) for t in config.tokens or ()] == [
        ("elastic-pipeline", ("s3cret",), False), ("platform-admin", ("admin-content",), True)]
    assert config.public_url == "https://statewriter.platform.example"
    assert config.push.timeout == 60 and config.max_header_bytes == 65536
    assert config.notify.hmac_token_file == files / "receiver-token"
    assert config.signing is not None and config.signing.format == "ssh"
    assert config.secrets is not None and not config.secrets.require_encryption
    if kind == "githubApp":
        assert config.github_app is not None and config.github_app.installation_id == 678
        assert config.credentials is None  # not acted on yet
    else:
        assert config.credentials is not None and config.github_app is None
    assert "git-token-content" not in repr(config)


def test_the_contract_example_as_written_gives_every_kind_of_credentials(tmp_path: Path) -> None:
    message = refusal(tmp_path, contract_example(tmp_path / "etc", None),
                      remote="https://git.example.invalid/state.git")
    assert "remoteCredentials: token, sshKeyFile and githubApp are different kinds" in message


def test_the_deploy_example_loads(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens"
    tokens.mkdir()
    for name in ("platform-admin", "elastic-pipeline", "flux"):
        (tokens / name).write_text(f"{name}-{name}\n")
    text = (ROOT / "deploy" / "statewriter.yaml").read_text().replace("/config/tokens/", f"{tokens}/")
    config = load(tmp_path, text, host="0.0.0.0")
    assert {t.name: t.secrets for t in config.tokens or ()} == {
        name: (f"{name}-{name}",) for name in ("platform-admin", "elastic-pipeline", "flux")}


# -- the real command ------------------------------------------------------------------------


@pytest.mark.parametrize(("config", "env", "expected"), [
    ("auht: {tokens: []}\n", {}, "auht: is not a known key"),
    ("auth: {tokens: [{name: a, tokenFile: /nonexistent/token, promises: ['*']}]}\n", {},
     "auth.tokens[0].tokenFile: /nonexistent/token does not exist"),
    ("limits: {maxDepth: abc}\n", {}, "limits.maxDepth: must be a whole number"),
    (None, {"STATEWRITER_PORT": "abc"}, "STATEWRITER_PORT: 'abc' is not a port number"),
])
def test_serve_stops_with_one_line_and_exit_2(tmp_path: Path, config: str | None,
                                              env: dict[str, str], expected: str) -> None:
    command = [sys.executable, "-m", "app.cli", "serve", "--data", str(tmp_path / "data")]
    if config is not None:
        command += ["--config", str(write(tmp_path, config))]
    if "STATEWRITER_PORT" not in env:
        command += ["--port", str(free_port())]
    done = subprocess.run(command, cwd=ROOT, env=serve_env(env), capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("statewriter: "), done.stderr
    assert expected in lines[0] and "Traceback" not in done.stderr


def test_serve_with_an_unwritable_data_folder_stops_with_one_line(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    done = subprocess.run(
        [sys.executable, "-m", "app.cli", "serve", "--port", str(free_port()),
         "--data", str(tmp_path / "file" / "data")],
        cwd=ROOT, env=serve_env(), capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2
    assert done.stderr == (f"statewriter: --data {tmp_path / 'file' / 'data'}: cannot be created: "
                           f"{tmp_path / 'file'} is not a folder\n")


@pytest.fixture
def forge(tmp_path: Path) -> Iterator[str]:
    """An http git remote behind basic auth (user bot, password TOKEN-0123); its URL."""
    init_bare(tmp_path / "remotes" / "state.git")
    server = http_git_server(tmp_path / "remotes",
                             {"Basic " + base64.b64encode(b"bot:TOKEN-0123").decode()})
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/state.git"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("given_as", ["url", "remoteCredentials"])
def test_remote_credentials_reach_git_and_no_answer_or_log(tmp_path: Path, forge: str,
                                                           given_as: str) -> None:
    """`GET /v1/destinations/{name}/flux` used to hand the remote's token to any reader."""
    config = None
    remote = forge.replace("http://", "http://bot:TOKEN-0123@")
    if given_as == "remoteCredentials":
        (tmp_path / "git-token").write_text("TOKEN-0123\n")
        config = write(tmp_path, "remoteCredentials: {username: bot, tokenFile: git-token}\n")
        remote = forge
    with running_server(tmp_path / "data", remote, config=config, ready_path="/healthz") as server, \
            server.client(timeout=60) as client:
        put = client.put("/v1/destinations/dev", json={"labels": {"environment": "dev"}})
        assert put.status_code == 200, put.text  # pushed with the credentials
        flux = client.get("/v1/destinations/dev/flux")
        assert flux.status_code == 200 and forge in flux.text, flux.text
        assert "TOKEN-0123" not in flux.text and "bot:" not in flux.text
        log = server.log.read_text(errors="replace")
    assert "TOKEN-0123" not in log, log


def test_only_http_remotes_may_carry_a_password(tmp_path: Path) -> None:
    message = refusal(tmp_path, remote="ssh://git:TOKEN@git.example.invalid/state.git")
    assert message == "--remote: only an http(s) URL may carry a password (use remoteCredentials)"


def test_the_documented_config_reference_loads(tmp_path: Path) -> None:
    """The configuration page's reference file is a file the service accepts."""
    text = (ROOT / "docs" / "configuration.md").read_text()
    block = text[text.index("The file, every key"):]
    block = block[block.index("```yaml") + len("```yaml"):]
    block = block[:block.index("```")].replace("/etc/statewriter/", f"{tmp_path}/")
    for name in ("elastic-pipeline", "admin"):
        (tmp_path / name).write_text(f"{name}-token\n")
    (tmp_path / "statewriter.yaml").write_text(block)
    config = load_config(tmp_path / "statewriter.yaml", env={}, data=str(tmp_path / "data"))
    assert [t.name for t in config.tokens or ()] == ["elastic-pipeline", "platform-admin"]
    assert config.public_url == "https://statewriter.platform.example"
    assert config.push.timeout == 60


def test_the_documented_remote_credentials_examples_load(tmp_path: Path) -> None:
    text = (ROOT / "docs" / "configuration.md").read_text()
    block = text[text.index("Credentials go in `remoteCredentials`"):]
    block = block[block.index("```yaml") + len("```yaml"):]
    block = block[:block.index("```")].replace("/etc/statewriter/", f"{tmp_path}/")
    for name in ("git-token", "id_ed25519", "known_hosts"):
        (tmp_path / name).write_text(f"{name}\n")
    https, ssh = block.split("---")
    remotes = {"https": "https://github.com/acme/platform-state.git",
               "ssh": "ssh://git@github.com/acme/platform-state.git"}
    for (kind, remote), example in zip(remotes.items(), (https, ssh), strict=True):
        (tmp_path / f"{kind}.yaml").write_text(example)
        config = load_config(tmp_path / f"{kind}.yaml", env={}, remote=remote,
                             data=str(tmp_path / "data"))
        assert config.credentials is not None, kind


# -- where each setting comes from -----------------------------------------------------------

# each serve setting: (its variable's value, its flag's value, what each gives)
SERVE_SETTINGS: dict[str, tuple[str, Any, Any, Any]] = {
    "host": ("::1", "127.0.0.2", "::1", "127.0.0.2"),
    "port": ("9090", 9191, 9090, 9191),
    "branch": ("state", "flag", "state", "flag"),
    "remote": ("https://git.example.invalid/e", "https://git.example.invalid/f",
               "https://git.example.invalid/e", "https://git.example.invalid/f"),
    "data": ("env-data", "flag-data", Path("env-data"), Path("flag-data")),
}


@pytest.mark.parametrize("name", SERVE_SETTINGS)
def test_each_serve_setting_comes_from_its_flag_over_its_variable_over_its_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    monkeypatch.chdir(tmp_path)  # the data folders, relative
    in_env, flag, from_env, from_flag = SERVE_SETTINGS[name]
    env = {f"STATEWRITER_{name.upper()}": in_env}
    assert getattr(load_config(env={}), name) == getattr(Config(), name)
    assert getattr(load_config(env=env), name) == from_env
    assert getattr(load_config(env=env, **{name: flag}), name) == from_flag
    assert getattr(load_config(env={f"STATEWRITER_{name.upper()}": ""}), name) == getattr(Config(), name)


def test_the_config_file_comes_from_its_flag_over_its_variable(tmp_path: Path) -> None:
    by_env, by_flag = tmp_path / "env.yaml", tmp_path / "flag.yaml"
    by_env.write_text("limits: {maxDepth: 10}\n")
    by_flag.write_text("limits: {maxDepth: 20}\n")
    env = {"STATEWRITER_CONFIG": str(by_env)}
    assert load_config(env=env, data=tmp_path / "data").limits.max_depth == 10
    assert load_config(by_flag, env=env, data=tmp_path / "data").limits.max_depth == 20
    assert load_config(env={"STATEWRITER_CONFIG": ""}, data=tmp_path / "data").config is None
    with pytest.raises(ConfigError, match=r"^--config .*missing\.yaml: cannot read it"):
        load_config(tmp_path / "missing.yaml", env=env, data=tmp_path / "data")


def test_an_empty_flag_is_given(tmp_path: Path) -> None:
    assert refusal(tmp_path, data="") == "--data: is empty"
    assert refusal(tmp_path, remote="") == "--remote: is empty"
    assert refusal(tmp_path, env={"STATEWRITER_REMOTE": " "}) == "STATEWRITER_REMOTE: is empty"


def test_the_process_environment_is_read_unless_one_is_given(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STATEWRITER_PORT", "9999")
    monkeypatch.setenv("STATEWRITER_CONFIG", str(write(tmp_path, "limits: {maxDepth: 10}\n")))
    monkeypatch.chdir(tmp_path)  # the default data folder
    for config in (load_config(), Config()):  # the model reads its sources itself
        assert (config.port, config.limits.max_depth) == (9999, 10)
    assert load_config(env={}).port == 8080
    assert Config().port == 9999  # the environment load_config was given is gone with its call


def test_the_files_keys_are_not_environment_variables(tmp_path: Path) -> None:
    env = {"STATEWRITER_AUTH": "{not json", "STATEWRITER_PUBLICURL": "https://elsewhere.example",
           "STATEWRITER_PUBLIC_URL": "https://elsewhere.example", "statewriter_port": "1"}
    config = load(tmp_path, "publicUrl: https://statewriter.example\n", env=env)
    assert (config.public_url, config.auth_enabled, config.port) == ("https://statewriter.example",
                                                                      False, 8080)


@pytest.mark.parametrize("key", ["host", "port", "data", "remote", "branch", "config"])
def test_the_serve_settings_are_not_keys_of_the_file(tmp_path: Path, key: str) -> None:
    assert refusal(tmp_path, f"{key}: x\n").endswith(f"statewriter.yaml: {key}: is not a known key")


def test_the_default_data_folder_is_checked_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "var").write_text("")
    assert refusal(tmp_path, data=None) == "the data folder var: is not a folder"


def test_the_first_of_several_mistakes_is_named(tmp_path: Path) -> None:
    message = refusal(tmp_path, "limits: {maxDepth: abc}\npush: {timeout: 0}\n", port=0)
    assert message.endswith("limits.maxDepth: must be a whole number, not a string (and 2 more)")
    assert refusal(tmp_path, port=0, branch="..") == "--port: 0 is not a port number (1-65535) (and 1 more)"


# -- the file's other rules --------------------------------------------------------------------


def test_every_file_the_config_names_is_relative_to_its_folder(tmp_path: Path) -> None:
    folder = tmp_path / "conf"
    folder.mkdir()
    for name in ("token", "receiver", "signing-key", "age.key", "id", "known_hosts", "app.pem"):
        (folder / name).write_text(f"{name}-content\n")
    common = ("auth: {tokens: [{name: a, tokenFile: token}]}\nnotify: {hmacTokenFile: receiver}\n"
              "signing: {format: ssh, keyFile: signing-key}\nsecrets: {identityFile: age.key}\n")
    ssh = "remoteCredentials: {sshKeyFile: id, knownHostsFile: known_hosts}\n"
    path = folder / "statewriter.yaml"
    path.write_text(common + ssh)
    config = load_config(path, env={}, data=tmp_path / "data", remote="git@git.example.invalid:r.git")
    assert config.tokens is not None and config.tokens[0].file == folder / "token"
    assert config.notify.hmac_token_file == folder / "receiver"
    assert config.signing is not None and config.signing.key_file == folder / "signing-key"
    assert config.secrets is not None and config.secrets.identity_file == folder / "age.key"
    assert config.credentials is not None
    assert (config.credentials.ssh_key_file, config.credentials.known_hosts_file) == (
        folder / "id", folder / "known_hosts")
    path.write_text(common + "remoteCredentials: {githubApp: {appId: 1, installationId: 2, "
                             "privateKeyFile: app.pem}}\n")
    config = load_config(path, env={}, data=tmp_path / "data", remote="https://github.com/o/r.git")
    assert config.github_app is not None and config.github_app.private_key_file == folder / "app.pem"
    assert config.github_app.api_url == "https://api.github.com"


def test_every_key_that_names_a_file_ends_in_file() -> None:
    """The file source makes the value of each `...File` key relative to the file's folder:
    the keys whose fields check a file, exactly."""
    from pydantic import BaseModel

    from app import config as module
    from app.didyoumean import model_in

    def keys(model: type[BaseModel]) -> Iterator[tuple[str, bool]]:
        for name, field in model.model_fields.items():
            checks = [getattr(m, "func", None) for m in field.metadata]
            for argument in (field.annotation, *getattr(field.annotation, "__args__", ())):
                checks += [getattr(m, "func", None) for m in getattr(argument, "__metadata__", ())]
            yield (field.alias or name,
                   module._readable_file in checks or module._secret_file in checks)
            inner = model_in(field.annotation)
            if inner is not None and inner is not model:
                yield from keys(inner)

    found = dict(keys(Config))
    assert {key for key, is_file in found.items() if is_file} == {
        key for key in found if key.endswith("File")} == {
        "tokenFile", "privateKeyFile", "passwordFile", "sshKeyFile", "knownHostsFile",
        "hmacTokenFile", "keyFile", "identityFile"}


def test_a_key_that_is_not_a_string_is_named(tmp_path: Path) -> None:
    assert refusal(tmp_path, "{1: a}\n").endswith("statewriter.yaml: the file: key 1 must be a string")
    assert refusal(tmp_path, "author: {1: a}\n").endswith("author: key 1 must be a string")


@pytest.mark.parametrize(("text", "named"), [
    ('auth: {tokens: [{name: "a\\nb", token: x}]}\n',
     "auth.tokens[0].name: 'a\\nb' holds the character U+000A"),
    ("auth: {tokens: [{name: a, token: x, tokenFile: t}]}\n",
     "auth.tokens[0]: token 'a' has both token and tokenFile: give one"),
    ("auth: {tokens: [{name: a, token: x, promises: !!set {e}}]}\n",
     "auth.tokens[0].promises: must be a list, not a set"),
    ('author: {email: "a@b>"}\n', "author.email: 'a@b>' holds '<' or '>'"),
    ("notify:\n", "notify: is empty: give it a value or remove the key"),
    ("notify: {hmacTokenFile: ''}\n", "notify.hmacTokenFile: must not be empty"),
    ("notify: {hmacTokenFile: [t]}\n", "notify.hmacTokenFile: must be a string, not a list"),
    ("notify: {hmacTokenFile: empty}\n", "/empty is empty"),
    ("remoteCredentials: {githubApp: {appId: 1, installationId: 2, privateKeyFile: t, apiUrl: x}}\n",
     "remoteCredentials.githubApp.apiUrl: must be an http:// or https:// URL"),
    ("remoteCredentials: {username: u, sshKeyFile: t}\n",
     "remoteCredentials.username: goes with password or token, not sshKeyFile"),
    ("remoteCredentials: {knownHostsFile: t}\n", "remoteCredentials.knownHostsFile: goes with sshKeyFile"),
    ("remoteCredentials: {password: a, passwordFile: t}\n",
     "remoteCredentials: password and passwordFile are both given: give one"),
])
def test_more_mistakes_name_their_key(tmp_path: Path, text: str, named: str) -> None:
    (tmp_path / "t").write_text("secret-t\n")
    (tmp_path / "empty").write_text(" \n")
    message = refusal(tmp_path, text, remote="https://git.example.invalid/state.git")
    assert named in message and "secret-t" not in message


def test_a_password_may_come_from_a_file(tmp_path: Path) -> None:
    (tmp_path / "password").write_text("pa55\n")
    config = load(tmp_path, "remoteCredentials: {username: bot, passwordFile: password}\n",
                  remote="https://git.example.invalid/state.git")
    assert config.credentials is not None
    assert (config.credentials.username, config.credentials.password) == ("bot", "pa55")
    assert "pa55" not in repr(config)


def test_a_remote_of_the_wrong_kind_names_where_it_came_from(tmp_path: Path) -> None:
    (tmp_path / "key").write_text("key")
    message = refusal(tmp_path, "remoteCredentials: {sshKeyFile: key}\n",
                      env={"STATEWRITER_REMOTE": "https://git.example.invalid/state.git"})
    assert message.endswith("remoteCredentials.sshKeyFile: needs an ssh:// (or host:path) remote, and "
                            "STATEWRITER_REMOTE is not one")
    message = refusal(tmp_path, "remoteCredentials: {token: t}\n",
                      remote="https://u:p@git.example.invalid/state.git")
    assert message.endswith("remoteCredentials: is set and --remote carries credentials too: "
                            "give them in one place")
