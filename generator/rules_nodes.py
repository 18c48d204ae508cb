"""Rules on the node list: unique names, addresses and MACs, an odd number of
controllers, unicast MACs and the Talos minimums of each role."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from generator import derive
from generator.errors import Diagnostic
from generator.load import Document
from generator.rulekit import as_int as _int
from generator.rulekit import indexed_nodes as _nodes
from generator.rulekit import owner as _owner
from generator.rulekit import used_by


def _unique(nodes: Document, key: str, label: str, hint: str) -> Iterator[Diagnostic]:
    """One diagnostic per repeated value, naming both owners and both lines."""
    seen: dict[Any, tuple[int, dict[str, Any]]] = {}
    for i, node in _nodes(nodes):
        value = node.get(key)
        if value is None or isinstance(value, (dict, list)):
            continue
        if isinstance(value, str):
            value = value.lower()
        if value in seen:
            j, first = seen[value]
            what = f"{label} {node[key]} of {_owner(node, i)}"
            yield nodes.diag(["nodes", i, key], f"{what} {used_by(nodes, j, first, key)}", hint)
        else:
            seen[value] = (i, node)


def uniqueness(cluster: Document, nodes: Document) -> Iterator[Diagnostic]:
    yield from _unique(nodes, "name", "name", "give every node its own name")
    yield from _unique(nodes, "address", "address", "give every node its own address")
    yield from _unique(nodes, "mac_addr", "MAC address", "give every node its own MAC address")


def controllers(cluster: Document, nodes: Document) -> Iterator[Diagnostic]:
    items = _nodes(nodes)
    # A missing or non-boolean controller is the schema's finding; counting would guess.
    if not items or any(not isinstance(n.get("controller"), bool) for _, n in items):
        return
    count = sum(1 for _, n in items if n.get("controller") is True)
    if count == 0:
        yield nodes.diag(
            ["nodes"], "no node has controller: true", "a cluster needs at least one controller"
        )
    elif count % 2 == 0:
        yield nodes.diag(
            ["nodes"],
            f"{count} controllers: an even count adds no etcd fault tolerance",
            f"use {count - 1} or {count + 1}",
            severity="warning",
        )


def macs(cluster: Document, nodes: Document) -> Iterator[Diagnostic]:
    for i, node in _nodes(nodes):
        mac = node.get("mac_addr")
        if not isinstance(mac, str) or len(mac) < 2:
            continue
        try:
            first = int(mac[:2], 16)
        except ValueError:
            continue
        if first & 1:
            fixed = f"{first & 0xFE:02x}{mac[2:]}"
            yield nodes.diag(
                ["nodes", i, "mac_addr"],
                f"{mac} is a multicast MAC address",
                f"did you mean {fixed}?",
            )


def talos_minimums(cluster: Document, nodes: Document) -> Iterator[Diagnostic]:
    defaults = cluster.data.get("vm_defaults")
    if isinstance(defaults, dict):
        for role in derive.ROLES:
            block = defaults.get(role)
            if not isinstance(block, dict):
                continue
            for key, minimum in derive.TALOS_MINIMUMS[role].items():
                value = _int(block.get(key))
                if value is not None and value < minimum:
                    yield cluster.diag(
                        ["vm_defaults", role, key],
                        f"{value} is below the Talos minimum {minimum} for a {role}",
                    )
    for i, node in _nodes(nodes):
        role = derive.role_of(node)
        for key, minimum in derive.TALOS_MINIMUMS[role].items():
            value = _int(node.get(key))
            if value is not None and value < minimum:
                yield nodes.diag(
                    ["nodes", i, key], f"{value} is below the Talos minimum {minimum} for a {role}"
                )
