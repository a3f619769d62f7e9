"""A bundle: one pipeline run's output, parsed and validated, ready for planning."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any, NamedTuple

from gitops import kinds, names
from gitops.errors import InvalidBundle, LimitExceeded, StatewriterError
from gitops.identity import Identity
from gitops.lru import LRU
from gitops.secrets.envelope import claims_encryption, envelope_problem, is_secret
from gitops.yamldocs import ParseLimits, YamlError, YamlLimitExceeded, load_numbered_documents
from gitops.yamlscalars import YAML_V3, readings

STATEWRITER_PREFIX = "statewriter.dev/"
PLACEMENT_ANNOTATION = "statewriter.dev/placement"
DEFAULT_NAMESPACE = "default"  # where a promise-level bundle's namespaced objects land
MAX_ANNOTATIONS_BYTES = 256 * 1024  # keys and values together (apimachinery's ValidateAnnotations)
_QUALIFIED_NAME = ("an optional DNS-1123 subdomain and '/', then at most 63 letters, digits, "
                   "'-', '_' and '.', starting and ending with a letter or digit")


@dataclass(frozen=True)
class Limits:
    max_bundle_bytes: int = 10 * 1024 * 1024  # received and unpacked
    max_documents: int = 5000
    max_files: int = 2000
    max_document_bytes: int = 2 * 1024 * 1024
    max_depth: int = 64
    max_nodes: int = 500_000

    @property
    def parsing(self) -> ParseLimits:
        """The bounds on each YAML file of a bundle."""
        return ParseLimits(self.max_depth, self.max_nodes, self.max_documents,
                           self.max_document_bytes, deliverable=True)


@dataclass(frozen=True, order=True, slots=True)
class Owner:
    """Who owns objects: a promise, one of its requests (or none), and a pipeline."""

    promise: str
    namespace: str  # "" for a promise-level owner
    name: str  # "" for a promise-level owner
    pipeline: str

    @property
    def is_promise_level(self) -> bool:
        return not self.name

    @property
    def request(self) -> str | None:
        return f"{self.namespace}/{self.name}" if self.name else None

    def __str__(self) -> str:
        who = self.request or "(promise)"
        return f"{self.promise} {who} pipeline {self.pipeline}"


@dataclass(frozen=True)
class SourceDocument:
    file: str
    index: int  # position within its file
    doc: dict[str, Any]
    key: bytes = b""  # sha256 of the document's canonical JSON ("" when not computed)


@dataclass(frozen=True)
class Bundle:
    owner: Owner
    selectors: dict[str, str]
    documents: tuple[SourceDocument, ...]
    status: dict[str, Any] | None = None
    generation: int | None = None
    digest: str = field(default="")
    trailers: Trailers = ()  # the client's own commit trailers (not part of the digest)

    @property
    def promise(self) -> str:
        return self.owner.promise


def combine_selectors(*sources: dict[str, str] | None) -> dict[str, str]:
    """All selectors given must hold together; one key asked with two values is a 422."""
    combined: dict[str, str] = {}
    for source in sources:
        for key, value in (source or {}).items():
            if key in combined and combined[key] != value:
                raise InvalidBundle(
                    f"destination selector {key!r} is given two values: "
                    f"{combined[key]!r} and {value!r}",
                    selector=key,
                )
            combined[key] = value
    return dict(sorted(combined.items()))


def check_selectors(value: object, where: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and k and len(k) <= 317 and len(v) <= 63
        for k, v in value.items()
    ):
        raise InvalidBundle(f"{where} must be a map of label keys to string values")
    return dict(value)


def canonical_json(value: object) -> str:
    """Keys sorted, no spaces: the form digests are taken of."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def bundle_digest(owner: Owner, selectors: dict[str, str], documents: list[str]) -> str:
    """sha256 of the canonical JSON of {promise, request, pipeline, selectors, documents},
    given each document already in canonical JSON (they are hashed one by one too)."""
    head = canonical_json({
        "documents": [],
        "pipeline": owner.pipeline,
        "promise": owner.promise,
        "request": owner.request,
        "selectors": selectors,
    })
    # "documents" sorts first, so the canonical form starts with it
    encoded = '{"documents":[' + ",".join(documents) + "]" + head[len('{"documents":[]'):]
    return "sha256:" + hashlib.sha256(encoded.encode()).hexdigest()


