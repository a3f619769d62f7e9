"""Values survive the trip (contract invariant 8): what `dump_document` writes reads back as
the same data under PyYAML, under the Kubernetes API's reader (`kubectl label --local`,
sigs.k8s.io/yaml on goyaml.v2) and through kustomize (yaml.v3) followed by that reader;
the loader refuses what could not survive; `gitops.yamlscalars` models the readers, checked
against the real ones.

Known kustomize defects, pinned by `test_kustomize_mangles_nel_c1_controls_and_merge_key_strings`
(no YAML we could write avoids them):
- kustomize turns each object into JSON, whose encoder leaves NEL, DEL and C1 controls raw,
  and parses that JSON with yaml.v3, which takes NEL for a line break and refuses the others:
  NEL (U+0085) in a value folds like a line break in a quoted scalar ("a\\x85b" -> "a b"),
  NEL in a key and DEL or any other C1 control anywhere fail the build;
- a mapping key "<<" is dropped however it is quoted (`'<<': x`, `"<<": x`, `!!str <<: x`).
"""

from __future__ import annotations

import datetime
import math
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.generative import json_stream, same
from gitops.bundle import Limits, parse_files
from gitops.errors import InvalidBundle, YamlError
from gitops.yamldocs import _dump_with_pyyaml, dump_document, load_documents, load_one
from gitops.yamlscalars import (
    FAMILIES,
    GOYAML_V2,
    MERGE,
    VALUE_KEY,
    YAML11,
    YAML12,
    YAML_V3,
    Special,
    ambiguous_plain_scalars,
    is_ambiguous,
    readings,
)

KUBECTL = shutil.which("kubectl")

AMBIGUOUS = [
    "08544", "1e3", "0o17", "12e7", "+.5", "1_000", "0x1F", "0b101", "y", "n", "yes", "on",
    "off", "null", "~", "true", ".inf", ".nan", "<<", "=", "2024-01-01", "1:20", "",
]
# Plain to every reader: must stay unquoted.
ORDINARY = [".dockerconfigjson", "-foo", "nginx:1.25", "name", "a b", "foo_bar", "yesterday", "v1.2.3"]

INT64 = 2**63
KUSTOMIZE_BREAKS = re.compile("[\x7f-\x84\x86-\x9f]")  # DEL and C1 controls but NEL
NEL_RUN = re.compile(" *\x85(?: *\x85)* *")


# ---- the real readers ------------------------------------------------------------------------


def _kubectl() -> str:
    assert KUBECTL, "kubectl (with kustomize built in) must be on PATH for these tests"
    return KUBECTL


def api_read(text: str) -> list[dict[str, Any]]:
    """Every document of `text` as the Kubernetes API reads it (sigs.k8s.io/yaml)."""
    done = subprocess.run(
        [_kubectl(), "label", "--local", "-f", "-", "probe-", "-o", "json"],
        input=text.encode(), capture_output=True, check=False,
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-2000:]
    return json_stream(done.stdout.decode())


def kustomize_read(text: str) -> list[dict[str, Any]]:
    """Every document of `text` after `kubectl kustomize`, as the API then reads it."""
    return api_read(kustomize_build(text))


def kustomize_build(text: str) -> str:
    done = _kustomize(text)
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-2000:]
    return done.stdout.decode()


def _kustomize(text: str) -> subprocess.CompletedProcess[bytes]:
    with tempfile.TemporaryDirectory() as folder:
        Path(folder, "objects.yaml").write_text(text, encoding="utf-8")
        Path(folder, "kustomization.yaml").write_text("resources:\n- objects.yaml\n")
        return subprocess.run([_kubectl(), "kustomize", folder], capture_output=True, check=False)


def by_name(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for doc in docs}


# ---- documents and comparison ----------------------------------------------------------------


def foo(name: str, spec: object) -> dict[str, Any]:
    return {"apiVersion": "example.com/v1", "kind": "Foo", "metadata": {"name": name}, "spec": spec}


def config_map(name: str, data: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}


def dump_all(docs: list[dict[str, Any]]) -> str:
    return "---\n".join(dump_document(doc).decode() for doc in docs)


def content(doc: dict[str, Any]) -> object:
    return doc["spec"] if doc["kind"] == "Foo" else doc["data"]


