"""Documents that cannot be changed: what a cache shares between requests.

`freeze(value)` returns the same data as `FrozenDict`s and `FrozenList`s, subclasses of
dict and list (so JSON, the YAML writer and every reader take them as they are) whose
methods that would change them raise TypeError. A container met twice (a YAML alias) stays
one container. Readers that build a changed document copy the containers they change
(`gitops.normalize` copies the top level and `metadata`).
"""

from __future__ import annotations

from typing import Any, NoReturn


def _refuse(self: object, *args: object, **kwargs: object) -> NoReturn:
    raise TypeError(f"a {type(self).__name__} is shared between requests: copy it to change it")


class FrozenDict(dict[Any, Any]):
    __slots__ = ()
    __setitem__ = __delitem__ = __ior__ = _refuse
    clear = pop = popitem = setdefault = update = _refuse

    def __reduce__(self) -> tuple[type[dict[Any, Any]], tuple[dict[Any, Any]]]:
        return dict, (dict(self),)  # a copy (copy, pickle) is an ordinary dict


class FrozenList(list[Any]):
    __slots__ = ()
    __setitem__ = __delitem__ = __iadd__ = __imul__ = _refuse
    append = extend = insert = remove = pop = clear = sort = reverse = _refuse

    def __reduce__(self) -> tuple[type[list[Any]], tuple[list[Any]]]:
        return list, (list(self),)


DICTS = (dict, FrozenDict)  # the exact types a document's mappings have
LISTS = (list, FrozenList)


def freeze(value: Any) -> Any:
    """`value` with every dict and list frozen (new containers; scalars are shared)."""
    return _freeze(value, {})


def _freeze(value: Any, done: dict[int, Any]) -> Any:
    kind = type(value)
    if kind is not dict and kind is not list:
        return value
    found = done.get(id(value))
    if found is not None:
        return found
    if kind is dict:
        frozen_dict = FrozenDict()
        done[id(value)] = frozen_dict
        dict.update(frozen_dict, ((key, _freeze(item, done)) for key, item in value.items()))
        return frozen_dict
    frozen_list = FrozenList()
    done[id(value)] = frozen_list
    list.extend(frozen_list, (_freeze(item, done) for item in value))
    return frozen_list
