"""Derived values for the ansible templates, available as context["ansible"].

Everything community.proxmox.proxmox_kvm takes as a composed string (net0, ipconfig0) is built
here, once, so the vars file and the playbooks only pass values through.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from generator.constants import BOOT_DISK, NIC_MODEL, TALOS_API_PORT


def net0(base: Mapping[str, Any], node: Mapping[str, Any]) -> str:
    """The Proxmox net0 property string: model=MAC first, then options in the key order
    Proxmox prints them, so the string reads like the VM config it produces."""
    parts = [f"{NIC_MODEL}={node['mac_addr']}", f"bridge={base['proxmox_bridge']}"]
    parts.append(f"mtu={node['mtu']}")
    if base.get("node_vlan_tag") is not None:
        parts.append(f"tag={base['node_vlan_tag']}")
    return ",".join(parts)


def ipconfig0(base: Mapping[str, Any], node: Mapping[str, Any]) -> str:
    return f"ip={node['address']}/{base['node_prefix']},gw={base['node_default_gateway']}"


def config(base: Mapping[str, Any], node: Mapping[str, Any]) -> dict[str, str]:
    """What the configure task writes, keyed and formatted as Proxmox VE returns the VM's
    config, so the playbook can compare and skip the (always "changed") update when equal."""
    return {
        "name": node["name"],
        "cores": str(node["cores"]),
        "sockets": str(node["sockets"]),
        "memory": str(node["memory"]),
        "cpu": node["cpu_type"],
        "net0": net0(base, node),
        "ipconfig0": ipconfig0(base, node),
        # proxmox_kvm joins nameservers with spaces; Proxmox keeps tags ';'-separated.
        "nameserver": " ".join(base["node_dns_servers"]),
        "tags": ";".join(node["tags"]),
        "onboot": "1",
    }


def vm(base: Mapping[str, Any], node: Mapping[str, Any]) -> dict[str, Any]:
    out = _vm(base, node)
    if base["template_split"]:
        # Nodes of other schematics clone the template of their own (schematic, SecureBoot).
        out["template_vmid"] = node["template_vmid"]
        out["template_name"] = node["template_name"]
    return out


def _vm(base: Mapping[str, Any], node: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "vmid": node["vm_id"],
        "name": node["name"],
        "node": node["proxmox_node"],
        "role": node["role"],
        "address": node["address"],
        "cores": node["cores"],
        "sockets": node["sockets"],
        "memory": node["memory"],
        "cpu": node["cpu_type"],
        "boot_disk": BOOT_DISK,
        # proxmox_disk compares this string with the size in the VM config ("64G").
        "disk_size": f"{node['disk_size']}G",
        "net0": net0(base, node),
        "ipconfig0": ipconfig0(base, node),
        "nameservers": list(base["node_dns_servers"]),
        "tags": list(node["tags"]),
        "config": config(base, node),
    }


def build(base: Mapping[str, Any]) -> dict[str, Any]:
    vms = [vm(base, n) for n in base["nodes"]]
    names = ", ".join(v["name"] for v in vms)
    return {
        "vms": vms,
        "api_host": base["proxmox_host"],
        "api_port": base["proxmox_port"],
        "validate_certs": not base["proxmox_insecure"],
        "talos_api_port": TALOS_API_PORT,
        # Proxmox clones onto another node (target) only from shared storage; otherwise the
        # playbook clones on the template's node and migrates.
        "clone_with_target": base["proxmox_storage_shared"],
        # Only with more than one template: every template the playbook checks and clones.
        "templates": (
            [{"vmid": t["vmid"], "name": t["name"]} for t in base["talos_templates"]]
            if base["template_split"]
            else []
        ),
        "destroy_prompt": (
            f"Destroy the {len(vms)} VMs of cluster {base['cluster_name']} ({names}) "
            f"on {base['proxmox_endpoint']}?"
        ),
    }
