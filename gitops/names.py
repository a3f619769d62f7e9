"""Kubernetes name rules. Every repository path is built from names checked here."""

from __future__ import annotations

import re

_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?")
# Object names: what the API server accepts as a path segment (RBAC names may hold ':').
_OBJECT_NAME = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.:@]{0,251}[A-Za-z0-9])?")
_KIND = re.compile(r"[A-Za-z][A-Za-z0-9]{0,62}")
_GROUP = re.compile(r"([a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?)?")


def is_label(value: object) -> bool:
    """DNS-1123 label: promise, namespace, pipeline and destination names."""
    return isinstance(value, str) and _LABEL.fullmatch(value) is not None


def is_subdomain(value: object) -> bool:
    """DNS-1123 subdomain: resource request names."""
    return (
        isinstance(value, str)
        and _SUBDOMAIN.fullmatch(value) is not None
        and ".." not in value
    )


def is_object_name(value: object) -> bool:
    return isinstance(value, str) and _OBJECT_NAME.fullmatch(value) is not None and ".." not in value


def is_kind(value: object) -> bool:
    return isinstance(value, str) and _KIND.fullmatch(value) is not None


def is_group(value: object) -> bool:
    return isinstance(value, str) and _GROUP.fullmatch(value) is not None and ".." not in value


def is_bundle_file_name(value: str) -> bool:
    """A relative file name from a pipeline's /output: no absolute path, no '..', no '\\'."""
    if not value or len(value) > 1024 or value.startswith("/") or "\\" in value or "\0" in value:
        return False
    parts = value.split("/")
    return all(part not in ("", ".", "..") for part in parts)
