"""gitops.tarbundle: the tarball form of a bundle, read in memory and treated as hostile."""

from __future__ import annotations

import gzip
import io
import tarfile
import zlib

import pytest

from gitops.bundle import Limits, parse_bundle
from gitops.errors import InvalidBundle, LimitExceeded
from gitops.owner import make_owner
from gitops.tarbundle import inflate, read_tar_bundle
from tests.fixtures.eck import request_bundle, request_files

OWNER = make_owner("elastic-cloud", "default", "example", "default")
LIMITS = Limits()


def member(name: str, content: bytes = b"", kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.size = len(content) if kind in (tarfile.REGTYPE, tarfile.AREGTYPE) else 0
    info.linkname = link
    info.mode = 0o644
    return info


def tar_bytes(members: list[tuple[tarfile.TarInfo, bytes]], fmt: int = tarfile.PAX_FORMAT) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=fmt) as archive:
        for info, content in members:
            archive.addfile(info, io.BytesIO(content) if info.size else None)
    return buffer.getvalue()


def tgz(files: dict[str, str | bytes], extra: list[tuple[tarfile.TarInfo, bytes]] | None = None) -> bytes:
    members = []
    for name, text in files.items():
        data = text.encode() if isinstance(text, str) else text
        members.append((member(name, data), data))
    return gzip.compress(tar_bytes(members + (extra or [])))


def output(files: dict[str, str]) -> dict[str, str | bytes]:
    return {f"output/{name}": text for name, text in files.items()}


CONFIGMAP = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata: {k: v}\n"


# -- the same content as tar or JSON is the same bundle ------------------------------------


def test_tar_and_json_give_the_same_bundle() -> None:
    files = request_files("example")
    payload = request_bundle("example", destinationSelectors={"env": "dev", "tier": "gold"},
                             status={"phase": "ok"}, promiseGeneration=3)
    from_json = parse_bundle(payload, LIMITS)
    archive = tgz({
        **output(files),
        "metadata/destination-selectors.yaml": "- matchLabels: {env: dev}\n- matchLabels: {tier: gold}\n",
        "metadata/status.yaml": "phase: ok\n",
    })
    from_tar = read_tar_bundle(archive, OWNER, LIMITS, generation=3)
    assert from_tar.digest == from_json.digest
    assert from_tar == from_json


def test_nested_output_folders_and_leading_dot_slash() -> None:
    archive = tgz({"./output/a/b/cm.yaml": CONFIGMAP})
    bundle = read_tar_bundle(archive, OWNER, LIMITS)
    assert [d.file for d in bundle.documents] == ["a/b/cm.yaml"]
    json_form = parse_bundle({"promise": "elastic-cloud",
                              "request": {"namespace": "default", "name": "example"},
                              "files": {"a/b/cm.yaml": CONFIGMAP}})
    assert bundle.digest == json_form.digest


def test_directories_are_ignored_and_other_metadata_too() -> None:
    dirs = [(member("output", kind=tarfile.DIRTYPE), b""), (member("./", kind=tarfile.DIRTYPE), b""),
            (member("metadata", kind=tarfile.DIRTYPE), b"")]
    archive = tgz({"output/cm.yaml": CONFIGMAP, "metadata/notes.txt": "\xff"}, extra=dirs)
    bundle = read_tar_bundle(archive, OWNER, LIMITS)
    assert len(bundle.documents) == 1


def test_empty_output_is_an_empty_bundle() -> None:
    bundle = read_tar_bundle(gzip.compress(tar_bytes([])), OWNER, LIMITS)
    assert bundle.documents == ()


def test_selectors_are_combined_from_every_source() -> None:
    archive = tgz({
        "output/cm.yaml": CONFIGMAP,
        "metadata/destination-selectors.yaml": "- matchLabels: {env: dev}\n",
        "metadata/cluster-selectors.yaml": "region: eu\n",
    })
    bundle = read_tar_bundle(archive, OWNER, LIMITS, selectors={"tier": "gold"})
    assert bundle.selectors == {"env": "dev", "region": "eu", "tier": "gold"}


@pytest.mark.parametrize("metadata", [
    {"metadata/destination-selectors.yaml": "- matchLabels: {env: dev}\n- matchLabels: {env: prod}\n"},
    {"metadata/destination-selectors.yaml": "- matchLabels: {env: dev}\n",
     "metadata/cluster-selectors.yaml": "env: prod\n"},
])
def test_one_selector_key_with_two_values_is_422(metadata: dict[str, str]) -> None:
    with pytest.raises(InvalidBundle) as refused:
        read_tar_bundle(tgz({"output/cm.yaml": CONFIGMAP, **metadata}), OWNER, LIMITS)
    assert "env" in refused.value.message


