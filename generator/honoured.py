"""Which outputs honour vm_advanced and the per-node startup keys, and warnings where not.

OpenTofu sets every one of them on each VM. The Packer template keeps its fixed hardware,
and the VMs that Ansible (proxmox_kvm clone) and CAPI (CAPMOX clone) make inherit the
template's, so a value there that differs from clustergen's default would be silently lost.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from generator.errors import Diagnostic
from generator.load import Document
from generator.provisioners import REGISTRY

# Clone-based paths and what they take from the template instead of vm_advanced.
CLONED = tuple(p.name for p in REGISTRY if p.clones_template)
STARTUP = ("startup_order", "startup_delay", "shutdown_delay")


def _defaults() -> dict[str, Any]:
    from generator import derive

    value: dict[str, Any] = derive.CLUSTER_DEFAULTS["vm_advanced"]
    return value


def _default_provisioners() -> list[str]:
    from generator import derive

    value: list[str] = derive.CLUSTER_DEFAULTS["provisioners"]
    return value


def check(cluster: Document, nodes: Document) -> Iterator[Diagnostic]:
    data = cluster.data
    advanced = data.get("vm_advanced")
    provisioners = data.get("provisioners") or _default_provisioners()
    if not isinstance(provisioners, list):
        return
    cloned = [p for p in CLONED if p in provisioners]
    if not cloned:
        return
    if isinstance(advanced, dict):
        defaults = _defaults()
        for key, value in sorted(advanced.items()):
            if key == "qemu_agent" or key not in defaults or value == defaults[key]:
                continue
            yield cluster.diag(
                ["vm_advanced", key],
                f"{' and '.join(cloned)} VMs are clones of the Packer template and keep its "
                f"{key} {json.dumps(defaults[key])}; only the OpenTofu VMs get {json.dumps(value)}",
                severity="warning",
            )
    for index, node in enumerate(nodes.data.get("nodes") or []):
        if not isinstance(node, dict):
            continue
        for key in STARTUP:
            if node.get(key) is not None:
                yield nodes.diag(
                    ["nodes", index, key],
                    f"{' and '.join(cloned)} do not set {key}; only the OpenTofu VMs get it",
                    severity="warning",
                )
