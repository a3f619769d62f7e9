"""CRDs' `x-kubernetes-validations` rules, evaluated as the API server does before Flux's
server-side apply would meet them: `check_rules(obj, schema, old)`.

The CEL implementation is cel-python (`celpy`), chosen over common-expression-language
(Rust bindings to cel-interpreter): both parse and run CEL with its macros, `has()`,
timestamps and durations, and neither parses optional syntax (`.?`). But only celpy lets an
extension function return its own Python object, which the quantity, URL, IP, CIDR, format
and optional libraries need; only celpy keeps uint apart from int and counts a string's size
in code points (the Rust one counts bytes, a false refusal on `size(self) <= 63`); celpy's
`matches` runs Google's RE2, the engine whose syntax Go's regexp follows; and celpy is pure
Python, so its evaluator can be made to count its steps and stop a hostile rule, where the
Rust one runs to the end. It is slower (about a millisecond per rule): see `bench` in the
tests' docstring. celpy's gaps are filled in `cel_k8s` (heterogeneous equality, Kubernetes'
libraries); what neither fills becomes a warning.

The semantics follow apiextensions-apiserver/pkg/apiserver/schema/cel/validation.go (which
rules run where, oldSelf, optionalOldSelf, messageExpression, fieldPath, reason, runtime
errors reported as invalid) and apiserver/pkg/cel/common/values.go (how an object becomes CEL
values), with the ratcheting of common/equality.go: an error of a rule that does not read
oldSelf, on a value unchanged since the stored object, is only a warning there too. Defaults
are applied and unknown fields pruned first, as the API server does before validating."""

from __future__ import annotations

import base64
import binascii
import copy
import datetime as dt
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import celpy
import lark
from celpy import celtypes
from celpy.evaluation import CELEvalError, Evaluator

from gitops import caches
from gitops.lru import LRU
from gitops.quoting import quoted
from gitops.validate import cel_k8s
from gitops.validate.cel_k8s import Budget, CostExceeded, K8sError, Unsupported
from gitops.validate.findings import Finding

Schema = Mapping[str, Any]

RULE_STEPS = 25_000  # evaluator steps one rule may take: about 0.25 s of CPU (see the tests)
OBJECT_STEPS = 100_000  # steps for all the rules of one object; past it the rest are warnings
MESSAGE_EXPRESSION_BYTES = 5 * 1024  # celconfig.MaxEvaluatedMessageExpressionSizeBytes

_VALIDATIONS = "x-kubernetes-validations"


class _CountingEvaluator(Evaluator):
    """celpy's tree-walking evaluator, charging one budget step per node it visits, macros'
    bodies included (celpy builds a fresh evaluator for each of those)."""

    def visit_children(self, tree: lark.Tree[Any]) -> list[Any]:
        cel_k8s.charge(1)
        return super().visit_children(tree)

    def sub_evaluator(self, ast: lark.Tree[Any]) -> Evaluator:
        return _CountingEvaluator(ast, activation=self.activation)


class _Runner(celpy.InterpretedRunner):
    def evaluate(self, context: Any) -> Any:
        return _CountingEvaluator(ast=self.ast, activation=self.new_activation()).evaluate(context)


_ENV = celpy.Environment(runner_class=_Runner)
_FUNCTIONS = cel_k8s.functions()


@dataclass(frozen=True, slots=True)
class Compiled:
    runner: celpy.Runner | None
    error: str  # why it did not compile ("" when it did)
    uses_old_self: bool


_COMPILED: LRU[str, Compiled] = caches.lru("cel rules", caches.CEL_RULES)


def compile_rule(text: str) -> Compiled:
    """A rule's program, compiled once per rule text: a rule's meaning does not depend on
    the schema it sits in here (types are dynamic), so the text alone is the key."""
    found = _COMPILED.get(text)
    if found is None:
        found = _compile(text)
        _COMPILED.put(text, found)
    return found


