"""Semantic rules that JSON Schema cannot express. Each rule is linear in the number of nodes.

Rules read values defensively: a value of the wrong type was already reported by the schema
and is skipped here.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

from generator import derive
from generator.errors import Diagnostic
from generator.load import Document, PathPart

Net = ipaddress.IPv4Network
Addr = ipaddress.IPv4Address


def _addr(value: Any) -> Addr | None:
    try:
        return Addr(value) if isinstance(value, str) else None
    except ValueError:
        return None


def _net(value: Any) -> Net | None:
    try:
        return Net(value, strict=False) if isinstance(value, str) else None
    except ValueError:
        return None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _nodes(nodes: Document) -> list[tuple[int, dict[str, Any]]]:
    items = nodes.data.get("nodes") if isinstance(nodes.data, dict) else None
    if not isinstance(items, list):
        return []
    return [(i, n) for i, n in enumerate(items) if isinstance(n, dict)]


def _where(doc: Document, path: list[PathPart]) -> str:
    line, col = doc.locate(path)
    return f"{doc.file}:{line}:{col}"


def cidrs(cluster: Document, nodes: Document) -> Iterator[Diagnostic]:
    data = cluster.data
    parsed: list[tuple[str, Net]] = []
    for key in ("node_cidr", "cluster_pod_cidr", "cluster_svc_cidr"):
        value = data.get(key, derive.CLUSTER_DEFAULTS.get(key))
        net = _net(value)
        if net is None:
            continue
        if str(net) != value:
            yield cluster.diag(
                [key], f"{value} has host bits set", f"did you mean {net}?"
            )
        parsed.append((key, net))
    for i, (key_a, net_a) in enumerate(parsed):
        for key_b, net_b in parsed[i + 1 :]:
            if net_a.overlaps(net_b):
                where = key_b if key_b in data else key_a
                yield cluster.diag(
                    [where], f"{key_b} {net_b} overlaps {key_a} {net_a}", "choose disjoint ranges"
                )


def _inside(net: Net, address: Addr) -> str | None:
    """Why address cannot be a host in net, or None when it can."""
    if address not in net:
        return f"is outside node_cidr {net}"
    if net.prefixlen <= 30 and address == net.network_address:
        return f"is the network address of {net}"
    if net.prefixlen <= 30 and address == net.broadcast_address:
        return f"is the broadcast address of {net}"
    return None


def addresses(cluster: Document, nodes: Document) -> Iterator[Diagnostic]:
    data = cluster.data
    net = _net(data.get("node_cidr"))
    if net is None:
        return
    gateway_raw = data.get("node_default_gateway")
    gateway = _addr(gateway_raw) if gateway_raw is not None else _addr(derive.gateway(data))
    vip = _addr(data.get("cluster_api_addr"))
    if gateway is not None and "node_default_gateway" in data:
        why = _inside(net, gateway)
        if why:
            yield cluster.diag(["node_default_gateway"], f"{gateway} {why}")
    if vip is not None:
        why = _inside(net, vip)
        if why:
            yield cluster.diag(["cluster_api_addr"], f"{vip} {why}")
        elif vip == gateway:
            yield cluster.diag(
                ["cluster_api_addr"],
                f"{vip} is also the default gateway",
                "choose a free address for the API VIP",
            )
    for i, node in _nodes(nodes):
        address = _addr(node.get("address"))
        if address is None:
            continue
        path: list[PathPart] = ["nodes", i, "address"]
        why = _inside(net, address)
        if why:
            yield nodes.diag(path, f"{address} {why}")
        elif address == gateway:
            yield nodes.diag(path, f"{address} is the default gateway")
        elif address == vip:
            yield nodes.diag(
                path,
                f"{address} is also cluster_api_addr ({_where(cluster, ['cluster_api_addr'])})",
                "the API VIP must not be a node address",
            )


def _unique(
    nodes: Document,
    key: str,
    label: str,
    value_of: Callable[[dict[str, Any]], Any] | None = None,
    *,
    seen: dict[Any, tuple[Document, list[PathPart], str]] | None = None,
) -> Iterator[Diagnostic]:
    """One diagnostic per repeated value, naming the first owner and its line."""
    seen = {} if seen is None else seen
    for i, node in _nodes(nodes):
        value = value_of(node) if value_of else node.get(key)
        if value is None or isinstance(value, (dict, list)):
            continue
        path: list[PathPart] = ["nodes", i, key]
        owner = f"nodes[{i}] ({node.get('name', '?')})"
        if value in seen:
            first_doc, first_path, first_owner = seen[value]
            yield nodes.diag(
                path if key in node else ["nodes", i],
                f"{label} {value} of {owner} is already used by {first_owner} "
                f"({_where(first_doc, first_path)})",
            )
        else:
            seen[value] = (nodes, path if key in node else ["nodes", i, "address"], owner)


def uniqueness(cluster: Document, nodes: Document) -> Iterator[Diagnostic]:
    yield from _unique(nodes, "name", "name")
    yield from _unique(nodes, "address", "address")
    yield from _unique(nodes, "mac_addr", "MAC address")
    template = _int(cluster.data.get("talos_template_vmid", derive.CLUSTER_DEFAULTS["talos_template_vmid"]))
    seen: dict[Any, tuple[Document, list[PathPart], str]] = {}
    if template is not None:
        template_path: list[PathPart] = (
            ["talos_template_vmid"] if "talos_template_vmid" in cluster.data else []
        )
        seen[template] = (cluster, template_path, "talos_template_vmid")
    yield from _unique(
        nodes, "vm_id", "VM ID", lambda n: derive.vm_id(cluster.data, n), seen=seen
    )


def vm_id_range(cluster: Document, nodes: Document) -> Iterator[Diagnostic]:
    for i, node in _nodes(nodes):
        if "vm_id" in node:
            continue
        derived = derive.vm_id(cluster.data, node)
        if derived is not None and derived > 999_999_999:
            yield nodes.diag(
                ["nodes", i],
                f"derived VM ID {derived} is above 999999999",
                "set vm_id or lower vm_id_base",
            )


def controllers(cluster: Document, nodes: Document) -> Iterator[Diagnostic]:
    items = _nodes(nodes)
    if not items:
        return
    count = sum(1 for _, n in items if n.get("controller") is True)
    if count == 0:
        yield nodes.diag(["nodes"], "no node has controller: true", "at least one controller is needed")
    elif count % 2 == 0:
        yield nodes.diag(
            ["nodes"],
            f"{count} controllers: an even count adds no etcd fault tolerance",
            f"use {count - 1} or {count + 1}",
            severity="warning",
        )


def macs(cluster: Document, nodes: Document) -> Iterator[Diagnostic]:
    for i, node in _nodes(nodes):
        mac = node.get("mac_addr")
        if not isinstance(mac, str) or len(mac) < 2:
            continue
        try:
            first = int(mac[:2], 16)
        except ValueError:
            continue
        if first & 1:
            fixed = f"{first & 0xFE:02x}{mac[2:]}"
            yield nodes.diag(
                ["nodes", i, "mac_addr"],
                f"{mac} is a multicast MAC address",
                f"did you mean {fixed}?",
            )


def talos_minimums(cluster: Document, nodes: Document) -> Iterator[Diagnostic]:
    defaults = cluster.data.get("vm_defaults")
    if isinstance(defaults, dict):
        for role in derive.ROLES:
            block = defaults.get(role)
            if not isinstance(block, dict):
                continue
            for key, minimum in derive.TALOS_MINIMUMS[role].items():
                value = _int(block.get(key))
                if value is not None and value < minimum:
                    yield cluster.diag(
                        ["vm_defaults", role, key],
                        f"{value} is below the Talos minimum {minimum} for a {role}",
                    )
    for i, node in _nodes(nodes):
        role = derive.role_of(node)
        for key, minimum in derive.TALOS_MINIMUMS[role].items():
            value = _int(node.get(key))
            if value is not None and value < minimum:
                yield nodes.diag(
                    ["nodes", i, key], f"{value} is below the Talos minimum {minimum} for a {role}"
                )


def endpoint(cluster: Document, nodes: Document) -> Iterator[Diagnostic]:
    value = cluster.data.get("proxmox_endpoint")
    if not isinstance(value, str):
        return
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        yield cluster.diag(["proxmox_endpoint"], f"{value!r} is not a valid URL")
        return
    base = f"https://{parts.hostname}:{port or 8006}"
    if parts.scheme != "https":
        yield cluster.diag(["proxmox_endpoint"], f"{value!r} must use https", f"did you mean {base}?")
    elif not parts.hostname:
        yield cluster.diag(["proxmox_endpoint"], f"{value!r} has no host name")
    elif parts.path.rstrip("/") or parts.query or parts.fragment:
        yield cluster.diag(
            ["proxmox_endpoint"],
            f"{value!r} must not have a path (the tools add /api2/json themselves)",
            f"did you mean {base}?",
        )
    elif parts.username or parts.password:
        yield cluster.diag(
            ["proxmox_endpoint"], "must not contain credentials", "put the API token in secrets.sops.yaml"
        )


def _duplicates_in_list(doc: Document, key: str) -> Iterator[Diagnostic]:
    items = doc.data.get(key)
    if not isinstance(items, list):
        return
    first: dict[Any, int] = {}
    for i, item in enumerate(items):
        if isinstance(item, (dict, list)):
            continue
        if item in first:
            yield doc.diag(
                [key, i],
                f"{item} is listed twice (first at {_where(doc, [key, first[item]])})",
                "remove one",
            )
        else:
            first[item] = i


def lists(cluster: Document, nodes: Document) -> Iterator[Diagnostic]:
    for key in ("talos_extensions", "provisioners", "talos_extra_kernel_args", "node_dns_servers"):
        yield from _duplicates_in_list(cluster, key)


RULES: tuple[Callable[[Document, Document], Iterator[Diagnostic]], ...] = (
    cidrs,
    addresses,
    uniqueness,
    vm_id_range,
    controllers,
    macs,
    talos_minimums,
    endpoint,
    lists,
)


def check(cluster: Document, nodes: Document) -> list[Diagnostic]:
    return [d for rule in RULES for d in rule(cluster, nodes)]
