"""The SOPS file format, written and read natively (getsops/sops v3: `sops.go`,
`aes/cipher.go`, `stores/yaml/store.go`, `age/keysource.go`).

A document is encrypted with a fresh 32-byte data key. Every leaf value whose path has a
key matching `encrypted_regex` becomes `ENC[AES256_GCM,data:..,iv:..,tag:..,type:..]`:
AES-256-GCM with a 32-byte random IV and the path (`key:key:...:`) as additional data;
an empty string stays empty. The MAC is SHA-512 over every leaf value (encrypted or not,
in file order, nulls skipped), upper-case hex, itself encrypted with the data key and the
`lastmodified` time (RFC 3339) as additional data. The data key is age-encrypted to each
recipient separately (an armored age file per recipient, as sops writes it).

Values are walked in the order `gitops.yamldocs.dump_document` writes them (keys sorted),
so the MAC is over the file as sops reads it: the caller dumps the result once and never
re-serialises it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pyrage
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from gitops.errors import SopsError
from gitops.quoting import kind_of, quoted

ENCRYPTED_REGEX = "^(data|stringData)$"
SOPS_VERSION = "3.9.4"  # the format version written; sops 3.x reads it
METADATA_KEY = "sops"
_NONCE_BYTES = 32  # sops' own IV size (aes/cipher.go nonceSize)
_TAG_BYTES = 16
_ENC = re.compile(r"^ENC\[AES256_GCM,data:(.+),iv:(.+),tag:(.+),type:(.+)\]")
_ARMOR_BEGIN = "-----BEGIN AGE ENCRYPTED FILE-----"
_ARMOR_END = "-----END AGE ENCRYPTED FILE-----"


def encrypt(
    doc: dict[str, Any], recipients: Sequence[str], now: datetime | None = None,
    encrypted_regex: str = ENCRYPTED_REGEX,
) -> dict[str, Any]:
    """`doc` (keys in the order the file will list them) with its matching values encrypted
    and a `sops` block for `recipients` (age public keys)."""
    if METADATA_KEY in doc:
        raise SopsError(f"the document already has a top-level {quoted(METADATA_KEY)} key")
    data_key = os.urandom(32)
    matcher = re.compile(encrypted_regex)
    mac = hashlib.sha512()

    def leaf(value: Any, path: list[str]) -> Any:
        mac.update(_to_bytes(value))
        if any(matcher.search(part) for part in path):
            return _encrypt_value(value, data_key, _aad(path))
        return value

    encrypted = _walk(doc, [], leaf, ordered=True)
    stamp = (now or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    encrypted[METADATA_KEY] = {
        "age": [{"recipient": r, "enc": _age_encrypt(data_key, r)} for r in recipients],
        "lastmodified": stamp,
        "mac": _encrypt_value(mac.hexdigest().upper(), data_key, stamp),
        "encrypted_regex": encrypted_regex,
        "version": SOPS_VERSION,
    }
    return dict(encrypted)


def decrypt(doc: dict[str, Any], identities: Sequence[pyrage.x25519.Identity]) -> dict[str, Any]:
    """The plaintext of an encrypted document, its MAC checked."""
    meta = doc.get(METADATA_KEY)
    if not isinstance(meta, dict):
        raise SopsError("not a SOPS document")
    data_key = _data_key(meta, identities)
    matcher = re.compile(str(meta.get("encrypted_regex") or ".*"))
    mac = hashlib.sha512()

    def leaf(value: Any, path: list[str]) -> Any:
        if any(matcher.search(part) for part in path):
            value = _decrypt_value(value, data_key, _aad(path))
        mac.update(_to_bytes(value))
        return value

    plain = _walk({k: v for k, v in doc.items() if k != METADATA_KEY}, [], leaf)
    stamp = str(meta["lastmodified"])
    expected = _decrypt_value(meta["mac"], data_key, stamp)
    if not hmac.compare_digest(str(expected), mac.hexdigest().upper()):
        raise SopsError("MAC mismatch")
    return dict(plain)


def mac_inputs(doc: dict[str, Any]) -> list[bytes]:
    """What a SOPS MAC covers of a document, in the order a reader of its file meets it
    (every leaf value but nulls, the `sops` block left out): a document written with the
    same inputs keeps a valid MAC valid, whatever else changed. Raises SopsError for a
    value sops cannot hash."""
    found: list[bytes] = []

    def leaf(value: Any, path: list[str]) -> Any:
        found.append(_to_bytes(value))
        return value

    _walk({k: v for k, v in doc.items() if k != METADATA_KEY}, [], leaf)
    return found


def recipients_of(doc: dict[str, Any]) -> tuple[str, ...]:
    meta = doc.get(METADATA_KEY)
    if not isinstance(meta, dict):
        return ()
    return tuple(str(item["recipient"]) for item in meta.get("age") or ())


# -- the walk ---------------------------------------------------------------------------------


def _walk(
    value: Any, path: list[str], leaf: Callable[[Any, list[str]], Any], ordered: bool = False
) -> Any:
    """sops' walkValue: a mapping's values under their key, a list's items under the list's
    own path, leaves through `leaf`; nulls stay null and are not part of the MAC. `ordered`:
    keys in sorted order, the order `dump_document` will write them in (a loaded file's
    mappings are already in its order)."""
    if isinstance(value, dict):
        if not all(isinstance(key, str) for key in value):
            raise SopsError("a mapping key that is not a string: sops refuses those")
        out: dict[str, Any] = {}
        for key in sorted(value) if ordered else value:
            out[key] = _walk(value[key], [*path, key], leaf, ordered)
        return out
    if isinstance(value, list):
        return [_walk(item, path, leaf, ordered) for item in value]
    if value is None:
        return None
    return leaf(value, path)


def _aad(path: list[str]) -> str:
    return ":".join(path) + ":"


def _to_bytes(value: Any) -> bytes:
    """sops.ToBytes: what a value adds to the MAC."""
    if isinstance(value, bool):
        return b"True" if value else b"False"
    if isinstance(value, int):
        return str(value).encode()
    if isinstance(value, float):
        return _go_float(value).encode()
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, bytes):
        return value
    raise SopsError(f"{kind_of(value)} cannot be encrypted")


def _go_float(value: float) -> str:
    """Go's strconv.FormatFloat(v, 'f', -1, 64): shortest digits, never an exponent."""
    text = format(Decimal(repr(value)), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


_TYPES = {bool: "bool", int: "int", float: "float", str: "str"}


def _encrypt_value(value: Any, key: bytes, aad: str) -> Any:
    if value == "" and isinstance(value, str):
        return ""  # sops leaves empty strings as they are
    kind = _TYPES.get(type(value))
    if kind is None:
        raise SopsError(f"{kind_of(value)} cannot be encrypted")
    iv = os.urandom(_NONCE_BYTES)
    sealed = AESGCM(key).encrypt(iv, _to_bytes(value), aad.encode())
    data, tag = sealed[:-_TAG_BYTES], sealed[-_TAG_BYTES:]
    b64 = base64.b64encode
    return (f"ENC[AES256_GCM,data:{b64(data).decode()},iv:{b64(iv).decode()},"
            f"tag:{b64(tag).decode()},type:{kind}]")


def _decrypt_value(value: Any, key: bytes, aad: str) -> Any:
    if value == "":
        return ""
    match = _ENC.match(str(value))
    if match is None:
        raise SopsError("a value that should be encrypted is not")
    try:
        data, iv, tag = (base64.b64decode(match.group(i)) for i in (1, 2, 3))
        plain = AESGCM(key).decrypt(iv, data + tag, aad.encode()).decode()
    except (InvalidTag, ValueError):
        raise SopsError("a value does not decrypt (changed, or moved to another key)") from None
    kind = match.group(4)
    if kind == "str":
        return plain
    if kind == "int":
        return int(plain)
    if kind == "float":
        return float(plain)
    if kind == "bool":
        return plain.lower() == "true"
    raise SopsError(f"unsupported value type {quoted(kind)}")


# -- age --------------------------------------------------------------------------------------


def _age_encrypt(data_key: bytes, recipient: str) -> str:
    armored = pyrage.encrypt(data_key, [pyrage.x25519.Recipient.from_str(recipient)],
                             armored=True)
    return armored.decode() if isinstance(armored, bytes) else str(armored)


def _data_key(meta: dict[str, Any], identities: Sequence[pyrage.x25519.Identity]) -> bytes:
    for item in meta.get("age") or ():
        armored = str(item.get("enc", ""))
        body = armored.replace(_ARMOR_BEGIN, "").replace(_ARMOR_END, "")
        try:
            key: bytes = pyrage.decrypt(base64.b64decode("".join(body.split())), list(identities))
        except pyrage.DecryptError:
            continue
        return key
    raise SopsError("no age identity given can decrypt the data key")
