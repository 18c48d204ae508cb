"""Stage 2b: map a host dialect's (schema-valid) inputs onto clustergen's model inputs.

After this stage every key has clustergen's name and meaning; the host's defaults are
applied here (they differ from clustergen's), and every host value clustergen cannot honour
is an error or a warning, never silently dropped. The result is checked once more against
clustergen's own schemas and rules, with positions of the source (see mapped.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from generator import constants
from generator.dialects import CLUSTER_TEMPLATE, TALOS_CLUSTER, mapped, talenv
from generator.errors import Diagnostic
from generator.load import Document, PathPart

P = tuple[PathPart, ...]

# Host keys with the same name and meaning as clustergen's.
SAME = (
    "node_cidr",
    "node_default_gateway",
    "node_dns_servers",
    "cluster_api_addr",
    "cluster_pod_cidr",
    "cluster_svc_cidr",
    "proxmox_node",
    "proxmox_iso_storage",
    "talos_version",
    "kubernetes_version",
    "cluster_name",
)
NODE_SAME = ("name", "address", "controller", "mac_addr", "vm_id")
# The host's defaults where a key is absent (its CUE defaults).
CLUSTER_NAME_DEFAULT = {CLUSTER_TEMPLATE: "kubernetes", TALOS_CLUSTER: "matherlynet"}
TC_VERSIONS = {"talos_version": "1.12.0", "kubernetes_version": "1.35.0"}
TC_DISK_STORAGE = "local-lvm"
TC_GLOBAL = {"cores": 4, "sockets": 1, "memory": 8192, "disk_size": 128}
TC_ROLE_BLOCKS = {
    "controller": "proxmox_vm_controller_defaults",
    "worker": "proxmox_vm_worker_defaults",
}
TC_ADVANCED = {
    "bios": "ovmf",
    "machine": "q35",
    "scsi_hw": "virtio-scsi-pci",
    "balloon": 0,
    "numa": True,
    "qemu_agent": True,
    "net_queues": 4,
    "disk_discard": True,
    "disk_ssd": True,
    "disk_backup": False,
    "disk_replicate": False,
    "ostype": "l26",
}
TC_CPU_TYPE = "host"
TC_BRIDGE = "vmbr0"
# talos-cluster per-node vm_* keys -> clustergen node keys.
TC_NODE = {
    "vm_cores": "cores",
    "vm_sockets": "sockets",
    "vm_memory": "memory",
    "vm_disk_size": "disk_size",
    "vm_startup_order": "startup_order",
    "vm_startup_delay": "startup_delay",
    "vm_shutdown_delay": "shutdown_delay",
}
HOST_SECUREBOOT_DEFAULT = False
HOST_MTU_DEFAULT = 1500
SECRET_KEYS = constants.SECRET_KEYS
API_PATH = "/api2/json"


@dataclass
class _Out:
    """The normalised data being built, with the source path of each value."""

    data: dict[str, Any] = field(default_factory=dict)
    paths: dict[P, P] = field(default_factory=dict)

    def put(self, key: str, value: Any, source: P) -> None:
        self.data[key] = value
        self.paths[(key,)] = source


@dataclass(frozen=True)
class Normalised:
    cluster: Document
    nodes: Document
    secrets: dict[str, str]
    diagnostics: list[Diagnostic]


def _own_keys(schema: str) -> set[str]:
    from generator import derive

    return set(derive._CLUSTER_PROPS) if schema == "cluster" else set(derive._NODE_PROPS)


def _host_keys(dialect: str, kind: str) -> set[str]:
    import json

    from generator import resources
    from generator.dialects import schema_name

    data = json.loads(resources.schema_path(schema_name(dialect, kind)).read_text("utf-8"))
    props = data["properties"] if kind == "cluster" else data["$defs"]["node"]["properties"]
    return {k for k, spec in props.items() if spec.get("x-dialect") == dialect}


def _vlan(text: Any) -> int | None:
    if isinstance(text, str) and text.isdigit() and 1 <= int(text) <= 4094:
        return int(text)
    return None


class _Normaliser:
    def __init__(self, dialect: str, cluster: Document, nodes: Document, config_dir: Path):
        self.dialect = dialect
        self.cluster_doc = cluster
        self.nodes_doc = nodes
        self.config_dir = config_dir
        self.c: dict[str, Any] = cluster.data
        self.problems: list[Diagnostic] = []
        self.secrets: dict[str, str] = {}
        self.host_cluster = _host_keys(dialect, "cluster")
        self.host_node = _host_keys(dialect, "nodes")
        provisioners = self.c.get("provisioners")
        self.capi = isinstance(provisioners, list) and "capi" in provisioners

    # --- helpers ------------------------------------------------------------------------

    def error(self, doc: Document, path: Iterable[PathPart], message: str, hint: str = "") -> None:
        self.problems.append(doc.diag(list(path), message, hint))

    def warn(self, doc: Document, path: Iterable[PathPart], message: str, hint: str = "") -> None:
        self.problems.append(doc.diag(list(path), message, hint, severity="warning"))

    def one_of(self, out: _Out, target: str, candidates: list[tuple[str, Any]], where: str) -> None:
        """target from the first given of several keys; two given that disagree: an error."""
        given = [(k, v) for k, v in candidates if v is not None]
        if not given:
            return
        key, value = given[0]
        for other, other_value in given[1:]:
            if other_value != value:
                self.error(
                    self.cluster_doc,
                    [other],
                    f"{other} {other_value!r} disagrees with {key} {value!r} ({where})",
                    f"give {target} in one place",
                )
        out.put(target, value, (key,))

    # --- cluster.yaml -------------------------------------------------------------------

    def cluster(self, nodes_out: list[dict[str, Any]]) -> _Out:
        out = _Out()
        own = _own_keys("cluster")
        for key, value in self.c.items():
            # clustergen's own keys keep their meaning unless the host defines the same name.
            if key in own and key not in self.host_cluster:
                out.put(key, value, (key,))
        for key in SAME:
            if key in self.c and key in self.host_cluster:
                out.put(key, self.c[key], (key,))
        if "cluster_name" not in out.data:
            out.data["cluster_name"] = CLUSTER_NAME_DEFAULT[self.dialect]
        self.vlan(out)
        self.versions(out)
        if self.dialect == TALOS_CLUSTER:
            self.talos_cluster(out)
        self.from_nodes(out, nodes_out)
        return out

    def vlan(self, out: _Out) -> None:
        if "node_vlan_tag" not in self.c:
            return
        tag = _vlan(self.c["node_vlan_tag"])
        if tag is None:
            self.error(
                self.cluster_doc,
                ["node_vlan_tag"],
                f"{self.c['node_vlan_tag']!r} is not a VLAN ID (1..4094)",
                'write it as a quoted number like "100"',
            )
            return
        on_proxmox = self.dialect == TALOS_CLUSTER and self.c.get("proxmox_vlan_mode") is True
        if on_proxmox:
            # proxmox_vlan_mode: Proxmox tags the NIC, Talos sees untagged traffic.
            out.put("node_vlan_tag", tag, ("node_vlan_tag",))
            return
        # The host's talconfig puts the VLAN on a sub-interface inside Talos: the Proxmox NIC
        # stays untagged (a trunk), never tagged twice.
        out.data["node_vlan_tag"] = None
        out.paths[("node_vlan_tag",)] = ("node_vlan_tag",)
        if self.capi:
            hint = (
                "set proxmox_vlan_mode: true to tag the Proxmox NIC instead"
                if self.dialect == TALOS_CLUSTER
                else "leave capi out of provisioners (the host's talconfig configures Talos)"
            )
            self.error(
                self.cluster_doc,
                ["node_vlan_tag"],
                f"VLAN {tag} belongs inside Talos here ({self.dialect}), and clustergen's CAPI "
                "Talos configuration cannot create a VLAN sub-interface",
                hint,
            )

    def versions(self, out: _Out) -> None:
        if self.dialect == TALOS_CLUSTER:
            # talos-cluster keeps them in cluster.yaml (its talenv.yaml.j2 is not the source).
            for key, default in TC_VERSIONS.items():
                out.data.setdefault(key, default)
            return
        found = talenv.read(self.config_dir)
        self.problems.extend(found.diagnostics)
        for key, host in (
            ("talos_version", "talosVersion"),
            ("kubernetes_version", "kubernetesVersion"),
        ):
            mine = self.c.get(key)
            theirs = found.versions.get(key)
            if mine is not None and theirs is not None and mine != theirs.value:
                self.error(
                    self.cluster_doc,
                    [key],
                    f"{key} {mine!r} disagrees with {host} v{theirs.value} in "
                    f"{theirs.file}:{theirs.line}",
                    "keep the version in one place (renovate bumps talenv.yaml)",
                )
            elif mine is None and theirs is not None:
                out.data[key] = theirs.value
            elif mine is None and self.dialect == TALOS_CLUSTER:
                out.data[key] = TC_VERSIONS[key]
            elif mine is None:
                self.error(
                    self.cluster_doc,
                    [],
                    f"no {key}: neither cluster.yaml nor talos/talenv.yaml ({host}) gives it",
                    f"add {key}: {TC_VERSIONS[key]}",
                )

    def talos_cluster(self, out: _Out) -> None:
        c = self.c
        # proxmox_api_url carries the API path; clustergen's endpoint is the URL without it.
        api = c.get("proxmox_api_url")
        if isinstance(api, str):
            api = api.rstrip("/")
            api = api[: -len(API_PATH)] if api.endswith(API_PATH) else api
        endpoint = c.get("proxmox_endpoint")
        if isinstance(endpoint, str):
            endpoint = endpoint.rstrip("/")
        self.one_of(
            out,
            "proxmox_endpoint",
            [("proxmox_api_url", api), ("proxmox_endpoint", endpoint)],
            "both name the Proxmox VE API",
        )
        if "proxmox_endpoint" not in out.data:
            self.error(
                self.cluster_doc,
                [],
                "no Proxmox VE API: clustergen needs proxmox_api_url (or proxmox_endpoint)",
                'add proxmox_api_url: "https://pve.example:8006/api2/json"',
            )
        self.one_of(
            out,
            "proxmox_storage",
            [
                ("proxmox_disk_storage", c.get("proxmox_disk_storage")),
                ("proxmox_storage", c.get("proxmox_storage")),
            ],
            "both name the VM disk storage",
        )
        out.data.setdefault("proxmox_storage", TC_DISK_STORAGE)
        advanced = c.get("proxmox_vm_advanced") or {}
        self.one_of(
            out,
            "proxmox_bridge",
            [
                ("proxmox_vm_advanced", advanced.get("network_bridge")),
                ("proxmox_bridge", c.get("proxmox_bridge")),
            ],
            "both name the bridge",
        )
        if ("proxmox_bridge",) in out.paths and out.paths[("proxmox_bridge",)] == (
            "proxmox_vm_advanced",
        ):
            out.paths[("proxmox_bridge",)] = ("proxmox_vm_advanced", "network_bridge")
        out.data.setdefault("proxmox_bridge", TC_BRIDGE)
        if "vm_advanced" in c and "proxmox_vm_advanced" in c:
            self.error(
                self.cluster_doc,
                ["vm_advanced"],
                "vm_advanced and proxmox_vm_advanced both given",
                "keep proxmox_vm_advanced (talos-cluster's key)",
            )
        if "vm_advanced" not in c:
            values = {k: advanced.get(k, d) for k, d in TC_ADVANCED.items()}
            out.put("vm_advanced", values, ("proxmox_vm_advanced",))
        self.vm_defaults(out, advanced)
        self.advanced_tags(advanced)
        for key in SECRET_KEYS:
            if isinstance(c.get(key), str):
                self.secrets[key] = c[key]

    def advanced_tags(self, advanced: dict[str, Any]) -> None:
        """proxmox_vm_advanced.tags become every VM's tags: checked here, at their source."""
        import re

        for index, tag in enumerate(advanced.get("tags") or []):
            if not re.fullmatch(r"[a-z0-9_][a-z0-9_+.-]*", tag):
                self.error(
                    self.cluster_doc,
                    ["proxmox_vm_advanced", "tags", index],
                    f"{tag!r} is not a Proxmox tag (a-z 0-9 _ + . -)",
                    f"did you mean {tag.lower()!r}?" if tag != tag.lower() else "",
                )

    def vm_defaults(self, out: _Out, advanced: dict[str, Any]) -> None:
        c = self.c
        host_blocks = ("proxmox_vm_defaults", *TC_ROLE_BLOCKS.values())
        if "vm_defaults" in c and any(b in c for b in host_blocks):
            self.error(
                self.cluster_doc,
                ["vm_defaults"],
                "vm_defaults and proxmox_vm_*_defaults both given",
                "keep talos-cluster's proxmox_vm_defaults and "
                "proxmox_vm_{controller,worker}_defaults",
            )
            return
        if "vm_defaults" in c:
            return
        base = c.get("proxmox_vm_defaults") or {}
        roles: dict[str, Any] = {}
        for role, block in TC_ROLE_BLOCKS.items():
            given = c.get(block) or {}
            # global -> role: the role's block wins over proxmox_vm_defaults, which wins over
            # the host's global defaults; nodes override both (see nodes()).
            roles[role] = {k: given.get(k, base.get(k, d)) for k, d in TC_GLOBAL.items()}
            roles[role]["cpu_type"] = advanced.get("cpu_type", TC_CPU_TYPE)
            for key in TC_GLOBAL:
                src = (block, key) if key in given else ("proxmox_vm_defaults", key)
                out.paths[("vm_defaults", role, key)] = src
            out.paths[("vm_defaults", role, "cpu_type")] = ("proxmox_vm_advanced", "cpu_type")
        out.data["vm_defaults"] = roles

    def from_nodes(self, out: _Out, nodes: list[dict[str, Any]]) -> None:
        """The cluster-wide image and MTU from what the hosts keep per node: the (schematic,
        SecureBoot) pair most nodes use becomes the cluster's (its template keeps
        talos_template_vmid), every node keeps its own (see nodes()); likewise the MTU."""
        pairs = [
            (n.get("talos_schematic_id"), n.get("talos_secureboot"))
            for n in nodes
            if isinstance(n, dict)
        ]
        common = _most_common(pairs)
        if common is not None:
            schematic_id, secureboot = common
            if schematic_id is not None and "talos_schematic_id" not in self.c:
                out.data["talos_schematic_id"] = schematic_id
            if "talos_secureboot" not in self.c:
                out.data["talos_secureboot"] = secureboot
        mtu = _most_common([n.get("mtu") for n in nodes if isinstance(n, dict)])
        if mtu is not None and "node_mtu" not in self.c:
            out.data["node_mtu"] = mtu
        given = any(isinstance(n, dict) and "talos_schematic_id" in n for n in nodes)
        if given and "talos_extensions" in self.c:
            self.error(
                self.cluster_doc,
                ["talos_extensions"],
                "talos_extensions has no effect here: the Talos image is the nodes' schematic_id",
                "remove talos_extensions (edit the schematic at factory.talos.dev instead)",
            )

    def per_node(
        self, index: int, node: dict[str, Any], item: dict[str, Any], paths: dict[P, P]
    ) -> None:
        """The host's per-node schematic_id, secureboot and mtu, with the host's defaults."""
        for host, mine, default in (
            ("schematic_id", "talos_schematic_id", None),
            ("secureboot", "talos_secureboot", HOST_SECUREBOOT_DEFAULT),
            ("mtu", "mtu", HOST_MTU_DEFAULT),
        ):
            if host not in self.host_node:
                continue
            value = node.get(host, default)
            if value is None:
                continue
            item[mine] = value
            paths[("nodes", index, mine)] = (
                ("nodes", index, host) if host in node else ("nodes", index)
            )

    # --- nodes.yaml ---------------------------------------------------------------------

    def nodes(self) -> tuple[list[dict[str, Any]], dict[P, P]]:
        own = _own_keys("nodes")
        raw = self.nodes_doc.data.get("nodes") or []
        tags = (self.c.get("proxmox_vm_advanced") or {}).get("tags") or []
        result: list[dict[str, Any]] = []
        paths: dict[P, P] = {}
        for index, node in enumerate(raw):
            if not isinstance(node, dict):
                result.append(node)
                continue
            item: dict[str, Any] = {}
            for key, value in node.items():
                if key in own and key not in self.host_node:
                    item[key] = value
            for key in NODE_SAME:
                if key in node:
                    item[key] = node[key]
            self.disk(index, node, item)
            self.per_node(index, node, item, paths)
            if self.dialect == TALOS_CLUSTER:
                for host, mine in TC_NODE.items():
                    if host not in node:
                        continue
                    if mine in node:
                        self.error(
                            self.nodes_doc,
                            ["nodes", index, mine],
                            f"{mine} and {host} both given",
                            f"keep {host} (talos-cluster's key)",
                        )
                    item[mine] = node[host]
                    paths[("nodes", index, mine)] = ("nodes", index, host)
                if tags:
                    item["tags"] = sorted({*tags, *item.get("tags", [])})
            self.talos_only(index, node)
            result.append(item)
        return result, paths

    def disk(self, index: int, node: dict[str, Any], item: dict[str, Any]) -> None:
        disk = node.get("disk")
        if not isinstance(disk, str):
            return
        if disk.startswith("/"):
            item["disk"] = disk
        elif self.capi:
            # A serial is a talconfig installDiskSelector; CAPI's install.disk wants a path.
            self.error(
                self.nodes_doc,
                ["nodes", index, "disk"],
                f"disk {disk!r} is a disk serial: clustergen's CAPI Talos configuration "
                "installs to a device path only",
                "give the device path, e.g. /dev/sda",
            )

    def talos_only(self, index: int, node: dict[str, Any]) -> None:
        """Host keys of the Talos configuration (talhelper's job, not clustergen's)."""
        if not self.capi:
            return
        for key in ("encrypt_disk", "kernel_modules"):
            if node.get(key):
                self.warn(
                    self.nodes_doc,
                    ["nodes", index, key],
                    f"clustergen's CAPI Talos configuration does not honour {key}",
                    "the host's talconfig does; CAPI-made nodes go without it",
                )