@pytest.mark.parametrize(("name", "text"), [
    ("metadata/destination-selectors.yaml", "env: dev\n"),  # not the list form
    ("metadata/destination-selectors.yaml", "- matchExpressions: [{key: env}]\n"),
    ("metadata/destination-selectors.yaml", "- matchLabels: {env: [dev]}\n"),
    ("metadata/cluster-selectors.yaml", "- env\n"),
    ("metadata/status.yaml", "- a\n"),
    ("metadata/status.yaml", "a: &a [*a]\n"),
    ("metadata/status.yaml", "a: 1\n---\nb: 2\n"),
    ("metadata/status.yaml", "a: !!int x\n"),
    ("metadata/status.yaml", "a: !!python/object:os.system x\n"),
    ("metadata/status.yaml", "a: [\n"),
])
def test_malformed_metadata_is_422(name: str, text: str) -> None:
    with pytest.raises(InvalidBundle):
        read_tar_bundle(tgz({"output/cm.yaml": CONFIGMAP, name: text}), OWNER, LIMITS)


# -- refusals: every class ---------------------------------------------------------------


def refused(archive: bytes, kind: type[Exception] = InvalidBundle, limits: Limits = LIMITS) -> str:
    with pytest.raises(kind) as caught:
        read_tar_bundle(archive, OWNER, limits)
    return str(caught.value)


@pytest.mark.parametrize(("info", "why"), [
    (member("output/link.yaml", kind=tarfile.SYMTYPE, link="/etc/passwd"), "link"),
    (member("output/rel.yaml", kind=tarfile.SYMTYPE, link="../../.git/config"), "link"),
    (member("output/hard.yaml", kind=tarfile.LNKTYPE, link="output/cm.yaml"), "link"),
    (member("output/dev", kind=tarfile.CHRTYPE), "device"),
    (member("output/blk", kind=tarfile.BLKTYPE), "device"),
    (member("output/fifo", kind=tarfile.FIFOTYPE), "device"),
])
def test_links_and_special_files_are_refused(info: tarfile.TarInfo, why: str) -> None:
    archive = gzip.compress(tar_bytes([(member("output/cm.yaml", CONFIGMAP.encode()), CONFIGMAP.encode()),
                                       (info, b"")]))
    assert why in refused(archive)


@pytest.mark.parametrize("name", [
    "/output/cm.yaml",
    "/etc/cron.d/evil",
    "../output/cm.yaml",
    "output/../../etc/passwd",
    "output/a/../../x.yaml",
    "output/./cm.yaml",
    "output//cm.yaml",
    "output\\..\\cm.yaml",
    "C:/output/cm.yaml",
    "cm.yaml",
    ".git/config",
    ".statewriter/owners/x.json",
    "worker-1/dependencies/x.yaml",
    "output",
    "metadata",
])
def test_paths_outside_output_and_metadata_are_refused(name: str) -> None:
    data = CONFIGMAP.encode()
    archive = gzip.compress(tar_bytes([(member(name, data), data)], fmt=tarfile.GNU_FORMAT))
    refused(archive)


def test_parent_directory_member_is_refused() -> None:
    archive = tgz({"output/cm.yaml": CONFIGMAP}, extra=[(member("../evil", kind=tarfile.DIRTYPE), b"")])
    refused(archive)


def test_pax_header_cannot_smuggle_a_path() -> None:
    data = CONFIGMAP.encode()
    info = member("output/cm.yaml", data)
    info.pax_headers = {"path": "../../../etc/passwd"}
    archive = gzip.compress(tar_bytes([(info, data)]))
    refused(archive)


def test_duplicate_member_is_refused() -> None:
    data = CONFIGMAP.encode()
    archive = gzip.compress(tar_bytes([(member("output/cm.yaml", data), data)] * 2))
    assert "twice" in refused(archive)


def test_non_utf8_file_is_refused() -> None:
    assert "UTF-8" in refused(tgz({"output/cm.yaml": b"kind: \xff\xfe\n"}))


@pytest.mark.parametrize("body", [
    b"", b"not gzip at all", b"PK\x03\x04zipfile", b"\x1f\x8b", b"\x1f\x8b\x08\x00garbage-garbage",
])
def test_gzip_that_is_not_gzip_is_refused(body: bytes) -> None:
    refused(body)


