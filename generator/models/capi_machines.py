"""Which nodes share a Cluster API machine template, and its values: the Cluster API twin of
each Talos template, the control plane's one machine template, and one MachineDeployment per
worker group of the same shape, (schematic, SecureBoot) pair and MTU (see models/capi.py for
how nodes.yaml maps onto those)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from generator import constants, derive, rules_provisioning, talos_templates
from generator.models.capi_names import digest, dns_label, template_name

# The boot disk of the template VM that the packer/tofu/ansible paths create.
BOOT_DISK = constants.BOOT_DISK

NIC_MODEL = constants.NIC_MODEL

# CAPMOX: memoryMiB must be a multiple of 8.
MEMORY_STEP_MIB = 8

GUEST_AGENT = constants.GUEST_AGENT

PATCH_FORMAT = "strategic-1"


def _memory_mib(memory: int) -> int:
    return -(-memory // MEMORY_STEP_MIB) * MEMORY_STEP_MIB


def _machine(
    base: Mapping[str, Any],
    *,
    cores: int,
    sockets: int,
    memory: int,
    disk_size: int,
    tags: Sequence[str],
    allowed_nodes: Sequence[str],
    template_id: int,
    mtu: int,
) -> dict[str, Any]:
    """The values of one ProxmoxMachineTemplate spec.template.spec."""
    network: dict[str, Any] = {
        "bridge": base["proxmox_bridge"],
        "model": NIC_MODEL,
        "vlan": base["node_vlan_tag"],
        "mtu": mtu,
    }
    return {
        "source_node": base["proxmox_node"],
        "template_id": template_id,
        "storage": base["proxmox_storage"],
        "allowed_nodes": sorted(set(allowed_nodes)),
        "sockets": sockets,
        "cores": cores,
        "memory_mib": _memory_mib(memory),
        "boot_disk": BOOT_DISK,
        "disk_gb": disk_size,
        "network": network,
        "tags": sorted(set(tags)),
        # Without the extension nothing answers, and CAPMOX would wait for the agent forever.
        "skip_guest_agent": GUEST_AGENT not in base["talos_extensions"],
    }


def _install(node: Mapping[str, Any], disk: str) -> dict[str, Any]:
    """machine.install of the v1alpha1 patch: the disk and the installer of the node's
    (schematic, SecureBoot) pair."""
    return {"disk": disk, "image": node["installer_image"]}


def twins(base: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The Cluster API template of each Talos template: the same image without a cloud-init
    drive (CAPMOX attaches its own NoCloud ISO), with the VM ID talos_templates.twin_vmid
    gives it, in the order of base["talos_templates"]."""
    templates = base["talos_templates"]
    return [
        {
            "template_vmid": t["vmid"],
            "vmid": talos_templates.twin_vmid(
                t["vmid"], t["default"], len(templates) == 1, base["talos_capi_template_vmid"]
            ),
            "name": f"{t['name']}{rules_provisioning.CAPI_SUFFIX}",
            "nodes": list(t["nodes"]),
            "schematic_id": t["schematic"]["id"],
            "secureboot": t["secureboot"],
            # The cluster's pair (or the only one): its machines' names carry no image token.
            "primary": t["default"] or len(templates) == 1,
        }
        for t in templates
    ]


Twins = Mapping[int, Mapping[str, Any]]


def _twin_of(by_template: Twins, node: Mapping[str, Any]) -> Mapping[str, Any]:
    """The Cluster API template of the node's (schematic, SecureBoot) pair."""
    return by_template[node["template_vmid"]]


def _most_common(values: Iterable[str]) -> str:
    counts = Counter(values)
    return min(counts, key=lambda v: (-counts[v], v))


def control_plane(base: Mapping[str, Any], cluster: str, by_template: Twins) -> dict[str, Any]:
    nodes = list(base["controllers"])
    # validate: every controller has one (schematic, SecureBoot) pair and one MTU.
    first = nodes[0]
    machine = _machine(
        base,
        cores=max(n["cores"] for n in nodes),
        sockets=max(n["sockets"] for n in nodes),
        memory=max(n["memory"] for n in nodes),
        disk_size=max(n["disk_size"] for n in nodes),
        tags=[t for n in nodes for t in n["tags"]],
        allowed_nodes=[n["proxmox_node"] for n in nodes],
        template_id=_twin_of(by_template, first)["vmid"],
        mtu=first["mtu"],
    )
    name = dns_label(f"{cluster}-control-plane")
    return {
        "name": name,
        "replicas": len(nodes),
        "max_surge": _control_plane_surge(len(nodes), len(base["capi_spare_addresses"])),
        "nodes": [n["name"] for n in nodes],
        "machine": machine,
        "machine_template": template_name(name, machine),
        "install": _install(first, _most_common(n["disk"] for n in nodes)),
        "template": _twin_of(by_template, first)["name"],
        # Talos floats the API VIP between the controllers on their one NIC (CAPMOX's
        # nocloud network config gives it its static address).
        "vip": base["cluster_api_addr"],
    }