def _compile(text: str) -> Compiled:
    try:
        ast = _ENV.compile(text)
    except Exception as error:  # celpy's parser raises CELParseError and lark's own errors
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        if ".?" in text or "[?" in text:
            reason = "optional field selection (.? or [?) is not supported by celpy"
        return Compiled(None, reason, False)
    uses_old_self = any(
        isinstance(token, lark.Token) and token.value == "oldSelf" and token.type != "STRING_LIT"
        for token in ast.scan_values(lambda value: isinstance(value, lark.Token))
    )
    return Compiled(_ENV.program(ast, functions=_FUNCTIONS), "", uses_old_self)


# ----------------------------------------------------------------------------- the walk

@dataclass(frozen=True, slots=True)
class _Rule:
    rule: str
    message: str
    message_expression: str
    field_path: str
    reason: str
    optional_old_self: bool

    @staticmethod
    def of(raw: Mapping[str, Any]) -> _Rule:
        return _Rule(
            str(raw.get("rule") or ""), str(raw.get("message") or ""),
            str(raw.get("messageExpression") or ""), str(raw.get("fieldPath") or ""),
            str(raw.get("reason") or ""), bool(raw.get("optionalOldSelf")),
        )

    def error_string(self) -> str:
        """validation.go's ruleErrorString: the message when there is one, else the rule."""
        return self.message.strip() or self.rule.strip()


class _Correlation:
    """common/equality.go's CorrelatedObject: a new value and the old value it stands for,
    for ratcheting. `index` correlates list items by key for list-type map lists, by index
    for lists without a list type, and not at all for sets and atomic lists."""

    __slots__ = ("new", "old", "schema")

    def __init__(self, new: Any, old: Any, schema: Schema) -> None:
        self.new, self.old, self.schema = new, old, schema

    def key(self, name: str) -> _Correlation | None:
        if not isinstance(self.new, dict) or not isinstance(self.old, dict):
            return None
        if name not in self.new or name not in self.old:
            return None
        sub = _property_schema(self.schema, name)
        return None if sub is None else _Correlation(self.new[name], self.old[name], sub)

    def index(self, i: int) -> _Correlation | None:
        items = self.schema.get("items")
        if not isinstance(self.new, list) or not isinstance(self.old, list) or not isinstance(items, dict):
            return None
        if i >= len(self.new):
            return None
        list_type = self.schema.get("x-kubernetes-list-type")
        if list_type == "map":
            old = _map_list_find(self.old, self.new[i], self.schema)
        elif list_type in ("set", "atomic"):
            old = None
        else:
            old = self.old[i] if i < len(self.old) else None
        return None if old is None else _Correlation(self.new[i], old, items)

    def unchanged(self) -> bool:
        """CachedDeepEqual: map lists compare by key, other lists by position."""
        if isinstance(self.new, list) and isinstance(self.old, list):
            if len(self.new) != len(self.old):
                return False
            if self.schema.get("x-kubernetes-list-type") != "map":
                return bool(self.new == self.old)
            for i in range(len(self.new)):
                child = self.index(i)
                if child is None or not child.unchanged():
                    return False
            return True
        if isinstance(self.new, dict) and isinstance(self.old, dict):
            if len(self.new) != len(self.old):
                return False
            for name in self.new:
                child = self.key(name)
                if child is None:
                    return False  # "un-correlatable child due to key change"
                if not child.unchanged():
                    return False
            return True
        return bool(self.new == self.old) and type(self.new) is type(self.old)


def _property_schema(schema: Schema, name: str) -> Schema | None:
    properties = schema.get("properties")
    if isinstance(properties, dict) and name in properties:
        return properties[name]  # type: ignore[no-any-return]
    additional = schema.get("additionalProperties")
    return additional if isinstance(additional, dict) else None


def _map_list_find(old_items: list[Any], item: Any, schema: Schema) -> Any:
    keys = schema.get("x-kubernetes-list-map-keys") or []
    if not isinstance(item, dict):
        return None
    wanted = tuple(item.get(k) for k in keys)
    for old in old_items:
        if isinstance(old, dict) and tuple(old.get(k) for k in keys) == wanted:
            return old
    return None


@dataclass(slots=True)
class _Run:
    findings: list[Finding]
    budget: Budget
    values: dict[tuple[int, int, bool], Any]
    has_rules: dict[int, bool]
    # resources' schemas with kind, apiVersion and metadata, kept alive so that the ids
    # in `values`' keys stay theirs
    resource_schemas: dict[int, Schema]
    out_of_budget: bool = False


