"""talos-cluster's cluster.yaml keys that clustergen spells otherwise: the Proxmox API URL,
disk storage and bridge (each from one of two keys), proxmox_vm_advanced and the
proxmox_vm_*_defaults blocks, and the API token it keeps in cluster.yaml."""

from __future__ import annotations

import re
from typing import Any

from generator.dialects.hostdefaults import (
    API_PATH,
    SECRET_KEYS,
    TC_ADVANCED,
    TC_BRIDGE,
    TC_CPU_TYPE,
    TC_DISK_STORAGE,
    TC_GLOBAL,
    TC_ROLE_BLOCKS,
)
from generator.dialects.work import Out, Work


def talos_cluster(work: Work, out: Out) -> None:
    c = work.c
    # proxmox_api_url carries the API path; clustergen's endpoint is the URL without it.
    api = c.get("proxmox_api_url")
    if isinstance(api, str):
        api = api.rstrip("/")
        api = api[: -len(API_PATH)] if api.endswith(API_PATH) else api
    endpoint = c.get("proxmox_endpoint")
    if isinstance(endpoint, str):
        endpoint = endpoint.rstrip("/")
    one_of(
        work,
        out,
        "proxmox_endpoint",
        [("proxmox_api_url", api), ("proxmox_endpoint", endpoint)],
        "both name the Proxmox VE API",
    )
    if "proxmox_endpoint" not in out.data:
        work.error(
            work.cluster_doc,
            [],
            "no Proxmox VE API: clustergen needs proxmox_api_url (or proxmox_endpoint)",
            'add proxmox_api_url: "https://pve.example:8006/api2/json"',
        )
    advanced = c.get("proxmox_vm_advanced") or {}
    for target, candidates, why, default in (
        (
            "proxmox_storage",
            [
                ("proxmox_disk_storage", c.get("proxmox_disk_storage")),
                ("proxmox_storage", c.get("proxmox_storage")),
            ],
            "both name the VM disk storage",
            TC_DISK_STORAGE,
        ),
        (
            "proxmox_bridge",
            [
                ("proxmox_vm_advanced", advanced.get("network_bridge")),
                ("proxmox_bridge", c.get("proxmox_bridge")),
            ],
            "both name the bridge",
            TC_BRIDGE,
        ),
    ):
        one_of(work, out, target, candidates, why)
        out.data.setdefault(target, default)
    if out.paths.get(("proxmox_bridge",)) == ("proxmox_vm_advanced",):
        out.paths[("proxmox_bridge",)] = ("proxmox_vm_advanced", "network_bridge")
    if "vm_advanced" in c and "proxmox_vm_advanced" in c:
        work.error(
            work.cluster_doc,
            ["vm_advanced"],
            "vm_advanced and proxmox_vm_advanced both given",
            "keep proxmox_vm_advanced (talos-cluster's key)",
        )
    if "vm_advanced" not in c:
        values = {k: advanced.get(k, d) for k, d in TC_ADVANCED.items()}
        out.put("vm_advanced", values, ("proxmox_vm_advanced",))
    vm_defaults(work, out, advanced)
    advanced_tags(work, advanced)
    for key in SECRET_KEYS:
        if isinstance(c.get(key), str):
            work.secrets[key] = c[key]


def one_of(
    work: Work, out: Out, target: str, candidates: list[tuple[str, Any]], where: str
) -> None:
    """target from the first given of several keys; two given that disagree: an error."""
    given = [(k, v) for k, v in candidates if v is not None]
    if not given:
        return
    key, value = given[0]
    for other, other_value in given[1:]:
        if other_value != value:
            work.error(
                work.cluster_doc,
                [other],
                f"{other} {other_value!r} disagrees with {key} {value!r} ({where})",
                f"give {target} in one place",
            )
    out.put(target, value, (key,))


def advanced_tags(work: Work, advanced: dict[str, Any]) -> None:
    """proxmox_vm_advanced.tags become every VM's tags: checked here, at their source."""
    for index, tag in enumerate(advanced.get("tags") or []):
        if not re.fullmatch(r"[a-z0-9_][a-z0-9_+.-]*", tag):
            work.error(
                work.cluster_doc,
                ["proxmox_vm_advanced", "tags", index],
                f"{tag!r} is not a Proxmox tag (a-z 0-9 _ + . -)",
                f"did you mean {tag.lower()!r}?" if tag != tag.lower() else "",
            )


def vm_defaults(work: Work, out: Out, advanced: dict[str, Any]) -> None:
    c = work.c
    host_blocks = ("proxmox_vm_defaults", *TC_ROLE_BLOCKS.values())
    if "vm_defaults" in c and any(b in c for b in host_blocks):
        work.error(
            work.cluster_doc,
            ["vm_defaults"],
            "vm_defaults and proxmox_vm_*_defaults both given",
            "keep talos-cluster's proxmox_vm_defaults and proxmox_vm_{controller,worker}_defaults",
        )
        return
    if "vm_defaults" in c:
        return
    base = c.get("proxmox_vm_defaults") or {}
    roles: dict[str, Any] = {}
    for role, block in TC_ROLE_BLOCKS.items():
        given = c.get(block) or {}
        # global -> role: the role's block wins over proxmox_vm_defaults, which wins over
        # the host's global defaults; nodes override both (see normal_nodes.nodes()).
        roles[role] = {k: given.get(k, base.get(k, d)) for k, d in TC_GLOBAL.items()}
        roles[role]["cpu_type"] = advanced.get("cpu_type", TC_CPU_TYPE)
        for key in TC_GLOBAL:
            src = (block, key) if key in given else ("proxmox_vm_defaults", key)
            out.paths[("vm_defaults", role, key)] = src
        out.paths[("vm_defaults", role, "cpu_type")] = ("proxmox_vm_advanced", "cpu_type")
    out.data["vm_defaults"] = roles
