"""Rules about what the Packer build, Proxmox clones and Talos images do at run time.

Each one stops a configuration that every schema accepts but that fails (or silently does
less than it says) on a real Proxmox VE host. Linear in the number of nodes.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Callable, Iterator
from typing import Any

from generator import constants, derive, patterns, resources, rulekit
from generator.errors import Diagnostic
from generator.load import Document

GUEST_AGENT = constants.GUEST_AGENT


def _value(cluster: Document, key: str) -> Any:
    data = cluster.data if isinstance(cluster.data, dict) else {}
    return data.get(key, derive.CLUSTER_DEFAULTS.get(key))


def _enabled(cluster: Document, provisioner: str) -> bool:
    value = _value(cluster, "provisioners")
    return isinstance(value, list) and provisioner in value


def _nodes(nodes: Document) -> list[dict[str, Any]]:
    return [n for _, n in rulekit.indexed_nodes(nodes)]


_EXTENSION = patterns.compiled(
    json.loads(resources.schema_path("cluster").read_text(encoding="utf-8"))["properties"][
        "talos_extensions"
    ]["items"]["pattern"]
)


def _well_formed_extensions(value: Any) -> bool:
    return isinstance(value, list) and all(
        isinstance(item, str) and _EXTENSION.search(item) for item in value
    )


def packer_arch(cluster: Document, nodes: Document) -> Iterator[Diagnostic]:
    """The build boots the Arch Linux live ISO, which exists for x86_64 only."""
    arch = _value(cluster, "talos_arch")
    if _enabled(cluster, "packer") and arch != "amd64" and isinstance(arch, str):
        yield cluster.diag(
            ["talos_arch"],
            f"the Packer build cannot make the {arch} template: it boots the Arch Linux live "
            "ISO, which exists for x86_64 only",
            "build the template another way and remove packer from provisioners",
        )


def packer_network(cluster: Document, nodes: Document) -> Iterator[Diagnostic]:
    """Packer must reach the build VM: at its static address, or through the guest agent."""
    if not _enabled(cluster, "packer"):
        return
    address = _value(cluster, "packer_build_address")
    extensions = _value(cluster, "talos_extensions")
    if address is None:
        # A malformed list is the schema's finding (a misspelt agent would be reported twice).
        if _well_formed_extensions(extensions) and GUEST_AGENT not in extensions:
            yield cluster.diag(
                ["talos_extensions"],
                "Packer learns the DHCP address of its build VM from the QEMU guest agent, "
                f"which the template enables only with {GUEST_AGENT}",
                f"add {GUEST_AGENT}, or set packer_build_address",
            )
        return
    if not isinstance(address, str):
        return
    try:
        ip = ipaddress.IPv4Address(address)
        net = ipaddress.IPv4Network(_value(cluster, "node_cidr"))
    except (TypeError, ValueError):
        return
    path = ["packer_build_address"]
    if ip not in net or ip in (net.network_address, net.broadcast_address):
        yield cluster.diag(
            path,
            f"{ip} is not a host address of node_cidr {net}",
            "the build VM uses the node network's gateway and DNS servers",
        )
        return
    taken = {_value(cluster, "cluster_api_addr"): "cluster_api_addr"}
    taken[derive.gateway(cluster.data)] = "the node gateway"
    for node in _nodes(nodes):
        taken.setdefault(node.get("address"), f"node {node.get('name')}")
    if address in taken:
        yield cluster.diag(
            path,
            f"{address} is also {taken[address]}",
            "give the build VM a free address of node_cidr",
        )


def given(cluster: Document, key: str) -> bool:
    """Whether cluster.yaml itself has key (not a host dialect's normaliser, which derives
    talos_secureboot from the nodes)."""
    from generator.dialects.mapped import Mapped

    source = cluster.source if isinstance(cluster, Mapped) else cluster
    return isinstance(source, Document) and isinstance(source.data, dict) and key in source.data


def secureboot(cluster: Document, nodes: Document) -> Iterator[Diagnostic]:
    """talos_secureboot: true before Talos 1.14 boots signed images with Secure Boot off."""
    data = cluster.data if isinstance(cluster.data, dict) else {}
    version = data.get("talos_version")
    if data.get("talos_secureboot") is not True or not isinstance(version, str):
        return
    if not given(cluster, "talos_secureboot"):
        return  # a host dialect's, from the nodes: the per-node warning says it there
    try:
        parsed = derive.version(version)
    except ValueError:
        return
    if parsed[:2] < derive.SECUREBOOT_ENROLL_VERSION:
        first = ".".join(map(str, derive.SECUREBOOT_ENROLL_VERSION))
        yield cluster.diag(
            ["talos_secureboot"],
            f"Talos {version} disk images carry no SecureBoot keys: the VMs' firmware stays "
            "in setup mode and boots the signed image with Secure Boot off until you enroll "
            "the keys yourself",
            f"enroll them, or remove talos_secureboot: it defaults to off before Talos {first}",
            severity="warning",
        )


def shared_storage(cluster: Document, nodes: Document) -> Iterator[Diagnostic]:
    """CAPMOX clones with a target node, which Proxmox refuses from node-local storage."""
    if not _enabled(cluster, "capi") or _value(cluster, "proxmox_storage_shared") is True:
        return
    home = _value(cluster, "proxmox_node")
    elsewhere: dict[str, list[str]] = {}
    for node in _nodes(nodes):
        pve = node.get("proxmox_node") or home
        if isinstance(pve, str) and pve != home:
            elsewhere.setdefault(pve, []).append(str(node.get("name")))
    if not elsewhere:
        return
    where = "; ".join(f"{pve}: {', '.join(names)}" for pve, names in sorted(elsewhere.items()))
    storage = _value(cluster, "proxmox_storage")
    given = isinstance(cluster.data, dict) and "proxmox_storage_shared" in cluster.data
    path = ["proxmox_storage_shared" if given else "provisioners"]
    yield cluster.diag(
        path,
        f"Cluster API clones the template from {home} onto other nodes ({where}) with a "
        f"target, which Proxmox refuses unless {storage} is shared storage",
        f"set proxmox_storage_shared: true if {storage} is shared; otherwise keep every "
        f"node on {home} or remove capi from provisioners",
    )


# Proxmox VE VM names are DNS names: one label of at most 63 characters here.
MAX_VM_NAME = 63
CAPI_SUFFIX = "-capi"


def capi_template_name(cluster: Document, nodes: Document) -> Iterator[Diagnostic]:
    """With capi, Packer also builds <talos_template>-capi, which must still be a VM name."""
    name = cluster.data.get("talos_template") if isinstance(cluster.data, dict) else None
    if not (_enabled(cluster, "packer") and _enabled(cluster, "capi") and isinstance(name, str)):
        return
    if len(name) + len(CAPI_SUFFIX) > MAX_VM_NAME:
        yield cluster.diag(
            ["talos_template"],
            f"{name!r} is too long: Cluster API's template {name}{CAPI_SUFFIX} would exceed "
            f"the {MAX_VM_NAME} characters of a Proxmox VE VM name",
            f"use at most {MAX_VM_NAME - len(CAPI_SUFFIX)} characters",
        )


RULES: tuple[Callable[[Document, Document], Iterator[Diagnostic]], ...] = (
    packer_arch,
    packer_network,
    secureboot,
    shared_storage,
    capi_template_name,
)