def check_rules(
    obj: Mapping[str, Any], schema: Schema, old: Mapping[str, Any] | None = None
) -> list[Finding]:
    """Findings for the `x-kubernetes-validations` rules of `schema` (a CRD version's
    openAPIV3Schema) on `obj`; `old` is the stored object an update replaces (None on create).

    An error finding is what the API server would refuse: a rule that evaluates to false,
    or whose evaluation fails the way Kubernetes' does (no such key, index out of bounds,
    overflow, division by zero, a library function's own error). A rule this module cannot
    evaluate faithfully gives a warning instead: celpy cannot compile it, it calls a function
    not implemented here, a value is of a type not modelled, or it costs more than RULE_STEPS."""
    new_value = _defaulted(copy.deepcopy(dict(obj)), schema, root=True)
    old_value = None if old is None else _defaulted(copy.deepcopy(dict(old)), schema, root=True)
    run = _Run([], Budget(OBJECT_STEPS), {}, {}, {})
    correlation = None if old_value is None else _Correlation(new_value, old_value, schema)
    _walk(run, schema, schema, new_value, old_value, correlation, None, "", True)
    return run.findings


def _walk(
    run: _Run, rules_schema: Schema, schema: Schema, value: Any, old: Any,
    correlation: _Correlation | None, parent: _Correlation | None, path: str, resource_root: bool,
) -> None:
    """validation.go's Validator.validate: the node's rules, its allOf's, then its items,
    additionalProperties and properties, with the old value correlated the way transition
    rules see it (object properties and map keys; list-type map lists by key; no other
    list) and, separately, the way ratcheting does (`correlation`)."""
    if value is None or not _has_rules(run, rules_schema):
        return
    nearest = correlation if correlation is not None else parent
    rules = rules_schema.get(_VALIDATIONS) or []
    if rules:
        parsed = [_Rule.of(r) for r in rules if isinstance(r, dict)]
        _run_rules(run, parsed, schema, value, old, nearest, path, resource_root)
    for sub in rules_schema.get("allOf") or []:
        if isinstance(sub, dict):
            _walk(run, sub, schema, value, old, None, parent, path, resource_root)
    if isinstance(value, list):
        items_rules, items = rules_schema.get("items"), schema.get("items")
        if isinstance(items_rules, dict) and isinstance(items, dict):
            by_key = schema.get("x-kubernetes-list-type") == "map" and isinstance(old, list)
            for i, item in enumerate(value):
                old_item = _map_list_find(old, item, schema) if by_key else None
                child = correlation.index(i) if correlation is not None else None
                _walk(run, items_rules, items, item, old_item, child, nearest, f"{path}[{i}]",
                      bool(items.get("x-kubernetes-embedded-resource")))
    elif isinstance(value, dict):
        _walk_map(run, rules_schema, schema, value, old, correlation, nearest, path)


def _walk_map(
    run: _Run, rules_schema: Schema, schema: Schema, value: dict[str, Any], old: Any,
    correlation: _Correlation | None, nearest: _Correlation | None, path: str,
) -> None:
    map_type = schema.get("x-kubernetes-map-type")
    correlatable = map_type in (None, "granular", "atomic") and isinstance(old, dict)
    additional_rules = rules_schema.get("additionalProperties")
    additional = schema.get("additionalProperties")
    if isinstance(additional_rules, dict) and isinstance(additional, dict):
        for key, item in value.items():
            child = correlation.key(key) if correlation is not None else None
            if path == "" and key in ("apiVersion", "kind"):
                child = None
            _walk(run, additional_rules, additional, item, old.get(key) if correlatable else None, child,
                  nearest, f"{path}[{key}]", bool(additional.get("x-kubernetes-embedded-resource")))
    properties_rules, properties = rules_schema.get("properties"), schema.get("properties")
    if isinstance(properties_rules, dict) and isinstance(properties, dict):
        for key, item in value.items():
            if key not in properties_rules or key not in properties:
                continue
            child = correlation.key(key) if correlation is not None else None
            child_nearest = nearest
            if path == "" and key in ("apiVersion", "kind"):
                child, child_nearest = None, None
            sub = properties[key]
            embedded = bool(sub.get("x-kubernetes-embedded-resource"))
            _walk(run, properties_rules[key], sub, item, old.get(key) if correlatable else None, child,
                  child_nearest, f"{path}.{key}" if path else key, embedded)