def through_kustomize(value: object) -> object:
    """`value` as kustomize hands it on (the pinned defects): NEL folded like a line break,
    "<<" keys gone."""
    if isinstance(value, str):
        return NEL_RUN.sub(_fold_nel, value)
    if isinstance(value, dict):
        return {key: through_kustomize(item) for key, item in value.items() if key != "<<"}
    if isinstance(value, list):
        return [through_kustomize(item) for item in value]
    return value


def _fold_nel(run: re.Match[str]) -> str:
    """A run of NELs and spaces as a quoted scalar folds line breaks: one is a space, n are
    n-1 newlines, spaces around them go."""
    breaks = run[0].count("\x85")
    return " " if breaks == 1 else "\n" * (breaks - 1)


def kustomize_can_build(value: object, key: bool = False) -> bool:
    if isinstance(value, str):
        return not KUSTOMIZE_BREAKS.search(value) and not (key and "\x85" in value)
    if isinstance(value, dict):
        return all(kustomize_can_build(k, key=True) and kustomize_can_build(v) for k, v in value.items())
    if isinstance(value, list):
        return all(map(kustomize_can_build, value))
    return True


def assert_round_trip(docs: list[dict[str, Any]]) -> None:
    """`docs`, written by dump_document, read back equal by PyYAML, by the API's reader and,
    where kustomize can build them at all, through kustomize."""
    text = dump_all(docs)
    assert same(docs, load_documents(text))
    for name, doc in by_name(api_read(text)).items():
        original = by_name(docs)[name]
        assert same(content(original), content(doc)), (name, content(original), content(doc))
    buildable = [doc for doc in docs if kustomize_can_build(doc)]
    if buildable:
        built = by_name(kustomize_read(dump_all(buildable)))
        assert built.keys() == by_name(buildable).keys()
        for name, doc in built.items():
            expected = through_kustomize(content(by_name(buildable)[name]))
            assert same(expected, content(doc)), (name, expected, content(doc))


# ---- dump_document: the ambiguous strings, against the real readers --------------------------


def _ambiguous_docs() -> list[dict[str, Any]]:
    return [foo(f"s{i}", {"value": text, text: "key", "list": [text]}) for i, text in enumerate(AMBIGUOUS)]


@pytest.fixture(scope="module")
def api_docs() -> dict[str, dict[str, Any]]:
    return by_name(api_read(dump_all(_ambiguous_docs())))


@pytest.fixture(scope="module")
def kustomized_docs() -> dict[str, dict[str, Any]]:
    return by_name(kustomize_read(dump_all(_ambiguous_docs())))


def _expected(text: str) -> dict[str, Any]:
    return {"value": text, text: "key", "list": [text]}


@pytest.mark.parametrize("index", range(len(AMBIGUOUS)), ids=[repr(t) for t in AMBIGUOUS])
def test_ambiguous_string_stays_a_string_for_pyyaml(index: int) -> None:
    doc = _ambiguous_docs()[index]
    assert load_one(dump_document(doc).decode()) == doc


@pytest.mark.parametrize("index", range(len(AMBIGUOUS)), ids=[repr(t) for t in AMBIGUOUS])
def test_ambiguous_string_stays_a_string_for_the_api(index: int, api_docs: dict[str, Any]) -> None:
    assert api_docs[f"s{index}"]["spec"] == _expected(AMBIGUOUS[index])


@pytest.mark.parametrize("index", range(len(AMBIGUOUS)), ids=[repr(t) for t in AMBIGUOUS])
def test_ambiguous_string_stays_a_string_through_kustomize(
    index: int, kustomized_docs: dict[str, Any]
) -> None:
    assert kustomized_docs[f"s{index}"]["spec"] == through_kustomize(_expected(AMBIGUOUS[index]))


def test_plain_yaml_of_the_same_strings_changes_for_go_readers() -> None:
    """The failure the dumper prevents, on the real reader: unquoted, these change."""
    spec = {"a": "08544", "b": "y", "c": "0o17", "d": "1e3"}
    text = "\n".join(f"  {key}: {value}" for key, value in spec.items())
    read = api_read(f"apiVersion: example.com/v1\nkind: Foo\nmetadata:\n  name: x\nspec:\n{text}\n")
    assert read[0]["spec"] == {"a": 8544, "b": True, "c": 15, "d": 1000}


