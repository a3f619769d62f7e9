"""The service's own age identity, and what it does with Secrets (docs/reference.md section 9):
encrypt a rendered Secret for recipients (always itself among them), decrypt one it
encrypted, and take keyed digests of plaintexts.

The digest decides whether a committed ciphertext still holds what a bundle sends (SOPS
output differs on every run). It is an HMAC-SHA256 keyed with a key derived (HKDF) from the
identity, so a reader of the repository cannot test guesses of a short secret against it
the way a plain hash would let them.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pyrage
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from gitops.errors import IdentityError, SopsError
from gitops.quoting import quoted
from gitops.secrets import sops
from gitops.yamldocs import ParseLimits, dump_document, load_documents

MAX_RECIPIENTS = 32
_OWN_FILES = ParseLimits(max_depth=400, max_nodes=10**9)  # renderings passed the limits already
_DIGEST_PREFIX = "hmac-sha256:"


def check_recipients(value: object) -> tuple[str, ...]:
    """Age recipients (`age1...` X25519 public keys), sorted and without repeats. Raises
    ValueError naming the first that is not one."""
    if not isinstance(value, list | tuple) or not all(isinstance(r, str) for r in value):
        raise ValueError("must be a list of age recipients (age1...)")
    if len(value) > MAX_RECIPIENTS:
        raise ValueError(f"must list at most {MAX_RECIPIENTS} recipients")
    for recipient in value:
        try:
            pyrage.x25519.Recipient.from_str(recipient)
        except pyrage.RecipientError:
            raise ValueError(f"{quoted(recipient[:80])} is not an age X25519 recipient (age1...)") from None
    return tuple(sorted(set(value)))


def is_sealed(content: bytes) -> bool:
    """Whether a document statewriter rendered (one object) is SOPS-encrypted: sealed here,
    or a whole envelope its pipeline sent (checked when it came in)."""
    (doc,) = load_documents(content.decode(), _OWN_FILES)
    return isinstance(doc, dict) and isinstance(doc.get(sops.METADATA_KEY), dict)


Observe = Callable[[str, str], None]  # (destination, outcome): what became of one Secret


class Sealer:
    """`observe` hears every Secret sealed (`encrypted`), kept by its digest (`kept`) or that
    could not be sealed (`failed`), with its destination ("" for a stored bundle)."""

    def __init__(self, identity: str, require_encryption: bool = False,
                 observe: Observe | None = None) -> None:
        try:
            self._identity = pyrage.x25519.Identity.from_str(identity)
        except pyrage.IdentityError:
            raise IdentityError("not an age X25519 identity (AGE-SECRET-KEY-1...)") from None
        self.recipient = str(self._identity.to_public())
        self.require_encryption = require_encryption
        self.observe: Observe = observe or (lambda destination, outcome: None)
        self._key = HKDF(hashes.SHA256(), 32, salt=None,
                         info=b"statewriter secret digest v1").derive(identity.encode())

    def __repr__(self) -> str:  # never the identity
        return f"Sealer({self.recipient})"

    @classmethod
    def from_file(cls, path: Path, require_encryption: bool = False,
                  observe: Observe | None = None) -> Sealer:
        """An age identity file (`age-keygen` output: comments and one AGE-SECRET-KEY line)."""
        for line in path.read_text().splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                return cls(line, require_encryption, observe)
        raise IdentityError(f"{path} holds no age identity")

    def recipients_for(self, recipients: Iterable[str]) -> tuple[str, ...]:
        """Who can decrypt: the destination's recipients and the service itself."""
        return tuple(sorted({*recipients, self.recipient}))

    def digest(self, content: bytes, recipients: Iterable[str]) -> str:
        """A keyed digest of a plaintext rendering and the recipient set it is sealed for."""
        message = "\n".join(self.recipients_for(recipients)).encode() + b"\0" + content
        return _DIGEST_PREFIX + hmac.new(self._key, message, hashlib.sha256).hexdigest()

    def keyed(self, digest: str) -> str:
        """A digest of content that may hold secret values, keyed like `digest`."""
        return _DIGEST_PREFIX + hmac.new(self._key, digest.encode(), hashlib.sha256).hexdigest()

    def seal(self, content: bytes, recipients: Iterable[str], destination: str = "") -> bytes:
        """A rendered Secret encrypted for `recipients` and the service: the bytes to write."""
        (doc,) = load_documents(content.decode(), _OWN_FILES)
        try:
            sealed = dump_document(sops.encrypt(doc, self.recipients_for(recipients)))
        except SopsError:
            self.observe(destination, "failed")
            raise
        self.observe(destination, "encrypted")
        return sealed

    def sealed_for_me(self, content: bytes) -> bool:
        """Whether `content` is a SOPS document this service can decrypt (it sealed it)."""
        (doc,) = load_documents(content.decode(), _OWN_FILES)
        if not isinstance(doc, dict) or not isinstance(doc.get(sops.METADATA_KEY), dict):
            return False
        return self.recipient in sops.recipients_of(doc)

    def open_document(self, doc: dict[str, Any]) -> dict[str, Any]:
        return sops.decrypt(doc, [self._identity])

    def open(self, content: bytes) -> bytes:
        """The plaintext rendering of a document this service sealed."""
        (doc,) = load_documents(content.decode(), _OWN_FILES)
        return dump_document(self.open_document(doc))
