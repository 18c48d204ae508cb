"""Derived values for the packer templates, available as context["packer"].

talos.pkr.hcl declares the variables; variables.pkrvars.hcl sets every non-secret one from
`variables` below, so the two files cannot disagree about names.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from generator import constants, rules_provisioning
from generator.models import capi

GUEST_AGENT = constants.GUEST_AGENT
# The build VM's only disk (scsi0 on virtio-scsi) as the live ISO names it.
TARGET_DISK = constants.TARGET_DISK
# GPT partition names every Talos disk image has; the build fails unless the written disk
# shows them, so a truncated or wrong download never becomes a template.
TALOS_PARTITIONS = ("EFI", "META")
# Cluster API's template is named <talos_template><CAPI_SUFFIX>.
CAPI_SUFFIX = rules_provisioning.CAPI_SUFFIX
# Environment variables that carry the API token (Packer reads PKR_VAR_<variable name>).
TOKEN_ID_VARIABLE = "proxmox_token_id"
TOKEN_SECRET_VARIABLE = "proxmox_token_secret"
# Variables of the one template, replaced by the talos_templates map when there are several.
SINGLE_TEMPLATE_VARIABLES = (
    "talos_image_url",
    "talos_schematic_id",
    "talos_secureboot",
    "talos_template",
    "talos_template_vmid",
)


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
        "bootstrap_iso": base["packer_bootstrap_iso"],
        "cpu_type": base["packer_cpu_type"],
        # Empty: DHCP. The static address uses the node network's prefix, gateway and DNS.
        "build_address": base["packer_build_address"] or "",
        "build_prefix": base["node_prefix"],
        "build_gateway": base["node_default_gateway"],
        "build_dns_servers": list(base["node_dns_servers"]),
        "boot_wait": base["packer_boot_wait"],
        "iso_boot_wait": base["packer_iso_boot_wait"],
        "ssh_timeout": base["packer_ssh_timeout"],
        "download_retries": base["packer_download_retries"],
        "talos_version": base["talos_version"],
        # Built once in the model (schematic.py); the template never rebuilds it.
        "talos_image_url": base["schematic"]["image_url"],
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
    if base["template_split"]:
        # One template per (schematic, SecureBoot) pair (with capi each followed by its Cluster
        # API twin), each a source of its own (by the source's name); the single-template
        # variables give way to this map.
        for key in SINGLE_TEMPLATE_VARIABLES:
            del out[key]
        out["talos_templates"] = {
            source_name(t): {
                "vm_id": t["vmid"],
                "name": t["name"],
                "schematic_id": t["schematic_id"],
                "secureboot": t["secureboot"],
                "image_url": t["image_url"],
            }
            for t in _split_templates(base)
        }
    elif base["enabled"]["capi"]:
        # Cluster API's template, built only for capi: the same image without cloud-init drive.
        out["talos_capi_template"] = f"{base['talos_template']}{CAPI_SUFFIX}"
        out["talos_capi_template_vmid"] = base["talos_capi_template_vmid"]
    if base["enabled"]["capi"]:
        # CAPMOX has no CPU type field: every Cluster API machine keeps its template's.
        out["talos_capi_cpu_type"] = capi.template_cpu_type(base)
    if vlan is not None:
        # The plugin's network_adapters.vlan_tag is a string.
        out["node_vlan_tag"] = str(vlan)
    return out


def source_name(template: Mapping[str, Any]) -> str:
    """The proxmox-iso source of a template when there are several: named by its VM ID."""
    return f"talos-{template['vmid']}"


def _split_templates(base: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every template Packer builds when there are several: each pair's, and with capi its
    Cluster API twin right after it (`capi`: no cloud-init drive, the twins' CPU type)."""
    twins = {t["template_vmid"]: t for t in capi.twins(base)} if base["enabled"]["capi"] else {}
    out: list[dict[str, Any]] = []
    for t in base["talos_templates"]:
        nodes = list(t["nodes"])
        pair = {
            "schematic_id": t["schematic"]["id"],
            "secureboot": t["secureboot"],
            "image_url": t["schematic"]["image_url"],
        }
        out.append({"vmid": t["vmid"], "name": t["name"], "nodes": nodes, "capi": False, **pair})
        twin = twins.get(t["vmid"])
        if twin is not None:
            out.append(
                {"vmid": twin["vmid"], "name": twin["name"], "nodes": nodes, "capi": True, **pair}
            )
    return out


def builds(base: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One proxmox-iso source per template: the clones' one, and with capi Cluster API's
    twin without a cloud-init drive (a build-level source block cannot override arguments
    the source already sets, so each is a source of its own)."""
    if base["template_split"]:
        return [
            {
                "source": source_name(t),
                "comment": (
                    f"Cluster API template {t['name']}, for {', '.join(t['nodes'])}: the same "
                    "image without a cloud-init drive."
                    if t["capi"]
                    else f"Template {t['name']}, for {', '.join(t['nodes'])}."
                ),
                "cpu_type_variable": "talos_capi_cpu_type" if t["capi"] else "cpu_type",
                "cloud_init": not t["capi"],
            }
            for t in _split_templates(base)
        ]
    out = [
        {
            "source": "talos",
            "comment": "",
            "vmid_variable": "talos_template_vmid",
            "name_variable": "talos_template",
            "cpu_type_variable": "cpu_type",
            "cloud_init": True,
        }
    ]
    if base["enabled"]["capi"]:
        out.append(
            {
                "source": "talos-capi",
                "comment": "The same template for Cluster API, without a cloud-init drive.",
                "vmid_variable": "talos_capi_template_vmid",
                "name_variable": "talos_capi_template",
                "cpu_type_variable": "talos_capi_cpu_type",
                "cloud_init": False,
            }
        )
    return out


def build(base: Mapping[str, Any]) -> dict[str, Any]:
    sources = builds(base)
    return {
        "builds": sources,
        "build_sources": [f"source.proxmox-iso.{b['source']}" for b in sources],
        "variables": variables(base),
        "token_id_variable": TOKEN_ID_VARIABLE,
        "token_secret_variable": TOKEN_SECRET_VARIABLE,
        "target_disk": TARGET_DISK,
        "talos_partitions": " ".join(TALOS_PARTITIONS),
        "template_split": base["template_split"],
        # Several sources with one static build address would boot build VMs that share it:
        # Packer then builds them one at a time (its default runs every source at once).
        "build_args": (
            "-parallel-builds=1 " if len(sources) > 1 and base["packer_build_address"] else ""
        ),
    }