def make_owner(promise: object, namespace: object, name: object, pipeline: object) -> Owner:
    if not names.is_label(promise):
        raise InvalidBundle(f"promise {promise!r} is not a DNS-1123 label", field="promise")
    if pipeline is None:
        pipeline = "default"
    if not names.is_label(pipeline):
        raise InvalidBundle(f"pipeline {pipeline!r} is not a DNS-1123 label", field="pipeline")
    if namespace is None and name is None:
        return Owner(str(promise), "", "", str(pipeline))
    if not names.is_label(namespace):
        raise InvalidBundle(
            f"request namespace {namespace!r} is not a DNS-1123 label", field="request.namespace"
        )
    if not names.is_subdomain(name):
        raise InvalidBundle(
            f"request name {name!r} is not a DNS-1123 subdomain", field="request.name"
        )
    if name in names.RESERVED_REQUEST_NAMES:
        raise InvalidBundle(
            f"request name {name!r} is reserved: request folders sit next to kustomization files",
            field="request.name",
        )
    return Owner(str(promise), str(namespace), str(name), str(pipeline))


class ParsedDocument(NamedTuple):
    """One document of a file as parsed: its position in the file, its data, its canonical
    JSON (what digests are taken of) and the sha256 of that JSON."""

    position: int
    doc: dict[str, Any]
    canonical: str
    key: bytes


# Every request of a promise sends the same CRD and operator files: parsing a file costs
# ~0.25 ms per document in PyYAML's constructors (libyaml only scans), and those files were
# ~85% of the text of the bench's ECK bundles. A file that passed once and comes again is
# parsed once: keyed by its text and the parse limits, so a hit is exactly what parsing it
# again would give (failures are not kept). The documents are shared by the bundles that
# sent the same text, and nothing mutates them (normalising deep-copies). Measured on the
# bench's bundles: parsing 3.3 ms -> 0.6 ms per bundle. A file is kept from its second
# sighting on, so a request's own files (seen once) take no room. Weight: 8x the canonical
# JSON (parsed documents measured at 7.3-7.9x its size) plus the entry's overhead.
_PARSED: LRU[tuple[str, ParseLimits], tuple[ParsedDocument, ...]] = LRU(
    32 << 20, lambda docs: 512 + 8 * sum(len(d.canonical) for d in docs), largest=16 << 20)
_SEEN: LRU[tuple[int, int], bool] = LRU(8192)  # (hash, length) of texts parsed once


def parse_file(text: str, parsing: ParseLimits) -> tuple[ParsedDocument, ...]:
    """The documents of one file, each passing `document_problem` but for the check that
    depends on where it lands (`flux_problem`, asked per bundle). Raises YamlError, or
    `_DocumentProblem` naming the document."""
    key = (text, parsing)
    found = _PARSED.get(key)
    if found is not None:
        return found
    parsed = []
    for index, doc in load_numbered_documents(text, parsing):
        reason = document_problem(doc, None)
        if reason:
            raise _DocumentProblem(index, reason)
        canonical = canonical_json(doc)
        parsed.append(ParsedDocument(index, doc, canonical,
                                     hashlib.sha256(canonical.encode()).digest()))
    found = tuple(parsed)
    sighting = (hash(text), len(text))
    if _SEEN.get(sighting):
        _PARSED.put(key, found)
    else:
        _SEEN.put(sighting, True)
    return found


class _DocumentProblem(Exception):
    def __init__(self, index: int, reason: str) -> None:
        super().__init__(reason)
        self.index = index
        self.reason = reason


def parse_files(
    files: dict[str, str], limits: Limits, namespace: str = DEFAULT_NAMESPACE
) -> tuple[SourceDocument, ...]:
    """Parse every file (in file-name order) into validated documents; `namespace` is where
    the namespaced ones without metadata.namespace land."""
    return tuple(source for source, _ in _parse_files(files, limits, namespace))


