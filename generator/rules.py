"""Semantic rules that JSON Schema cannot express. Each rule is linear in the number of nodes.

Rules read values defensively: a value of the wrong type was already reported by the schema
and is skipped here.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

from generator import derive, rules_capi, rules_provisioning, rules_templates, talos_templates
from generator.controls import control_character
from generator.errors import Diagnostic
from generator.load import Document, PathPart
from generator.rulekit import as_int as _int
from generator.rulekit import indexed_nodes as _nodes
from generator.rulekit import where as _where

Net = ipaddress.IPv4Network
Addr = ipaddress.IPv4Address
MAX_NODE_PREFIX = 29
MAX_VM_ID = 999_999_999


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


def cidrs(cluster: Document, nodes: Document) -> Iterator[Diagnostic]:
    data = cluster.data
    parsed: list[tuple[str, Net]] = []
    for key in ("node_cidr", "cluster_pod_cidr", "cluster_svc_cidr"):
        value = data.get(key, derive.CLUSTER_DEFAULTS.get(key))
        net = _net(value)
        if net is None:
            continue
        if str(net) != value:
            yield cluster.diag([key], f"{value} has host bits set", f"did you mean {net}?")
        elif key == "node_cidr" and net.prefixlen > MAX_NODE_PREFIX:
            hosts = max(net.num_addresses - 2, 0) if net.prefixlen < 31 else net.num_addresses
            yield cluster.diag(
                [key],
                f"{value} has {hosts} host address(es); the gateway, the API VIP and a node "
                "need at least 3",
                f"use a /{MAX_NODE_PREFIX} or larger network",
            )
        parsed.append((key, net))
    # Three fixed CIDRs: three comparisons, independent of the number of nodes.
    for i, (key_a, net_a) in enumerate(parsed):
        for key_b, net_b in parsed[i + 1 :]:
            if not net_a.overlaps(net_b):
                continue
            # Point at a key the user wrote; name the other with its line or as a default.
            here, there, net_here, net_there = key_b, key_a, net_b, net_a
            if here not in data:
                here, there, net_here, net_there = key_a, key_b, net_a, net_b
            other = (
                f"{there} {net_there} at {_where(cluster, [there])}"
                if there in data
                else f"the default {there} {net_there}"
            )
            yield cluster.diag([here], f"{net_here} overlaps {other}", "choose disjoint ranges")


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
    if "node_default_gateway" in data:
        gateway_text = f"node_default_gateway ({_where(cluster, ['node_default_gateway'])})"
    else:
        gateway_text = "the default gateway (node_default_gateway defaults to the first host)"
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
                f"{vip} is also {gateway_text}",
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
            yield nodes.diag(
                path,
                f"{address} of {_owner(node, i)} is also {gateway_text}",
                "give the node a free address",
            )
        elif address == vip:
            yield nodes.diag(
                path,
                f"{address} of {_owner(node, i)} is also cluster_api_addr "
                f"({_where(cluster, ['cluster_api_addr'])})",
                "the API VIP must be an address no node uses",
            )


def _owner(node: dict[str, Any], index: int) -> str:
    name = node.get("name")
    return f"nodes[{index}] ({name})" if isinstance(name, str) else f"nodes[{index}]"


def _unique(nodes: Document, key: str, label: str, hint: str) -> Iterator[Diagnostic]:
    """One diagnostic per repeated value, naming both owners and both lines."""
    seen: dict[Any, tuple[int, dict[str, Any]]] = {}
    for i, node in _nodes(nodes):
        value = node.get(key)
        if value is None or isinstance(value, (dict, list)):
            continue
        if isinstance(value, str):
            value = value.lower()
        if value in seen:
            j, first = seen[value]
            yield nodes.diag(
                ["nodes", i, key],
                f"{label} {node[key]} of {_owner(node, i)} is already used by {_owner(first, j)} "
                f"at {_where(nodes, ['nodes', j, key])}",
                hint,
            )
        else:
            seen[value] = (i, node)


def _vm_id_text(cluster: Document, node: dict[str, Any], value: int) -> str:
    if "vm_id" in node:
        return f"VM ID {value}"
    base = cluster.data.get("vm_id_base", derive.CLUSTER_DEFAULTS["vm_id_base"])
    return f"derived VM ID {value} (vm_id_base {base} + host number {value - base})"


def vm_ids(cluster: Document, nodes: Document) -> Iterator[Diagnostic]:
    """Explicit and derived VM IDs are unique and never the template's VM ID."""
    template = _int(
        cluster.data.get("talos_template_vmid", derive.CLUSTER_DEFAULTS["talos_template_vmid"])
    )
    if "talos_template_vmid" in cluster.data:
        template_text = f"talos_template_vmid ({_where(cluster, ['talos_template_vmid'])})"
    else:
        template_text = f"the default talos_template_vmid {template}"
    # The templates of other (schematic, SecureBoot) pairs than the cluster's.
    others = talos_templates.vmids(cluster.data, [n for _, n in _nodes(nodes)])
    seen: dict[int, tuple[int, dict[str, Any]]] = {}
    for i, node in _nodes(nodes):
        value = derive.vm_id(cluster.data, node)
        if value is None:
            continue
        # A derived ID points at the node's address, the value it is computed from.
        key = "vm_id" if "vm_id" in node else "address"
        path: list[PathPart] = ["nodes", i, key]
        what = f"{_vm_id_text(cluster, node, value)} of {_owner(node, i)}"
        fix = "set vm_id" if key == "address" else "choose another vm_id"
        if value == template:
            yield nodes.diag(
                path,
                f"{what} is {template_text}, the VM ID of the Talos template",
                f"{fix}, or change talos_template_vmid",
            )
        elif value in others:
            yield nodes.diag(
                path,
                f"{what} is the VM ID of the Talos template {others[value]} (talos_template_vmid "
                f"+ {value - (template or 0)}, for the nodes with that schematic)",
                f"{fix}, or change talos_template_vmid",
            )
        elif value in seen:
            j, first = seen[value]
            first_key = "vm_id" if "vm_id" in first else "address"
            if key == first_key == "address":
                continue  # both derived from one address: the duplicate address is the error
            yield nodes.diag(
                path,
                f"{what} is already used by {_owner(first, j)} "
                f"at {_where(nodes, ['nodes', j, first_key])}",
                fix,
            )
        else:
            seen[value] = (i, node)