def _has_rules(run: _Run, schema: Schema) -> bool:
    """hasXValidations, memoised per schema node for the length of one check."""
    found = run.has_rules.get(id(schema))
    if found is None:
        found = bool(schema.get(_VALIDATIONS)) or any(
            isinstance(sub, dict) and _has_rules(run, sub) for sub in _subschemas(schema)
        )
        run.has_rules[id(schema)] = found
    return found


def _subschemas(schema: Schema) -> Iterator[Any]:
    yield schema.get("items")
    yield schema.get("additionalProperties")
    yield from (schema.get("properties") or {}).values()
    yield from schema.get("allOf") or []


# ----------------------------------------------------------------------------- one node's rules

def _run_rules(
    run: _Run, rules: list[_Rule], schema: Schema, value: Any, old: Any,
    ratchet: _Correlation | None, path: str, resource_root: bool,
) -> None:
    self_value = _to_cel(run, value, schema, resource_root)
    old_value = None if old is None else _to_cel(run, old, schema, resource_root)
    unchanged: bool | None = None
    for rule in rules:
        if not rule.rule.strip():
            continue
        if run.out_of_budget:
            return
        compiled = compile_rule(rule.rule)
        if compiled.runner is None:
            reason = f"rule not evaluated ({compiled.error}): {rule.rule.strip()}"
            run.findings.append(Finding(path, reason, True))
            continue
        if compiled.uses_old_self and old is None and not rule.optional_old_self:
            continue  # a transition rule runs only where the old value exists
        activation: dict[str, Any] = {"self": self_value, **cel_k8s.NAMESPACES}
        if compiled.uses_old_self:
            activation["oldSelf"] = (
                cel_k8s.Optional(old_value, old is not None) if rule.optional_old_self else old_value
            )
        outcome = _evaluate(run, compiled, activation)
        if isinstance(outcome, Finding):
            run.findings.append(Finding(path, f"{outcome.reason} evaluating rule: {rule.error_string()}",
                                        outcome.warning))
            continue
        if outcome is True:
            continue
        if outcome is not False:
            reason = f"rule gave {quoted(outcome)}, not a bool: {rule.rule.strip()}"
            run.findings.append(Finding(path, reason, True))
            continue
        message_activation = {"self": self_value, **cel_k8s.NAMESPACES}
        if old is not None:
            message_activation["oldSelf"] = old_value
        detail = _message(run, rule, message_activation)
        where = _child_path(path, rule.field_path)
        if not compiled.uses_old_self and ratchet is not None:
            if unchanged is None:
                unchanged = ratchet.unchanged()
            if unchanged:
                run.findings.append(Finding(where, f"{detail} (unchanged since the stored object: "
                                                   "Kubernetes ratchets it to a warning)", True))
                continue
        run.findings.append(Finding(where, _with_reason(detail, rule.reason)))


def _evaluate(run: _Run, compiled: Compiled, activation: dict[str, Any]) -> Any:
    """The rule's value, or a Finding (its reason without the rule) for an error: an error
    Finding where Kubernetes fails the same way, a warning where this implementation can't
    tell."""
    assert compiled.runner is not None
    rule_budget = Budget(min(RULE_STEPS, run.budget.left))
    token = cel_k8s.BUDGET.set(rule_budget)
    try:
        result = compiled.runner.evaluate(activation)
    except CostExceeded:
        run.budget.left -= min(RULE_STEPS, run.budget.left) - rule_budget.left
        if run.budget.left <= 0:
            run.out_of_budget = True
            return Finding("", f"not evaluated: the object's rules cost more than {OBJECT_STEPS} steps", True)
        return Finding("", f"not evaluated: cost above {RULE_STEPS} steps", True)
    except CELEvalError as error:
        faithful, text = _classify(error)
        return Finding("", text, not faithful)
    except Exception as error:  # celpy's own failures: an unsupported construct here
        return Finding("", f"celpy failed ({type(error).__name__}: {error})", True)
    finally:
        cel_k8s.BUDGET.reset(token)
    run.budget.left -= min(RULE_STEPS, run.budget.left) - rule_budget.left
    if isinstance(result, celtypes.BoolType):
        return bool(result)
    return result


