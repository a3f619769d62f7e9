"""Signed commits (docs/reference.md section 7, `signing` of section 8): every commit the service makes
(migrate, destination, apply, delete, follow-up; embedded and remote stores) verifies with
`git verify-commit`, SSH against an allowed-signers file and OpenPGP against the public key
in a GNUPGHOME of its own; the signature is byte for byte what `git commit -S` writes; a key
that cannot sign stops the start with one line; the Flux manifests ask Flux to verify."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from app.config import load_config
from gitops.commitmsg import parse_trailers
from gitops.destination import Destination
from gitops.errors import SigningError
from gitops.flux import flux_manifests
from gitops.store import open_store
from gitops.store.base import Author
from gitops.store.objects import Repository
from gitops.store.signing import Format, Signer, open_signer, sign_commit
from gitops.writer import Writer
from tests import support
from tests.procs import ROOT, git, layout_1_store, running_server, wait_until
from tests.test_cli import one_line, serve

EMAIL = "statewriter@example.invalid"
LABELS = {"signed": "yes"}
GPG = shutil.which("gpg")
SSH_KEYGEN = shutil.which("ssh-keygen")


@dataclass
class Key:
    """A throw-away signing key, and what `git verify-commit` needs to check it."""

    format: Format
    key_file: Path
    public_file: Path
    git_config: list[str] = field(default_factory=list)  # -c options for git
    env: dict[str, str] = field(default_factory=dict)

    def signer(self) -> Signer:
        return open_signer(self.format, self.key_file)

    def verify(self, git_dir: Path, commit: str) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
        env.update(self.env, LC_ALL="C")
        return subprocess.run(["git", *self.git_config, f"--git-dir={git_dir}", "verify-commit",
                               "-v", commit], capture_output=True, text=True, env=env, timeout=60)


def _run(*cmd: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60,
                          env={**os.environ, **(env or {})})
    assert done.returncode == 0, f"{cmd}: {done.stderr}"
    return done.stdout


def make_ssh_key(folder: Path, *keygen: str) -> Key:
    """A key `ssh-keygen -t ...` makes (options `keygen`), allowed to sign as EMAIL."""
    assert SSH_KEYGEN is not None, "ssh-keygen is needed (openssh-client)"
    key = folder / "signing-key"
    _run("ssh-keygen", "-q", *keygen, "-N", "", "-C", "statewriter", "-f", str(key))
    public = key.with_suffix(".pub")
    allowed = folder / "allowed_signers"
    allowed.write_text(f'{EMAIL} namespaces="git" {public.read_text()}')
    return Key("ssh", key, public, ["-c", f"gpg.ssh.allowedSignersFile={allowed}"])


@pytest.fixture(scope="module")
def ssh_key(tmp_path_factory: pytest.TempPathFactory) -> Key:
    return make_ssh_key(tmp_path_factory.mktemp("ssh-key"), "-t", "ed25519")


@pytest.fixture(scope="module")
def pgp_key(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Key]:
    assert GPG is not None, "gpg is needed (gnupg)"
    folder = tmp_path_factory.mktemp("pgp-key")
    maker, checker = folder / "maker", folder / "checker"
    maker.mkdir(mode=0o700)
    checker.mkdir(mode=0o700)
    try:
        home = {"GNUPGHOME": str(maker)}
        _run("gpg", "--batch", "--quiet", "--passphrase", "", "--quick-gen-key",
             f"statewriter <{EMAIL}>", "ed25519", "sign", "never", env=home)
        key, public = folder / "signing-key.asc", folder / "statewriter.asc"
        key.write_text(_run("gpg", "--batch", "--armor", "--export-secret-keys", env=home))
        public.write_text(_run("gpg", "--batch", "--armor", "--export", env=home))
        _run("gpg", "--batch", "--quiet", "--import", str(public), env={"GNUPGHOME": str(checker)})
        yield Key("openpgp", key, public, env={"GNUPGHOME": str(checker)})
    finally:
        for home_dir in (maker, checker):
            subprocess.run(["gpgconf", "--kill", "gpg-agent"], env={**os.environ, "GNUPGHOME": str(home_dir)},
                           capture_output=True, timeout=60)


@pytest.fixture(params=["ssh", "openpgp"])
def key(request: pytest.FixtureRequest) -> Key:
    name = "ssh_key" if request.param == "ssh" else "pgp_key"
    found: Key = request.getfixturevalue(name)
    return found


def assert_all_verify(key: Key, git_dir: Path, commits: list[str]) -> None:
    for commit in commits:
        done = key.verify(git_dir, commit)
        assert done.returncode == 0, f"{commit} does not verify: {done.stderr}"
        assert "Good" in done.stderr, done.stderr


def every_kind_of_commit(writer: Writer) -> None:
    """Destination, apply, a conflict kept out then placed by a follow-up commit, delete."""
    support.a_conflict_freed_by_a_delete(writer, "signed-1", LABELS)


def actions(git_dir: Path, commits: list[str]) -> set[str]:
    found: set[str] = set()
    for commit in commits:
        message = git(f"--git-dir={git_dir}", "log", "-1", "--format=%B", commit)
        found.update(parse_trailers(message)["Statewriter-Action"])
    return found


@pytest.mark.parametrize("remote", [False, True], ids=["embedded", "remote"])
def test_every_commit_the_service_makes_verifies(key: Key, remote: bool, tmp_path: Path) -> None:
    data = tmp_path / "data"
    published = layout_1_store(tmp_path / "remote.git" if remote else data / "state.git")
    before = git(f"--git-dir={published}", "rev-parse", "main").strip()
    store = open_store(data, published.as_uri() if remote else None, signer=key.signer())
    writer = Writer(store)  # migrates the layout 1 store: the first signed commit
    try:
        every_kind_of_commit(writer)
    finally:
        writer.close()
    commits = git(f"--git-dir={published}", "rev-list", f"{before}..main").split()
    assert len(commits) == 7
    assert actions(published, commits) == {"migrate", "destination", "apply", "delete"}
    assert_all_verify(key, published, commits)
    # nothing signed the commits before the service's own
    assert key.verify(published, before).returncode != 0


# ssh-keygen's own format for Ed25519, and an RSA key in the older PEM form
DETERMINISTIC = {"ed25519": ("-t", "ed25519"), "rsa-pem": ("-t", "rsa", "-b", "2048", "-m", "PEM")}


@pytest.mark.parametrize("kind", sorted(DETERMINISTIC))
def test_the_signature_is_what_git_commit_S_writes(kind: str, tmp_path: Path) -> None:
    """Ed25519 and RSA signatures are deterministic: `git commit-tree -S` (git's SSH signing
    through ssh-keygen) with the same key, tree, parent, identities, dates and message
    writes the very same commit object."""
    ssh_key = make_ssh_key(tmp_path, *DETERMINISTIC[kind])
    repo = Repository(tmp_path / "state.git", "main")
    repo.signer = ssh_key.signer()
    try:
        first = repo.commit(None, {"a.yaml": b"a: 1\n"}, "first\n\nStatewriter-Action: apply", Author())
        second = repo.commit(first, {"b.yaml": b"b: 2\n"}, "second", Author())
        assert repo.publish_staged(lambda: True)
        ours = git(f"--git-dir={repo.path}", "cat-file", "commit", second)
        when = ours.split("\ncommitter ")[1].split("\n")[0].split("> ")[1]
        env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
        env.update(GIT_AUTHOR_NAME="statewriter", GIT_AUTHOR_EMAIL=EMAIL, GIT_AUTHOR_DATE=when,
                   GIT_COMMITTER_NAME="statewriter", GIT_COMMITTER_EMAIL=EMAIL,
                   GIT_COMMITTER_DATE=when, LC_ALL="C")
        theirs = subprocess.run(
            ["git", "-c", "gpg.format=ssh", "-c", f"user.signingKey={ssh_key.key_file}",
             f"--git-dir={repo.path}", "commit-tree", f"{second}^{{tree}}", "-p", first, "-S"],
            input="second\n", capture_output=True, text=True, env=env, timeout=60, check=True)
        assert theirs.stdout.strip() == second, (
            ours + "\n---\n" + git(f"--git-dir={repo.path}", "cat-file", "commit", theirs.stdout.strip()))
        assert "\ngpgsig -----BEGIN SSH SIGNATURE-----\n " in ours
        assert_all_verify(ssh_key, repo.path, [first, second])
    finally:
        repo.close()


def test_an_ecdsa_signature_verifies(tmp_path: Path) -> None:
    """ECDSA signatures are random: checked by git alone."""
    ecdsa_key = make_ssh_key(tmp_path, "-t", "ecdsa", "-b", "384")
    repo = Repository(tmp_path / "state.git", "main")
    repo.signer = ecdsa_key.signer()
    try:
        first = repo.commit(None, {"a.yaml": b"a: 1\n"}, "first", Author())
        assert repo.publish_staged(lambda: True)
        assert_all_verify(ecdsa_key, repo.path, [first])
    finally:
        repo.close()


def test_a_signed_commit_reads_as_before(pgp_key: Key, tmp_path: Path) -> None:
    """The header goes after the committer; message, tree and the history's readers are
    untouched (an armored OpenPGP signature's blank line is written as a lone space)."""
    signer = pgp_key.signer()
    try:
        unsigned = b"tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\nauthor a <a@b> 1 +0000\n" \
                   b"committer a <a@b> 1 +0000\n\nmessage\n\nStatewriter-Action: apply\n"
        signed = sign_commit(unsigned, signer)
        header, _, message = signed.partition(b"\n\n")
        assert message == b"message\n\nStatewriter-Action: apply\n"
        lines = header.split(b"\n")
        assert lines[:3] == unsigned.split(b"\n")[:3]
        assert lines[3] == b"gpgsig -----BEGIN PGP SIGNATURE-----"
        assert lines[4] == b" "
        assert lines[-1] == b" -----END PGP SIGNATURE-----"
        assert all(line.startswith(b" ") for line in lines[4:])
    finally:
        signer.close()


def test_flux_manifests_ask_flux_to_verify_and_the_service_signs(pgp_key: Key, tmp_path: Path) -> None:
    """A real `statewriter serve` with `signing`: its commits verify, /flux carries
    spec.verify, and the private GNUPGHOME (and its gpg-agent) are gone once it stops."""
    scratch = Path(tempfile.mkdtemp(prefix="sw-test-"))  # short: gpg-agent's sockets go there
    config = tmp_path / "statewriter.yaml"
    config.write_text(yaml.safe_dump({"signing": {"format": "openpgp",
                                                  "keyFile": str(pgp_key.key_file)}}))
    data = tmp_path / "data"
    try:
        with running_server(data, config=config, env={"TMPDIR": str(scratch)}) as server:
            (home,) = scratch.iterdir()  # the signer's private GNUPGHOME
            assert home.name.startswith("statewriter-gnupg-")
            with server.client() as client:
                put = client.put("/v1/destinations/worker-1", json={"labels": LABELS})
                assert put.status_code == 200
                body = support.payload("p1", "team-0/one", {"cm.yaml": support.config_map("cm")},
                                       selectors=LABELS)
                assert client.post("/v1/bundles", json=body).status_code == 200
                flux = client.get("/v1/destinations/worker-1/flux")
                assert flux.status_code == 200
            assert "commits are signed by the openpgp key" in server.log_tail(200)
        assert list(scratch.iterdir()) == []
        wait_until(lambda: not list(_processes_naming(str(scratch))), 10, "gpg-agent to stop")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    repository = next(yaml.safe_load_all(flux.text))
    assert repository["kind"] == "GitRepository"
    assert repository["spec"]["verify"] == {"mode": "HEAD",
                                            "secretRef": {"name": "kratix-workload-verify"}}
    published = data / "state.git"
    commits = git(f"--git-dir={published}", "rev-list", "main").split()
    assert actions(published, commits) == {"destination", "apply"}
    assert_all_verify(pgp_key, published, commits)

def _processes_naming(text: str) -> Iterator[str]:
    for proc in Path("/proc").iterdir():
        try:
            if text.encode() in (proc / "cmdline").read_bytes():
                yield proc.name
        except OSError:
            continue


def test_without_signing_flux_is_not_asked_to_verify(tmp_path: Path) -> None:
    text = flux_manifests(Destination("w", {}, "w"), "https://git.example/s.git", "main")
    assert "verify" not in text


# -- keys that cannot sign ---------------------------------------------------------------------


def _bad_keys(ssh_key: Key, pgp_key: Key, folder: Path) -> dict[str, tuple[Format, Path, str]]:
    protected = folder / "protected"
    _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "passphrase", "-f", str(protected))
    home = folder / "gnupg"
    home.mkdir(mode=0o700)
    env = {"GNUPGHOME": str(home)}
    try:
        _run("gpg", "--batch", "--quiet", "--passphrase", "passphrase", "--quick-gen-key",
             "protected <p@example.invalid>", "ed25519", "sign", "never", env=env)
        protected_pgp = folder / "protected.asc"
        protected_pgp.write_text(_run("gpg", "--batch", "--pinentry-mode", "loopback", "--passphrase",
                                      "passphrase", "--armor", "--export-secret-keys", env=env))
    finally:
        subprocess.run(["gpgconf", "--kill", "gpg-agent"], env={**os.environ, **env},
                       capture_output=True, timeout=60)
    return {
        "ssh public key": ("ssh", ssh_key.public_file, "not an SSH private key"),
        "ssh key behind a passphrase": ("ssh", protected, "protected by a passphrase"),
        "openpgp key behind a passphrase": ("openpgp", protected_pgp, "protected by a passphrase"),
        "ssh given an openpgp key": ("ssh", pgp_key.key_file, "not an SSH private key"),
        "openpgp public key": ("openpgp", pgp_key.public_file, "holds no OpenPGP secret key"),
        "openpgp given an ssh key": ("openpgp", ssh_key.key_file, "not an OpenPGP key"),
        "missing file": ("ssh", folder / "missing", "No such file or directory"),
    }


