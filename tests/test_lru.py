"""The weighted LRU cache behind the store's tree and blob caches and the render memo."""

from __future__ import annotations

from gitops.lru import LRU, Memo


def test_evicts_least_recently_used_by_weight() -> None:
    cache: LRU[str, bytes] = LRU(80, len)
    cache.put("a", b"x" * 10)
    cache.put("b", b"x" * 10)
    assert cache.get("a") == b"x" * 10  # "a" is now the most recent
    for i in range(7):
        cache.put(f"c{i}", b"x" * 10)
    assert cache.get("b") is None and cache.get("a") is not None


def test_an_item_over_an_eighth_of_the_budget_is_not_kept() -> None:
    cache: LRU[str, bytes] = LRU(80, len)
    cache.put("small", b"x" * 10)
    cache.put("big", b"x" * 11)
    assert cache.get("big") is None and cache.get("small") is not None


def test_replacing_and_discarding_keep_the_weight_right() -> None:
    cache: LRU[str, bytes] = LRU(16, len)
    cache.put("a", b"x" * 2)
    cache.put("a", b"y" * 2)  # replaced, not counted twice
    cache.discard("a")
    cache.discard("missing")
    for i in range(8):
        cache.put(str(i), b"z" * 2)
    assert all(cache.get(str(i)) == b"zz" for i in range(8))


def test_the_largest_item_kept_can_be_raised() -> None:
    cache: LRU[str, bytes] = LRU(80, len, largest=40)
    cache.put("big", b"x" * 40)
    assert cache.get("big") is not None


def test_a_memo_makes_each_value_once_and_empties_when_full() -> None:
    made: list[int] = []

    def square(n: int) -> int:
        made.append(n)
        return n * n

    memo = Memo(square, limit=3)
    assert [memo[2], memo[2], memo[3], memo[4]] == [4, 4, 9, 16]
    assert made == [2, 3, 4]
    assert memo[5] == 25 and dict(memo) == {5: 25}  # full: emptied, then kept the new one