def _classify(error: CELEvalError) -> tuple[bool, str]:
    """Whether Kubernetes fails the same way (types.Err: no such key, index out of bounds,
    integer overflow, division by zero, a library's error), and the text."""
    args = error.args
    text = str(args[0]) if args else str(error)
    kind = args[1] if len(args) > 1 else None
    detail = args[2] if len(args) > 2 else None
    if kind is K8sError:
        return True, text
    if kind is Unsupported:
        return False, text
    if kind is KeyError and text.startswith(("no such member", "no such key")):
        key = detail[0] if isinstance(detail, tuple) and detail else text.rpartition(":")[2].strip(" '")
        return True, f"no such key: {key}"
    if kind is IndexError:
        return True, "index out of bounds"
    if kind is ZeroDivisionError:
        return True, "modulus by zero" if "integer modulo" in str(detail) else "division by zero"
    if kind is ValueError and text == "return error for overflow" and detail == ("overflow",):
        return True, "integer overflow"
    return False, text.splitlines()[0] if text else "evaluation error"


def _message(run: _Run, rule: _Rule, activation: dict[str, Any]) -> str:
    """messageExpression's string when it evaluates to a usable one (evalMessageExpression's
    checks), else the message, else `failed rule: <rule>`."""
    if rule.message_expression:
        compiled = compile_rule(rule.message_expression)
        if compiled.runner is not None:
            result = _evaluate(run, compiled, activation)
            if isinstance(result, str):
                text = result.strip()
                if text and "\n" not in text and len(text.encode()) <= MESSAGE_EXPRESSION_BYTES:
                    return text
    if rule.message.strip():
        return rule.message.strip()
    return f"failed rule: {rule.error_string()}"


_REASONS = {"FieldValueForbidden": "Forbidden", "FieldValueRequired": "Required value",
            "FieldValueDuplicate": "Duplicate value", "FieldValueInvalid": ""}


def _with_reason(detail: str, reason: str) -> str:
    """fieldErrorForReason's error type, kept in front of the detail (Invalid says nothing)."""
    prefix = _REASONS.get(reason, "")
    return f"{prefix}: {detail}" if prefix else detail


def _child_path(path: str, field_path: str) -> str:
    """The node's path with the rule's fieldPath (`.a.b`, `['c']`) appended as the API
    server prints it: `.name` a field, `['key']` a key written `[key]`."""
    if not field_path.strip():
        return path
    parts: list[str] = []
    for name, key in re.findall(r"\.([^.\[\]]+)|\[\s*'((?:[^'\\]|\\.)*)'\s*\]", field_path.strip()):
        if name:
            parts.append(("." if parts else "") + name)
        else:
            parts.append(f"[{key}]")
    relative = "".join(parts)
    if not path:
        return relative
    return f"{path}{relative}" if relative.startswith("[") else f"{path}.{relative}"


# ----------------------------------------------------------------------------- values

def _with_type_and_object_meta(schema: Schema) -> Schema:
    """model.WithTypeAndObjectMeta: a resource's root and embedded resources show `kind`,
    `apiVersion`, `metadata.name` and `metadata.generateName` whatever their schema says."""
    properties = dict(schema.get("properties") or {})
    properties.setdefault("kind", {"type": "string"})
    properties.setdefault("apiVersion", {"type": "string"})
    metadata = properties.get("metadata")
    if not isinstance(metadata, dict) or not metadata.get("properties"):
        properties["metadata"] = {"type": "object", "properties": {
            "name": {"type": "string"}, "generateName": {"type": "string"}}}
    return {**schema, "type": "object", "properties": properties}


_CEL_RESERVED = frozenset({
    "true", "false", "null", "in", "as", "break", "const", "continue", "else", "for", "function", "if",
    "import", "let", "loop", "package", "namespace", "return", "var", "void", "while",
})