def test_truncated_gzip_is_refused() -> None:
    archive = tgz({"output/cm.yaml": CONFIGMAP})
    assert "gzip" in refused(archive[: len(archive) // 2])


def test_trailing_garbage_after_gzip_is_refused() -> None:
    refused(tgz({"output/cm.yaml": CONFIGMAP}) + b"trailing")


def test_gzip_of_something_that_is_not_a_tar_is_refused() -> None:
    assert "tar" in refused(gzip.compress(b"hello, this is not a tar archive" * 40))


def test_corrupt_tar_header_is_refused() -> None:
    raw = bytearray(tar_bytes([(member("output/cm.yaml", CONFIGMAP.encode()), CONFIGMAP.encode())]))
    raw[148:156] = b"garbage!"  # the header checksum
    refused(gzip.compress(bytes(raw)))


def test_bad_yaml_inside_the_tar_names_the_file() -> None:
    message = refused(tgz({"output/ok.yaml": CONFIGMAP, "output/bad.yaml": "a: [\n"}))
    assert "bad.yaml" in message


def test_gzip_bomb_stops_at_the_limit() -> None:
    """100 MiB of zeros in about 100 KB: refused after inflating just over the limit."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    zeros = bytes(1 << 20)
    bomb = b"".join(compressor.compress(zeros) for _ in range(100)) + compressor.flush()
    assert len(bomb) < 200_000
    with pytest.raises(LimitExceeded) as caught:
        read_tar_bundle(bomb, OWNER, Limits(max_bundle_bytes=1 << 20))
    assert caught.value.message == f"the archive unpacks to more than {1 << 20} bytes"


def test_gzip_bomb_inside_a_tar_member_stops_at_the_limit() -> None:
    header = member("output/big.yaml")
    header.size = 50 << 20
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    head = header.tobuf(tarfile.PAX_FORMAT)
    bomb = compressor.compress(head) + b"".join(
        compressor.compress(bytes(1 << 20)) for _ in range(50)) + compressor.flush()
    refused(bomb, LimitExceeded, Limits(max_bundle_bytes=2 << 20))


def test_inflate_bounds_its_output() -> None:
    with pytest.raises(LimitExceeded):
        inflate(gzip.compress(bytes(10_000)), 9_999)
    assert inflate(gzip.compress(bytes(10_000)), 10_000) == bytes(10_000)
    assert inflate(gzip.compress(b"a") + gzip.compress(b"b"), 10) == b"ab"  # multi-member gzip


def test_declared_member_sizes_over_the_limit_are_413() -> None:
    """A header that claims more than the limit is refused before any content is read."""
    header = member("output/big.yaml")
    header.size = 20 << 20
    archive = gzip.compress(header.tobuf(tarfile.PAX_FORMAT) + bytes(1024))
    refused(archive, LimitExceeded)


def test_unpacked_size_over_the_limit_is_413() -> None:
    big = "# " + "x" * (2 << 20) + "\n" + CONFIGMAP
    refused(tgz({"output/cm.yaml": big}), LimitExceeded, Limits(max_bundle_bytes=1 << 20))


def test_too_many_files_is_413() -> None:
    files = {f"output/cm{i}.yaml": CONFIGMAP.replace("name: a", f"name: a{i}") for i in range(4)}
    refused(tgz(files), LimitExceeded, Limits(max_files=3))
    assert len(read_tar_bundle(tgz(files), OWNER, Limits(max_files=4)).documents) == 4


def test_too_many_documents_is_413() -> None:
    files = {f"output/cm{i}.yaml": "---\n".join(
        CONFIGMAP.replace("name: a", f"name: a{i}-{j}") for j in range(4)) for i in range(3)}
    refused(tgz(files), LimitExceeded, Limits(max_documents=10))


def configmap_of(size: int, name: str = "a", fill: str = "x") -> str:
    """A ConfigMap document of exactly `size` UTF-8 bytes (`fill` repeated pads it)."""
    head, tail = f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {name}}}\ndata: {{k: ", "}\n"
    room = size - len(head.encode()) - len(tail.encode())
    assert room % len(fill.encode()) == 0
    return head + fill * (room // len(fill.encode())) + tail


def test_document_over_max_document_bytes_is_413_naming_file_and_document() -> None:
    limits = Limits(max_document_bytes=1000)
    files = {"small.yaml": CONFIGMAP, "big.yaml": configmap_of(1000, "b") + "---\n" + configmap_of(1001, "c")}
    message = refused(tgz(output(files)), LimitExceeded, limits)
    assert "big.yaml: document 1: document is 1001 bytes, more than the limit of 1000" in message
    with pytest.raises(LimitExceeded) as caught:
        parse_bundle({"promise": "p", "files": files}, limits)
    assert (caught.value.detail["file"], caught.value.detail["document"]) == ("big.yaml", 1)
    files["big.yaml"] = configmap_of(1000, "b")  # exactly at the limit
    assert len(read_tar_bundle(tgz(output(files)), OWNER, limits).documents) == 2


def test_document_size_counts_bytes_not_characters() -> None:
    limits = Limits(max_document_bytes=1000)
    doc = configmap_of(1001, fill="é")  # fewer than 1000 characters, more than 1000 bytes
    assert len(doc) < 1000
    assert "document is 1001 bytes" in refused(tgz({"output/cm.yaml": doc}), LimitExceeded, limits)


def test_the_default_document_size_limit_holds() -> None:
    """2 MiB by default; the bundle limit (10 MiB) would let a bigger one through."""
    big = configmap_of(LIMITS.max_document_bytes + 2)
    assert len(big) < LIMITS.max_bundle_bytes
    refused(tgz({"output/cm.yaml": big}), LimitExceeded)


def test_oversized_metadata_document_is_413() -> None:
    status = "message: " + "x" * 2000 + "\n"
    archive = tgz({"output/cm.yaml": CONFIGMAP, "metadata/status.yaml": status})
    assert "metadata/status.yaml" in refused(archive, LimitExceeded, Limits(max_document_bytes=1000))


def test_too_many_documents_in_one_file_is_413() -> None:
    docs = [CONFIGMAP.replace("name: a", f"name: a{i}") for i in range(4)]
    limits = Limits(max_documents=3)
    message = refused(tgz({"output/many.yaml": "---\n".join(docs)}), LimitExceeded, limits)
    assert "many.yaml" in message and "more than 3 documents" in message
    with pytest.raises(LimitExceeded):
        parse_bundle({"promise": "p", "files": {"many.yaml": "---\n".join(docs)}}, limits)
    # empty documents do not count
    assert len(read_tar_bundle(tgz({"output/many.yaml": "---\n---\n".join(docs[:3])}), OWNER,
                               limits).documents) == 3


def alias_bomb(levels: int = 12) -> str:
    """'Billion laughs': each level refers to the one before ten times (10**12 nodes)."""
    lines = ["l0: &l0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, levels):
        lines.append(f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 10) + "]")
    return "\n".join(lines) + "\nkind: ConfigMap\napiVersion: v1\nmetadata: {name: a}\n"


def test_yaml_alias_bomb_in_a_file_is_refused() -> None:
    assert "too many" in refused(tgz({"output/bomb.yaml": alias_bomb()}))


def test_deep_yaml_nesting_is_refused() -> None:
    deep = "a: " + "[" * 5000 + "]" * 5000 + "\nkind: ConfigMap\napiVersion: v1\nmetadata: {name: a}\n"
    refused(tgz({"output/deep.yaml": deep}))


@pytest.mark.parametrize("text", ["a: !!int x\n", "a: !!timestamp x\n", "a: !!bool x\n",
                                  "a: !!float x\n"])
def test_malformed_scalars_are_422_not_a_crash(text: str) -> None:
    refused(tgz({"output/cm.yaml": text + "kind: ConfigMap\napiVersion: v1\nmetadata: {name: a}\n"}))


@pytest.mark.parametrize("plain", ["0x_", "1" * 5000])
def test_plain_scalars_no_number_parser_takes_are_strings_as_go_reads_them(plain: str) -> None:
    archive = tgz({"output/cm.yaml": f"a: {plain}\nkind: ConfigMap\napiVersion: v1\n"
                                     "metadata: {name: a}\n"})
    (document,) = read_tar_bundle(archive, OWNER, LIMITS).documents
    assert document.doc["a"] == plain


@pytest.mark.parametrize("name", ["kustomization.yaml", "x/kustomization.yaml"])
def test_client_kustomization_is_refused(name: str) -> None:
    text = ("apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
            "metadata: {name: k}\nresources: []\n")
    assert "kustomization" in refused(tgz({f"output/{name}": text}))