def _most_common(values: list[Any]) -> Any:
    """The value most entries have; on a tie the one that comes first."""
    counts: dict[Any, int] = {}
    for value in values:
        counts[value] = counts.get(value, 0) + 1
    if not counts:
        return None
    return max(counts, key=lambda v: (counts[v], -values.index(v)))


def pick_vm_ids(cluster: dict[str, Any], nodes: list[dict[str, Any]]) -> None:
    """talos-cluster: a node without vm_id is Proxmox's to number. clustergen numbers it
    (stable IDs), as its own dialect does (vm_id_base + host number), stepping over every ID
    another node or a template holds, so an explicit vm_id never clashes with a derived one."""
    from generator import derive, talos_templates

    taken = {n["vm_id"] for n in nodes if isinstance(n, dict) and isinstance(n.get("vm_id"), int)}
    taken.update(talos_templates.vmids(cluster, nodes))
    for node in nodes:
        if not isinstance(node, dict) or "vm_id" in node:
            continue
        candidate = derive.vm_id(cluster, node)
        if candidate is None:
            continue
        while candidate in taken:
            candidate += 1
        node["vm_id"] = candidate
        taken.add(candidate)


def normalise(dialect: str, cluster: Document, nodes: Document, config_dir: Path) -> Normalised:
    """Schema-valid host inputs -> clustergen's inputs (documents with source positions)."""
    work = _Normaliser(dialect, cluster, nodes, config_dir)
    node_list, node_paths = work.nodes()
    out = work.cluster(node_list)
    if dialect == TALOS_CLUSTER:
        pick_vm_ids(out.data, node_list)
    for key in SECRET_KEYS:
        out.data.pop(key, None)
    return Normalised(
        mapped.mapped(cluster, out.data, out.paths),
        mapped.mapped(nodes, {"nodes": node_list}, node_paths),
        work.secrets,
        work.problems,
    )