def escape(name: str) -> str | None:
    """apiserver/pkg/cel/escaping.go: a property name as CEL sees it, or None when the name
    cannot be reached from CEL."""
    if not name or name[0].isdigit():
        return None
    if name in _CEL_RESERVED:
        return f"__{name}__"
    if re.search(r"[^a-zA-Z0-9_./-]", name):
        return None
    return re.sub(r"__|[./-]", lambda m: {"__": "__underscores__", ".": "__dot__", "-": "__dash__",
                                          "/": "__slash__"}[m.group(0)], name)


class Preserved:
    """x-kubernetes-preserve-unknown-fields data without a type: CEL can only compare it
    (values.go, unknownPreserved)."""

    __slots__ = ("raw",)

    def __init__(self, raw: Any) -> None:
        self.raw = raw

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Preserved) and self.raw == other.raw

    def __hash__(self) -> int:
        return 0


def _model_error(message: str) -> CELEvalError:
    return cel_k8s.unsupported(f"value not modelled: {message}")


def _to_cel(run: _Run, value: Any, schema: Schema, resource: bool = False) -> Any:
    """values.go's UnstructuredToVal, made eagerly and memoised per (value, schema node). A
    value that does not fit its schema becomes an error value: reading it gives a warning
    (schema validation reports the value itself)."""
    if resource:
        augmented = run.resource_schemas.get(id(schema))
        if augmented is None:
            augmented = run.resource_schemas[id(schema)] = _with_type_and_object_meta(schema)
            run.resource_schemas[id(augmented)] = augmented
        schema = augmented
    key = (id(value), id(schema), resource)
    found = run.values.get(key, _MISSING)
    if found is _MISSING:
        found = _convert(run, value, schema)
        run.values[key] = found
    return found


_MISSING = object()


def _convert(run: _Run, value: Any, schema: Schema) -> Any:
    if value is None:
        return None if schema.get("nullable") else _model_error("null for a schema with nullable=false")
    if schema.get("x-kubernetes-int-or-string"):
        if isinstance(value, int) and not isinstance(value, bool):
            return celtypes.IntType(value)
        if isinstance(value, str):
            return celtypes.StringType(value)
        return _model_error("int-or-string holding neither")
    kind = schema.get("type")
    if kind == "object":
        return _convert_object(run, value, schema)
    if kind == "array":
        return _convert_list(run, value, schema)
    if kind == "string":
        return _convert_string(value, str(schema.get("format") or ""))
    if kind == "number" and isinstance(value, (int, float)) and not isinstance(value, bool):
        return celtypes.DoubleType(value)
    if kind == "integer" and isinstance(value, (int, float)) and not isinstance(value, bool):
        if isinstance(value, float) and not value.is_integer():
            return _model_error(f"{value} for an integer")
        return celtypes.IntType(int(value))
    if kind == "boolean" and isinstance(value, bool):
        return celtypes.BoolType(value)
    if kind is None and schema.get("x-kubernetes-preserve-unknown-fields"):
        return Preserved(value)
    return _model_error(f"{type(value).__name__} for type {kind}")


def _convert_object(run: _Run, value: Any, schema: Schema) -> Any:
    if not isinstance(value, dict):
        return _model_error("expected an object")
    properties = schema.get("properties")
    if isinstance(properties, dict):
        result = celtypes.MapType()
        for name, item in value.items():
            sub = properties.get(name)
            cel_name = escape(name)
            if sub is None or item is None or cel_name is None:
                continue  # nulls in objects read as absent fields (unstructuredMap.Find)
            result[celtypes.StringType(cel_name)] = _to_cel(run, item, sub)
        return result
    additional = schema.get("additionalProperties")
    if isinstance(additional, dict):
        return celtypes.MapType(
            {celtypes.StringType(k): _to_cel(run, v, additional) for k, v in value.items()}
        )
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return celtypes.MapType()
    return _model_error("object without properties or additionalProperties")


