"""Semantic rules of the Cluster API path; they apply only when `capi` is a provisioner.

What they guard: a CAPI cluster that renders valid CRDs but cannot come up or roll out
(Talos >= 1.12 patch documents, a template VM ID of its own, spare IP pool addresses, provider
versions with known bugs, and the one CPU type CAPMOX machines can have). Values of the
wrong type were already reported by the schema and are skipped here.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterator
from typing import Any

from generator import constants, derive, rules_provisioning, rules_templates, talos_templates
from generator.errors import Diagnostic
from generator.load import Document, PathPart
from generator.rulekit import as_int as _int
from generator.rulekit import indexed_nodes as _nodes
from generator.rulekit import where as _where

# LinkAliasConfig and Layer2VIPConfig, the documents the VIP patch uses, exist from Talos 1.12.
MIN_TALOS = (1, 12, 0)
# Fewest controllers that a control-plane rollout can replace one by one without losing etcd
# quorum; below it the rollout creates a machine first, which needs a free pool address.
SAFE_SCALE_IN_REPLICAS = constants.SAFE_SCALE_IN_REPLICAS
# cluster-api #13184: these read status.ready instead of status.initialized of v1beta1
# control planes such as TalosControlPlane (fixed in 1.11.5 and 1.12.2).
BROKEN_CORE = (((1, 11, 0), (1, 11, 4)), ((1, 12, 0), (1, 12, 1)))


def _get(cluster: Document, key: str) -> Any:
    data = cluster.data if isinstance(cluster.data, dict) else {}
    return data.get(key, derive.CLUSTER_DEFAULTS.get(key))


def _enabled(cluster: Document) -> bool:
    provisioners = _get(cluster, "provisioners")
    return isinstance(provisioners, list) and "capi" in provisioners


def _version(value: Any) -> tuple[int, ...] | None:
    if not isinstance(value, str):
        return None
    try:
        parts = tuple(int(p) for p in value.split("."))
    except ValueError:
        return None
    return parts if len(parts) == 3 else None


def _capi_entry(cluster: Document) -> list[PathPart]:
    """The `capi` item of provisioners: where a CAPI-only problem of other inputs points."""
    provisioners = cluster.data.get("provisioners") if isinstance(cluster.data, dict) else None
    if isinstance(provisioners, list) and "capi" in provisioners:
        return ["provisioners", provisioners.index("capi")]
    return ["provisioners"]


def _key_or_capi(cluster: Document, key: str) -> list[PathPart]:
    return [key] if isinstance(cluster.data, dict) and key in cluster.data else _capi_entry(cluster)


def talos_version(cluster: Document, nodes: Document) -> Iterator[Diagnostic]:
    version = _version(_get(cluster, "talos_version"))
    if version is not None and version < MIN_TALOS:
        yield cluster.diag(
            ["talos_version"],
            f"capi renders Talos >= 1.12 config patches (LinkAliasConfig, Layer2VIPConfig), "
            f"not {'.'.join(map(str, version))}",
            "use talos_version 1.12.0 or later, or remove capi from provisioners",
        )


def template_vmid(cluster: Document, nodes: Document) -> Iterator[Diagnostic]:
    """The CAPI templates' VM IDs are neither another template's nor any node's."""
    value = _int(_get(cluster, "talos_capi_template_vmid"))
    if value is None:
        return
    if "talos_capi_template_vmid" in cluster.data:
        text = f"talos_capi_template_vmid {value} ({_where(cluster, ['talos_capi_template_vmid'])})"
    else:
        text = f"the default talos_capi_template_vmid {value}"
    if _int(_get(cluster, "talos_template_vmid")) == value:
        # Point at whichever of the two the user wrote, the CAPI key first.
        written = "talos_template_vmid" in cluster.data and "talos_capi_template_vmid" not in (
            cluster.data
        )
        yield cluster.diag(
            ["talos_template_vmid"]
            if written
            else _key_or_capi(cluster, "talos_capi_template_vmid"),
            f"{text} is also talos_template_vmid: the Cluster API template is a VM of its own",
            "choose another talos_capi_template_vmid",
        )
    planned = rules_templates.twins(cluster, nodes) or []
    only = len(planned) == 1
    # The twins of the other pairs' templates: twin VM ID -> the template it copies.
    others = {twin: t for twin, t in planned if not (t.default or only)}
    # VMs that talos_capi_template_vmid must not be (talos_template_vmid is checked above).
    held = [(t.name, t.vmid) for _, t in planned if not t.default]
    held += [(f"{t.name}{rules_provisioning.CAPI_SUFFIX}", twin) for twin, t in others.items()]
    for name, vmid in held:
        if vmid == value:
            yield cluster.diag(
                _key_or_capi(cluster, "talos_capi_template_vmid"),
                f"{text} is also the VM ID of the template {name} (of the nodes with another "
                "schematic): the Cluster API template is a VM of its own",
                "choose another talos_capi_template_vmid",
            )
    for i, node in _nodes(nodes):
        vm_id = derive.vm_id(cluster.data, node)
        key = "vm_id" if "vm_id" in node else "address"
        if vm_id == value:
            yield nodes.diag(
                ["nodes", i, key],
                f"VM ID {value} of nodes[{i}] ({node.get('name')}) is {text}, "
                "the VM ID of the Cluster API template",
                "choose another vm_id, or change talos_capi_template_vmid",
            )
        elif vm_id in others:
            twin_of = others[vm_id]
            yield nodes.diag(
                ["nodes", i, key],
                f"VM ID {vm_id} of nodes[{i}] ({node.get('name')}) is the VM ID of the Cluster "
                f"API template {twin_of.name}{rules_provisioning.CAPI_SUFFIX} (VM ID "
                f"{twin_of.vmid} of template {twin_of.name} + {talos_templates.TWIN_STEP})",
                "choose another vm_id, or change talos_template_vmid",
            )