def test_non_string_values_keep_their_values() -> None:
    spec = {
        "ints": [0, 1, -1, 8544, INT64 - 1, -INT64],
        "floats": [0.1, -2.5, 1e20, 1e-7, 1.0, 5e-324, 1.7976931348623157e308],
        "bools": [True, False],
        "null": None,
        "nested": {"list": [[], {}, [1, {"a": [None, "x"]}]], "map": {"k": {"k": {"k": 1.5}}}},
        "empty": {},
    }
    assert_round_trip([foo("values", spec)])


def test_special_characters_keep_their_values() -> None:
    strings = [
        "a\nb", "a\nb\n", " lead\nx", "x\n\n", "\n", "tab\there", "a\u2028b", "a\u2029b", "\ufeffbom",
        "cr\rlf", "nul\x00", "esc\x1b", "  both  ", "trailing ", "é ü 中文 🙂", "a  \nb", "\x0b\x0c",
    ]
    nel = ["a\x85b", "a\x85\nb", "\x85"]  # keys with NEL break kustomize: values only
    c1 = ["del\x7f", "csi\x9b"]  # break kustomize anywhere: a document of their own
    values = {f"v{i}": text for i, text in enumerate(strings + nel)}
    assert_round_trip([
        foo("values", values),
        foo("keys", {text: i for i, text in enumerate(strings)}),
        config_map("data", values),
        foo("c1", {"value": c1, c1[0]: 1, c1[1]: 2}),
        foo("kept", {"last": "kept\n\n"}),  # the document ends in `|+` and "..."
    ])


def test_long_keys_and_values() -> None:
    long = "x" * 300
    assert_round_trip([foo("long", {long: long, long + "\nline": [long + "\n" + long]})])


# ---- dump_document: style ----------------------------------------------------------------------


def test_ordinary_strings_stay_plain() -> None:
    text = dump_document({text: text for text in ORDINARY}).decode()
    assert text == "".join(f"{key}: {key}\n" for key in sorted(ORDINARY))


def test_multi_line_strings_are_literal_blocks() -> None:
    text = dump_document({"a": "x\ny\n", "b": "x\ny", "c": "x\n\n"}).decode()
    # libyaml closes a document that ends in a kept final line break with "..."
    assert text == "a: |\n  x\n  y\nb: |-\n  x\n  y\nc: |+\n  x\n\n...\n"


@pytest.mark.parametrize("char", ["\x85", "\u2028", "\u2029", "\ufeff", "\t", "\r", "\x00", "\x7f", "\x9f"])
def test_strings_only_double_quotes_keep_are_double_quoted(char: str) -> None:
    for value in (f"a{char}b", f"a{char}b\nc\n"):
        text = dump_document({"k": value}).decode()
        assert text.startswith('k: "'), text
        assert load_one(text) == {"k": value}


def test_dump_is_canonical() -> None:
    doc = {"b": {"y": "1e3", "x": [3, "on"]}, "a": "multi\nline\n"}
    reordered = {"a": "multi\nline\n", "b": {"x": [3, "on"], "y": "1e3"}}
    assert dump_document(doc) == dump_document(reordered) == dump_document(doc)
    assert dump_document(doc).decode().splitlines()[0].startswith("a:")


def test_dumper_leaves_pyyaml_defaults_alone() -> None:
    assert yaml.safe_dump({"a": "08544"}) == "a: 08544\n"
    assert yaml.safe_dump({"a": "x\ny"}) == "a: 'x\n\n  y'\n"


# ---- the loader's refusals ---------------------------------------------------------------------


def _refusal(text: str) -> YamlError:
    with pytest.raises(YamlError) as caught:
        load_documents(text)
    return caught.value


def test_duplicate_key_is_refused_naming_the_key_and_document() -> None:
    error = _refusal("a: 1\n---\nkind: X\nspec:\n  replicas: 1\n  other: 2\n  'replicas': 3\n")
    assert error.document == 1
    assert "duplicate key 'replicas'" in error.reason
    assert "line 5 and line 7" in error.reason


