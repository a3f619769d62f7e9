"""Every refusal answers the one error body (`{"error": "<Kind>", "message": ...}`), in plain
words: addresses no route serves and methods a route does not take, a destination's own
kind of mistake, a did-you-mean for a body's unknown field, and messages that never show
PyYAML's name for its stream nor a Python repr, whatever YAML a pipeline sends (through the
service in this process)."""

from __future__ import annotations

import gzip
import json
import re
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from tests.conftest import Service

DEST = "worker-1"


def bundle(files: dict[str, str], **fields: Any) -> dict[str, Any]:
    return {"promise": "shop", "request": {"namespace": "team-a", "name": "one"},
            "files": files, **fields}


# -- addresses and methods ------------------------------------------------------------------


def test_an_address_no_route_serves_answers_the_error_body(
        module_in_process_service: Service) -> None:
    service = module_in_process_service
    for path in ("/nowhere", "/v1/nowhere", "/v1/destinations/a/b/c"):
        answer = service.refused(404, "GET", path)
        assert answer.json() == {"error": "RouteNotFound",
                                 "message": f"nothing is served at {path} (the API: /docs)"}


def test_a_method_a_route_does_not_take_answers_405_naming_those_it_takes(
        module_in_process_service: Service) -> None:
    service = module_in_process_service
    answer = service.refused(405, "DELETE", "/healthz")
    assert answer.headers["allow"] == "GET"
    assert answer.json() == {"error": "MethodNotAllowed", "allowed": ["GET"],
                             "message": "/healthz does not take DELETE; it takes GET"}
    answer = service.refused(405, "PATCH", f"/v1/destinations/{DEST}")
    assert answer.json()["error"] == "MethodNotAllowed"
    assert set(answer.json()["allowed"]) == {"GET", "PUT", "DELETE"}


def test_a_long_path_is_shortened_in_the_message(module_in_process_service: Service) -> None:
    answer = module_in_process_service.refused(404, "GET", "/" + "x" * 5000)
    assert len(answer.json()["message"]) < 300


# -- destinations ---------------------------------------------------------------------------


def test_a_destination_that_cannot_be_registered_is_an_invalid_destination(
        module_in_process_service: Service) -> None:
    service = module_in_process_service
    for body, field in (({"labels": {"env": 1}}, "labels.env"), ({"path": "/abs"}, "path"),
                        ({"isolation": "cluster"}, "isolation"), ({"apis": ["%%"]}, "apis"),
                        ({"notify": {"url": "ftp://x"}}, "notify.url")):
        answer = service.refused(422, "PUT", f"/v1/destinations/{DEST}", json=body)
        assert answer.json()["error"] == "InvalidDestination", answer.text
        assert answer.json()["field"] == field
    for content in (b"[1]", b"{not json", b'{"labels": {}, "labels": {}}'):
        answer = service.refused(422, "PUT", f"/v1/destinations/{DEST}", content=content,
                                 headers={"content-type": "application/json"})
        assert answer.json()["error"] == "InvalidDestination", answer.text
    answer = service.refused(422, "PUT", "/v1/destinations/Not_A_Label", json={"labels": {}})
    assert answer.json()["error"] == "InvalidDestination"
    # a bundle's mistakes keep their own kind
    answer = service.refused(422, "POST", "/v1/bundles", json=bundle({}, promise="Bad Name"))
    assert answer.json()["error"] == "InvalidBundle"


def test_an_unknown_field_names_the_one_meant(module_in_process_service: Service) -> None:
    service = module_in_process_service
    answer = service.refused(422, "PUT", f"/v1/destinations/{DEST}", json={"lables": {"a": "b"}})
    assert answer.json() == {"error": "InvalidDestination", "field": "lables",
                             "message": "destination: unknown field 'lables' "
                                        "(did you mean 'labels'?)"}
    answer = service.refused(422, "PUT", f"/v1/destinations/{DEST}",
                             json={"notify": {"ulr": "http://x.example"}})
    assert answer.json()["message"] == ("destination: unknown field 'notify.ulr' "
                                        "(did you mean 'notify.url'?)")
    payload = bundle({})
    payload["destinationSelector"] = payload.pop("request")
    answer = service.refused(422, "POST", "/v1/bundles", json=payload)
    assert answer.json()["message"] == ("bundle: unknown field 'destinationSelector' "
                                        "(did you mean 'destinationSelectors'?)")
    answer = service.refused(422, "POST", "/v1/bundles", json=bundle({}, zzz=1))
    assert answer.json()["message"] == "bundle: unknown field 'zzz'"  # nothing near it


def test_a_field_of_the_wrong_type_is_named_in_json_words(
        module_in_process_service: Service) -> None:
    service = module_in_process_service
    answer = service.refused(422, "PUT", f"/v1/destinations/{DEST}", json={"notify": True})
    assert answer.json()["message"] == "destination: notify must be an object, not a boolean"
    answer = service.refused(422, "POST", "/v1/bundles", json=bundle({}, promiseGeneration=1.5))
    assert answer.json()["message"] == "bundle: promiseGeneration must be a whole number, not 1.5"