def uniqueness(cluster: Document, nodes: Document) -> Iterator[Diagnostic]:
    yield from _unique(nodes, "name", "name", "give every node its own name")
    yield from _unique(nodes, "address", "address", "give every node its own address")
    yield from _unique(nodes, "mac_addr", "MAC address", "give every node its own MAC address")


def vm_id_range(cluster: Document, nodes: Document) -> Iterator[Diagnostic]:
    for i, node in _nodes(nodes):
        if "vm_id" in node:
            continue
        derived = derive.vm_id(cluster.data, node)
        if derived is not None and derived > MAX_VM_ID:
            yield nodes.diag(
                ["nodes", i, "address"],
                f"{_vm_id_text(cluster, node, derived)} of {_owner(node, i)} "
                f"is above the Proxmox maximum {MAX_VM_ID}",
                "set vm_id or lower vm_id_base",
            )


def controllers(cluster: Document, nodes: Document) -> Iterator[Diagnostic]:
    items = _nodes(nodes)
    # A missing or non-boolean controller is the schema's finding; counting would guess.
    if not items or any(not isinstance(n.get("controller"), bool) for _, n in items):
        return
    count = sum(1 for _, n in items if n.get("controller") is True)
    if count == 0:
        yield nodes.diag(
            ["nodes"], "no node has controller: true", "a cluster needs at least one controller"
        )
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


_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)


def _valid_host(host: str) -> bool:
    """An RFC 1123 host name or an IP literal: nothing a shell or template could read as syntax.
    No IPv6 zone ID (fe80::1%eth0): after the % anything may follow, and no tool needs it."""
    if "%" in host:
        return False
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        pass
    # A dotted-numeric name that is not a valid IPv4 address (1.2.3.4.5) is a typo, not a host.
    return bool(_HOSTNAME.match(host)) and not re.fullmatch(r"[0-9.]+", host)


