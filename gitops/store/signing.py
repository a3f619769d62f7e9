"""Commit signatures as git writes them (`git commit -S`), so that `git verify-commit`, branch
protection and Flux's `GitRepository.spec.verify` accept the service's commits.

OpenPGP signatures are made by the binary git itself calls, `gpg --detach-sign --armor`, with
the key imported into a private GNUPGHOME the signer owns: one gpg process per commit. SSH
signatures are made in-process (SshSigner says why), byte for byte what `ssh-keygen -Y sign`
makes.
"""

from __future__ import annotations

import base64
import hashlib
import shutil
import struct
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal, Protocol

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from gitops.errors import SigningError, StoreUnavailable
from gitops.git.process import Finished, TimedOut, environment, run

Format = Literal["ssh", "openpgp"]
_SSHSIG = b"SSHSIG"
_NAMESPACE = b"git"  # what git signs and verifies commits in (gpg.ssh namespace)
SIGN_TIMEOUT = 30.0  # seconds: a gpg (or its agent) that hangs fails the commit (503)
_PROBE = b"statewriter signing probe\n"


class Signer(Protocol):
    format: Format
    fingerprint: str  # what `git verify-commit` and Flux name the key by

    def sign(self, payload: bytes) -> bytes:
        """An ASCII-armored detached signature of `payload`; StoreUnavailable when it fails."""
        ...

    def public_key(self) -> str:
        """The public key, as Flux's verify Secret holds it (`*.sshpub` or `*.asc`)."""
        ...

    def close(self) -> None: ...


def open_signer(format: Format, key_file: Path) -> Signer:
    """A signer for the private key in `key_file`, read now and checked by signing once; a
    key that cannot sign (wrong kind, passphrase, missing tool) raises SigningError."""
    signer: SshSigner | OpenPgpSigner = (SshSigner(key_file) if format == "ssh"
                                         else OpenPgpSigner(key_file))
    try:
        signer.sign(_PROBE)
    except StoreUnavailable as error:
        signer.close()
        raise SigningError(f"{key_file}: {error.message}") from None
    return signer


def sign_commit(commit: bytes, signer: Signer) -> bytes:
    """`commit` (a commit object's text) with the signature of that text in a `gpgsig`
    header at the end of the header lines, each further line after a space: byte for byte
    what `git commit -S` writes, and what `git verify-commit` strips before checking."""
    end = commit.index(b"\n\n") + 1
    lines = signer.sign(commit).rstrip(b"\n").split(b"\n")
    header = b"gpgsig " + b"\n ".join(lines) + b"\n"
    return commit[:end] + header + commit[end:]


class SshSigner:
    """SSH signatures (OpenSSH's PROTOCOL.sshsig, namespace "git") made in-process with the
    `cryptography` package: exactly what `ssh-keygen -Y sign -n git` writes (Ed25519 and RSA
    signatures are deterministic, and the tests compare them with git's own), without a
    process per commit (ssh-keygen took 7-10 ms a signature, more than a whole unsigned
    write; measured with bench/signing.py)."""

    format: Format = "ssh"

    def __init__(self, key_file: Path) -> None:
        data = _read(key_file)
        try:
            key = (serialization.load_ssh_private_key(data, password=None)
                   if b"OPENSSH PRIVATE KEY" in data
                   else serialization.load_pem_private_key(data, password=None))
        except (ValueError, TypeError, UnsupportedAlgorithm) as error:
            reason = str(error).splitlines()[0] if str(error) else type(error).__name__
            if "password" in reason.lower() or "encrypted" in reason.lower():
                raise SigningError(f"{key_file}: the SSH key is protected by a passphrase; "
                                   "give a key without one") from None
            raise SigningError(f"{key_file}: not an SSH private key ({reason})") from None
        if not isinstance(key, ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey
                          | ec.EllipticCurvePrivateKey):
            raise SigningError(f"{key_file}: an SSH key of a kind git cannot verify "
                               "(use ed25519, ecdsa or rsa)")
        self._key = key
        public = key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                               serialization.PublicFormat.OpenSSH).decode()
        self._public = public
        self._blob = base64.b64decode(public.split()[1])
        digest = base64.b64encode(hashlib.sha256(self._blob).digest()).decode().rstrip("=")
        self.fingerprint = f"SHA256:{digest}"

    def sign(self, payload: bytes) -> bytes:
        signed = (_SSHSIG + _string(_NAMESPACE) + _string(b"") + _string(b"sha512")
                  + _string(hashlib.sha512(payload).digest()))
        blob = (_SSHSIG + struct.pack(">I", 1) + _string(self._blob) + _string(_NAMESPACE)
                + _string(b"") + _string(b"sha512") + _string(self._signature(signed)))
        text = base64.b64encode(blob).decode()
        lines = [text[i:i + 70] for i in range(0, len(text), 70)]
        return ("-----BEGIN SSH SIGNATURE-----\n" + "\n".join(lines)
                + "\n-----END SSH SIGNATURE-----\n").encode()

    def _signature(self, data: bytes) -> bytes:
        """The key's signature of `data` as SSH encodes it (RFC 8709, 8332, 5656)."""
        key = self._key
        if isinstance(key, ed25519.Ed25519PrivateKey):
            return _string(b"ssh-ed25519") + _string(key.sign(data))
        if isinstance(key, rsa.RSAPrivateKey):
            # what ssh-keygen signs with for git: rsa-sha2-512, never SHA-1
            return _string(b"rsa-sha2-512") + _string(key.sign(data, padding.PKCS1v15(),
                                                                   hashes.SHA512()))
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        bits = key.curve.key_size
        digest = hashes.SHA256() if bits <= 256 else hashes.SHA384() if bits <= 384 else hashes.SHA512()
        r, s = decode_dss_signature(key.sign(data, ec.ECDSA(digest)))
        name = self._public.split()[0].encode()  # ecdsa-sha2-nistp256 ...
        return _string(name) + _string(_mpint(r) + _mpint(s))

    def public_key(self) -> str:
        return self._public

    def close(self) -> None:
        pass


