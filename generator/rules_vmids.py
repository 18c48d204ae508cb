"""Rules on VM IDs, explicit and derived (vm_id_base + host number): unique, never a Talos
template's, within the Proxmox maximum, and kept when tofu_migrate adopts existing VMs."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from generator import constants, derive, talos_templates
from generator.errors import Diagnostic
from generator.load import Document, PathPart
from generator.rulekit import as_int as _int
from generator.rulekit import indexed_nodes as _nodes
from generator.rulekit import owner as _owner
from generator.rulekit import used_by
from generator.rulekit import where as _where

MAX_VM_ID = constants.MAX_VM_ID


def _vm_id_text(cluster: Document, node: dict[str, Any], value: int) -> str:
    if "vm_id" in node:
        return f"VM ID {value}"
    base = cluster.data.get("vm_id_base", derive.CLUSTER_DEFAULTS["vm_id_base"])
    return f"derived VM ID {value} (vm_id_base {base} + host number {value - base})"


def vm_ids(cluster: Document, nodes: Document) -> Iterator[Diagnostic]:
    """Explicit and derived VM IDs are unique and never the template's VM ID."""
    template = _int(
        cluster.data.get("talos_template_vmid", derive.CLUSTER_DEFAULTS["talos_template_vmid"])
    )
    if "talos_template_vmid" in cluster.data:
        template_text = f"talos_template_vmid ({_where(cluster, ['talos_template_vmid'])})"
    else:
        template_text = f"the default talos_template_vmid {template}"
    # The templates of other (schematic, SecureBoot) pairs than the cluster's.
    others = talos_templates.vmids(cluster.data, [n for _, n in _nodes(nodes)])
    seen: dict[int, tuple[int, dict[str, Any]]] = {}
    for i, node in _nodes(nodes):
        value = derive.vm_id(cluster.data, node)
        if value is None:
            continue
        # A derived ID points at the node's address, the value it is computed from.
        key = "vm_id" if "vm_id" in node else "address"
        path: list[PathPart] = ["nodes", i, key]
        what = f"{_vm_id_text(cluster, node, value)} of {_owner(node, i)}"
        fix = "set vm_id" if key == "address" else "choose another vm_id"
        if value == template:
            yield nodes.diag(
                path,
                f"{what} is {template_text}, the VM ID of the Talos template",
                f"{fix}, or change talos_template_vmid",
            )
        elif value in others:
            yield nodes.diag(
                path,
                f"{what} is the VM ID of the Talos template {others[value]} (talos_template_vmid "
                f"+ {value - (template or 0)}, for the nodes with that schematic)",
                f"{fix}, or change talos_template_vmid",
            )
        elif value in seen:
            j, first = seen[value]
            first_key = "vm_id" if "vm_id" in first else "address"
            if key == first_key == "address":
                continue  # both derived from one address: the duplicate address is the error
            yield nodes.diag(path, f"{what} {used_by(nodes, j, first, first_key)}", fix)
        else:
            seen[value] = (i, node)


def vm_id_range(cluster: Document, nodes: Document) -> Iterator[Diagnostic]:
    for i, node in _nodes(nodes):
        if "vm_id" in node:
            continue
        derived = derive.vm_id(cluster.data, node)
        if derived is not None and derived > MAX_VM_ID:
            yield nodes.diag(
                ["nodes", i, "address"],
                f"{_vm_id_text(cluster, node, derived)} of {_owner(node, i)} "
                f"is above the Proxmox maximum {MAX_VM_ID}",
                "set vm_id or lower vm_id_base",
            )


def migration(cluster: Document, nodes: Document) -> Iterator[Diagnostic]:
    """tofu_migrate adopts existing VMs: a VM keeps its resource only with its current VM ID
    (bpg replaces a VM whose vm_id changes), and moving clustergen's address onto itself is
    no move."""
    given = cluster.data.get("tofu_migrate") if isinstance(cluster.data, dict) else None
    if not isinstance(given, dict):
        return
    if given.get("vm_address") == "proxmox_virtual_environment_vm.node":
        yield cluster.diag(
            ["tofu_migrate", "vm_address"],
            "is clustergen's own address: there is nothing to move",
            "name the earlier configuration's VM resource, or remove tofu_migrate",
        )
    for index, node in _nodes(nodes):
        if "vm_id" in node:
            continue
        computed = derive.vm_id(cluster.data, node)
        yield nodes.diag(
            ["nodes", index],
            "no vm_id while tofu_migrate adopts existing VMs: this VM is replaced unless "
            f"{computed} (vm_id_base + host number) is its current ID",
            "set vm_id to the VM's current ID (`qm list`); ignore this for a new node",
            severity="warning",
        )
