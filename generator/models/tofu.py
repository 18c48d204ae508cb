"""Derived values for the tofu templates, available as context["tofu"].

variables.tf declares the variables; terraform.tfvars sets every non-secret one from
`variables` below. Nodes are a map keyed by name, so a node's resource address
(proxmox_virtual_environment_vm.node["<name>"]) and its VM ID (from the model, never from a
list index) do not depend on the other nodes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

# OpenTofu reads TF_VAR_<variable name>; bpg wants the token as "user@realm!name=secret".
TOKEN_VARIABLE = "proxmox_api_token"
# Keys of each node object, in the order of the variable's type and of terraform.tfvars.
NODE_KEYS = (
    "vm_id",
    "proxmox_node",
    "role",
    "description",
    "address",
    "mac_addr",
    "cores",
    "sockets",
    "cpu_type",
    "memory",
    "disk_size",
    "tags",
)
STARTUP_KEYS = ("startup_order", "startup_delay", "shutdown_delay")


def _has_startup(base: Mapping[str, Any]) -> bool:
    return any(n.get(k) is not None for n in base["nodes"] for k in STARTUP_KEYS)


def _node(base: Mapping[str, Any], node: Mapping[str, Any]) -> dict[str, Any]:
    values = {key: node[key] for key in NODE_KEYS if key != "description"}
    values["description"] = (
        f"Talos Linux {node['role']} {node['name']} of cluster {base['cluster_name']}"
    )
    values["tags"] = list(node["tags"])
    out = {key: values[key] for key in NODE_KEYS}
    if base["template_split"]:
        # Nodes of other schematics clone the template of their own (schematic, SecureBoot).
        out["template_vmid"] = node["template_vmid"]
    if base["mtu_split"]:
        out["mtu"] = node["mtu"]
    if _has_startup(base):
        # bpg's startup block on every VM once one has it: order, up_delay, down_delay, where
        # -1 (bpg's default of each) leaves that one to Proxmox.
        out["startup"] = {
            "order": node.get("startup_order") if node.get("startup_order") is not None else -1,
            "up_delay": node.get("startup_delay") if node.get("startup_delay") is not None else -1,
            "down_delay": (
                node.get("shutdown_delay") if node.get("shutdown_delay") is not None else -1
            ),
        }
    return out


def variables(base: Mapping[str, Any]) -> dict[str, Any]:
    """Every non-secret variable with its value, in declaration order."""
    return {
        "proxmox_endpoint": base["proxmox_endpoint"],
        "proxmox_insecure": base["proxmox_insecure"],
        "proxmox_ssh_username": base["proxmox_ssh_username"],
        "proxmox_storage": base["proxmox_storage"],
        "proxmox_bridge": base["proxmox_bridge"],
        "node_vlan_tag": base["node_vlan_tag"],
        "node_mtu": base["node_mtu"],
        "node_prefix": base["node_prefix"],
        "node_gateway": base["node_default_gateway"],
        "node_dns_servers": list(base["node_dns_servers"]),
        "talos_template_vmid": base["talos_template_vmid"],
        # Packer builds the template on the cluster's proxmox_node; clones start there.
        "talos_template_node": base["proxmox_node"],
        # Without the guest agent extension nothing answers the agent and bpg would wait for
        # it until its timeout, so leave it off.
        "qemu_agent": base["qemu_agent"],
        "nodes": {n["name"]: _node(base, n) for n in base["nodes"]},
    }


def vm(base: Mapping[str, Any]) -> dict[str, Any]:
    """vm_advanced as the bpg resource spells it; nodes.tf writes the optional ones only when
    they differ from the provider's defaults, so a cluster without them renders as before."""
    adv = base["vm_advanced"]
    return {
        "machine": adv["machine"],
        "bios": adv["bios"],
        "scsi_hardware": adv["scsi_hw"],
        # Proxmox ignores (and warns about) an I/O thread on any other SCSI controller.
        "iothread": adv["scsi_hw"] == "virtio-scsi-single",
        "os_type": adv["ostype"],
        "numa": adv["numa"],
        "floating": adv["balloon"],
        "queues": adv["net_queues"],
        "discard": "on" if adv["disk_discard"] else "ignore",
        "ssd": adv["disk_ssd"],
        "backup": adv["disk_backup"],
        "replicate": adv["disk_replicate"],
        # Any node with a start order or delay: every node gets a startup block (and the
        # variable its attribute).
        "startup": _has_startup(base),
        # Only when nodes differ: each node object carries its template / MTU.
        "template_split": base["template_split"],
        "mtu_split": base["mtu_split"],
    }


# clustergen's own address of the VMs (nodes.tf); moved blocks point there.
VM_RESOURCE = "proxmox_virtual_environment_vm.node"
# The schema's patterns, checked again here: addresses are written into HCL as references,
# not as strings, so nothing else may get through.
_ADDRESS = re.compile(r"^[a-z][a-z0-9_]{0,63}\.[A-Za-z_][A-Za-z0-9_-]{0,63}$")


def _address(value: Any) -> str:
    if not isinstance(value, str) or not _ADDRESS.fullmatch(value):
        raise ValueError(f"not a resource address: {value!r}")
    return value


def migrate(base: Mapping[str, Any]) -> dict[str, Any] | None:
    """moved blocks (earlier VM address -> clustergen's, per node name) and removed blocks."""
    given = base.get("tofu_migrate")
    if not given:
        return None
    source = _address(given["vm_address"])
    moved = [] if source == VM_RESOURCE else [n["name"] for n in base["nodes"]]
    return {
        "vm_address": source,
        "to": VM_RESOURCE,
        "nodes": moved,
        "forget": [_address(a) for a in given.get("forget", [])],
    }


def build(base: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "vm": vm(base),
        "migrate": migrate(base),
        "variables": variables(base),
        "token_variable": TOKEN_VARIABLE,
        "node_addresses": " ".join(n["address"] for n in base["nodes"]),
    }