class OpenPgpSigner:
    format: Format = "openpgp"

    def __init__(self, key_file: Path) -> None:
        tool = shutil.which("gpg")
        if tool is None:
            raise SigningError("gpg is not installed (GnuPG): it makes the OpenPGP signatures")
        self._tool = tool
        self._home = Path(tempfile.mkdtemp(prefix="statewriter-gnupg-", dir=_socket_folder()))
        self._env = environment(gnupg_home=self._home)
        try:
            _read(key_file)  # a clear message for a file that cannot be read
            done = self._gpg("--import", str(key_file))
            if done.returncode != 0:
                raise SigningError(f"{key_file}: not an OpenPGP key "
                                   f"({_last_line(done.stderr)})")
            self.fingerprint = self._signing_key(key_file)
            done = self._gpg("--armor", "--export", self.fingerprint)
            self._public = done.stdout.decode().strip()
        except BaseException:
            self.close()
            raise

    def _gpg(self, *args: str, input: bytes | None = None) -> Finished:
        # --pinentry-mode error: a key behind a passphrase fails ("No pinentry"), never waits
        return _run([self._tool, "--batch", "--no-tty", "--quiet", "--pinentry-mode", "error",
                     *args], self._env, input)

    def _signing_key(self, key_file: Path) -> str:
        """The fingerprint of the one secret key in the file that may sign."""
        listed = self._gpg("--with-colons", "--list-secret-keys").stdout.decode()
        keys: list[tuple[str, str]] = []  # (capabilities, fingerprint) of each primary key
        primary: str | None = None
        for line in listed.splitlines():
            fields = line.split(":")
            if fields[0] in ("sec", "ssb"):
                primary = fields[11] if fields[0] == "sec" else None
            elif fields[0] == "fpr" and primary is not None:
                keys.append((primary, fields[9]))
                primary = None
        if not keys:
            raise SigningError(f"{key_file}: holds no OpenPGP secret key "
                               "(export one with gpg --armor --export-secret-keys KEYID)")
        if len(keys) > 1:
            raise SigningError(f"{key_file}: holds {len(keys)} OpenPGP secret keys; "
                               "keep only the one to sign with")
        capabilities, fingerprint = keys[0]
        if "S" not in capabilities:  # upper case: the key or one of its subkeys can sign now
            raise SigningError(f"{key_file}: the OpenPGP key {fingerprint} cannot sign "
                               "(expired, revoked, or no signing subkey)")
        return fingerprint

    def sign(self, payload: bytes) -> bytes:
        done = self._gpg("--local-user", self.fingerprint, "--detach-sign", "--armor",
                         input=payload)
        if done.returncode != 0 or not done.stdout.startswith(b"-----BEGIN PGP SIGNATURE-----"):
            reason = _last_line(done.stderr)
            if "No pinentry" in reason:
                reason = "the key is protected by a passphrase; give a key without one"
            raise StoreUnavailable(f"gpg could not sign: {reason}")
        return done.stdout

    def public_key(self) -> str:
        return self._public

    def close(self) -> None:
        """Stop the gpg-agent gpg started for this home, then remove the home."""
        gpgconf = shutil.which("gpgconf")
        if gpgconf is not None:
            _run([gpgconf, "--kill", "gpg-agent"], self._env)
        shutil.rmtree(self._home, ignore_errors=True)


# -- helpers --------------------------------------------------------------------------------


def _string(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def _mpint(value: int) -> bytes:
    """RFC 4251 mpint of a non-negative integer: big-endian, a 0 byte before a high bit."""
    data = value.to_bytes((value.bit_length() + 8) // 8, "big") if value else b""
    return _string(data)


def _socket_folder() -> str:
    """Where a GNUPGHOME can go: gpg-agent puts its sockets in it (unless /run/user/<uid>
    exists), and a socket path over 107 bytes fails every gpg call with "No agent running"."""
    folder = tempfile.gettempdir()
    return folder if len(folder) <= 60 else "/tmp"


def _read(key_file: Path) -> bytes:
    try:
        return key_file.read_bytes()
    except OSError as error:
        raise SigningError(f"{key_file}: {error.strerror or error}") from None


def _run(cmd: Sequence[str], env: Mapping[str, str], input: bytes | None = None) -> Finished:
    """Run `cmd` in its own session (no terminal to prompt on), killed after SIGN_TIMEOUT."""
    try:
        return run(cmd, env, input=input, timeout=SIGN_TIMEOUT)
    except TimedOut as error:  # "gpg timed out after 30 s"
        raise StoreUnavailable(str(error)) from None


def _last_line(stderr: bytes) -> str:
    """The tool's last word on what went wrong."""
    lines = [line.strip() for line in stderr.decode(errors="replace").splitlines() if line.strip()]
    return lines[-1] if lines else "no reason given"
