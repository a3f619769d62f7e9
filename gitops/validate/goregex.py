"""`pattern` as the API server matches it: Go's regexp (RE2 syntax), unanchored, on the whole
string (kube-openapi pkg/validation/validate: Pattern calls regexp.MatchString).

Python's `re` is not RE2: `\\d`, `\\w` and `\\s` match non-ASCII characters, `$` matches before a
final newline, `(?i)` folds differently, and some RE2 syntax (`\\pL`, `\\z`, `[[:alpha:]]`) is
not Python's. Patterns are matched with Google's RE2 (the `re2` module of google-re2), whose
syntax and leftmost-first matching Go's regexp follows. A pattern RE2 does not compile, or every
pattern when that module is missing, cannot be decided (`None`), and the caller warns.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gitops import caches
from gitops.lru import Memo

Matcher = Callable[[str], "bool | None"]

try:
    import re2

    _OPTIONS: Any = re2.Options()
    _OPTIONS.log_errors = False  # a pattern RE2 refuses is reported as undecidable, not logged
    _OPTIONS.max_mem = 64 << 20
    HAVE_RE2 = True
except ImportError:  # pragma: no cover - google-re2 is a dependency; this keeps a fallback
    HAVE_RE2 = False


def compile_pattern(pattern: str) -> Matcher:
    """A function telling whether Go's regexp.MatchString(pattern, text) is true; it returns
    None when that cannot be decided here (a pattern RE2 does not accept, or no RE2)."""
    return _MATCHERS[pattern]


def _compile(pattern: str) -> Matcher:
    if not HAVE_RE2:
        return _undecidable  # pragma: no cover
    try:
        # as bytes: RE2 reads them as UTF-8 all the same, and the wrapper skips its offset
        # translation (four times faster on short strings)
        search = re2.compile(pattern.encode(), _OPTIONS).search
    except re2.error:
        return _undecidable

    def matches(text: str) -> bool:
        # The same values come back in every bundle (quantities, images, names): remembered,
        # in one memo for every pattern (gitops.caches), so many patterns cannot multiply it.
        found = _RESULTS.get((pattern, text))
        if found is None:
            found = _RESULTS[(pattern, text)] = search(text.encode()) is not None
        return found

    return matches


def _undecidable(text: str) -> bool | None:
    return None


_MATCHERS: Memo[str, Matcher] = caches.memo("go patterns", _compile, caches.GO_PATTERNS)
_RESULTS: dict[tuple[str, str], bool] = caches.memo(
    "go pattern results", lambda key: _MATCHERS[key[0]](key[1]) is True, caches.GO_PATTERN_RESULTS)