def _addr(value: Any) -> ipaddress.IPv4Address | None:
    try:
        return ipaddress.IPv4Address(value) if isinstance(value, str) else None
    except ValueError:
        return None


def _taken(cluster: Document, nodes: Document) -> dict[ipaddress.IPv4Address, str]:
    """Addresses a spare must not be, each with what holds it."""
    taken: dict[ipaddress.IPv4Address, str] = {}
    gateway = _addr(derive.gateway(cluster.data))
    if gateway is not None:
        taken[gateway] = "node_default_gateway"
    vip = _addr(cluster.data.get("cluster_api_addr"))
    if vip is not None:
        taken[vip] = "cluster_api_addr (the API VIP)"
    for i, node in _nodes(nodes):
        address = _addr(node.get("address"))
        if address is not None:
            taken.setdefault(address, f"the address of nodes[{i}] ({node.get('name')})")
    return taken


def _ends(net: ipaddress.IPv4Network) -> tuple[ipaddress.IPv4Address, ...]:
    return (net.network_address, net.broadcast_address)


def spare_addresses(cluster: Document, nodes: Document) -> Iterator[Diagnostic]:
    spares = cluster.data.get("capi_spare_addresses", [])
    spares = spares if isinstance(spares, list) else []
    net = derive.network(cluster.data)
    taken = _taken(cluster, nodes)
    seen: dict[ipaddress.IPv4Address, int] = {}
    for i, raw in enumerate(spares):
        address = _addr(raw)
        if address is None:
            continue
        path: list[PathPart] = ["capi_spare_addresses", i]
        if net is not None and address not in net:
            yield cluster.diag(path, f"{address} is outside node_cidr {net}")
        elif net is not None and net.prefixlen <= 30 and address in _ends(net):
            yield cluster.diag(path, f"{address} is not a host address of {net}")
        elif address in taken:
            yield cluster.diag(
                path, f"{address} is already {taken[address]}", "list only unused addresses"
            )
        elif address in seen:
            first = _where(cluster, ["capi_spare_addresses", seen[address]])
            yield cluster.diag(path, f"{address} is listed twice (first at {first})", "remove one")
        else:
            seen[address] = i
    controllers = sum(1 for _, n in _nodes(nodes) if n.get("controller") is True)
    if 0 < controllers < SAFE_SCALE_IN_REPLICAS and not spares:
        example = "an unused address" + (f" of {net}" if net is not None else "")
        yield cluster.diag(
            _key_or_capi(cluster, "capi_spare_addresses"),
            f"{controllers} controller(s): a Cluster API control-plane rollout creates the new "
            "machine before it deletes the old one (deleting first would lose etcd quorum) and "
            "waits forever for a free address of the IP pool",
            f"add {example} to capi_spare_addresses",
        )


def core_version(cluster: Document, nodes: Document) -> Iterator[Diagnostic]:
    version = _version(_get(cluster, "capi_core_version"))
    if version is None:
        return
    for first, last in BROKEN_CORE:
        if first <= version <= last:
            yield cluster.diag(
                _key_or_capi(cluster, "capi_core_version"),
                f"Cluster API {'.'.join(map(str, version))} reads status.ready instead of "
                "status.initialized of a TalosControlPlane (cluster-api #13184): the cluster "
                "never leaves provisioning",
                "use capi_core_version 1.11.5+ or 1.12.2+",
            )


def cpu_type(cluster: Document, nodes: Document) -> Iterator[Diagnostic]:
    """CAPMOX has no CPU type field: every machine keeps the template's, the controllers'."""
    if not any(n.get("controller") is not True for _, n in _nodes(nodes)):
        return
    defaults = cluster.data.get("vm_defaults")
    defaults = defaults if isinstance(defaults, dict) else {}

    def role_type(role: str) -> Any:
        block = defaults.get(role)
        given = block.get("cpu_type") if isinstance(block, dict) else None
        return given if given is not None else derive.ROLE_DEFAULTS_BY_ROLE[role].get("cpu_type")

    controller, worker = role_type("controller"), role_type("worker")
    if isinstance(worker, str) and isinstance(controller, str) and worker != controller:
        path: list[PathPart] = ["vm_defaults", "worker", "cpu_type"]
        yield cluster.diag(
            path if isinstance(defaults.get("worker"), dict) else _capi_entry(cluster),
            f"Cluster API worker machines get CPU type {controller} of the Cluster API template "
            f"(vm_defaults.controller.cpu_type), not {worker}: CAPMOX cannot set a CPU type",
            "use one cpu_type for both roles",
            severity="warning",
        )


CAPI_RULES: tuple[Callable[[Document, Document], Iterator[Diagnostic]], ...] = (
    talos_version,
    template_vmid,
    spare_addresses,
    core_version,
    cpu_type,
)


def check(cluster: Document, nodes: Document) -> Iterator[Diagnostic]:
    if not isinstance(cluster.data, dict) or not _enabled(cluster):
        return
    for rule in CAPI_RULES:
        yield from rule(cluster, nodes)
