"""A bundle: one pipeline run's output, parsed and validated, ready for planning."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from gitops import caches, names
from gitops.bundle_trailers import Trailers as Trailers  # (re-exported: the other forms' parsers
from gitops.bundle_trailers import check_trailers as check_trailers  # and app/http import them
from gitops.bundle_trailers import trailers_from_pairs as trailers_from_pairs  # from here)
from gitops.errors import InvalidBundle, LimitExceeded, StatewriterError, YamlError, YamlLimitExceeded
from gitops.frozen import freeze
from gitops.lru import LRU
from gitops.owner import DEFAULT_NAMESPACE, Owner, make_owner
from gitops.quoting import quoted
from gitops.rules import document_problem, flux_problem
from gitops.yamldocs import ParseLimits, load_numbered_documents


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
                    f"destination selector {quoted(key)} is given two values: "
                    f"{quoted(combined[key])} and {quoted(value)}",
                    selector=key,
                )
            combined[key] = value
    return dict(sorted(combined.items()))


def check_selectors(value: object, where: str,
                    refusal: type[InvalidBundle] = InvalidBundle) -> dict[str, str]:
    """A bundle's `destinationSelectors` or a destination's `labels` (`refusal`: the kind of
    error that refuses them)."""
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and k and len(k) <= 317 and len(v) <= 63
        for k, v in value.items()
    ):
        raise refusal(f"{where} must be a map of label keys to string values", field=where)
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


class ParsedDocument(NamedTuple):
    """One document of a file as parsed: its position in the file, its data, its canonical
    JSON (what digests are taken of) and the sha256 of that JSON."""

    position: int
    doc: dict[str, Any]
    canonical: str
    key: bytes


# A file that passed once and comes again is parsed once (`gitops.caches`: a promise's CRD
# and operator files): keyed by its text and the parse limits, so a hit is exactly what
# parsing it again would give (failures are not kept). Its documents are frozen: the bundles
# that sent the same text share them. A file is kept from its second sighting on, so a
# request's own files (seen once) take no room.
_PARSED: LRU[tuple[str, ParseLimits], tuple[ParsedDocument, ...]] = caches.lru(
    "parsed files", caches.PARSED_FILES_BYTES,
    lambda docs: 512 + 8 * sum(len(d.canonical) for d in docs), caches.PARSED_FILE_LARGEST)
_SEEN: LRU[tuple[int, int], bool] = caches.lru("files seen once", caches.FILES_SEEN_ONCE)


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
        found = tuple(document._replace(doc=freeze(document.doc)) for document in found)
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
                f"file name {quoted(file)} must be relative, without '..', '.' or empty parts", file=file
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


def parse_bundle(payload: object, limits: Limits = Limits()) -> Bundle:
    """The JSON form of POST /v1/bundles (docs/reference.md section 6)."""
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