def test_duplicate_key_is_refused_by_load_one() -> None:
    with pytest.raises(YamlError, match="duplicate key 'x'"):
        load_one("x: 1\nx: 1\n")


def test_merge_keys_and_overriding_a_merged_key_are_allowed() -> None:
    text = (
        "base: &base {a: 1, b: 2}\n"
        "more: &more {c: 3, <<: *base, a: 0}\n"  # merges and overrides inside an anchor
        "x:\n  deep:\n    y: &late {b: 9}\n"
        "one:\n  <<: *base\n  a: 5\n"
        "two:\n  <<: [*more, *late]\n  c: 4\n"
        "three:\n  <<: *more\n"
    )
    doc = load_one(text)
    assert doc["one"] == {"a": 5, "b": 2}
    assert doc["more"] == {"a": 0, "b": 2, "c": 3}
    assert doc["two"] == {"a": 0, "b": 2, "c": 4}
    assert doc["three"] == doc["more"]


def test_two_merge_keys_in_one_mapping_are_duplicates() -> None:
    """kustomize refuses them too ("duplicate merge key")."""
    error = _refusal("a: &a {x: 1}\nb: &b {y: 1}\nc:\n  <<: *a\n  <<: *b\n")
    assert "duplicate key '<<'" in error.reason


@pytest.mark.parametrize("number", [".nan", ".NaN", ".inf", "-.Inf", "+.INF", "1.0e+400", "!!float nan"])
def test_nan_and_infinities_are_refused(number: str) -> None:
    error = _refusal(f"ok: 1\n---\nspec:\n  list: [1, {number}]\n")
    assert error.document == 1
    assert error.reason.startswith("NaN or infinite numbers cannot be delivered")


@pytest.mark.parametrize("number", [str(INT64), str(-INT64 - 1), str(2**64), "0x8000000000000000"])
def test_integers_outside_int64_are_refused(number: str) -> None:
    error = _refusal(f"a: {number}\n")
    assert error.document == 0
    assert "outside the int64 range" in error.reason


def test_lone_surrogate_is_refused() -> None:
    """A JSON bundle can carry one ("\\ud800"); libyaml cannot read it."""
    error = _refusal("a: \ud800\n")
    assert "lone surrogate" in error.reason


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("  a: 1\n  a: 2\n", "duplicate key 'a'"),
        ("  a: .nan\n", "NaN or infinite numbers cannot be delivered"),
        (f"  a: {INT64}\n", "outside the int64 range"),
    ],
)
def test_bundle_refusal_names_file_and_document(body: str, reason: str) -> None:
    ok = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ok\n"
    text = f"{ok}---\napiVersion: example.com/v1\nkind: Foo\nmetadata:\n  name: x\nspec:\n{body}"
    with pytest.raises(InvalidBundle) as caught:
        parse_files({"objects.yaml": text}, Limits())
    assert caught.value.detail["file"] == "objects.yaml"
    assert caught.value.detail["document"] == 1
    assert reason in caught.value.detail["reason"]


def test_int64_limits_are_accepted() -> None:
    assert load_one(f"a: {INT64 - 1}\nb: {-INT64}\n") == {"a": INT64 - 1, "b": -INT64}


# ---- the model -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("08544", {YAML11: "08544", YAML12: 8544, GOYAML_V2: 8544.0, YAML_V3: 8544.0}),
        ("y", {YAML11: "y", YAML12: "y", GOYAML_V2: True, YAML_V3: "y"}),
        ("on", {YAML11: True, YAML12: "on", GOYAML_V2: True, YAML_V3: "on"}),
        ("1:20", {YAML11: 80, YAML12: "1:20", GOYAML_V2: "1:20", YAML_V3: "1:20"}),
        ("0o17", {YAML11: "0o17", YAML12: 15, GOYAML_V2: 15, YAML_V3: 15}),
        ("0777", {YAML11: 511, YAML12: 777, GOYAML_V2: 511, YAML_V3: 511}),
        ("1_000", {YAML11: 1000, YAML12: "1_000", GOYAML_V2: 1000, YAML_V3: 1000}),
        ("-_1", {YAML11: "-_1", YAML12: "-_1", GOYAML_V2: -1, YAML_V3: -1}),
        ("0b-101", {YAML11: "0b-101", YAML12: "0b-101", GOYAML_V2: -5, YAML_V3: -5}),
        ("1e400", {YAML11: "1e400", YAML12: math.inf, GOYAML_V2: "1e400", YAML_V3: "1e400"}),
        ("=", {YAML11: VALUE_KEY, YAML12: "=", GOYAML_V2: "=", YAML_V3: "="}),
        ("<<", {YAML11: MERGE, YAML12: "<<", GOYAML_V2: MERGE, YAML_V3: MERGE}),
        ("0x1F", {family: 31 for family in FAMILIES}),
        ("name", {family: "name" for family in FAMILIES}),
    ],
)
def test_readings(text: str, expected: dict[str, object]) -> None:
    assert readings(text) == expected