def endpoint(cluster: Document, nodes: Document) -> Iterator[Diagnostic]:
    """proxmox_endpoint is https://host[:port][/]; nothing else. A value with user info, a
    query or a fragment is never echoed: a password or token in it would land in CI logs;
    a suggestion built from the parts that passed is shown instead."""
    value = cluster.data.get("proxmox_endpoint")
    if not isinstance(value, str):
        return
    where = ["proxmox_endpoint"]
    if control_character(value) is not None or not re.fullmatch("[!-~]+", value):
        return  # the schema reports it (control characters; printable ASCII only)
    authority = value.split("//", 1)[-1].split("/", 1)[0].split("?", 1)[0].split("#", 1)[0]
    if "@" in authority:
        yield cluster.diag(
            where, "must not contain credentials", "put the API token in secrets.sops.yaml"
        )
        return
    # Echoed only when it cannot hold a secret: no user info, query or fragment.
    safe = not any(mark in value for mark in "@?#")
    shown = f"{value!r} " if safe else "the URL "
    if "://" not in value:
        hint = f"did you mean https://{value}?" if safe else "like https://pve.example:8006"
        yield cluster.diag(where, f"{shown}must use https", hint)
        return
    if "%" in authority:
        yield cluster.diag(
            where,
            f"{shown}must not have an IPv6 zone ID or percent-encoding in the host",
            "use a host name, or the address without %zone",
        )
        return
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        yield cluster.diag(where, f"{shown}is not a URL with a valid port (1-65535)")
        return
    host = parts.hostname or ""
    if not host or not _valid_host(host):
        yield cluster.diag(
            where,
            f"{shown}has no valid host name or IP address",
            "use https://pve.example:8006",
        )
        return
    if port is not None and not 1 <= port <= 65535:
        yield cluster.diag(where, f"{shown}has port {port}, outside 1-65535")
        return
    base = derive.endpoint(value).url
    if parts.scheme != "https":
        yield cluster.diag(where, f"{shown}must use https", f"did you mean {base}?")
    elif parts.path.rstrip("/") or parts.query or parts.fragment or value.endswith(("?", "#")):
        yield cluster.diag(
            where,
            f"{shown}must not have a path (the tools add /api2/json themselves)",
            f"did you mean {base}?",
        )
    elif not _CANONICAL_ENDPOINT.fullmatch(value):
        # Parsed fine but spelled oddly (an empty port, "https://http://", a path of "//"):
        # only the plain form reaches the outputs.
        yield cluster.diag(where, f"{shown}is not of the form https://host[:port]", f"use {base}")


_CANONICAL_ENDPOINT = re.compile(
    r"https://([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(:[1-9][0-9]{0,4})?/?", re.ASCII
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


def migration(cluster: Document, nodes: Document) -> Iterator[Diagnostic]:
    """tofu_migrate adopts existing VMs: a VM keeps its resource only with its current VM ID
    (bpg replaces a VM whose vm_id changes), and moving clustergen's address onto itself is
    no move."""
    given = cluster.data.get("tofu_migrate") if isinstance(cluster.data, dict) else None
    if not isinstance(given, dict):
        return
    if given.get("vm_address") == "proxmox_virtual_environment_vm.node":
        yield cluster.diag(
            ["tofu_migrate", "vm_address"],
            "is clustergen's own address: there is nothing to move",
            "name the earlier configuration's VM resource, or remove tofu_migrate",
        )
    for index, node in _nodes(nodes):
        if "vm_id" in node:
            continue
        computed = derive.vm_id(cluster.data, node)
        yield nodes.diag(
            ["nodes", index],
            "no vm_id while tofu_migrate adopts existing VMs: this VM is replaced unless "
            f"{computed} (vm_id_base + host number) is its current ID",
            "set vm_id to the VM's current ID (`qm list`); ignore this for a new node",
            severity="warning",
        )


RULES: tuple[Callable[[Document, Document], Iterator[Diagnostic]], ...] = (
    cidrs,
    addresses,
    uniqueness,
    vm_ids,
    vm_id_range,
    controllers,
    macs,
    talos_minimums,
    endpoint,
    lists,
    *rules_provisioning.RULES,
    migration,
    rules_capi.check,
    *rules_templates.RULES,
)


def check(cluster: Document, nodes: Document) -> list[Diagnostic]:
    from generator import honoured

    return [d for rule in (*RULES, honoured.check) for d in rule(cluster, nodes)]
