"""The rule on cluster.yaml's lists: no value listed twice."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from generator.errors import Diagnostic
from generator.load import Document
from generator.rulekit import where as _where


def _duplicates_in_list(doc: Document, key: str) -> Iterator[Diagnostic]:
    items = doc.data.get(key)
    if not isinstance(items, list):
        return
    first: dict[Any, int] = {}
    for i, item in enumerate(items):
        if isinstance(item, (dict, list)):
            continue
        if item in first:
            yield doc.diag(
                [key, i],
                f"{item} is listed twice (first at {_where(doc, [key, first[item]])})",
                "remove one",
            )
        else:
            first[item] = i


def lists(cluster: Document, nodes: Document) -> Iterator[Diagnostic]:
    for key in ("talos_extensions", "provisioners", "talos_extra_kernel_args", "node_dns_servers"):
        yield from _duplicates_in_list(cluster, key)