def _parse_files(
    files: dict[str, str], limits: Limits, namespace: str
) -> list[tuple[SourceDocument, str]]:
    """Each document with its canonical JSON."""
    if len(files) > limits.max_files:
        raise LimitExceeded(f"bundle has {len(files)} files, more than {limits.max_files}")
    documents: list[tuple[SourceDocument, str]] = []
    for file in sorted(files):
        if not names.is_bundle_file_name(file):
            raise InvalidBundle(
                f"file name {file!r} must be relative, without '..', '.' or empty parts", file=file
            )
        text = files[file]
        if not isinstance(text, str):
            raise InvalidBundle("file content must be a string of YAML", file=file)
        try:
            docs = parse_file(text, limits.parsing)
        except YamlError as error:
            raise yaml_refusal(error, file) from None
        except _DocumentProblem as problem:
            raise InvalidBundle(f"{file}: document {problem.index}: {problem.reason}", file=file,
                                document=problem.index, reason=problem.reason) from None
        for parsed in docs:
            reason = flux_problem(parsed.doc, namespace)
            if reason:
                raise InvalidBundle(f"{file}: document {parsed.position}: {reason}", file=file,
                                    document=parsed.position, reason=reason)
            documents.append((SourceDocument(file, parsed.position, parsed.doc, parsed.key),
                              parsed.canonical))
            if len(documents) > limits.max_documents:
                raise LimitExceeded(f"bundle has more than {limits.max_documents} documents")
    return documents


def yaml_refusal(error: YamlError, file: str) -> StatewriterError:
    """A YAML problem in `file` as a refusal: 413 when over a limit, 422 otherwise."""
    refusal = LimitExceeded if isinstance(error, YamlLimitExceeded) else InvalidBundle
    if error.document is None:
        return refusal(f"{file}: {error.reason}", file=file, reason=error.reason)
    return refusal(f"{file}: document {error.document}: {error.reason}", file=file,
                   document=error.document, reason=error.reason)


def document_problem(doc: dict[str, Any], namespace: str | None = DEFAULT_NAMESPACE) -> str | None:
    """Why a document cannot be a Kubernetes object we write, or None. `namespace` is where it
    lands when it is namespaced and has no metadata.namespace (None: leave out the one check
    that depends on it, `flux_problem`)."""
    api_version, kind, meta = doc.get("apiVersion"), doc.get("kind"), doc.get("metadata")
    if not isinstance(api_version, str) or not api_version or api_version.count("/") > 1:
        return "apiVersion is missing or malformed"
    group = api_version.rpartition("/")[0]
    if not names.is_group(group):
        return f"apiVersion {api_version!r} has an invalid group"
    if group == "core":
        # no API server serves a group `core`; the core group has no name
        return (f"apiVersion {api_version!r} names no API group: the core group is written "
                f"without one (apiVersion: {api_version.rpartition('/')[2]})")
    if not names.is_kind(kind):
        return "kind is missing or malformed"
    if group == "kustomize.config.k8s.io":
        return "kustomization files are generated by statewriter; send plain manifests"
    if kind == "List" or (kind.endswith("List") and "items" in doc):
        return f"{kind} objects are not supported; send the items as documents"
    if not isinstance(meta, dict):
        return "metadata is missing"
    return (
        _name_problem(group, kind, meta.get("name"), doc)
        or _data_problem(group, kind, doc)
        or _envelope_problem(group, kind, doc)
        or _namespace_problem(meta.get("namespace"))
        or _labels_problem(meta.get("labels"))
        or _annotations_problem(meta.get("annotations"))
        or (None if namespace is None else flux_problem(doc, namespace))
    )


def flux_problem(doc: dict[str, Any], namespace: str) -> str | None:
    """Why a document (valid otherwise) landing in `namespace` would replace a destination's
    own Flux objects, or None."""
    meta = doc["metadata"]
    identity = Identity(doc["apiVersion"].rpartition("/")[0], doc["kind"],
                        meta.get("namespace") or namespace, meta["name"])
    return _flux_problem(identity)


def _name_problem(group: str, kind: str, name: object, doc: Mapping[str, Any]) -> str | None:
    """Kubernetes' rule for the kind's names, then statewriter's own (names become file names)."""
    if name is None:
        return "metadata.name is missing"
    if not isinstance(name, str):
        return f"metadata.name {name!r} is {_described(name)}, not a string: quote it"
    problem = kinds.name_problem(group, kind, name, doc)
    if problem is None and not names.is_object_name(name):
        problem = (f"metadata.name {name!r} is not a valid object name: at most 253 letters, "
                   "digits, '-', '_', '.', ':' and '@', starting and ending with a letter or "
                   "digit, without '..'")
    return problem


# Fields of built-in kinds the API server takes only as maps of string to string: a value
# YAML reads as a number (`port: 8080`, a PyYAML-written `zip: 08544`) fails the apply.
_STRING_MAPS = {("", "ConfigMap"): ("data", "binaryData"), ("", "Secret"): ("data", "stringData")}