def _control_plane_surge(replicas: int, spares: int) -> int:
    """A machine created before the old one is deleted needs a free pool address. Below 3
    controllers deleting first would lose etcd quorum, so those always surge (validate
    demands a spare address); from 3 up they surge only when the pool has a spare."""
    return 1 if replicas < constants.SAFE_SCALE_IN_REPLICAS or spares > 0 else 0


def _shape(node: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "cores": node["cores"],
        "sockets": node["sockets"],
        "memory": node["memory"],
        "disk_size": node["disk_size"],
        "disk": node["disk"],
        "tags": sorted(node["tags"]),
    }


def _default_worker_shape(base: Mapping[str, Any]) -> dict[str, Any]:
    defaults = base["vm_defaults"]["worker"]
    return {
        "cores": defaults["cores"],
        "sockets": defaults["sockets"],
        "memory": defaults["memory"],
        "disk_size": defaults["disk_size"],
        "disk": derive.NODE_DEFAULTS.get("disk", constants.TARGET_DISK),
        "tags": sorted({base["cluster_name"], "worker"}),
    }


def _deviation_tokens(shape: Mapping[str, Any], default: Mapping[str, Any]) -> list[str]:
    """What sets a worker shape apart from vm_defaults.worker, as readable name parts."""
    tokens = [t for t in shape["tags"] if t not in default["tags"]]
    units = {"cores": "c", "sockets": "s", "memory": "m", "disk_size": "g"}
    tokens += [f"{shape[k]}{u}" for k, u in units.items() if shape[k] != default[k]]
    if shape["disk"] != default["disk"]:
        tokens.append(shape["disk"].removeprefix("/dev/"))
    if not tokens and shape != default:
        tokens.append(digest(shape))  # only tags missing from the default set differ
    return tokens


def _image_tokens(
    base: Mapping[str, Any], by_template: Twins, node: Mapping[str, Any]
) -> dict[str, Any]:
    """What sets a worker's image and MTU apart from the cluster's, as {name part: value};
    empty for the cluster's pair (or the only one) and node_mtu, so a cluster of one image
    keeps the names it always had."""
    out: dict[str, Any] = {}
    twin = _twin_of(by_template, node)
    if not twin["primary"]:
        sb = talos_templates.SECUREBOOT_SUFFIX if twin["secureboot"] else ""
        out[f"{twin['schematic_id'][: talos_templates.NAME_ID_CHARS]}{sb}"] = twin["vmid"]
    if node["mtu"] != base["node_mtu"]:
        out[f"mtu{node['mtu']}"] = node["mtu"]
    return out


def worker_groups(
    base: Mapping[str, Any], cluster: str, by_template: Twins
) -> list[dict[str, Any]]:
    """One MachineDeployment per distinct worker shape, (schematic, SecureBoot) pair and MTU."""
    default = _default_worker_shape(base)
    groups: dict[str, list[Mapping[str, Any]]] = {}
    shapes: dict[str, dict[str, Any]] = {}
    idents: dict[str, dict[str, Any]] = {}
    for node in base["workers"]:
        shape = _shape(node)
        extra = _image_tokens(base, by_template, node)
        # The shape alone when the image and MTU are the cluster's: the names stay as before.
        ident = {**shape, "image": extra} if extra else shape
        key = json.dumps(ident, sort_keys=True)
        groups.setdefault(key, []).append(node)
        shapes[key] = shape
        idents[key] = ident
    names = {
        key: dns_label(
            "-".join(
                [
                    cluster,
                    "workers",
                    *_deviation_tokens(shapes[key], default),
                    *idents[key].get("image", {}),
                ]
            )
        )
        for key in groups
    }
    # Sanitising tags can make two readable names equal: fall back to the group's hash.
    clashes = {n for n, c in Counter(names.values()).items() if c > 1}
    for key, name in names.items():
        if name in clashes:
            names[key] = template_name(f"{cluster}-workers", idents[key])
    out = []
    for key, nodes in groups.items():
        shape, name, first = shapes[key], names[key], nodes[0]
        twin = _twin_of(by_template, first)
        machine = _machine(
            base,
            cores=shape["cores"],
            sockets=shape["sockets"],
            memory=shape["memory"],
            disk_size=shape["disk_size"],
            tags=shape["tags"],
            allowed_nodes=[n["proxmox_node"] for n in nodes],
            template_id=twin["vmid"],
            mtu=first["mtu"],
        )
        install = _install(first, shape["disk"])
        # What the TalosConfigTemplate spec is made of (cluster.yaml.j2 writes the patches
        # around these values; bump PATCH_FORMAT when it changes them): a changed spec is a
        # new template, which rolls the MachineDeployment.
        config = {"install": install, "talos": base["talos_version"], "format": PATCH_FORMAT}
        out.append(
            {
                "name": name,
                "replicas": len(nodes),
                "nodes": [n["name"] for n in nodes],
                "machine": machine,
                "machine_template": template_name(name, machine),
                "install": install,
                "config_template": template_name(name, config),
                "template": twin["name"],
            }
        )
    return sorted(out, key=lambda g: g["name"])
