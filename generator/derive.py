"""Defaults and derived values, as pure functions of the plain input data.

validate uses them to check what the model will compute; model uses them to compute it.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

from generator import resources as _files
from generator.constants import GUEST_AGENT, PROXMOX_API_PORT

ROLES = ("controller", "worker")
RESOURCE_KEYS = ("cores", "sockets", "memory", "disk_size", "cpu_type")
# Talos Linux minimum requirements per role.
TALOS_MINIMUMS = {
    "controller": {"cores": 2, "memory": 2048, "disk_size": 10},
    "worker": {"cores": 1, "memory": 1024, "disk_size": 10},
}
# Keys whose schema default is null because the value is computed from other keys.
COMPUTED_KEYS = frozenset(
    {"node_default_gateway", "talos_template", "vm_defaults", "talos_secureboot"}
)
# The first Talos release whose image factory can enroll SecureBoot keys from a disk image
# (schematic customization.secureboot.enrollKeys); before it only the ISO carries them.
SECUREBOOT_ENROLL_VERSION = (1, 14)


def _schema(name: str) -> dict[str, Any]:
    # $refs inlined: the role blocks of vm_defaults are one definition ($defs.vm_resources).
    data: dict[str, Any] = _files.inline_refs(
        json.loads(_files.schema_path(name).read_text(encoding="utf-8"))
    )
    return data


# The schemas are the one source of truth for defaults: editors show the same `default`
# that the model applies, and a default changed in one place cannot drift from the other.
_CLUSTER_PROPS: dict[str, Any] = _schema("cluster")["properties"]
_NODE_PROPS: dict[str, Any] = _schema("nodes")["$defs"]["node"]["properties"]

CLUSTER_DEFAULTS: dict[str, Any] = {
    key: spec["default"]
    for key, spec in _CLUSTER_PROPS.items()
    if "default" in spec and key not in COMPUTED_KEYS
}
ROLE_DEFAULTS_BY_ROLE: dict[str, dict[str, Any]] = {
    role: {
        key: spec["default"]
        for key, spec in _CLUSTER_PROPS["vm_defaults"]["properties"][role]["properties"].items()
    }
    for role in ROLES
}
# Kept for callers that want one role-independent set (both roles share it today).
ROLE_DEFAULTS: dict[str, Any] = ROLE_DEFAULTS_BY_ROLE["controller"]
# Node keys with a fixed default; the others (null in the schema) fall back to the role.
NODE_DEFAULTS: dict[str, Any] = {
    key: spec["default"] for key, spec in _NODE_PROPS.items() if spec.get("default") is not None
}


def network(cluster: dict[str, Any]) -> ipaddress.IPv4Network | None:
    if isinstance(cluster.get("node_cidr"), str):
        return _network(cluster["node_cidr"])  # asked once per node (vm_id): parse it once
    try:
        return ipaddress.IPv4Network(cluster["node_cidr"], strict=False)
    except (KeyError, TypeError, ValueError):
        return None


@lru_cache(maxsize=16)
def _network(cidr: str) -> ipaddress.IPv4Network | None:
    try:
        return ipaddress.IPv4Network(cidr, strict=False)
    except ValueError:
        return None


def gateway(cluster: dict[str, Any]) -> str | None:
    if isinstance(cluster.get("node_default_gateway"), str):
        return str(cluster["node_default_gateway"])
    net = network(cluster)
    if net is None or net.num_addresses < 4:
        return None
    return str(net.network_address + 1)


def version(text: str) -> tuple[int, ...]:
    """A validated x.y.z version as a tuple, for comparisons."""
    return tuple(int(part) for part in text.split("."))


def secureboot(cluster: dict[str, Any]) -> bool:
    """talos_secureboot as given, else on exactly where the disk image enrolls its keys."""
    given = cluster.get("talos_secureboot")
    if isinstance(given, bool):
        return given
    return version(str(cluster["talos_version"]))[:2] >= SECUREBOOT_ENROLL_VERSION


def role_of(node: dict[str, Any]) -> str:
    return "controller" if node.get("controller") is True else "worker"


def resources(cluster: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    """cores/sockets/memory/disk_size/cpu_type of a node: node > vm_defaults[role] > built-in."""
    role = role_of(node)
    defaults = cluster.get("vm_defaults")
    role_defaults = defaults.get(role) if isinstance(defaults, dict) else None
    if not isinstance(role_defaults, dict):
        role_defaults = {}
    out = {}
    for key in RESOURCE_KEYS:
        if node.get(key) is not None:
            out[key] = node[key]
        elif role_defaults.get(key) is not None:
            out[key] = role_defaults[key]
        else:
            out[key] = ROLE_DEFAULTS_BY_ROLE[role][key]
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


def qemu_agent(cluster: dict[str, Any]) -> bool:
    """vm_advanced.qemu_agent, else whether the image has the guest agent extension (without
    it nothing answers the agent and bpg would wait for it until its timeout). An image made
    elsewhere (talos_schematic_id) is assumed to have it, as both host repos' images do."""
    advanced = cluster.get("vm_advanced") or {}
    if isinstance(advanced.get("qemu_agent"), bool):
        return bool(advanced["qemu_agent"])
    if cluster.get("talos_schematic_id") is not None:
        return True
    return GUEST_AGENT in (cluster.get("talos_extensions") or [])


@dataclass(frozen=True)
class Endpoint:
    """The Proxmox VE API's host and port; url is the canonical form every output writes."""

    host: str
    port: int

    @property
    def url(self) -> str:
        # An IPv6 literal needs its brackets back inside a URL.
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"https://{host}:{self.port}"


def endpoint(value: str) -> Endpoint:
    """proxmox_endpoint's host and port (the default port when it names none). The one place
    that parses it: the model writes Endpoint.url, the endpoint rule suggests it."""
    parts = urlsplit(value)
    return Endpoint(str(parts.hostname or ""), parts.port or PROXMOX_API_PORT)
