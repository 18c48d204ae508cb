"""Derived values for the packer templates, available as context["packer"].

talos.pkr.hcl declares the variables; variables.pkrvars.hcl sets every non-secret one from
`variables` below, so the two files cannot disagree about names.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

GUEST_AGENT = "siderolabs/qemu-guest-agent"
# The design notes' bootstrap: an Arch Linux live ISO, uploaded once to the ISO storage,
# boots the build VM so that its boot_command can write the Talos disk image to the disk.
BOOTSTRAP_ISO = "archlinux-x86_64.iso"
# Environment variables that carry the API token (Packer reads PKR_VAR_<variable name>).
TOKEN_ID_VARIABLE = "proxmox_token_id"
TOKEN_SECRET_VARIABLE = "proxmox_token_secret"


def variables(base: Mapping[str, Any]) -> dict[str, Any]:
    """Every non-secret Packer variable with its value, in declaration order."""
    vlan = base["node_vlan_tag"]
    out: dict[str, Any] = {
        "proxmox_url": base["proxmox_api_url"],
        "proxmox_insecure": base["proxmox_insecure"],
        "proxmox_node": base["proxmox_node"],
        "proxmox_storage": base["proxmox_storage"],
        "proxmox_iso_storage": base["proxmox_iso_storage"],
        "proxmox_bridge": base["proxmox_bridge"],
        # Not an input key (yet); a model that gains one keeps this file's contract.
        "bootstrap_iso": base.get("packer_bootstrap_iso") or BOOTSTRAP_ISO,
        "talos_version": base["talos_version"],
        "talos_schematic_id": base["schematic"]["id"],
        "talos_platform": base["talos_platform"],
        "talos_arch": base["talos_arch"],
        "talos_secureboot": base["talos_secureboot"],
        "talos_template": base["talos_template"],
        "talos_template_vmid": base["talos_template_vmid"],
        # Without the guest agent extension nothing answers the agent, so leave it off.
        "qemu_agent": base["qemu_agent"],
        # proxmox-iso takes tags as one semicolon-separated string.
        "template_tags": ";".join(sorted({"talos", "template", base["cluster_name"]})),
    }
    if vlan is not None:
        # The plugin's network_adapters.vlan_tag is a string.
        out["node_vlan_tag"] = str(vlan)
    return out


def build(base: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "variables": variables(base),
        "token_id_variable": TOKEN_ID_VARIABLE,
        "token_secret_variable": TOKEN_SECRET_VARIABLE,
    }
