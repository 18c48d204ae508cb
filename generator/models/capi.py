"""Derived values for the capi templates, available as context["capi"].

Cluster API describes machines per role, not per node: the control plane has one
ProxmoxMachineTemplate (TalosControlPlane takes exactly one), and workers get one
MachineDeployment per distinct shape. How nodes.yaml maps onto that:

- controllers: one template; where per-node overrides differ, the largest value of each
  resource wins (cores, sockets, memory, disk size), tags are the union, and the install disk
  is the one most controllers use (ties: alphabetical).
- workers: nodes with the same shape (cores, sockets, memory, disk size, install disk, tags)
  share one MachineDeployment whose replicas are their count. The group of nodes that match
  vm_defaults.worker exactly is `<cluster>-workers`; every other group is named after what
  differs from the defaults, so its name survives adding or removing other groups.
- placement: a template's allowedNodes are the PVE nodes its nodes name (proxmox_node); CAPMOX
  spreads the machines over them. Addresses come from one pool of all planned addresses, in
  no particular order; node names, MACs and VM IDs are CAPI's, not nodes.yaml's.
- cpu_type has no CAPMOX field: the VMs keep the CPU type of the template VM.
- Machine templates and TalosConfigTemplates are named `<owner>-<hash of their spec>`: CAPI
  treats templates as immutable (CAPMOX rejects a changed bootVolume outright), so a changed
  spec is a new template and the owner rolls its machines over to it.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from generator import derive

# The boot disk of the template VM that the packer/tofu/ansible paths create.
BOOT_DISK = "scsi0"
NIC_MODEL = "virtio"
# CAPMOX: memoryMiB must be a multiple of 8.
MEMORY_STEP_MIB = 8
# Fewest controllers that keep etcd quorum while one of them is being replaced.
SAFE_SCALE_IN_REPLICAS = 3
# Kubernetes object names here are also label values (cluster.x-k8s.io/deployment-name).
MAX_NAME = 63
_NOT_DNS = re.compile(r"[^a-z0-9-]+")


def _digest(value: Any, length: int = 8) -> str:
    canonical = json.dumps(_plain(value), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:length]


def _plain(value: Any) -> Any:
    """The frozen model (MappingProxyType, tuples) as JSON-able dicts and lists."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def dns_label(text: str) -> str:
    """text as a DNS-1123 label; too long a label keeps its start and gets a hash suffix."""
    label = _NOT_DNS.sub("-", text.lower()).strip("-")
    label = re.sub(r"-{2,}", "-", label)
    if len(label) <= MAX_NAME and label:
        return label
    suffix = _digest(text)
    return f"{label[: MAX_NAME - len(suffix) - 1].rstrip('-')}-{suffix}".lstrip("-")


def template_name(owner: str, spec: Any) -> str:
    """`<owner>-<hash of spec>`, at most 63 characters, the hash always kept whole."""
    suffix = _digest(spec)
    return f"{owner[: MAX_NAME - len(suffix) - 1].rstrip('-')}-{suffix}"


def address_ranges(addresses: Iterable[str]) -> list[str]:
    """Sorted IPv4 addresses, consecutive runs folded into CAPMOX's `first-last` form."""
    ips = sorted({ipaddress.IPv4Address(a) for a in addresses})
    out: list[str] = []
    start = prev = None
    for ip in [*ips, None]:
        if ip is not None and prev is not None and int(ip) == int(prev) + 1:
            prev = ip
            continue
        if start is not None and prev is not None:
            out.append(str(start) if start == prev else f"{start}-{prev}")
        start = prev = ip
    return out


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
) -> dict[str, Any]:
    """The values of one ProxmoxMachineTemplate spec.template.spec."""
    network: dict[str, Any] = {
        "bridge": base["proxmox_bridge"],
        "model": NIC_MODEL,
        "vlan": base["node_vlan_tag"],
        "mtu": base["node_mtu"],
    }
    return {
        "source_node": base["proxmox_node"],
        "template_id": base["talos_template_vmid"],
        "storage": base["proxmox_storage"],
        "allowed_nodes": sorted(set(allowed_nodes)),
        "sockets": sockets,
        "cores": cores,
        "memory_mib": _memory_mib(memory),
        "boot_disk": BOOT_DISK,
        "disk_gb": disk_size,
        "network": network,
        "tags": sorted(set(tags)),
    }


def _install_patches(base: Mapping[str, Any], disk: str) -> list[dict[str, Any]]:
    return [
        {"op": "add", "path": "/machine/install/disk", "value": disk},
        {
            "op": "add",
            "path": "/machine/install/image",
            "value": base["schematic"]["installer_image"],
        },
    ]


