"""Rules on cluster.yaml's networks and every address in them: CIDRs well formed and
disjoint, the gateway, the API VIP and each node a host of node_cidr and none the same."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from typing import Any

from generator import derive
from generator.errors import Diagnostic
from generator.load import Document, PathPart
from generator.rulekit import indexed_nodes as _nodes
from generator.rulekit import owner as _owner
from generator.rulekit import where as _where

Net = ipaddress.IPv4Network
Addr = ipaddress.IPv4Address
MAX_NODE_PREFIX = 29


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
