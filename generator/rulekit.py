"""Helpers shared by the rule modules (rules_*.py): rules see documents that may not have
passed the schema check, so each helper takes what is there and ignores the rest, and
`tolerant` turns a rule's crash on a value of the wrong type into no finding (the schema
check reports that value)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from typing import Any

from generator.errors import Diagnostic
from generator.load import Document, PathPart

# A rule: every problem it finds in (cluster.yaml, nodes.yaml).
Rule = Callable[[Document, Document], Iterator[Diagnostic]]


def as_int(value: Any) -> int | None:
    """value when it is an integer (a bool is not), else None."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def indexed_nodes(nodes: Document) -> list[tuple[int, dict[str, Any]]]:
    """(index in nodes.yaml, node) of every node that is a mapping."""
    items = nodes.data.get("nodes") if isinstance(nodes.data, dict) else None
    if not isinstance(items, list):
        return []
    return [(i, n) for i, n in enumerate(items) if isinstance(n, dict)]


def where(doc: Document, path: list[PathPart]) -> str:
    """file:line:col of path, for messages that name a second place."""
    line, col = doc.locate(path)
    return f"{doc.file}:{line}:{col}"


def owner(node: dict[str, Any], index: int) -> str:
    """nodes[i] (name), for messages that name a node."""
    name = node.get("name")
    return f"nodes[{index}] ({name})" if isinstance(name, str) else f"nodes[{index}]"


def used_by(nodes: Document, index: int, node: dict[str, Any], key: str) -> str:
    """ "is already used by nodes[i] (name) at file:line:col" of the node that had it first."""
    return f"is already used by {owner(node, index)} at {where(nodes, ['nodes', index, key])}"


def tolerant(rule: Rule) -> Rule:
    """Values of the wrong type are the schema check's to report, not a crash here."""

    @functools.wraps(rule)
    def run(cluster: Document, nodes: Document) -> Iterator[Diagnostic]:
        try:
            found = list(rule(cluster, nodes))
        except (KeyError, TypeError, ValueError, AttributeError):
            return iter(())
        return iter(found)

    return run