def _most_common(values: Iterable[str]) -> str:
    counts = Counter(values)
    return min(counts, key=lambda v: (-counts[v], v))


def _control_plane(base: Mapping[str, Any], cluster: str) -> dict[str, Any]:
    nodes = list(base["controllers"])
    machine = _machine(
        base,
        cores=max(n["cores"] for n in nodes),
        sockets=max(n["sockets"] for n in nodes),
        memory=max(n["memory"] for n in nodes),
        disk_size=max(n["disk_size"] for n in nodes),
        tags=[t for n in nodes for t in n["tags"]],
        allowed_nodes=[n["proxmox_node"] for n in nodes],
    )
    patches = [
        *_install_patches(base, _most_common(n["disk"] for n in nodes)),
        # Talos floats the API VIP between the controllers on their (only) physical NIC;
        # addresses come from CAPMOX's cloud-init network config, so DHCP stays off.
        {
            "op": "add",
            "path": "/machine/network",
            "value": {
                "interfaces": [
                    {
                        "deviceSelector": {"physical": True},
                        "dhcp": False,
                        "vip": {"ip": base["cluster_api_addr"]},
                    }
                ]
            },
        },
    ]
    name = dns_label(f"{cluster}-control-plane")
    return {
        "name": name,
        "replicas": len(nodes),
        "max_surge": _control_plane_surge(len(nodes)),
        "nodes": [n["name"] for n in nodes],
        "machine": machine,
        "machine_template": template_name(name, machine),
        "config_patches": patches,
    }


def _control_plane_surge(replicas: int) -> int:
    """The IP pool holds exactly the planned addresses, so a machine created before the old
    one is deleted waits for an address forever. From 3 controllers up, replacing one at a
    time keeps etcd quorum; below that deleting first would lose it, so those surge (and a
    rollout needs one spare address, see the README)."""
    return 0 if replicas >= SAFE_SCALE_IN_REPLICAS else 1


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
        "disk": derive.NODE_DEFAULTS.get("disk", "/dev/sda"),
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
        tokens.append(_digest(shape))  # only tags missing from the default set differ
    return tokens


def _worker_groups(base: Mapping[str, Any], cluster: str) -> list[dict[str, Any]]:
    default = _default_worker_shape(base)
    groups: dict[str, list[Mapping[str, Any]]] = {}
    shapes: dict[str, dict[str, Any]] = {}
    for node in base["workers"]:
        shape = _shape(node)
        key = json.dumps(shape, sort_keys=True)
        groups.setdefault(key, []).append(node)
        shapes[key] = shape
    names = {
        key: dns_label("-".join([cluster, "workers", *_deviation_tokens(shapes[key], default)]))
        for key in groups
    }
    # Sanitising tags can make two readable names equal: fall back to the shape's hash.
    clashes = {n for n, c in Counter(names.values()).items() if c > 1}
    for key, name in names.items():
        if name in clashes:
            names[key] = template_name(f"{cluster}-workers", shapes[key])
    out = []
    for key, nodes in groups.items():
        shape, name = shapes[key], names[key]
        machine = _machine(
            base,
            cores=shape["cores"],
            sockets=shape["sockets"],
            memory=shape["memory"],
            disk_size=shape["disk_size"],
            tags=shape["tags"],
            allowed_nodes=[n["proxmox_node"] for n in nodes],
        )
        patches = _install_patches(base, shape["disk"])
        out.append(
            {
                "name": name,
                "replicas": len(nodes),
                "nodes": [n["name"] for n in nodes],
                "machine": machine,
                "machine_template": template_name(name, machine),
                "config_patches": patches,
                "config_template": template_name(name, patches),
            }
        )
    return sorted(out, key=lambda g: g["name"])


def build(base: Mapping[str, Any]) -> dict[str, Any]:
    cluster = dns_label(base["cluster_name"])
    namespace = base["capi_namespace"]
    secret = dns_label(f"{base['cluster_name']}-proxmox-credentials")
    workers = _worker_groups(base, cluster)
    control_plane = _control_plane(base, cluster)
    return {
        "namespace": namespace,
        "cluster_name": cluster,
        "proxmox_cluster_name": cluster,
        "credentials_secret": secret,
        "kubernetes_version": f"v{base['kubernetes_version']}",
        "talos_version": f"v{base['talos_version']}",
        "addresses": address_ranges(n["address"] for n in base["nodes"]),
        "control_plane": control_plane,
        "worker_groups": workers,
        # Owners of a ProxmoxMachineTemplate: the control plane, then each worker group.
        "machine_owners": [control_plane, *workers],
        "worker_replicas": sum(g["replicas"] for g in workers),
        "delete_prompt": f"Delete Cluster API cluster {cluster} and all its VMs?",
    }
