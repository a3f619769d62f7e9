"""Kubernetes name rules. Every repository path is built from names checked here.

The rules are those of k8s.io/apimachinery/pkg/util/validation (IsDNS1123Label,
IsDNS1123Subdomain, IsDNS1035Label, IsQualifiedName, IsValidLabelValue) and
k8s.io/apimachinery/pkg/api/validation/path (IsValidPathSegmentName).
"""

from __future__ import annotations

import re
import unicodedata
from typing import TypeGuard

LABEL_MAX = 63
SUBDOMAIN_MAX = 253

_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
_DNS1035_LABEL = re.compile(r"[a-z]([-a-z0-9]{0,61}[a-z0-9])?")
# Kubernetes puts no length limit on the dot-separated parts of a subdomain, only on the whole.
_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_QUALIFIED_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
# Object names: what the API server accepts as a path segment (RBAC names may hold ':').
_OBJECT_NAME = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.:@]{0,251}[A-Za-z0-9])?")
_KIND = re.compile(r"[A-Za-z][A-Za-z0-9]{0,62}")

# Request names the repository layout cannot hold: a request folder sits next to these files.
RESERVED_REQUEST_NAMES = frozenset({"kustomization.yaml", "kustomization.yml"})


def is_label(value: object) -> TypeGuard[str]:
    """DNS-1123 label: promise, namespace, pipeline and destination names."""
    return isinstance(value, str) and _LABEL.fullmatch(value) is not None


def is_dns1035_label(value: object) -> TypeGuard[str]:
    """DNS-1035 label: a DNS-1123 label that starts with a letter (Service names)."""
    return isinstance(value, str) and _DNS1035_LABEL.fullmatch(value) is not None


def is_subdomain(value: object) -> TypeGuard[str]:
    """DNS-1123 subdomain: resource request names, most built-in kinds' object names."""
    return (
        isinstance(value, str)
        and len(value) <= SUBDOMAIN_MAX  # first: it bounds the regex's work
        and _SUBDOMAIN.fullmatch(value) is not None
    )


def is_path_segment(value: object) -> TypeGuard[str]:
    """What the API server accepts in a URL path segment (RBAC names, and kinds without a rule)."""
    return (
        isinstance(value, str)
        and value not in ("", ".", "..")
        and "/" not in value
        and "%" not in value
    )


def is_qualified_name(value: object) -> TypeGuard[str]:
    """Label and annotation keys: an optional DNS-1123 subdomain prefix and '/', then a name of
    at most 63 letters, digits, '-', '_' and '.', starting and ending with a letter or digit."""
    if not isinstance(value, str):
        return False
    prefix, slash, name = value.rpartition("/")
    if slash and not is_subdomain(prefix):
        return False  # also an empty prefix, and a second '/' (it is in the prefix)
    return len(name) <= LABEL_MAX and _QUALIFIED_NAME.fullmatch(name) is not None


def is_label_value(value: object) -> TypeGuard[str]:
    """At most 63 characters: empty, or a qualified name's name part."""
    return isinstance(value, str) and (
        value == "" or (len(value) <= LABEL_MAX and _QUALIFIED_NAME.fullmatch(value) is not None)
    )


def is_object_name(value: object) -> TypeGuard[str]:
    """Statewriter's own rule for every object name: it becomes part of a file name."""
    return isinstance(value, str) and _OBJECT_NAME.fullmatch(value) is not None and ".." not in value


def is_kind(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and _KIND.fullmatch(value) is not None


def is_group(value: object) -> bool:
    """An API group: empty (the core group) or a DNS-1123 subdomain."""
    return value == "" or is_subdomain(value)


def is_bundle_file_name(value: str) -> bool:
    """A relative file name from a pipeline's /output: no absolute path, no '..', no '\\'."""
    if not value or len(value) > 1024 or value.startswith("/") or "\\" in value or "\0" in value:
        return False
    parts = value.split("/")
    return all(part not in ("", ".", "..") for part in parts)


_NOT_IN_A_LINE = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


def line_problem(text: str) -> str | None:
    """Why `text` cannot be one line of a commit message that readers split the way git does,
    or None: a control character (U+0000-U+001F, U+007F-U+009F: a line feed, but also the
    vertical tab, form feed and U+001C-U+001E that `str.splitlines` breaks on, and NEL), a
    line or paragraph separator (U+2028, U+2029), a format character (the bidirectional
    overrides that make a line read as another, the zero-width characters), or a lone
    surrogate (no UTF-8 holds it)."""
    for char in text:
        if unicodedata.category(char) in _NOT_IN_A_LINE:
            return f"holds the character U+{ord(char):04X}, which is not allowed in one line"
    return None