def _data_problem(group: str, kind: str, doc: Mapping[str, Any]) -> str | None:
    for field_name in _STRING_MAPS.get((group, kind), ()):
        value = doc.get(field_name)
        if value is None:
            continue
        if not isinstance(value, dict):
            return f"{field_name} must be a map of keys to strings"
        for key, item in value.items():
            if not isinstance(item, str):
                # a Secret's value is never repeated: refusals reach logs and web pages
                what = _described(item, show_value=not is_secret(group, kind))
                return f"{field_name}[{key!r}] is {what}, not a string: quote the value in the YAML"
    return None


def _envelope_problem(group: str, kind: str, doc: dict[str, Any]) -> str | None:
    """A Secret that says it is SOPS-encrypted must be a whole envelope (CONTRACT section 9):
    it is then written as sent, and one that is not would be written in clear."""
    if not is_secret(group, kind) or not claims_encryption(doc):
        return None
    problem = envelope_problem(doc)
    if problem is None:
        return None
    return (f"a Secret with a top-level `sops` key is written as its pipeline encrypted it, "
            f"but this is no whole SOPS envelope: {problem}")


def _namespace_problem(namespace: object) -> str | None:
    if namespace is not None and not names.is_label(namespace):
        return f"metadata.namespace {namespace!r} is not a DNS-1123 label"
    return None


def _labels_problem(labels: object) -> str | None:
    """metadata.labels as the API server takes them: qualified-name keys, short string values."""
    problem = _string_map_problem("labels", labels)
    if problem or not isinstance(labels, dict):
        return problem
    for key, value in labels.items():
        if not names.is_qualified_name(key):
            return f"metadata.labels key {key!r} is not a qualified name ({_QUALIFIED_NAME})"
        if not names.is_label_value(value):
            return (f"metadata.labels[{key!r}] value {value!r} is not a label value: at most 63 "
                    "letters, digits, '-', '_' and '.', starting and ending with a letter or digit")
    return None


def _annotations_problem(annotations: object) -> str | None:
    """metadata.annotations as the API server takes them, and statewriter's own annotation."""
    problem = _string_map_problem("annotations", annotations)
    if problem or not isinstance(annotations, dict):
        return problem
    for key in annotations:
        if not (isinstance(key, str) and names.is_qualified_name(_go_lower(key))):
            return f"metadata.annotations key {key!r} is not a qualified name ({_QUALIFIED_NAME})"
        if not isinstance(readings(key)[YAML_V3], str):
            # kustomize reads annotation keys back without their quotes: its build then fails
            # for the whole section (`json: unsupported type`)
            return (f"metadata.annotations key {key!r} is read as a number, boolean or null "
                    "by kustomize, whatever its quoting, which then fails to build")
    size = sum(len(key.encode()) + len(value.encode()) for key, value in annotations.items())
    if size > MAX_ANNOTATIONS_BYTES:
        return (f"metadata.annotations hold {size} bytes, more than the {MAX_ANNOTATIONS_BYTES} "
                "Kubernetes allows")
    if annotations.get(PLACEMENT_ANNOTATION) not in (None, "dependency"):
        return f"{PLACEMENT_ANNOTATION} may only be 'dependency'"
    return None


def _string_map_problem(where: str, value: object) -> str | None:
    """Labels and annotations are maps of string to string; YAML reads `1.0`, `true` or `null`
    as other types, which the API server refuses."""
    if value is None:
        return None
    if not isinstance(value, dict):
        return f"metadata.{where} must be a map"
    for key, item in value.items():
        if not isinstance(item, str):
            return (f"metadata.{where}[{key!r}] is {_described(item)}, not a string: "
                    "quote the value in the YAML")
    return None