# -- no Python in the words -----------------------------------------------------------------

PYTHON = re.compile(
    r"<unicode string>|<file>|<string>|<stdin>"  # PyYAML's names for its stream
    r"|\b(None|True|False|NoneType)\b"  # Python's null and booleans
    r"|\[\s*'[^']*'\s*(,\s*'[^']*'\s*)*\]|\{\s*'[^']*'\s*:"  # a list's or a dict's repr
    r"|\bb'|\\x[0-9a-f]{2}"  # bytes, and Python's escapes
    r"|\w+Error\b|Traceback|object at 0x|<class|Frozen(Dict|List)")

# The generated texts hold no single quote and none of the words Python writes: whatever a
# message repeats of them can never look like a Python repr by itself.
PIECES = st.sampled_from([
    "{", "}", "[", "]", ":", ": ", "- ", ",", "&a ", "*a", "*b", "? ", "|", ">", "#", "<<: ",
    '"', '\\"', "\\", "\t", "\n", "  ", "%YAML 1.1\n", "%TAG ! x\n", "---\n", "...\n",
    "!!str ", "!!int ", "!!float ", "!!binary ", "!!timestamp ", "!!set ", "!!omap ",
    "!!pairs ", "!!map ", "!!seq ", "!!python/tuple ", "!local ", "!<x> ", "!<%C2%85> ", "!%0A ",
    "a", "b", "key", "1", "1.5", "1e400", "0x", "0o9", "99999999999999999999", "yes", "on",
    "null", "~", "é", "\x00", "\x07", "\x85", "\ufeff", "\ud800",
    "apiVersion: v1\n", "kind: ConfigMap\n", "kind: secret\n", "metadata:\n", "  name: ",
    "  namespace: ", "  labels:\n", "  annotations:\n", "    k: ", "data:\n", "  k: ",
])


@settings(max_examples=300, deadline=None)
@given(st.lists(PIECES, min_size=1, max_size=30).map("".join))
@example("!!binary é")  # PyYAML quotes Python's UnicodeEncodeError
@example("!!binary abc")  # and binascii's error
@example("!<%C2%85> x")  # and the tag's repr
@example("? !!binary aWnp\n: 1")  # a key's bytes
def test_no_refusal_of_any_yaml_shows_python(module_in_process_service: Service,
                                             text: str) -> None:
    answer = module_in_process_service.call(  # JSON's escapes carry a lone surrogate
        "POST", "/v1/bundles", content=json.dumps(bundle({"out.yaml": text})).encode(),
        params={"dryRun": "true"}, headers={"content-type": "application/json"})
    assert answer.status_code in (200, 202, 413, 422), answer.text
    if answer.status_code >= 400:
        body = answer.json()
        for words in (body["message"], str(body.get("reason", ""))):
            assert not PYTHON.search(words), (text, words)


@pytest.mark.parametrize(("body", "message"), [
    (b'{"promise": "shop", "files": {"a": "\xff"}}',
     "body is not valid JSON: it is not UTF-8 text (byte 36)"),
    (b"\xff\xfe{", "body is not valid JSON: it is not UTF-16 text (byte 2)"),
    (b"[" * 100_000, "body is not valid JSON: it nests too deeply"),
    (b'{"promiseGeneration": 1' + b"0" * 5000 + b"}",
     "body is not valid JSON: a number has more than 4300 digits"),
])
def test_a_body_that_is_not_json_is_named_in_words(module_in_process_service: Service,
                                                    body: bytes, message: str) -> None:
    answer = module_in_process_service.refused(
        422, "POST", "/v1/bundles", content=body, headers={"content-type": "application/json"})
    assert answer.json()["message"] == message
    assert not PYTHON.search(message)


def test_a_json_syntax_error_says_where(module_in_process_service: Service) -> None:
    answer = module_in_process_service.refused(
        422, "POST", "/v1/bundles", content=b'{"promise": "shop",\n "files": }',
        headers={"content-type": "application/json"})
    message = answer.json()["message"]
    assert message.startswith("body is not valid JSON: ")
    assert message.endswith(" (line 2, column 11)")


@pytest.mark.parametrize(("query", "message", "field"), [
    ({}, "a gzip'd tar bundle names its promise in the query: ?promise=...", "promise"),
    ({"promise": "shop", "namespace": "team-a"}, "the query gives the request's namespace but "
     "not its name: give both, or neither for the promise's own output", "name"),
    ({"promise": "shop", "name": "one"}, "the query gives the request's name but not its "
     "namespace: give both, or neither for the promise's own output", "namespace"),
])
def test_a_tar_bundle_whose_query_misses_its_identity_says_what_to_give(
        module_in_process_service: Service, query: dict[str, str], message: str,
        field: str) -> None:
    answer = module_in_process_service.refused(
        422, "POST", "/v1/bundles", content=gzip.compress(b""), params=query,
        headers={"content-type": "application/gzip"})
    assert answer.json() == {"error": "InvalidBundle", "message": message, "field": field}