def test_timestamps_are_times_only_to_yaml_v3() -> None:
    read = readings("2024-01-01")
    assert read[YAML11] == read[YAML12] == read[GOYAML_V2] == "2024-01-01"
    assert str(read[YAML_V3]) == "2024-01-01 00:00:00+00:00"
    assert readings("2024-02-30")[YAML_V3] == "2024-02-30"  # time.Parse checks the day


def test_ambiguous_plain_scalars_finds_keys_and_values_by_line() -> None:
    text = (
        "a: 08544\non: x\n'y': n\nb: !!str 1e3\nc: &x [1e3, 'yes', yes]\nd: *x\n"
        "---\ne: [f, 0x1F, 2024-01-01]\n"
    )
    assert ambiguous_plain_scalars(text) == [
        (1, "08544"), (2, "on"), (3, "n"), (5, "1e3"), (5, "yes"), (8, "2024-01-01"),
    ]


def test_non_specific_tag_is_a_string_only_to_goyaml_v2() -> None:
    spec = "  a: ! 012\n  b: ! y\n  c: ! name\n  d: ! 0x1F\n"
    text = f"apiVersion: example.com/v1\nkind: Foo\nmetadata:\n  name: t\nspec:\n{spec}"
    assert ambiguous_plain_scalars(text) == [(6, "012"), (9, "0x1F")]
    assert api_read(text)[0]["spec"] == {"a": "012", "b": "y", "c": "name", "d": "0x1F"}
    assert load_one(text)["spec"] == {"a": 10, "b": "y", "c": "name", "d": 31}


# Texts near the numbers, times and words the readers resolve (fractions of at most six
# digits: the model keeps microseconds, kustomize writes nanoseconds back).
NUMBERISH = (
    st.from_regex(r"\A[-+._]{0,2}[0-9][0-9_.eExXoObB:+-]{0,8}\Z")
    | st.from_regex(
        r"\A[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}"
        r"(?:[Tt ][0-9]{1,2}:[0-9]{1,2}:[0-9]{1,2}(?:\.[0-9]{1,6})?(?:Z|[-+][0-9]{2}:[0-9]{2})?)?\Z"
    )
    | st.sampled_from(["y", "Y", "yes", "NO", "On", "oFF", "True", "~", "Null", ".Inf", ".NaN", "<<", "="])
)


def _plain_value_lines(texts: list[str]) -> list[str]:
    """The texts that PyYAML reads back as plain scalars with the same text, as `k: text`."""
    lines = []
    for text in texts:
        try:
            events = [e for e in yaml.parse(f"k: {text}\n") if isinstance(e, yaml.ScalarEvent)]
        except yaml.YAMLError:
            continue
        if len(events) == 2 and events[1].value == text and events[1].style is None:
            lines.append(text)
    return lines


def _as_the_api_holds(value: object, kustomized: bool) -> object:
    """A family's reading as the API ends up with it, after JSON: integers outside int64
    become floats, kustomize writes times as RFC 3339, `<<` as a value is a string."""
    if value is MERGE:
        return "<<"
    if isinstance(value, int) and not isinstance(value, bool) and not -INT64 <= value < INT64:
        return float(value)
    if kustomized and isinstance(value, datetime.datetime):
        return _rfc3339_nano(value)
    return value


