"""Which documents are Secrets, and which Secrets a pipeline encrypted itself (docs/reference.md
section 9): the one place that decides either, for the sealer, `verify`, the web pages and
the refusals' wording alike.

A Secret "already encrypted" is accepted only as a whole SOPS envelope, never by a text
match: a top-level `sops` mapping with a MAC and at least one key group (age recipient
stanzas that hold an armored age file, or another key service's), and every value under
`data` and `stringData` encrypted (`ENC[AES256_GCM,...]`, or empty, which sops leaves
empty). A document that merely carries a `sops:` key would otherwise be committed in clear,
and Flux's decryption would fail on it for every object of its Kustomization.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterator, Mapping
from typing import Any

import pyrage

from gitops.secrets.sops import METADATA_KEY

SECRET_KIND = "Secret"
# The core group is "" (`apiVersion: v1`); `core/v1` is refused at the door, and read as the
# core group here so that a tree written by hand is never shown or left in clear for it.
_CORE_SPELLINGS = ("", "core")
ENCRYPTED_FIELDS = ("data", "stringData")
_ENC = re.compile(r"ENC\[AES256_GCM,data:[A-Za-z0-9+/=]*,iv:[A-Za-z0-9+/=]+,"
                  r"tag:[A-Za-z0-9+/=]+,type:(str|int|float|bool|bytes|comment)\]")
_AGE_ARMOR = re.compile(r"\s*-----BEGIN AGE ENCRYPTED FILE-----\s*([A-Za-z0-9+/=\s]+?)\s*"
                        r"-----END AGE ENCRYPTED FILE-----\s*")
_AGE_HEADER = b"age-encryption.org/v1\n"
# Key services sops encrypts a data key for: age is checked stanza by stanza; the others
# only need to be there (statewriter cannot reach a KMS or a PGP keyring to check them).
_OTHER_KEY_SERVICES = ("pgp", "kms", "gcp_kms", "azure_kv", "hc_vault", "key_groups")


def is_secret(group: str, kind: str) -> bool:
    """Whether objects of `(group, kind)` are Kubernetes Secrets."""
    return kind == SECRET_KIND and group in _CORE_SPELLINGS


def is_secret_document(doc: object) -> bool:
    """Whether a parsed document is a Secret (whatever else it holds)."""
    if not isinstance(doc, dict):
        return False
    api_version, kind = doc.get("apiVersion"), doc.get("kind")
    if not isinstance(api_version, str) or not isinstance(kind, str):
        return False
    return is_secret(api_version.rpartition("/")[0], kind)


def claims_encryption(doc: Mapping[str, Any]) -> bool:
    """Whether the document says it is SOPS-encrypted (a top-level `sops` key, of any shape:
    `envelope_problem` says whether it is one)."""
    return METADATA_KEY in doc


def is_encrypted_value(value: object) -> bool:
    return isinstance(value, str) and (value == "" or _ENC.fullmatch(value) is not None)


def plaintext_fields(doc: dict[str, Any]) -> list[str]:
    """Paths (`data.password`) of the values under `data` and `stringData` that are not
    encrypted: in a Secret for a destination that decrypts, each would be in clear."""
    return [path for path, value in _leaves(doc) if not is_encrypted_value(value)]


def _leaves(doc: dict[str, Any]) -> Iterator[tuple[str, object]]:
    for field in ENCRYPTED_FIELDS:
        yield from _walk(doc.get(field), field)


def _walk(value: object, path: str) -> Iterator[tuple[str, object]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _walk(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _walk(item, f"{path}[{index}]")
    elif value is not None:  # sops leaves nulls as they are
        yield path, value


def envelope_problem(doc: dict[str, Any]) -> str | None:
    """Why a document that carries a top-level `sops` key is not a whole SOPS envelope, or
    None. Its values are never named, only their paths."""
    meta = doc.get(METADATA_KEY)
    if not isinstance(meta, dict):
        return "its top-level `sops` key is not a SOPS metadata block (a mapping)"
    mac = meta.get("mac")
    if not isinstance(mac, str) or _ENC.fullmatch(mac) is None:
        return "its `sops` block has no MAC (`sops.mac`: ENC[AES256_GCM,...])"
    if not isinstance(meta.get("lastmodified"), str) or not meta["lastmodified"]:
        return "its `sops` block has no `lastmodified` time"
    problem = _key_groups_problem(meta)
    if problem is not None:
        return problem
    clear = plaintext_fields(doc)
    if clear:
        shown = ", ".join(clear[:5]) + (f" and {len(clear) - 5} more" if len(clear) > 5 else "")
        return f"{shown} {'is' if len(clear) == 1 else 'are'} not encrypted (ENC[AES256_GCM,...])"
    return None


def _key_groups_problem(meta: dict[str, Any]) -> str | None:
    stanzas = meta.get("age") or []
    if not isinstance(stanzas, list):
        return "`sops.age` is not a list of recipient stanzas"
    for index, stanza in enumerate(stanzas):
        problem = _age_stanza_problem(stanza)
        if problem is not None:
            return f"`sops.age[{index}]` {problem}"
    if stanzas or any(meta.get(service) for service in _OTHER_KEY_SERVICES):
        return None
    return "its `sops` block encrypts the data key for nobody (no age, pgp or KMS stanza)"


def _age_stanza_problem(stanza: object) -> str | None:
    if not isinstance(stanza, dict):
        return "is not a mapping of recipient and enc"
    recipient, armored = stanza.get("recipient"), stanza.get("enc")
    if not isinstance(recipient, str):
        return "has no recipient"
    try:
        pyrage.x25519.Recipient.from_str(recipient)
    except pyrage.RecipientError:
        return "has a recipient that is not an age X25519 recipient (age1...)"
    found = _AGE_ARMOR.fullmatch(armored) if isinstance(armored, str) else None
    if found is None:
        return "has no armored age file in `enc`"
    try:
        payload = base64.b64decode("".join(found.group(1).split()), validate=True)
    except (binascii.Error, ValueError):
        return "has an `enc` that is not base64"
    if not payload.startswith(_AGE_HEADER):
        return "has an `enc` that is not an age file"
    return None


def age_recipients(doc: dict[str, Any]) -> frozenset[str]:
    """The age recipients a SOPS document's data key is encrypted for."""
    meta = doc.get(METADATA_KEY)
    stanzas = meta.get("age") if isinstance(meta, dict) else None
    if not isinstance(stanzas, list):
        return frozenset()
    return frozenset(str(s["recipient"]) for s in stanzas
                     if isinstance(s, dict) and isinstance(s.get("recipient"), str))
