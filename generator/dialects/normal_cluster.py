"""A host's cluster.yaml in clustergen's keys: clustergen's own keys, the host keys that
mean the same, the VLAN (on the Proxmox NIC or inside Talos), the Talos and Kubernetes
versions (from talenv.yaml in cluster-template), and the image and MTU most nodes use."""

from __future__ import annotations

from typing import Any

from generator.dialects import TALOS_CLUSTER, talenv
from generator.dialects.hostdefaults import CLUSTER_NAME_DEFAULT, SAME, TC_VERSIONS
from generator.dialects.normal_talos import talos_cluster
from generator.dialects.work import Out, Work, own_keys


def cluster(work: Work, nodes_out: list[dict[str, Any]]) -> Out:
    out = Out()
    own = own_keys("cluster")
    for key, value in work.c.items():
        # clustergen's own keys keep their meaning unless the host defines the same name.
        if key in own and key not in work.host_cluster:
            out.put(key, value, (key,))
    for key in SAME:
        if key in work.c and key in work.host_cluster:
            out.put(key, work.c[key], (key,))
    if "cluster_name" not in out.data:
        out.data["cluster_name"] = CLUSTER_NAME_DEFAULT[work.dialect]
    vlan(work, out)
    versions(work, out)
    if work.dialect == TALOS_CLUSTER:
        talos_cluster(work, out)
    from_nodes(work, out, nodes_out)
    return out


def _vlan(text: Any) -> int | None:
    if isinstance(text, str) and text.isdigit() and 1 <= int(text) <= 4094:
        return int(text)
    return None


def vlan(work: Work, out: Out) -> None:
    c = work.c
    if "node_vlan_tag" not in c:
        return
    tag = _vlan(c["node_vlan_tag"])
    if tag is None:
        work.error(
            work.cluster_doc,
            ["node_vlan_tag"],
            f"{c['node_vlan_tag']!r} is not a VLAN ID (1..4094)",
            'write it as a quoted number like "100"',
        )
        return
    on_proxmox = work.dialect == TALOS_CLUSTER and c.get("proxmox_vlan_mode") is True
    if on_proxmox:
        # proxmox_vlan_mode: Proxmox tags the NIC, Talos sees untagged traffic.
        out.put("node_vlan_tag", tag, ("node_vlan_tag",))
        return
    # The host's talconfig puts the VLAN on a sub-interface inside Talos: the Proxmox NIC
    # stays untagged (a trunk), never tagged twice.
    out.data["node_vlan_tag"] = None
    out.paths[("node_vlan_tag",)] = ("node_vlan_tag",)
    if work.capi:
        hint = (
            "set proxmox_vlan_mode: true to tag the Proxmox NIC instead"
            if work.dialect == TALOS_CLUSTER
            else "leave capi out of provisioners (the host's talconfig configures Talos)"
        )
        work.error(
            work.cluster_doc,
            ["node_vlan_tag"],
            f"VLAN {tag} belongs inside Talos here ({work.dialect}), and clustergen's CAPI "
            "Talos configuration cannot create a VLAN sub-interface",
            hint,
        )


def versions(work: Work, out: Out) -> None:
    if work.dialect == TALOS_CLUSTER:
        # talos-cluster keeps them in cluster.yaml (its talenv.yaml.j2 is not the source).
        for key, default in TC_VERSIONS.items():
            out.data.setdefault(key, default)
        return
    found = talenv.read(work.config_dir)
    work.problems.extend(found.diagnostics)
    for key, host in (
        ("talos_version", "talosVersion"),
        ("kubernetes_version", "kubernetesVersion"),
    ):
        mine = work.c.get(key)
        theirs = found.versions.get(key)
        if mine is not None and theirs is not None and mine != theirs.value:
            work.error(
                work.cluster_doc,
                [key],
                f"{key} {mine!r} disagrees with {host} v{theirs.value} in "
                f"{theirs.file}:{theirs.line}",
                "keep the version in one place (renovate bumps talenv.yaml)",
            )
        elif mine is None and theirs is not None:
            out.data[key] = theirs.value
        elif mine is None and work.dialect == TALOS_CLUSTER:
            out.data[key] = TC_VERSIONS[key]
        elif mine is None:
            work.error(
                work.cluster_doc,
                [],
                f"no {key}: neither cluster.yaml nor talos/talenv.yaml ({host}) gives it",
                f"add {key}: {TC_VERSIONS[key]}",
            )


def from_nodes(work: Work, out: Out, nodes: list[dict[str, Any]]) -> None:
    """The cluster-wide image and MTU from what the hosts keep per node: the (schematic,
    SecureBoot) pair most nodes use becomes the cluster's (its template keeps
    talos_template_vmid), every node keeps its own (see normal_nodes.nodes()); likewise
    the MTU."""
    mappings = [n for n in nodes if isinstance(n, dict)]
    pairs = [(n.get("talos_schematic_id"), n.get("talos_secureboot")) for n in mappings]
    common = _most_common(pairs)
    if common is not None:
        schematic_id, secureboot = common
        if schematic_id is not None and "talos_schematic_id" not in work.c:
            out.data["talos_schematic_id"] = schematic_id
        if "talos_secureboot" not in work.c:
            out.data["talos_secureboot"] = secureboot
    mtu = _most_common([n.get("mtu") for n in mappings])
    if mtu is not None and "node_mtu" not in work.c:
        out.data["node_mtu"] = mtu
    given = any("talos_schematic_id" in n for n in mappings)
    if given and "talos_extensions" in work.c:
        work.error(
            work.cluster_doc,
            ["talos_extensions"],
            "talos_extensions has no effect here: the Talos image is the nodes' schematic_id",
            "remove talos_extensions (edit the schematic at factory.talos.dev instead)",
        )


def _most_common(values: list[Any]) -> Any:
    """The value most entries have; on a tie the one that comes first."""
    counts: dict[Any, int] = {}
    for value in values:
        counts[value] = counts.get(value, 0) + 1
    if not counts:
        return None
    return max(counts, key=lambda v: (counts[v], -values.index(v)))