def _convert_list(run: _Run, value: Any, schema: Schema) -> Any:
    items = schema.get("items")
    if not isinstance(value, list) or not isinstance(items, dict):
        return _model_error("expected an array with items")
    elements = [_to_cel(run, item, items) for item in value]
    list_type = schema.get("x-kubernetes-list-type")
    if list_type == "map":
        result = cel_k8s.MapList(elements)
        result.keys = tuple(escape(k) or k for k in schema.get("x-kubernetes-list-map-keys") or [])
        return result
    if list_type == "set":
        return cel_k8s.SetList(elements)
    return celtypes.ListType(elements)


def _convert_string(value: Any, fmt: str) -> Any:
    if not isinstance(value, str):
        return _model_error(f"{type(value).__name__} for a string")
    if fmt == "duration":
        return _duration(value)
    if fmt in ("date", "date-time"):
        return _timestamp(value, fmt)
    if fmt == "byte":
        try:
            return celtypes.BytesType(base64.b64decode(value, validate=True))
        except (binascii.Error, ValueError):
            return _model_error(f"invalid base64 {quoted(value)}")
    return celtypes.StringType(value)


_GO_DURATION = re.compile(r"[-+]?(?:(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:ns|us|µs|μs|ms|s|m|h))+|[-+]?0")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}


def _duration(text: str) -> Any:
    """strfmt.ParseDuration for Go's syntax (`1h30m`); its other spellings ("3 days")
    become a warning."""
    if not _GO_DURATION.fullmatch(text):
        return _model_error(f"duration {quoted(text)} not in Go's syntax")
    sign = -1 if text.startswith("-") else 1
    seconds = sum(float(number) * _UNIT_SECONDS[unit]
                  for number, unit in re.findall(r"([0-9.]+)(ns|us|µs|μs|ms|s|m|h)", text))
    return celtypes.DurationType(dt.timedelta(seconds=sign * seconds))


def _timestamp(text: str, fmt: str) -> Any:
    """strfmt's date (RFC 3339 full-date) and date-time (RFC 3339, or ISO 8601 local time
    read as UTC); other spellings strfmt accepts become a warning."""
    pattern = r"\d{4}-\d{2}-\d{2}" if fmt == "date" else (
        r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})?")
    if not re.fullmatch(pattern, text):
        return _model_error(f"{fmt} {quoted(text)} not in RFC 3339 form")
    normal = re.sub(r"\.(\d{1,6})\d*", r".\1", text.upper().replace("Z", "+00:00"))
    try:
        moment = dt.datetime.fromisoformat(normal)
    except ValueError:
        return _model_error(f"{fmt} {quoted(text)} not a valid time")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return celtypes.TimestampType(moment)


# ----------------------------------------------------------------------------- defaults

def _defaulted(value: Any, schema: Schema, root: bool = False) -> Any:
    """The value as the API server validates it: unknown fields pruned (except at
    x-kubernetes-preserve-unknown-fields and a resource's apiVersion, kind and metadata),
    nulls of non-nullable fields defaulted or pruned, and schema defaults applied, recursively
    into what the defaults bring (apiextensions-apiserver schema/defaulting, pruning)."""
    if isinstance(value, list):
        items = schema.get("items")
        return [_defaulted(v, items) if isinstance(items, dict) else v for v in value]
    if not isinstance(value, dict):
        return value
    properties = schema.get("properties")
    additional = schema.get("additionalProperties")
    keep_unknown = bool(schema.get("x-kubernetes-preserve-unknown-fields")) or additional is True
    embedded = root or bool(schema.get("x-kubernetes-embedded-resource"))
    result: dict[str, Any] = {}
    for name, item in value.items():
        sub = properties.get(name) if isinstance(properties, dict) else None
        if sub is None and isinstance(additional, dict):
            sub = additional
        if sub is None:
            if keep_unknown or (embedded and name in ("apiVersion", "kind", "metadata")):
                result[name] = item
            continue
        if item is None and not sub.get("nullable"):
            if "default" in sub:
                result[name] = _defaulted(copy.deepcopy(sub["default"]), sub)
            continue
        result[name] = _defaulted(item, sub)
    if isinstance(properties, dict):
        for name, sub in properties.items():
            if name not in result and isinstance(sub, dict) and "default" in sub:
                if name in value and value[name] is None and sub.get("nullable"):
                    continue
                result[name] = _defaulted(copy.deepcopy(sub["default"]), sub)
    return result