def test_keys_that_cannot_sign_are_refused_in_one_line(ssh_key: Key, pgp_key: Key,
                                                        tmp_path: Path) -> None:
    for case, (fmt, path, reason) in _bad_keys(ssh_key, pgp_key, tmp_path).items():
        with pytest.raises(SigningError) as caught:
            open_signer(fmt, path)
        message = str(caught.value)
        assert "\n" not in message and str(path) in message and reason in message, (case, message)


def test_a_missing_tool_is_named(pgp_key: Key, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # a folder without gpg
    with pytest.raises(SigningError, match=r"^gpg is not installed"):
        open_signer("openpgp", pgp_key.key_file)


def test_serve_with_a_key_that_cannot_sign_is_one_line(ssh_key: Key, tmp_path: Path) -> None:
    config = tmp_path / "statewriter.yaml"
    config.write_text(yaml.safe_dump({"signing": {"format": "ssh",
                                                  "keyFile": str(ssh_key.public_file)}}))
    line = one_line(serve(tmp_path / "data", "--config", str(config)), 2)
    assert line.startswith(f"statewriter: signing: {ssh_key.public_file}: not an SSH private key")
    assert not (tmp_path / "data" / "state.git").exists()  # refused before the store was opened



def test_the_documented_signing_example_loads_and_signs(ssh_key: Key, tmp_path: Path) -> None:
    text = (ROOT / "docs" / "signing.md").read_text()
    block = text[text.index("# Signed commits"):]
    block = block[block.index("```yaml") + len("```yaml"):]
    block = block[:block.index("```")].replace("/etc/statewriter/", f"{tmp_path}/")
    shutil.copy(ssh_key.key_file, tmp_path / "signing-key")
    (tmp_path / "statewriter.yaml").write_text(block)
    config = load_config(tmp_path / "statewriter.yaml", env={}, data=str(tmp_path / "data"))
    assert config.signing is not None
    signer = open_signer(config.signing.format, config.signing.key_file)
    assert signer.public_key() == ssh_key.public_file.read_text().rsplit(" ", 1)[0]
    signer.close()
