"""Rules on the Cluster API control plane's one machine template: one TalosControlPlane
takes one ProxmoxMachineTemplate, which clones one Talos template and has one network device,
so every controller needs the same (schematic, SecureBoot) pair and the same MTU. Workers may
differ: each of their groups gets a MachineDeployment of its own (models/capi_machines.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from generator import rules_provisioning, talos_templates
from generator.errors import Diagnostic
from generator.load import Document, PathPart
from generator.rulekit import Rule, tolerant
from generator.rulekit import indexed_nodes as _nodes
from generator.rulekit import where as _where
from generator.rules_templates import cluster_values, plan

# A node's own keys that choose its image, in the order a clash points at them.
IMAGE_KEYS = ("talos_secureboot", "talos_schematic_id", "talos_extensions")


def _owner(
    controllers: list[tuple[int, dict[str, Any]]], value: Callable[[int, dict[str, Any]], Any]
) -> tuple[int, dict[str, Any], Any] | None:
    """The controller whose value the control plane takes: the value most controllers have
    (ties: the earliest), set by the first controller that has it."""
    values = [value(i, n) for i, n in controllers]
    if not values:
        return None
    counts: dict[Any, int] = {}
    for v in values:
        counts[v] = counts.get(v, 0) + 1
    chosen = max(counts, key=lambda v: (counts[v], -values.index(v)))
    i, node = controllers[values.index(chosen)]
    return i, node, chosen


def _controllers(nodes: Document) -> list[tuple[int, dict[str, Any]]]:
    return [(i, n) for i, n in _nodes(nodes) if n.get("controller") is True]


def _node_path(node: dict[str, Any], i: int, keys: tuple[str, ...]) -> list[PathPart]:
    """The first of keys the node itself sets (what makes it differ), else its name."""
    key = next((k for k in keys if k in node), "name" if "name" in node else None)
    return ["nodes", i] if key is None else ["nodes", i, key]


def _image_text(template: talos_templates.Template) -> str:
    sb = "with" if template.secureboot else "without"
    return f"schematic {template.image.id} {sb} SecureBoot (template {template.name})"


def capi_control_plane_image(cluster: Document, nodes: Document) -> Iterator[Diagnostic]:
    """One TalosControlPlane takes one machine template, which clones one Talos template: every
    controller needs one (schematic, SecureBoot) pair. Workers may differ (one
    MachineDeployment per pair)."""
    if not rules_provisioning._enabled(cluster, "capi"):
        return
    planned = plan(cluster, nodes)
    if planned is None:
        return
    _, by_node = planned
    controllers = [(i, n) for i, n in _controllers(nodes) if str(n.get("name")) in by_node]
    owner = _owner(controllers, lambda i, n: by_node[str(n.get("name"))].vmid)
    if owner is None:
        return
    j, first, vmid = owner
    wanted = by_node[str(first.get("name"))]
    where = _where(nodes, ["nodes", j])
    for i, node in controllers:
        have = by_node[str(node.get("name"))]
        if have.vmid == vmid:
            continue
        yield nodes.diag(
            _node_path(node, i, IMAGE_KEYS),
            f"controller {node.get('name')} boots {_image_text(have)}, but the CAPI control plane "
            f"boots {_image_text(wanted)} as set by controller {first.get('name')} "
            f"(nodes[{j}], {where}): one TalosControlPlane takes one machine template, so "
            "every controller clones the same Talos template",
            f"give {node.get('name')} the talos_extensions/talos_schematic_id and "
            f"talos_secureboot of {first.get('name')}, or make it a worker (each worker "
            "image gets a MachineDeployment of its own)",
        )


def capi_control_plane_mtu(cluster: Document, nodes: Document) -> Iterator[Diagnostic]:
    """The control plane's one ProxmoxMachineTemplate has one network device, with one MTU:
    every controller needs the same MTU. Workers may differ (one MachineDeployment per MTU)."""
    if not rules_provisioning._enabled(cluster, "capi"):
        return
    default = cluster_values(cluster)["node_mtu"]
    controllers = _controllers(nodes)
    owner = _owner(controllers, lambda i, n: n.get("mtu") or default)
    if owner is None:
        return
    j, first, mtu = owner
    where = _where(nodes, ["nodes", j])
    for i, node in controllers:
        have = node.get("mtu") or default
        if have == mtu:
            continue
        yield nodes.diag(
            _node_path(node, i, ("mtu",)),
            f"controller {node.get('name')} has MTU {have}, but the CAPI control plane's machines "
            f"have MTU {mtu} as set by controller {first.get('name')} (nodes[{j}], {where}): "
            "one TalosControlPlane takes one ProxmoxMachineTemplate, whose network device "
            "has one MTU",
            f"give {node.get('name')} MTU {mtu} (workers may differ: each MTU gets a "
            "MachineDeployment of its own)",
        )


RULES: tuple[Rule, ...] = (tolerant(capi_control_plane_image), tolerant(capi_control_plane_mtu))
