"""The plain copy of a loaded YAML tree (dict, list, str, int, float, bool, None) that the
stages read, made within a budget: an alias bomb ("billion laughs") is small on disk and
huge when expanded, and counting the values it expands to rejects one in bounded time and
memory."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from generator.errors import Cycle
from generator.inputtext import MAX_BYTES

MAX_VALUES = 200_000
MAX_CHARS = 2 * MAX_BYTES


class Budget:
    """What the plain copy may still produce; an alias bomb exhausts it long before memory."""

    def __init__(self) -> None:
        self.values = MAX_VALUES
        self.chars = MAX_CHARS
        # Containers on the current path: an alias inside its own anchor is a cycle.
        self.active: set[int] = set()

    def spend(self, chars: int = 0) -> None:
        self.values -= 1
        self.chars -= chars
        if self.values < 0 or self.chars < 0:
            raise OverflowError


def to_plain(node: Any, budget: Budget) -> Any:
    """Deep copy into plain dict/list/str/int/float/bool/None, counting every value."""
    if isinstance(node, bool) or node is None:
        budget.spend()
        return node
    if isinstance(node, (Mapping, list)):
        budget.spend()
        if id(node) in budget.active:
            raise Cycle
        budget.active.add(id(node))
        try:
            if isinstance(node, Mapping):
                return {str(k): to_plain(v, budget) for k, v in node.items()}
            return [to_plain(v, budget) for v in node]
        finally:
            budget.active.discard(id(node))
    if isinstance(node, str):
        budget.spend(len(node))
        return str(node)
    budget.spend()
    if isinstance(node, int):
        # ruamel's ScalarBoolean is an int subclass; keep YAML booleans booleans.
        if type(node).__name__ == "ScalarBoolean":
            return bool(node)
        return int(node)
    if isinstance(node, float):
        return float(node)
    return str(node)


_PLAIN_SCALARS = (str, int, float, bool, type(None))


def plain_only(node: Any, budget: Budget) -> Any:
    """to_plain for the safe loader's output, refusing anything the round-trip path would
    turn into a different value (timestamps, sets, binary): those take the slow path."""
    data = to_plain(node, budget)
    stack = [node]
    while stack:
        value = stack.pop()
        if type(value) is dict:
            stack.extend(value.values())
            if not all(type(k) in _PLAIN_SCALARS for k in value):
                raise TypeError("non-plain key")
        elif type(value) is list:
            stack.extend(value)
        elif type(value) not in _PLAIN_SCALARS:
            raise TypeError(f"{type(value).__name__} needs the round-trip loader")
    return data
