"""Cluster API manifests (infrastructure/capi): what models/capi.py and cluster.yaml.j2 make.

Conformance: every rendered document validates against each matching CRD schema under
../shared/reference/capi (CAPMOX v1alpha1 kinds against both v0.7.7 and v0.9.0) and against the
CEL / admission-webhook rules of ../shared/reference/README.md, implemented in helpers.capi as
checkers (test_capi_checkers shows each fail on a document broken in the way it guards against).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from generator.models import capi as capi_model
from generator.options import Options
from generator.pipeline import render_tree
from helpers.capi import (
    CAPI_DIR,
    CAPMOX_V1ALPHA1,
    CLUSTER_YAML,
    DNS_LABEL,
    KUSTOMIZATION,
    TASKFILE,
    Doc,
    capi_only,
    check_names,
    check_pool_capacity,
    deployments,
    ipv4_set,
    kind_patches,
    load_docs,
    max_surge,
    multi_host,
    of_kind,
    read_inputs,
    render_context,
    schema_errors,
    schemas,
    talos_spec,
    v1alpha1_patch,
    variant,
    violations,
)

__all__ = ["multi_host", "schemas", "variant"]  # the fixtures of helpers.capi

# --- tests -----------------------------------------------------------------------------------


def test_only_multi_host_enables_capi(rendered: Callable[[str], dict[str, bytes]]) -> None:
    assert CLUSTER_YAML in rendered("multi-host")
    for example in ("minimal", "homelab"):
        files = rendered(example)
        assert not [p for p in files if p.startswith(CAPI_DIR)]
        assert b"capi:" not in files[TASKFILE]


def test_multi_host_snapshot(
    multi_host: tuple[Mapping[str, Any], dict[str, bytes]], snapshot: Any
) -> None:
    _, files = multi_host
    assert files[CLUSTER_YAML].decode() == snapshot(name="cluster.yaml")
    assert files[KUSTOMIZATION].decode() == snapshot(name="kustomization.yaml")


def test_variant_snapshot(
    variant: tuple[str, Mapping[str, Any], dict[str, bytes]], snapshot: Any
) -> None:
    example, _, files = variant
    assert files[CLUSTER_YAML].decode() == snapshot(name=f"{example}-cluster.yaml")


def test_multi_host_conforms(
    multi_host: tuple[Mapping[str, Any], dict[str, bytes]], schemas: Any
) -> None:
    context, files = multi_host
    docs = load_docs(files[CLUSTER_YAML])
    assert schema_errors(docs, schemas) == []
    assert violations(docs, context) == []


def test_variant_conforms(
    variant: tuple[str, Mapping[str, Any], dict[str, bytes]], schemas: Any
) -> None:
    _, context, files = variant
    docs = load_docs(files[CLUSTER_YAML])
    assert schema_errors(docs, schemas) == []
    assert violations(docs, context) == []


def test_capmox_kinds_meet_both_schema_versions(schemas: Any) -> None:
    for kind in CAPMOX_V1ALPHA1:
        names = [n for n, _ in schemas[("infrastructure.cluster.x-k8s.io/v1alpha1", kind)]]
        assert any("v0.7.7" in n for n in names) and any("v0.9.0" in n for n in names), names


def test_every_document_has_header_and_namespace(
    multi_host: tuple[Mapping[str, Any], dict[str, bytes]],
) -> None:
    context, files = multi_host
    for path in (CLUSTER_YAML, KUSTOMIZATION):
        text = files[path].decode()
        assert text.startswith(f"# {context['generated_header']}\n---\n")
    docs = load_docs(files[CLUSTER_YAML])
    assert {d["metadata"]["namespace"] for d in docs} == {context["capi_namespace"]}


def test_counts_follow_nodes_yaml(variant: tuple[str, Mapping[str, Any], dict[str, bytes]]) -> None:
    _, context, files = variant
    docs = load_docs(files[CLUSTER_YAML])
    controllers = [n for n in context["nodes"] if n["controller"]]
    workers = [n for n in context["nodes"] if not n["controller"]]
    (control_plane,) = of_kind(docs, "TalosControlPlane")
    assert control_plane["spec"]["replicas"] == len(controllers)
    deployments = of_kind(docs, "MachineDeployment")
    assert sum(d["spec"]["replicas"] for d in deployments) == len(workers)
    if not workers:
        assert deployments == [] and of_kind(docs, "TalosConfigTemplate") == []
        assert len(of_kind(docs, "ProxmoxMachineTemplate")) == 1


def test_proxmox_cluster_network(variant: tuple[str, Mapping[str, Any], dict[str, bytes]]) -> None:
    _, context, files = variant
    (cluster,) = of_kind(load_docs(files[CLUSTER_YAML]), "ProxmoxCluster")
    spec = cluster["spec"]
    planned = {ipaddress.IPv4Address(n["address"]) for n in context["nodes"]}
    spares = {ipaddress.IPv4Address(a) for a in context["capi_spare_addresses"]}
    assert ipv4_set(spec["ipv4Config"]["addresses"]) == planned | spares
    network = ipaddress.IPv4Network(context["node_cidr"])
    assert spec["ipv4Config"]["prefix"] == network.prefixlen
    assert spec["ipv4Config"]["gateway"] == context["node_default_gateway"]
    assert spec["dnsServers"] == list(context["node_dns_servers"])
    assert spec["controlPlaneEndpoint"] == {
        "host": context["cluster_api_addr"],
        "port": context["cluster_api_port"],
    }
    assert spec["allowedNodes"] == sorted({n["proxmox_node"] for n in context["nodes"]})
    assert spec["credentialsRef"] == {
        "name": f"{context['cluster_name']}-proxmox-credentials",
        "namespace": context["capi_namespace"],
    }


def test_machine_templates_follow_inputs(
    variant: tuple[str, Mapping[str, Any], dict[str, bytes]],
) -> None:
    _, context, files = variant
    docs = load_docs(files[CLUSTER_YAML])
    for doc in of_kind(docs, "ProxmoxMachineTemplate"):
        spec = doc["spec"]["template"]["spec"]
        assert spec["sourceNode"] == context["proxmox_node"]
        # A Cluster API template, not a tofu/Ansible one with its cloud-init drive (which
        # twin each machine template clones: test_capi_split).
        assert spec["templateID"] in {t["vmid"] for t in context["capi"]["twins"]}
        assert spec["templateID"] not in {t["vmid"] for t in context["talos_templates"]}
        assert spec["storage"] == context["proxmox_storage"]
        assert (spec["full"], spec["format"]) == (True, "raw")
        net = spec["network"]["default"]
        assert net["bridge"] == context["proxmox_bridge"]
        assert net["mtu"] in {n["mtu"] for n in context["nodes"]}
        assert net.get("vlan") == context["node_vlan_tag"]
        assert context["cluster_name"] in spec["tags"]
        assert spec["metadataSettings"] == {"providerIDInjection": True}
    (cluster,) = of_kind(docs, "Cluster")
    assert cluster["spec"]["clusterNetwork"] == {
        "pods": {"cidrBlocks": [context["cluster_pod_cidr"]]},
        "services": {"cidrBlocks": [context["cluster_svc_cidr"]]},
    }


def test_talos_config_patches(variant: tuple[str, Mapping[str, Any], dict[str, bytes]]) -> None:
    _, context, files = variant
    docs = load_docs(files[CLUSTER_YAML])
    # The installer of the nodes' (schematic, SecureBoot) pair: one for every controller.
    (installer,) = {n["installer_image"] for n in context["controllers"]}
    worker_installers = {n["installer_image"] for n in context["workers"]}
    ccm = context["capi"]["ccm_manifest"]
    (control_plane,) = of_kind(docs, "TalosControlPlane")
    config = talos_spec(control_plane)
    # JSON6902 configPatches fail on the multi-document configs of Talos >= 1.12.
    assert "configPatches" not in config
    assert config["talosVersion"] == f"v{context['talos_version']}"
    patch = v1alpha1_patch(control_plane)
    assert patch["machine"]["install"]["image"] == installer
    assert patch["machine"]["install"]["disk"] in {n["disk"] for n in context["controllers"]}
    assert patch["machine"]["features"]["kubernetesTalosAPIAccess"] == {
        "enabled": True,
        "allowedRoles": ["os:reader"],
        "allowedKubernetesNamespaces": ["kube-system"],
    }
    assert patch["cluster"]["externalCloudProvider"] == {"enabled": True, "manifests": [ccm]}
    assert f"/v{context['capi_talos_ccm_version']}/" in ccm
    assert "network" not in patch["machine"]  # machine.network.interfaces left Talos 1.12
    documents = kind_patches(control_plane)
    assert documents["LinkAliasConfig"]["selector"] == {"match": 'link.driver == "virtio_net"'}
    vip = documents["Layer2VIPConfig"]
    assert (vip["name"], vip["link"]) == (
        context["cluster_api_addr"],
        documents["LinkAliasConfig"]["name"],
    )
    for doc in of_kind(docs, "TalosConfigTemplate"):
        config = talos_spec(doc)
        assert config["generateType"] == "worker" and "configPatches" not in config
        patch = v1alpha1_patch(doc)
        assert patch["machine"]["install"]["image"] in worker_installers
        # Every kubelet runs --cloud-provider=external; the CCM manifest is the controllers'.
        assert patch["cluster"] == {"externalCloudProvider": {"enabled": True}}
        assert kind_patches(doc) == {}  # the VIP lives on controllers only


def test_renders_are_byte_identical_and_names_stable(
    example_copy: Callable[[str], Path], multi_host: tuple[Mapping[str, Any], dict[str, bytes]]
) -> None:
    _, files = multi_host
    again = render_tree(Options(example_copy("multi-host"))).files
    assert again[CLUSTER_YAML] == files[CLUSTER_YAML]
    assert again[TASKFILE] == files[TASKFILE]


def test_controllers_largest_override_wins(example_copy: Callable[[str], Path]) -> None:
    cluster, nodes = read_inputs(example_copy("multi-host"))
    controllers = [x for x in nodes["nodes"] if x["controller"]]
    controllers[0].update(cores=12, disk_size=300, tags=["edge"], disk="/dev/vdb")
    controllers[1].update(memory=40960, sockets=2, disk="/dev/vdb")
    context, files = render_context(capi_only(cluster), nodes)
    (template,) = [
        d
        for d in of_kind(load_docs(files[CLUSTER_YAML]), "ProxmoxMachineTemplate")
        if d["metadata"]["name"].startswith(f"{cluster['cluster_name']}-control-plane-")
    ]
    spec = template["spec"]["template"]["spec"]
    cps = context["controllers"]
    assert spec["numCores"] == max(n["cores"] for n in cps) == 12
    assert spec["numSockets"] == max(n["sockets"] for n in cps) == 2
    assert spec["memoryMiB"] == max(n["memory"] for n in cps) == 40960
    assert spec["disks"]["bootVolume"]["sizeGb"] == max(n["disk_size"] for n in cps) == 300
    assert "edge" in spec["tags"]
    # One install disk for all controllers: the one most of them use.
    (control_plane,) = of_kind(load_docs(files[CLUSTER_YAML]), "TalosControlPlane")
    assert v1alpha1_patch(control_plane)["machine"]["install"]["disk"] == "/dev/vdb"


@pytest.mark.parametrize(("controllers", "spares"), [(1, 1), (2, 1), (3, 0), (3, 2), (5, 0)])
def test_control_plane_rollout_keeps_quorum(
    controllers: int, spares: int, example_copy: Callable[[str], Path]
) -> None:
    cluster, nodes = read_inputs(example_copy("minimal"))
    first = nodes["nodes"][0]
    nodes["nodes"] = [
        {
            **first,
            "name": f"cp-{i}",
            "address": f"192.168.22.{10 + i}",
            "mac_addr": f"bc:24:11:00:01:{10 + i:02x}",
        }
        for i in range(controllers)
    ]
    cluster = {
        **capi_only(cluster),
        "capi_spare_addresses": [f"192.168.22.{200 + i}" for i in range(spares)],
    }
    _, files = render_context(cluster, nodes)
    docs = load_docs(files[CLUSTER_YAML])
    (control_plane,) = of_kind(docs, "TalosControlPlane")
    surge = max_surge(control_plane["spec"]["rolloutStrategy"], 1)
    # Surge when quorum demands it or a spare address allows it; else replace first.
    assert surge == (0 if controllers >= 3 and not spares else 1)
    assert check_pool_capacity(docs) == []
    (proxmox_cluster,) = of_kind(docs, "ProxmoxCluster")
    pool = ipv4_set(proxmox_cluster["spec"]["ipv4Config"]["addresses"])
    assert len(pool) == controllers + spares
    if spares:
        assert ipaddress.IPv4Address(cluster["capi_spare_addresses"][0]) in pool


def test_one_machine_deployment_per_worker_shape(example_copy: Callable[[str], Path]) -> None:
    cluster, nodes = read_inputs(example_copy("homelab"))
    cluster = capi_only(cluster)
    workers = [x for x in nodes["nodes"] if not x["controller"]]
    for worker in workers:  # homelab workers differ in disk and tags; make them alike
        worker.pop("disk", None)
        worker.pop("tags", None)
    _, files = render_context(cluster, nodes)
    before = deployments(files)
    assert list(before) == [f"{cluster['cluster_name']}-workers"]
    assert before[f"{cluster['cluster_name']}-workers"]["spec"]["replicas"] == len(workers)

    big = {
        **workers[0],
        "name": "k8s-worker-big",
        "address": "192.168.22.40",
        "mac_addr": "bc:24:11:00:22:40",
        "memory": 16384,
        "tags": ["db"],
    }
    nodes["nodes"].append(big)
    _, files = render_context(cluster, nodes)
    after = deployments(files)
    # The existing group keeps its name (no machine is replaced); the new shape is its own MD.
    assert before.keys() < after.keys()
    (new,) = after.keys() - before.keys()
    assert after[new]["spec"]["replicas"] == 1
    assert "db" in new and "16384m" in new
    assert after[f"{cluster['cluster_name']}-workers"]["spec"]["replicas"] == len(workers)


def test_changed_resources_give_new_template_name(example_copy: Callable[[str], Path]) -> None:
    cluster, nodes = read_inputs(example_copy("multi-host"))
    cluster = capi_only(cluster)
    _, files = render_context(cluster, nodes)
    cluster["vm_defaults"]["worker"]["memory"] = 16384
    _, changed = render_context(cluster, nodes)
    before, after = deployments(files), deployments(changed)
    name = f"{cluster['cluster_name']}-workers"

    def template(d: Doc) -> str:
        return str(d["spec"]["template"]["spec"]["infrastructureRef"]["name"])

    # Same MachineDeployment, new immutable template: CAPI rolls the machines over.
    assert template(before[name]) != template(after[name])


def test_kustomization_lists_the_rendered_files(example_copy: Callable[[str], Path]) -> None:
    cluster, nodes = read_inputs(example_copy("multi-host"))
    for has_secrets_file in (False, True):
        _, files = render_context(cluster, nodes, has_secrets_file=has_secrets_file)
        (kustomization,) = load_docs(files[KUSTOMIZATION])
        assert kustomization["kind"] == "Kustomization"
        expected = ["cluster.yaml"] + (
            ["proxmox-credentials.sops.yaml"] if has_secrets_file else []
        )
        assert kustomization["resources"] == expected
        for resource in kustomization["resources"]:
            if resource != "proxmox-credentials.sops.yaml":  # rendered only with a sops key
                assert f"{CAPI_DIR}/{resource}" in files


# --- model helpers ---------------------------------------------------------------------------


def test_address_ranges_fold_consecutive_runs() -> None:
    addresses = ["10.0.0.5", "10.0.0.3", "10.0.0.4", "10.0.0.9", "10.0.1.0", "10.0.0.255"]
    ranges = capi_model.address_ranges(addresses)
    assert ranges == ["10.0.0.3-10.0.0.5", "10.0.0.9", "10.0.0.255-10.0.1.0"]
    assert ipv4_set(ranges) == {ipaddress.IPv4Address(a) for a in addresses}


@pytest.mark.parametrize("text", ["a" * 63, "b" * 64, "x" * 200, "Big_Name.with+tags", "-a-"])
def test_names_are_dns_labels(text: str) -> None:
    label = capi_model.dns_label(text)
    assert DNS_LABEL.match(label), label
    assert capi_model.dns_label(text) == label  # stable
    owned = capi_model.template_name(label, {"spec": text})
    assert DNS_LABEL.match(owned) and len(owned) <= 63, owned


def test_long_cluster_name_keeps_names_valid(example_copy: Callable[[str], Path]) -> None:
    cluster, nodes = read_inputs(example_copy("multi-host"))
    cluster["cluster_name"] = "c" * 63
    context, files = render_context(capi_only(cluster), nodes)
    assert check_names(load_docs(files[CLUSTER_YAML]), context["capi_namespace"]) == []


def test_machines_name_the_cpu_type_they_get(example_copy: Callable[[str], Path]) -> None:
    """CAPMOX has no CPU type field: each template says which one its clones run with, the
    controller role's, that the Cluster API template is built with."""
    cluster, nodes = read_inputs(example_copy("multi-host"))
    cluster["vm_defaults"]["controller"]["cpu_type"] = "x86-64-v3"
    context, files = render_context(capi_only(cluster), nodes)
    assert context["capi"]["template_cpu_type"] == "x86-64-v3"
    text = files[CLUSTER_YAML].decode()
    templates = len(of_kind(load_docs(files[CLUSTER_YAML]), "ProxmoxMachineTemplate"))
    assert text.count("      # CPU type x86-64-v3: the template's") == templates