def _rfc3339_nano(time: datetime.datetime) -> str:
    """Go's time.RFC3339Nano, as kustomize writes a time back."""
    text = f"{time.year:04d}-{time.month:02d}-{time.day:02d}T{time:%H:%M:%S}"  # %Y does not pad
    if time.microsecond:
        text += "." + f"{time.microsecond:06d}".rstrip("0")
    offset = time.utcoffset() or datetime.timedelta(0)
    if not offset:
        return text + "Z"
    minutes = int(abs(offset).total_seconds()) // 60
    return text + ("-" if offset < datetime.timedelta(0) else "+") + f"{minutes // 60:02d}:{minutes % 60:02d}"


def _deliverable(value: object) -> bool:
    """Go readings JSON can carry: no NaN or infinity (kubectl fails), no out-of-range time."""
    if isinstance(value, float):
        return math.isfinite(value)
    return value is MERGE or not isinstance(value, Special)


def check_model_against_go_readers(texts: list[str]) -> None:
    plain = [
        text for text in _plain_value_lines(texts)
        if _deliverable(readings(text)[GOYAML_V2]) and _deliverable(readings(text)[YAML_V3])
    ]
    if not plain:
        return
    body = "".join(f"  v{i}: {text}\n" for i, text in enumerate(plain))
    source = f"apiVersion: example.com/v1\nkind: Foo\nmetadata:\n  name: m\nspec:\n{body}"
    api, kustomized = api_read(source)[0]["spec"], kustomize_read(source)[0]["spec"]
    for i, text in enumerate(plain):
        model = readings(text)
        expected = _as_the_api_holds(model[GOYAML_V2], False)
        assert same(expected, api.get(f"v{i}")), (text, expected, api.get(f"v{i}"))
        expected = _as_the_api_holds(model[YAML_V3], True)
        assert same(expected, kustomized.get(f"v{i}")), (text, expected, kustomized.get(f"v{i}"))


CURATED = [
    *AMBIGUOUS, "0", "-0", "+0", "00", "0777", "08", "0x", "0b", "0o", "0x_1F", "-0x1F", "+0x1F", "0B11",
    "0O17", "-0o17", "0o-17", "0b-101", "-0b-101", "-_1", "+_1", "1_", "_1", "1__0", "1_0.5", "._5",
    ".5_5", ".5e3", ".e3", "1.", "-.5", "+.5e-3", "1e", "1e+", "1.5e3", "1.0e+3", "1e400", "-1e400",
    "9223372036854775807", "9223372036854775808", "-9223372036854775808", "-9223372036854775809",
    "18446744073709551615", "18446744073709551616", "0xFFFFFFFFFFFFFFFF", "1:20", "1:20.5", "-1:20",
    "2024-1-2", "2024-02-29", "2023-02-29", "2024-13-01", "2024-01-01T10:20:30Z", "2024-01-01t10:20:30Z",
    "2024-01-01T10:20:30", "2024-01-01 10:20:30", "2024-01-01 10:20:30Z", "2024-01-01T1:2:3.5+05:30",
    "2024-01-01T10:20:30,25Z", "12024-01-01", "Y", "N", "YES", "No", "ON", "Off", "TRUE", "False",
    "NULL", "Null", ".NaN", ".Inf", "-.INF", "+.inf", "nan", "inf", "infinity", "-inf", ".iNf", "~",
]


def test_model_matches_the_real_go_readers_on_curated_scalars() -> None:
    check_model_against_go_readers(CURATED)


@settings(max_examples=15, deadline=None, derandomize=True, database=None)
@given(st.lists(NUMBERISH, min_size=1, max_size=60))
def test_model_matches_the_real_go_readers(texts: list[str]) -> None:
    check_model_against_go_readers(texts)


SPECIAL_TEXT = st.text(
    alphabet=st.characters(codec="utf-8")
    | st.sampled_from([" ", "\n", "\t", "\x85", "\u2028", "\u2029", "\ufeff", "\r", "\x00"])
    | st.sampled_from([*":#-?[]{},&*!|>'\"%@`~=<.+_0123456789"]),
    max_size=12,
)
STRINGS = st.sampled_from(AMBIGUOUS) | NUMBERISH | SPECIAL_TEXT | st.sampled_from(ORDINARY)


