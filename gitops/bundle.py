"""A bundle: one pipeline run's output, parsed and validated, ready for planning."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from typing import Any

from gitops import names
from gitops.errors import InvalidBundle, LimitExceeded, StatewriterError
from gitops.yamldocs import ParseLimits, YamlError, YamlLimitExceeded, load_numbered_documents

STATEWRITER_PREFIX = "statewriter.dev/"
PLACEMENT_ANNOTATION = "statewriter.dev/placement"


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
                           self.max_document_bytes)


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
    return Owner(str(promise), str(namespace), str(name), str(pipeline))


def parse_files(files: dict[str, str], limits: Limits) -> tuple[SourceDocument, ...]:
    """Parse every file (in file-name order) into validated documents."""
    if len(files) > limits.max_files:
        raise LimitExceeded(f"bundle has {len(files)} files, more than {limits.max_files}")
    documents: list[SourceDocument] = []
    for file in sorted(files):
        if not names.is_bundle_file_name(file):
            raise InvalidBundle(
                f"file name {file!r} must be relative, without '..', '.' or empty parts", file=file
            )
        text = files[file]
        if not isinstance(text, str):
            raise InvalidBundle("file content must be a string of YAML", file=file)
        try:
            docs = load_numbered_documents(text, limits.parsing)
        except YamlError as error:
            raise yaml_refusal(error, file) from None
        for index, doc in docs:
            reason = document_problem(doc)
            if reason:
                raise InvalidBundle(
                    f"{file}: document {index}: {reason}", file=file, document=index, reason=reason
                )
            documents.append(SourceDocument(file, index, doc))
            if len(documents) > limits.max_documents:
                raise LimitExceeded(f"bundle has more than {limits.max_documents} documents")
    return tuple(documents)


def yaml_refusal(error: YamlError, file: str) -> StatewriterError:
    """A YAML problem in `file` as a refusal: 413 when over a limit, 422 otherwise."""
    refusal = LimitExceeded if isinstance(error, YamlLimitExceeded) else InvalidBundle
    if error.document is None:
        return refusal(f"{file}: {error.reason}", file=file, reason=error.reason)
    return refusal(f"{file}: document {error.document}: {error.reason}", file=file,
                   document=error.document, reason=error.reason)


def document_problem(doc: dict[str, Any]) -> str | None:
    """Why a document cannot be a Kubernetes object we write, or None."""
    api_version, kind, meta = doc.get("apiVersion"), doc.get("kind"), doc.get("metadata")
    if not isinstance(api_version, str) or not api_version or api_version.count("/") > 1:
        return "apiVersion is missing or malformed"
    group = api_version.rpartition("/")[0]
    if not names.is_group(group):
        return f"apiVersion {api_version!r} has an invalid group"
    if not names.is_kind(kind):
        return "kind is missing or malformed"
    if group == "kustomize.config.k8s.io":
        return "kustomization files are generated by statewriter; send plain manifests"
    if kind == "List" or (str(kind).endswith("List") and isinstance(doc.get("items"), list)):
        return "List objects are not supported; send one object per document"
    if not isinstance(meta, dict):
        return "metadata is missing"
    if not names.is_object_name(meta.get("name")):
        return f"metadata.name {meta.get('name')!r} is missing or not a valid object name"
    namespace = meta.get("namespace")
    if namespace is not None and not names.is_label(namespace):
        return f"metadata.namespace {namespace!r} is not a DNS-1123 label"
    annotations = meta.get("annotations")
    if annotations is not None and not isinstance(annotations, dict):
        return "metadata.annotations must be a map"
    placement = (annotations or {}).get(PLACEMENT_ANNOTATION)
    if placement not in (None, "dependency"):
        return f"{PLACEMENT_ANNOTATION} may only be 'dependency'"
    return None


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
                        payload.get("promiseGeneration"), limits)


def build_bundle(
    owner: Owner,
    selectors: dict[str, str],
    files: dict[str, str],
    status: object,
    generation: object,
    limits: Limits,
) -> Bundle:
    if status is not None and not isinstance(status, dict):
        raise InvalidBundle("status must be an object", field="status")
    if generation is not None and (
        isinstance(generation, bool) or not isinstance(generation, int) or generation < 0
    ):
        raise InvalidBundle("promiseGeneration must be a non-negative integer",
                            field="promiseGeneration")
    parsed = parse_files(files, limits)
    selectors = combine_selectors(selectors)
    encoded = [canonical_json(d.doc) for d in parsed]
    documents = tuple(replace(d, key=hashlib.sha256(text.encode()).digest())
                      for d, text in zip(parsed, encoded, strict=True))
    return Bundle(owner, selectors, documents, status, generation,
                  bundle_digest(owner, selectors, encoded))
