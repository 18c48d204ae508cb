"""Stage 3: one immutable template context with every default applied and every derived
value computed once. Templates never compute defaults.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from generator import derive, provisioners, talos_templates
from generator.constants import (
    BOOT_DISK,
    GENERATED_HEADER,
    INPUT_FILES,
    SECRETS_FILE,
    TALOS_API_PORT,
)
from generator.models import taskfile

_SCALARS = frozenset({str, int, float, bool, type(None)})


def freeze(value: Any) -> Any:
    """Read-only view: mappings become MappingProxyType, lists become tuples."""
    kind = type(value)
    # Exact type checks first: the ABC isinstance checks cost more than the copy itself.
    if kind in _SCALARS:
        return value
    if kind is dict or isinstance(value, Mapping):
        return MappingProxyType({k: freeze(v) for k, v in value.items()})
    if kind is list or kind is tuple or isinstance(value, (list, tuple)):
        return tuple(freeze(v) for v in value)
    return value


def _node(cluster: dict[str, Any], raw: dict[str, Any]) -> dict[str, Any]:
    role = derive.role_of(raw)
    node = {**derive.NODE_DEFAULTS, **{k: v for k, v in raw.items() if v is not None}}
    node.update(derive.resources(cluster, raw))
    node["controller"] = role == "controller"
    node["role"] = role
    node["vm_id"] = derive.vm_id(cluster, raw)
    node["proxmox_node"] = raw.get("proxmox_node") or cluster["proxmox_node"]
    node["mtu"] = raw.get("mtu") or cluster["node_mtu"]
    # Tags every VM carries: the cluster and the role, then the user's, unique and sorted
    # (Proxmox stores tags sorted, so any other order would show as drift).
    node["tags"] = sorted({cluster["cluster_name"], role, *raw.get("tags", [])})
    return node


def _schematic(template: talos_templates.Template) -> dict[str, Any]:
    image = template.image
    return {
        "yaml": image.yaml,
        "id": image.id,
        "image_url": image.image_url,
        "iso_url": image.iso_url,
        "installer_image": image.installer_image,
        # False for a given talos_schematic_id: its document is not clustergen's to write.
        "known": template.known,
    }


def build(
    cluster_in: Mapping[str, Any],
    nodes_in: Mapping[str, Any],
    secrets: Mapping[str, Any] | None = None,
    *,
    has_secrets_file: bool = False,
) -> Mapping[str, Any]:
    """The template context. Inputs must have passed validation."""
    cluster: dict[str, Any] = {**derive.CLUSTER_DEFAULTS, **dict(cluster_in)}
    cluster["node_default_gateway"] = derive.gateway(cluster)
    if cluster.get("talos_template") is None:
        cluster["talos_template"] = f"talos-{cluster['talos_version']}"
    cluster["vm_advanced"] = {
        **derive.CLUSTER_DEFAULTS["vm_advanced"],
        **(cluster_in.get("vm_advanced") or {}),
    }
    cluster["qemu_agent"] = derive.qemu_agent(cluster)
    cluster["talos_secureboot"] = derive.secureboot(cluster)
    given = cluster.get("vm_defaults") or {}
    cluster["vm_defaults"] = {
        role: {**derive.ROLE_DEFAULTS_BY_ROLE[role], **(given.get(role) or {})}
        for role in derive.ROLES
    }

    network = ipaddress.IPv4Network(cluster["node_cidr"])
    nodes = [_node(cluster, n) for n in nodes_in["nodes"]]
    templates, by_node = talos_templates.plan(cluster, nodes_in["nodes"])
    for node in nodes:
        template = by_node[node["name"]]
        node["template_vmid"] = template.vmid
        node["template_name"] = template.name
        node["installer_image"] = template.image.installer_image
    # The first template (the cluster's pair whenever a node uses it) is the one every
    # single-template output names: talos_template(_vmid), schematic, talos_secureboot.
    primary = templates[0]
    cluster["talos_template"] = primary.name
    cluster["talos_template_vmid"] = primary.vmid
    cluster["talos_secureboot"] = primary.secureboot
    endpoint = derive.endpoint(cluster["proxmox_endpoint"])
    # Canonical order, so reordering the list in cluster.yaml changes no output.
    enabled = [p.name for p in provisioners.enabled(cluster["provisioners"])]
    context: dict[str, Any] = {
        **cluster,
        "provisioners": enabled,
        "enabled": {name: name in enabled for name in provisioners.NAMES},
        "nodes": nodes,
        "controllers": [n for n in nodes if n["controller"]],
        "workers": [n for n in nodes if not n["controller"]],
        "node_network": str(network.network_address),
        "node_prefix": network.prefixlen,
        "node_netmask": str(network.netmask),
        "proxmox_nodes": sorted({n["proxmox_node"] for n in nodes}),
        "proxmox_endpoint": endpoint.url,
        "proxmox_host": endpoint.host,
        "proxmox_port": endpoint.port,
        "proxmox_api_url": f"{endpoint.url}/api2/json",
        "schematic": _schematic(primary),
        "talos_templates": [
            {
                "vmid": t.vmid,
                "name": t.name,
                "secureboot": t.secureboot,
                "default": t.default,
                "nodes": list(t.nodes),
                "schematic": _schematic(t),
            }
            for t in templates
        ],
        # Each schematic once (two templates may share one, with and without SecureBoot),
        # for the factory upload.
        "schematics": list({t.image.id: _schematic(t) for t in templates}.values()),
        # More than one template: outputs name each node's template instead of the one.
        "template_split": len(templates) > 1,
        # Some node's MTU differs from node_mtu: outputs set each node's MTU.
        "mtu_split": any(n["mtu"] != cluster["node_mtu"] for n in nodes),
        "input_files": list(INPUT_FILES),
        "generated_header": GENERATED_HEADER,
        # Facts templates write (one home: generator/constants.py).
        "secrets_file": SECRETS_FILE,
        "talos_api_port": TALOS_API_PORT,
        "boot_disk": BOOT_DISK,
        # Whether secrets.sops.yaml exists (tasks then run the tools through sops exec-env);
        # secrets holds decrypted values only for templates of *.sops.* outputs.
        "has_secrets_file": has_secrets_file,
        "secrets": dict(secrets) if secrets else {},
    }
    # Each value is frozen once; every provisioner model sees the frozen base plus the
    # (frozen) results of the models before it, as the context grows.
    frozen = {key: freeze(value) for key, value in context.items()}
    for provisioner in provisioners.REGISTRY:
        frozen[provisioner.name] = freeze(provisioner.build(MappingProxyType(dict(frozen))))
    frozen["taskfile"] = freeze(taskfile.build(frozen))
    return MappingProxyType(frozen)