def _described(value: object, show_value: bool = True) -> str:
    """A YAML value's type, as its author wrote it (and the value, unless it is secret)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}" if show_value else "a boolean"
    if isinstance(value, int | float):
        return f"the number {value!r}" if show_value else "a number"
    return "a map" if isinstance(value, dict) else f"a {type(value).__name__}"


def _go_lower(key: str) -> str:
    """`key` lowercased as the API server lowercases annotation keys before checking them
    (Go's strings.ToLower maps 'İ' to 'i', Python to two characters)."""
    return key.replace("\u0130", "i").lower()


@cache
def _flux_identities() -> frozenset[Identity]:
    # gitops.flux imports gitops.layout, which imports this module: import it when first needed
    from gitops.flux import flux_object_identities

    return flux_object_identities()


def _flux_problem(identity: Identity) -> str | None:
    if identity in _flux_identities():
        return (f"{identity} would replace the destination's own Flux objects "
                "(those GET /v1/destinations/{name}/flux renders)")
    return None


Trailers = tuple[tuple[str, str], ...]
MAX_TRAILERS = 16
MAX_TRAILER_VALUE = 256
_TRAILER_KEY = re.compile(r"[A-Z][A-Za-z0-9-]{0,62}")


def check_trailers(value: object) -> Trailers:
    """A bundle's own commit trailers (CONTRACT section 6): at most 16, keys like
    `Change-Request` that do not start with `Statewriter-`, values one line of at most 256
    characters; kept in key order."""
    if value is None:
        return ()
    if not isinstance(value, dict):
        raise InvalidBundle("trailers must be an object of trailer key -> value", field="trailers")
    if len(value) > MAX_TRAILERS:
        raise InvalidBundle(f"at most {MAX_TRAILERS} trailers", field="trailers")
    for key, text in value.items():
        where = f"trailers.{key}"
        if not isinstance(key, str) or not _TRAILER_KEY.fullmatch(key):
            raise InvalidBundle(f"trailer key {key!r} must match ^[A-Z][A-Za-z0-9-]{{0,62}}$",
                                field=where)
        if key.lower().startswith("statewriter-"):
            raise InvalidBundle(f"trailer key {key!r}: Statewriter- trailers are the service's own",
                                field=where)
        if not isinstance(text, str) or not text.strip() or len(text) > MAX_TRAILER_VALUE:
            raise InvalidBundle(f"trailer {key}: the value must be one non-empty line of at most "
                                f"{MAX_TRAILER_VALUE} characters", field=where)
        problem = names.line_problem(text)
        if problem is not None:
            # readers split trailers into lines; a value must never become lines of its own
            raise InvalidBundle(f"trailer {key}: the value {problem}", field=where)
    return tuple(sorted((key, text.strip()) for key, text in value.items()))


def parse_bundle(payload: object, limits: Limits = Limits()) -> Bundle:
    """The JSON form of POST /v1/bundles (CONTRACT section 6)."""
    if not isinstance(payload, dict):
        raise InvalidBundle("bundle must be a JSON object")
    request = payload.get("request")
    if request is not None and not isinstance(request, dict):
        raise InvalidBundle("request must be an object with namespace and name", field="request")
    owner = make_owner(
        payload.get("promise"),
        request.get("namespace") if request else None,
        request.get("name") if request else None,
        payload.get("pipeline"),
    )
    files = payload.get("files")
    if not isinstance(files, dict):
        raise InvalidBundle("files must be an object of file name -> YAML text", field="files")
    selectors = check_selectors(payload.get("destinationSelectors"), "destinationSelectors")
    return build_bundle(owner, selectors, files, payload.get("status"),
                        payload.get("promiseGeneration"), limits,
                        check_trailers(payload.get("trailers")))


def build_bundle(
    owner: Owner,
    selectors: dict[str, str],
    files: dict[str, str],
    status: object,
    generation: object,
    limits: Limits,
    trailers: Trailers = (),
) -> Bundle:
    if status is not None and not isinstance(status, dict):
        raise InvalidBundle("status must be an object", field="status")
    if generation is not None and (
        isinstance(generation, bool) or not isinstance(generation, int) or generation < 0
    ):
        raise InvalidBundle("promiseGeneration must be a non-negative integer",
                            field="promiseGeneration")
    parsed = _parse_files(files, limits, owner.namespace or DEFAULT_NAMESPACE)
    selectors = combine_selectors(selectors)
    documents = tuple(source for source, _ in parsed)
    return Bundle(owner, selectors, documents, status, generation,
                  bundle_digest(owner, selectors, [text for _, text in parsed]), trailers)


def trailers_from_pairs(pairs: Iterable[str], name: str = "trailer") -> Trailers:
    """`KEY=VALUE` strings (`statewriter push --trailer`, the tarball form's `trailer` query
    parameter) as a bundle's trailers, checked as the JSON form's `trailers` are
    (`gitops.bundle.check_trailers`); InvalidBundle naming `name` otherwise."""
    found: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise InvalidBundle(f"{name} {pair[:80]!r} must be KEY=VALUE, e.g. "
                                "Change-Request=CHG-1042", field=name)
        if key in found:
            raise InvalidBundle(f"{name} {key} is given twice", field=name)
        found[key] = value
    return check_trailers(found)