@settings(max_examples=400, deadline=None, derandomize=True, database=None)
@given(STRINGS)
def test_dumper_never_leaves_an_ambiguous_plain_scalar(text: str) -> None:
    written = dump_document({"key": text, text: "value", "list": [text]}).decode()
    assert ambiguous_plain_scalars(written) == []
    assert load_one(written) == {"key": text, text: "value", "list": [text]}


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(NUMBERISH | STRINGS)
def test_every_ambiguous_scalar_is_quoted(text: str) -> None:
    written = dump_document({"k": text}).decode()
    if is_ambiguous(text):
        assert not written.startswith(f"k: {text}\n"), written


# ---- the property against the real tools -----------------------------------------------------

SCALARS = (
    STRINGS
    | st.integers(min_value=-INT64, max_value=INT64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.booleans()
    | st.none()
)


def _containers(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.lists(inner, max_size=4) | st.dictionaries(STRINGS, inner, max_size=4)


VALUES = st.recursive(SCALARS, _containers, max_leaves=12)


@settings(max_examples=25, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(
    st.lists(st.dictionaries(STRINGS, VALUES, max_size=6), min_size=1, max_size=8),
    st.lists(st.dictionaries(STRINGS, STRINGS, max_size=6), max_size=3),
)
def test_documents_survive_every_reader(specs: list[dict[str, Any]], data: list[dict[str, str]]) -> None:
    docs = [foo(f"foo-{i}", spec) for i, spec in enumerate(specs)]
    docs += [config_map(f"cm-{i}", strings) for i, strings in enumerate(data)]
    assert_round_trip(docs)


def assert_dumped_as_pyyaml(doc: dict[str, Any], data: st.DataObject) -> None:
    """`dump_document` writes `doc`, and `doc` holding one of its containers twice more, as
    PyYAML's own representer does with the same dumper."""
    assert dump_document(doc) == _dump_with_pyyaml(doc)
    containers = [v for v in doc.values() if isinstance(v, dict | list)]
    if containers:
        shared = data.draw(st.sampled_from(containers))
        twice = {**doc, "again": shared, "nested": [shared, {"x": shared}]}
        assert dump_document(twice) == _dump_with_pyyaml(twice)


@settings(max_examples=400, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.dictionaries(STRINGS, VALUES, max_size=6), st.data())
def test_dump_document_writes_what_pyyaml_writes(doc: dict[str, Any], data: st.DataObject) -> None:
    """The direct node building and the remembered scalar tags of `dump_document` give the
    bytes of PyYAML's own representer with the same dumper, aliases of a container met twice
    included (what a document read from YAML with anchors holds)."""
    assert_dumped_as_pyyaml(doc, data)
    odd: dict[Any, Any] = {**doc, 3: "int key"}  # keys PyYAML cannot sort: its representer takes the document
    assert dump_document(odd) == _dump_with_pyyaml(odd)


def test_kustomize_mangles_nel_c1_controls_and_merge_key_strings() -> None:
    """The kustomize defects described at the top, pinned: if this fails, kustomize changed
    and `through_kustomize` / `kustomize_can_build` should go."""
    values = {"a": "a\x85b", "b": "a \x85 \x85b", "c": "\x85"}
    escaped = {"a": "a\\x85b", "b": "a \\u0085 \\x85b", "c": "\\x85"}  # instead of the dumper's \\N
    head = "apiVersion: example.com/v1\nkind: Foo\nmetadata:\n  name: nel\nspec:\n"
    by_hand = head + "".join(f'  {key}: "{value}"\n' for key, value in escaped.items())
    for text in (dump_document(foo("nel", values)).decode(), by_hand):
        assert api_read(text)[0]["spec"] == values  # the API's own reader keeps them
        assert kustomize_read(text)[0]["spec"] == {"a": "a b", "b": "a\nb", "c": " "}
        assert kustomize_read(text)[0]["spec"] == through_kustomize(values)
    for spec in ({"a\x85b": 1}, {"a": "del\x7f"}, {"a": "c1\x9b"}):
        assert _kustomize(dump_document(foo("broken", spec)).decode()).returncode != 0
        assert not kustomize_can_build(spec)
    for key in ("'<<'", '"<<"', "!!str <<"):
        text = head + f"  x: 1\n  {key}: z\n"
        assert load_one(text)["spec"] == api_read(text)[0]["spec"] == {"x": 1, "<<": "z"}
        assert kustomize_read(text)[0]["spec"] == {"x": 1}
