"""A host's nodes.yaml in clustergen's keys: clustergen's own node keys, the host keys
that mean the same, the install disk, the per-node image and MTU with the host's
defaults, talos-cluster's vm_* keys and tags, and VM IDs for the nodes without one."""

from __future__ import annotations

from typing import Any

from generator.dialects import TALOS_CLUSTER
from generator.dialects.hostdefaults import (
    HOST_MTU_DEFAULT,
    HOST_SECUREBOOT_DEFAULT,
    NODE_SAME,
    TC_NODE,
)
from generator.dialects.work import P, Work, own_keys


def nodes(work: Work) -> tuple[list[dict[str, Any]], dict[P, P]]:
    own = own_keys("nodes")
    raw = work.nodes_doc.data.get("nodes") or []
    tags = (work.c.get("proxmox_vm_advanced") or {}).get("tags") or []
    result: list[dict[str, Any]] = []
    paths: dict[P, P] = {}
    for index, node in enumerate(raw):
        if not isinstance(node, dict):
            result.append(node)
            continue
        item: dict[str, Any] = {}
        for key, value in node.items():
            if key in own and key not in work.host_node:
                item[key] = value
        for key in NODE_SAME:
            if key in node:
                item[key] = node[key]
        disk(work, index, node, item)
        per_node(work, index, node, item, paths)
        if work.dialect == TALOS_CLUSTER:
            for host, mine in TC_NODE.items():
                if host not in node:
                    continue
                if mine in node:
                    work.error(
                        work.nodes_doc,
                        ["nodes", index, mine],
                        f"{mine} and {host} both given",
                        f"keep {host} (talos-cluster's key)",
                    )
                item[mine] = node[host]
                paths[("nodes", index, mine)] = ("nodes", index, host)
            if tags:
                item["tags"] = sorted({*tags, *item.get("tags", [])})
        talos_only(work, index, node)
        result.append(item)
    return result, paths


def per_node(
    work: Work, index: int, node: dict[str, Any], item: dict[str, Any], paths: dict[P, P]
) -> None:
    """The host's per-node schematic_id, secureboot and mtu, with the host's defaults."""
    for host, mine, default in (
        ("schematic_id", "talos_schematic_id", None),
        ("secureboot", "talos_secureboot", HOST_SECUREBOOT_DEFAULT),
        ("mtu", "mtu", HOST_MTU_DEFAULT),
    ):
        if host not in work.host_node:
            continue
        value = node.get(host, default)
        if value is None:
            continue
        item[mine] = value
        paths[("nodes", index, mine)] = ("nodes", index, host) if host in node else ("nodes", index)


def disk(work: Work, index: int, node: dict[str, Any], item: dict[str, Any]) -> None:
    given = node.get("disk")
    if not isinstance(given, str):
        return
    if given.startswith("/"):
        item["disk"] = given
    elif work.capi:
        # A serial is a talconfig installDiskSelector; CAPI's install.disk wants a path.
        work.error(
            work.nodes_doc,
            ["nodes", index, "disk"],
            f"disk {given!r} is a disk serial: clustergen's CAPI Talos configuration "
            "installs to a device path only",
            "give the device path, e.g. /dev/sda",
        )


def talos_only(work: Work, index: int, node: dict[str, Any]) -> None:
    """Host keys of the Talos configuration (talhelper's job, not clustergen's)."""
    if not work.capi:
        return
    for key in ("encrypt_disk", "kernel_modules"):
        if node.get(key):
            work.warn(
                work.nodes_doc,
                ["nodes", index, key],
                f"clustergen's CAPI Talos configuration does not honour {key}",
                "the host's talconfig does; CAPI-made nodes go without it",
            )


def pick_vm_ids(cluster: dict[str, Any], nodes: list[dict[str, Any]]) -> None:
    """talos-cluster: a node without vm_id is Proxmox's to number. clustergen numbers it
    (stable IDs), as its own dialect does (vm_id_base + host number), stepping over every ID
    another node, a template or (with capi) a Cluster API twin holds, so an explicit vm_id
    never clashes with a derived one."""
    from generator import derive, talos_templates

    taken = {n["vm_id"] for n in nodes if isinstance(n, dict) and isinstance(n.get("vm_id"), int)}
    taken.update(talos_templates.vmids(cluster, nodes))
    taken.update(talos_templates.twin_vmids(cluster, nodes))
    for node in nodes:
        if not isinstance(node, dict) or "vm_id" in node:
            continue
        candidate = derive.vm_id(cluster, node)
        if candidate is None:
            continue
        while candidate in taken:
            candidate += 1
        node["vm_id"] = candidate
        taken.add(candidate)
