"""Defaults and derived values, as pure functions of the plain input data.

validate uses them to check what the model will compute; model uses them to compute it.
"""

from __future__ import annotations

import ipaddress
from typing import Any

ROLES = ("controller", "worker")
RESOURCE_KEYS = ("cores", "sockets", "memory", "disk_size", "cpu_type")
ROLE_DEFAULTS: dict[str, Any] = {
    "cores": 4,
    "sockets": 1,
    "memory": 8192,
    "disk_size": 100,
    "cpu_type": "host",
}
# Talos Linux minimum requirements per role.
TALOS_MINIMUMS = {
    "controller": {"cores": 2, "memory": 2048, "disk_size": 10},
    "worker": {"cores": 1, "memory": 1024, "disk_size": 10},
}

CLUSTER_DEFAULTS: dict[str, Any] = {
    "node_dns_servers": ["1.1.1.1", "1.0.0.1"],
    "node_vlan_tag": None,
    "node_mtu": 1500,
    "cluster_api_port": 6443,
    "cluster_pod_cidr": "10.42.0.0/16",
    "cluster_svc_cidr": "10.43.0.0/16",
    "proxmox_insecure": False,
    "proxmox_storage": "local-zfs",
    "proxmox_iso_storage": "local",
    "proxmox_bridge": "vmbr0",
    "proxmox_ssh_username": "root",
    "talos_extensions": ["siderolabs/qemu-guest-agent"],
    "talos_extra_kernel_args": [],
    "talos_secureboot": True,
    "talos_platform": "nocloud",
    "talos_arch": "amd64",
    "talos_template_vmid": 9000,
    "vm_id_base": 100,
    "provisioners": ["packer", "tofu"],
    "capi_namespace": "default",
}

NODE_DEFAULTS: dict[str, Any] = {"disk": "/dev/sda", "tags": []}


def network(cluster: dict[str, Any]) -> ipaddress.IPv4Network | None:
    try:
        return ipaddress.IPv4Network(cluster["node_cidr"], strict=False)
    except (KeyError, TypeError, ValueError):
        return None


def gateway(cluster: dict[str, Any]) -> str | None:
    if isinstance(cluster.get("node_default_gateway"), str):
        return str(cluster["node_default_gateway"])
    net = network(cluster)
    if net is None or net.num_addresses < 4:
        return None
    return str(net.network_address + 1)


def role_of(node: dict[str, Any]) -> str:
    return "controller" if node.get("controller") is True else "worker"


def resources(cluster: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    """cores/sockets/memory/disk_size/cpu_type of a node: node > vm_defaults[role] > built-in."""
    defaults = cluster.get("vm_defaults") or {}
    role_defaults = defaults.get(role_of(node)) or {} if isinstance(defaults, dict) else {}
    out = {}
    for key in RESOURCE_KEYS:
        if node.get(key) is not None:
            out[key] = node[key]
        elif isinstance(role_defaults, dict) and role_defaults.get(key) is not None:
            out[key] = role_defaults[key]
        else:
            out[key] = ROLE_DEFAULTS[key]
    return out


def vm_id(cluster: dict[str, Any], node: dict[str, Any]) -> int | None:
    """The node's VM ID: explicit, else vm_id_base + host number of its address in node_cidr.

    The host number depends only on the node's own address, so removing another node never
    renumbers this one (the design notes' 100 + index(...) did).
    """
    if isinstance(node.get("vm_id"), int) and not isinstance(node.get("vm_id"), bool):
        return int(node["vm_id"])
    net = network(cluster)
    base = cluster.get("vm_id_base", CLUSTER_DEFAULTS["vm_id_base"])
    try:
        address = ipaddress.IPv4Address(node["address"])
    except (KeyError, TypeError, ValueError):
        return None
    if net is None or address not in net or not isinstance(base, int):
        return None
    return int(base) + int(address) - int(net.network_address)
