"""Cluster API manifests (infrastructure/capi) and the capi:* tasks.

Conformance: every rendered document validates against each matching CRD schema under
../shared/reference/capi (CAPMOX v1alpha1 kinds against both v0.7.7 and v0.9.0) and against the
CEL / admission-webhook rules of ../shared/reference/README.md, implemented below as checkers.
Each checker is shown to fail on a document broken in the way it guards against.
"""

from __future__ import annotations

import copy
import functools
import io
import ipaddress
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft7Validator, Draft202012Validator
from ruamel.yaml import YAML

from generator import derive, inputs, model, render, settings
from generator.models import capi as capi_model
from generator.options import Options
from generator.pipeline import render_tree

CAPI_DIR = "infrastructure/capi"
CLUSTER_YAML = f"{CAPI_DIR}/cluster.yaml"
KUSTOMIZATION = f"{CAPI_DIR}/kustomization.yaml"
CREDENTIALS = f"{CAPI_DIR}/proxmox-credentials.sops.yaml"
TASKFILE = ".taskfiles/infrastructure/Taskfile.yaml"
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
SEMVER_V = re.compile(r"^v(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)([-0-9a-zA-Z_.+]*)?$")
CAPMOX_V1ALPHA1 = ("ProxmoxCluster", "ProxmoxMachineTemplate")

Doc = dict[str, Any]
Docs = list[Doc]


# --- helpers -------------------------------------------------------------------------------


@functools.cache
def _parse(data: bytes) -> Docs:
    yaml = YAML(typ="safe", pure=True)
    return [d for d in yaml.load_all(io.StringIO(data.decode("utf-8"))) if d is not None]


def load_docs(data: bytes) -> Docs:
    """The YAML documents of data; parsed once per content, a fresh copy per caller."""
    return copy.deepcopy(_parse(data))


def plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def read_inputs(config_dir: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    read = inputs.read(config_dir)
    return plain(read.cluster.data), plain(read.nodes.data)


def write_inputs(config_dir: Path, cluster: Mapping[str, Any], nodes: Mapping[str, Any]) -> None:
    yaml = YAML()
    with (config_dir / "cluster.yaml").open("w", encoding="utf-8") as fh:
        yaml.dump(dict(cluster), fh)
    with (config_dir / "nodes.yaml").open("w", encoding="utf-8") as fh:
        yaml.dump(dict(nodes), fh)


def render_context(
    cluster: Mapping[str, Any], nodes: Mapping[str, Any], *, has_secrets_file: bool = False
) -> tuple[Mapping[str, Any], dict[str, bytes]]:
    """model + render without the secrets stage, so a secrets file needs no sops key."""
    context = model.build(cluster, nodes, has_secrets_file=has_secrets_file)
    return context, render.render(context, settings.load())


def of_kind(docs: Docs, kind: str) -> Docs:
    return [d for d in docs if d["kind"] == kind]


def ipv4_set(entries: list[str]) -> set[ipaddress.IPv4Address]:
    """CAPMOX pool entries (single IP, first-last range or CIDR) as the addresses they hold."""
    out: set[ipaddress.IPv4Address] = set()
    for entry in entries:
        if "-" in entry:
            first, last = (ipaddress.IPv4Address(p) for p in entry.split("-"))
            out.update(ipaddress.IPv4Address(i) for i in range(int(first), int(last) + 1))
        elif "/" in entry:
            out.update(ipaddress.IPv4Network(entry, strict=False))
        else:
            out.add(ipaddress.IPv4Address(entry))
    return out


# --- rule checkers (CEL, admission webhooks, cross-object consistency) -----------------------


def check_names(docs: Docs, namespace: str) -> list[str]:
    problems = []
    for doc in docs:
        meta = doc.get("metadata", {})
        where = f"{doc.get('kind')}/{meta.get('name')}"
        if not DNS_LABEL.match(str(meta.get("name", ""))):
            problems.append(f"{where}: name is not a DNS-1123 label")
        if meta.get("namespace") != namespace:
            problems.append(f"{where}: namespace {meta.get('namespace')!r} is not {namespace!r}")
    return problems


def check_proxmox_cluster(doc: Doc) -> list[str]:
    spec = doc.get("spec", {})
    problems = []
    if spec.get("ipv4Config") is None and spec.get("ipv6Config") is None:
        problems.append("ProxmoxCluster: needs ipv4Config or ipv6Config")
    if not spec.get("dnsServers"):
        problems.append("ProxmoxCluster: dnsServers is required")
    endpoint = spec.get("controlPlaneEndpoint") or {}
    if not 0 < int(endpoint.get("port", 0)) < 65536:
        problems.append("ProxmoxCluster: controlPlaneEndpoint.port out of range")
    ipv4 = spec.get("ipv4Config")
    if ipv4 is not None:
        if not ipv4.get("addresses"):
            problems.append("ProxmoxCluster: ipv4Config.addresses is empty")
        elif endpoint.get("host") and ipaddress.IPv4Address(endpoint["host"]) in ipv4_set(
            ipv4["addresses"]
        ):
            problems.append("ProxmoxCluster: ipv4Config.addresses contain the endpoint IP")
    if not (spec.get("credentialsRef") or {}).get("name"):
        problems.append("ProxmoxCluster: credentialsRef.name is missing")
    return problems


def check_machine_template(doc: Doc, context: Mapping[str, Any] | None = None) -> list[str]:
    spec = doc.get("spec", {}).get("template", {}).get("spec", {})
    name = doc.get("metadata", {}).get("name")
    problems = []
    if ("sourceNode" in spec) == ("templateSelector" in spec):
        problems.append(f"{name}: exactly one of sourceNode/templateSelector")
    if ("templateID" in spec) == ("templateSelector" in spec):
        problems.append(f"{name}: exactly one of templateID/templateSelector")
    full = spec.get("full", True)  # the CRD default
    for key in ("storage", "format"):
        if key in spec and not full:
            problems.append(f"{name}: {key} needs full: true")
    boot = (spec.get("disks") or {}).get("bootVolume")
    if not isinstance(boot, Mapping):
        problems.append(f"{name}: disks.bootVolume is missing")
    elif not isinstance(boot.get("sizeGb"), int) or boot["sizeGb"] < 5:
        problems.append(f"{name}: disks.bootVolume.sizeGb must be an integer >= 5")
    if (spec.get("checks") or {}).get("skipCloudInitStatus") is not True:
        problems.append(f"{name}: checks.skipCloudInitStatus must be true for Talos")
    if spec.get("memoryMiB", 8) % 8:
        problems.append(f"{name}: memoryMiB must be a multiple of 8")
    mtu = ((spec.get("network") or {}).get("default") or {}).get("mtu")
    if mtu is not None and not (mtu == 1 or 576 <= mtu <= 65520):
        problems.append(f"{name}: invalid MTU value")
    if context is not None:
        # CAPMOX waits for the guest agent unless told not to; only the extension answers it.
        agent = "siderolabs/qemu-guest-agent" in context["talos_extensions"]
        if (spec.get("checks") or {}).get("skipQemuGuestAgent", False) is agent:
            problems.append(f"{name}: skipQemuGuestAgent must be {not agent} (guest agent {agent})")
        # The template CAPI clones has no Proxmox cloud-init drive; the tofu/Ansible one has.
        if spec.get("templateID") != context["talos_capi_template_vmid"]:
            problems.append(f"{name}: templateID is not talos_capi_template_vmid")
    return problems


def check_control_plane(doc: Doc, kubernetes_version: str) -> list[str]:
    version = doc.get("spec", {}).get("version", "")
    problems = []
    if version != f"v{kubernetes_version}":
        problems.append(f"TalosControlPlane: version {version!r} is not v{kubernetes_version}")
    if not SEMVER_V.match(str(version)):
        problems.append(f"TalosControlPlane: version {version!r} is not v<semver>")
    return problems


def _refs(doc: Doc) -> Iterator[tuple[str, Mapping[str, Any]]]:
    spec = doc.get("spec", {})
    if doc["kind"] == "Cluster":
        yield "controlPlaneRef", spec.get("controlPlaneRef") or {}
        yield "infrastructureRef", spec.get("infrastructureRef") or {}
    elif doc["kind"] == "TalosControlPlane":
        yield "infrastructureTemplate", spec.get("infrastructureTemplate") or {}
    elif doc["kind"] == "MachineDeployment":
        template = spec.get("template", {}).get("spec", {})
        yield "bootstrap.configRef", (template.get("bootstrap") or {}).get("configRef") or {}
        yield "infrastructureRef", template.get("infrastructureRef") or {}


def check_references(docs: Docs) -> list[str]:
    """Every object reference points at a document of this file (same namespace)."""
    index = {
        (d["apiVersion"], d["kind"], d["metadata"]["name"], d["metadata"].get("namespace"))
        for d in docs
    }
    problems = []
    for doc in docs:
        namespace = doc["metadata"].get("namespace")
        for field, ref in _refs(doc):
            key = (ref.get("apiVersion"), ref.get("kind"), ref.get("name"))
            if (*key, ref.get("namespace", namespace)) not in index:
                problems.append(f"{doc['kind']}/{doc['metadata']['name']}: {field} {key} dangles")
    return problems


def check_machine_deployment(doc: Doc, cluster_name: str) -> list[str]:
    spec = doc.get("spec", {})
    template = spec.get("template", {})
    name = doc["metadata"]["name"]
    problems = []
    if spec.get("clusterName") != cluster_name or (
        template.get("spec", {}).get("clusterName") != cluster_name
    ):
        problems.append(f"{name}: clusterName is not {cluster_name}")
    selector = (spec.get("selector") or {}).get("matchLabels") or {}
    labels = (template.get("metadata") or {}).get("labels") or {}
    if any(labels.get(k) != v for k, v in selector.items()):
        problems.append(f"{name}: selector does not match the template labels")
    return problems


def _surge(strategy: Mapping[str, Any] | None, default: int) -> int:
    rolling = (strategy or {}).get("rollingUpdate") or {}
    return int(rolling.get("maxSurge", default))


def check_pool_capacity(docs: Docs) -> list[str]:
    """Every machine, plus every machine a rollout adds before deleting one, needs an address
    of the ProxmoxCluster's pool. A control plane below 3 replicas must surge (deleting first
    would lose etcd quorum), so its pool needs a spare address."""
    pool = sum(
        len(ipv4_set((d["spec"].get("ipv4Config") or {}).get("addresses", [])))
        for d in of_kind(docs, "ProxmoxCluster")
    )
    needed, problems = 0, []
    for doc in of_kind(docs, "TalosControlPlane"):
        spec = doc["spec"]
        surge = _surge(spec.get("rolloutStrategy"), 1)  # CACPPT's default
        needed += spec.get("replicas", 1) + surge
        if surge == 0 and spec.get("replicas", 1) < 3:
            problems.append("TalosControlPlane: maxSurge 0 below 3 replicas loses etcd quorum")
    for doc in of_kind(docs, "MachineDeployment"):
        spec = doc["spec"]
        needed += spec.get("replicas", 1) + _surge(spec.get("strategy"), 1)  # CAPI's default
    if needed > pool:
        problems.append(f"IP pool: {pool} addresses, machines and rollouts need {needed}")
    return problems


def violations(docs: Docs, context: Mapping[str, Any]) -> list[str]:
    problems = check_names(docs, context["capi_namespace"]) + check_references(docs)
    problems += check_pool_capacity(docs)
    for doc in of_kind(docs, "ProxmoxCluster"):
        problems += check_proxmox_cluster(doc)
    for doc in of_kind(docs, "ProxmoxMachineTemplate"):
        problems += check_machine_template(doc, context)
    for doc in of_kind(docs, "TalosControlPlane"):
        problems += check_control_plane(doc, context["kubernetes_version"])
    for doc in of_kind(docs, "MachineDeployment"):
        problems += check_machine_deployment(doc, context["cluster_name"])
    return problems


# --- schemas ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def schemas(reference_dir: Path) -> dict[tuple[str, str], list[tuple[str, Draft202012Validator]]]:
    """(apiVersion, kind) -> [(schema file name, validator)], read from the reference."""
    out: dict[tuple[str, str], list[tuple[str, Draft202012Validator]]] = {}
    for path in sorted((reference_dir / "capi").glob("*.json")):
        schema = json.loads(path.read_text(encoding="utf-8"))
        key = (schema["properties"]["apiVersion"]["const"], schema["properties"]["kind"]["const"])
        out.setdefault(key, []).append((path.name, Draft202012Validator(schema)))
    return out


def schema_errors(docs: Docs, schemas: Mapping[tuple[str, str], Any]) -> list[str]:
    problems = []
    for doc in docs:
        key = (doc.get("apiVersion"), doc.get("kind"))
        if key not in schemas:
            problems.append(f"{key}: no reference schema")
        for name, validator in schemas.get(key, []):
            for error in validator.iter_errors(doc):
                path = "/".join(str(p) for p in error.absolute_path)
                problems.append(f"{name}: {doc['metadata']['name']}: {path}: {error.message}")
    return problems


# --- the shapes under test -------------------------------------------------------------------


def capi_only(cluster: dict[str, Any]) -> dict[str, Any]:
    return {**cluster, "provisioners": ["capi"]}


@pytest.fixture(scope="module")
def multi_host() -> tuple[Mapping[str, Any], dict[str, bytes]]:
    rendered = render_tree(Options(Path(__file__).parents[1] / "examples" / "multi-host"))
    return rendered.context, rendered.files


def variants() -> dict[str, Callable[[dict[str, Any], dict[str, Any]], tuple[Any, Any]]]:
    """name -> (cluster, nodes of an example) -> changed (cluster, nodes), all with capi on."""

    def no_workers(c: dict[str, Any], n: dict[str, Any]) -> tuple[Any, Any]:
        # One controller surges on rollout: one spare address. No guest agent extension.
        cluster = {**capi_only(c), "capi_spare_addresses": ["192.168.22.20"]}
        cluster["talos_extensions"] = []
        return cluster, {"nodes": [x for x in n["nodes"] if x["controller"]]}

    def vlan_defaults(c: dict[str, Any], n: dict[str, Any]) -> tuple[Any, Any]:
        return {**capi_only(c), "talos_version": "1.13.0"}, n

    def odd_memory(c: dict[str, Any], n: dict[str, Any]) -> tuple[Any, Any]:
        nodes = [dict(x) for x in n["nodes"]]
        nodes[0]["memory"] = 40004  # not multiples of 8: CAPMOX needs them rounded up
        nodes[-1]["memory"] = 2050
        return capi_only(c), {"nodes": nodes}

    return {
        "minimal": no_workers,
        "homelab": vlan_defaults,
        "multi-host": odd_memory,
    }


@pytest.fixture(scope="module", params=sorted(variants()))
def variant(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, Mapping[str, Any], dict[str, bytes]]:
    """An example changed to enable capi, rendered through the whole pipeline (validated)."""
    example = request.param
    config_dir = tmp_path_factory.mktemp(example)
    shutil.copytree(
        Path(__file__).parents[1] / "examples" / example, config_dir, dirs_exist_ok=True
    )
    cluster, nodes = read_inputs(config_dir)
    write_inputs(config_dir, *variants()[example](cluster, nodes))
    rendered = render_tree(Options(config_dir))
    return example, rendered.context, rendered.files


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
        # The Cluster API template, not the tofu/Ansible one with its cloud-init drive.
        assert spec["templateID"] == context["talos_capi_template_vmid"]
        assert spec["templateID"] != context["talos_template_vmid"]
        assert spec["storage"] == context["proxmox_storage"]
        assert (spec["full"], spec["format"]) == (True, "raw")
        net = spec["network"]["default"]
        assert net["bridge"] == context["proxmox_bridge"]
        assert net["mtu"] == context["node_mtu"]
        assert net.get("vlan") == context["node_vlan_tag"]
        assert context["cluster_name"] in spec["tags"]
        assert spec["metadataSettings"] == {"providerIDInjection": True}
    (cluster,) = of_kind(docs, "Cluster")
    assert cluster["spec"]["clusterNetwork"] == {
        "pods": {"cidrBlocks": [context["cluster_pod_cidr"]]},
        "services": {"cidrBlocks": [context["cluster_svc_cidr"]]},
    }


def talos_spec(doc: Doc) -> dict[str, Any]:
    """The TalosConfig spec of a TalosControlPlane or a TalosConfigTemplate."""
    spec = doc["spec"]
    if "controlPlaneConfig" in spec:
        return dict(spec["controlPlaneConfig"]["controlplane"])
    return dict(spec["template"]["spec"])


def patch_documents(doc: Doc) -> Docs:
    """The parsed strategicPatches of doc, one document each (as configpatcher loads them)."""
    yaml = YAML(typ="safe", pure=True)
    out = []
    for text in talos_spec(doc).get("strategicPatches", []):
        (document,) = [d for d in yaml.load_all(io.StringIO(text)) if d is not None]
        out.append(document)
    return out


def v1alpha1_patch(doc: Doc) -> Doc:
    (patch,) = [d for d in patch_documents(doc) if "kind" not in d]
    return patch


def kind_patches(doc: Doc) -> dict[str, Doc]:
    return {d["kind"]: d for d in patch_documents(doc) if "kind" in d}


def test_talos_config_patches(variant: tuple[str, Mapping[str, Any], dict[str, bytes]]) -> None:
    _, context, files = variant
    docs = load_docs(files[CLUSTER_YAML])
    installer = context["schematic"]["installer_image"]
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
        assert patch["machine"]["install"]["image"] == installer
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
    surge = _surge(control_plane["spec"]["rolloutStrategy"], 1)
    # Surge when quorum demands it or a spare address allows it; else replace first.
    assert surge == (0 if controllers >= 3 and not spares else 1)
    assert check_pool_capacity(docs) == []
    (proxmox_cluster,) = of_kind(docs, "ProxmoxCluster")
    pool = ipv4_set(proxmox_cluster["spec"]["ipv4Config"]["addresses"])
    assert len(pool) == controllers + spares
    if spares:
        assert ipaddress.IPv4Address(cluster["capi_spare_addresses"][0]) in pool


def _deployments(files: dict[str, bytes]) -> dict[str, Doc]:
    return {
        d["metadata"]["name"]: d
        for d in of_kind(load_docs(files[CLUSTER_YAML]), "MachineDeployment")
    }


def test_one_machine_deployment_per_worker_shape(example_copy: Callable[[str], Path]) -> None:
    cluster, nodes = read_inputs(example_copy("homelab"))
    cluster = capi_only(cluster)
    workers = [x for x in nodes["nodes"] if not x["controller"]]
    for worker in workers:  # homelab workers differ in disk and tags; make them alike
        worker.pop("disk", None)
        worker.pop("tags", None)
    _, files = render_context(cluster, nodes)
    before = _deployments(files)
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
    after = _deployments(files)
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
    before, after = _deployments(files), _deployments(changed)
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


# --- checkers fail on broken documents -------------------------------------------------------


def _first(docs: Docs, kind: str) -> Doc:
    return of_kind(docs, kind)[0]


def _pmt(docs: Docs) -> dict[str, Any]:
    return dict(_first(docs, "ProxmoxMachineTemplate")["spec"]["template"]["spec"])


BROKEN: dict[str, tuple[Callable[[Docs], None], str]] = {
    "vip in pool": (
        lambda d: _first(d, "ProxmoxCluster")["spec"]["ipv4Config"]["addresses"].append(
            _first(d, "ProxmoxCluster")["spec"]["controlPlaneEndpoint"]["host"]
        ),
        "contain the endpoint IP",
    ),
    "vip in range": (
        lambda d: _first(d, "ProxmoxCluster")["spec"]["ipv4Config"].update(
            addresses=["10.20.0.1-10.20.0.200"]
        ),
        "contain the endpoint IP",
    ),
    "no ip config": (
        lambda d: _first(d, "ProxmoxCluster")["spec"].pop("ipv4Config"),
        "ipv4Config or ipv6Config",
    ),
    "no dns": (lambda d: _first(d, "ProxmoxCluster")["spec"].pop("dnsServers"), "dnsServers"),
    "small boot volume": (
        lambda d: _first(d, "ProxmoxMachineTemplate")["spec"]["template"]["spec"]["disks"][
            "bootVolume"
        ].update(sizeGb=4),
        "sizeGb",
    ),
    "sourceNode and templateSelector": (
        lambda d: _first(d, "ProxmoxMachineTemplate")["spec"]["template"]["spec"].update(
            templateSelector={"matchTags": ["talos"]}
        ),
        "exactly one of sourceNode/templateSelector",
    ),
    "neither templateID nor selector": (
        lambda d: _first(d, "ProxmoxMachineTemplate")["spec"]["template"]["spec"].pop("templateID"),
        "exactly one of templateID/templateSelector",
    ),
    "storage without full clone": (
        lambda d: _first(d, "ProxmoxMachineTemplate")["spec"]["template"]["spec"].update(
            full=False
        ),
        "storage needs full: true",
    ),
    "cloud-init check on": (
        lambda d: _first(d, "ProxmoxMachineTemplate")["spec"]["template"]["spec"].pop("checks"),
        "skipCloudInitStatus",
    ),
    "memory not multiple of 8": (
        lambda d: _first(d, "ProxmoxMachineTemplate")["spec"]["template"]["spec"].update(
            memoryMiB=4100
        ),
        "multiple of 8",
    ),
    "bad mtu": (
        lambda d: _first(d, "ProxmoxMachineTemplate")["spec"]["template"]["spec"]["network"][
            "default"
        ].update(mtu=100),
        "invalid MTU",
    ),
    "version without v": (
        lambda d: _first(d, "TalosControlPlane")["spec"].update(version="1.35.0"),
        "is not v1.35.0",
    ),
    "other kubernetes version": (
        lambda d: _first(d, "TalosControlPlane")["spec"].update(version="v1.34.0"),
        "is not v1.35.0",
    ),
    "name not DNS-1123": (
        lambda d: _first(d, "MachineDeployment")["metadata"].update(name="Workers_1"),
        "DNS-1123",
    ),
    "name too long": (
        lambda d: _first(d, "ProxmoxCluster")["metadata"].update(name="a" * 64),
        "DNS-1123",
    ),
    "wrong namespace": (
        lambda d: _first(d, "TalosConfigTemplate")["metadata"].update(namespace="default"),
        "namespace",
    ),
    "dangling ref": (
        lambda d: _first(d, "Cluster")["spec"]["infrastructureRef"].update(name="other"),
        "dangles",
    ),
    "dangling template": (
        lambda d: _first(d, "TalosControlPlane")["spec"]["infrastructureTemplate"].update(
            name="gone"
        ),
        "dangles",
    ),
    "selector mismatch": (
        lambda d: _first(d, "MachineDeployment")["spec"]["template"]["metadata"]["labels"].clear(),
        "selector does not match",
    ),
    "worker surge without spare address": (
        lambda d: _first(d, "MachineDeployment")["spec"].pop("strategy"),
        "IP pool",
    ),
    "control plane surge without spare address": (
        lambda d: _first(d, "TalosControlPlane")["spec"].pop("rolloutStrategy"),
        "IP pool",
    ),
    "guest agent check skipped with the agent": (
        lambda d: _first(d, "ProxmoxMachineTemplate")["spec"]["template"]["spec"]["checks"].update(
            skipQemuGuestAgent=True
        ),
        "skipQemuGuestAgent must be False",
    ),
    "clone of the cloud-init template": (
        lambda d: _first(d, "ProxmoxMachineTemplate")["spec"]["template"]["spec"].update(
            templateID=9100
        ),
        "templateID is not talos_capi_template_vmid",
    ),
    "md of other cluster": (
        lambda d: _first(d, "MachineDeployment")["spec"].update(clusterName="other"),
        "clusterName",
    ),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_rule_checker_catches(
    case: str, multi_host: tuple[Mapping[str, Any], dict[str, bytes]]
) -> None:
    context, files = multi_host
    docs = load_docs(files[CLUSTER_YAML])
    assert violations(docs, context) == []
    broken = copy.deepcopy(docs)
    mutate, expected = BROKEN[case]
    mutate(broken)
    found = violations(broken, context)
    assert any(expected in p for p in found), found


SCHEMA_BROKEN: dict[str, tuple[Callable[[Docs], None], str]] = {
    # The design notes' mistakes: the reference schemas must reject them.
    "serverRef": (
        lambda d: _first(d, "ProxmoxCluster")["spec"].update(
            serverRef={"endpoint": "https://pve:8006"}
        ),
        "serverRef",
    ),
    "disks as list": (
        lambda d: _first(d, "ProxmoxMachineTemplate")["spec"]["template"]["spec"].update(
            disks=[{"size": "100Gi", "storage": "local-zfs"}]
        ),
        "is not of type 'object'",
    ),
    "boot volume below 5": (
        lambda d: _first(d, "ProxmoxMachineTemplate")["spec"]["template"]["spec"]["disks"][
            "bootVolume"
        ].update(sizeGb=4),
        "less than the minimum of 5",
    ),
    "no dnsServers": (
        lambda d: _first(d, "ProxmoxCluster")["spec"].pop("dnsServers"),
        "'dnsServers' is a required property",
    ),
    "unknown kind": (lambda d: d.append({"apiVersion": "v1", "kind": "Foo"}), "no reference"),
    "tag syntax": (
        lambda d: _first(d, "ProxmoxMachineTemplate")["spec"]["template"]["spec"].update(
            tags=["bad tag"]
        ),
        "does not match",
    ),
}


@pytest.mark.parametrize("case", sorted(SCHEMA_BROKEN))
def test_schema_check_catches(
    case: str, multi_host: tuple[Mapping[str, Any], dict[str, bytes]], schemas: Any
) -> None:
    _, files = multi_host
    broken = load_docs(files[CLUSTER_YAML])
    mutate, expected = SCHEMA_BROKEN[case]
    mutate(broken)
    found = schema_errors(broken, schemas)
    assert any(expected in p for p in found), found


def test_capmox_schema_errors_name_both_versions(
    multi_host: tuple[Mapping[str, Any], dict[str, bytes]], schemas: Any
) -> None:
    _, files = multi_host
    broken = load_docs(files[CLUSTER_YAML])
    _first(broken, "ProxmoxMachineTemplate")["spec"]["template"]["spec"]["bogus"] = 1
    found = schema_errors(broken, schemas)
    assert any("v0.7.7" in p for p in found) and any("v0.9.0" in p for p in found), found


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


# --- tasks -----------------------------------------------------------------------------------


def _tool(name: str) -> str:
    """A downstream tool on PATH or next to this Python (the venv); skip when absent."""
    found = shutil.which(name) or str(Path(sys.executable).parent / name)
    if not Path(found).exists():
        pytest.skip(f"{name} is not installed")
    return found


def _capi_tasks(files: dict[str, bytes]) -> dict[str, Any]:
    yaml = YAML(typ="safe", pure=True)
    taskfile = yaml.load(files[TASKFILE].decode())
    return {k: v for k, v in taskfile["tasks"].items() if k.startswith("capi:")}


@pytest.mark.parametrize("has_secrets_file", [False, True])
def test_capi_tasks(
    has_secrets_file: bool,
    example_copy: Callable[[str], Path],
    reference_dir: Path,
) -> None:
    cluster, nodes = read_inputs(example_copy("multi-host"))
    _, files = render_context(capi_only(cluster), nodes, has_secrets_file=has_secrets_file)
    tasks = _capi_tasks(files)
    assert sorted(tasks) == ["capi:apply", "capi:delete", "capi:init", "capi:status"]
    assert all(t["desc"] for t in tasks.values())
    for task in tasks.values():
        assert task["env"]["KUBECONFIG"] == "{{.MGMT_KUBECONFIG}}"
        assert any('"$KUBECONFIG"' in p["sh"] for p in task["preconditions"])
    init_task = tasks["capi:init"]
    init = shlex.split(init_task["cmds"][0])
    assert init[:2] == ["clusterctl", "init"]
    # Every provider pinned: clusterctl would otherwise install whatever is newest. The
    # versions reach the command through the environment, never pasted into it.
    pins = derive.CLUSTER_DEFAULTS
    flags = {
        "--core": ("CAPI_CORE_PROVIDER", f"cluster-api:v{pins['capi_core_version']}"),
        "--bootstrap": (
            "CAPI_BOOTSTRAP_PROVIDER",
            f"talos:v{pins['capi_talos_bootstrap_version']}",
        ),
        "--control-plane": (
            "CAPI_CONTROL_PLANE_PROVIDER",
            f"talos:v{pins['capi_talos_control_plane_version']}",
        ),
        "--infrastructure": (
            "CAPI_INFRASTRUCTURE_PROVIDER",
            f"proxmox:v{pins['capi_proxmox_version']}",
        ),
        "--ipam": ("CAPI_IPAM_PROVIDER", f"in-cluster:v{pins['capi_ipam_in_cluster_version']}"),
    }
    assert sorted(init[2:]) == sorted(f"{flag}=${var}" for flag, (var, _) in flags.items())
    assert {var: init_task["env"][var] for var, _ in flags.values()} == dict(flags.values())
    apply = tasks["capi:apply"]
    secret_cmd = next(c for c in apply["cmds"] if "create secret" in c)
    names = f"{cluster['cluster_name']}-proxmox-credentials"
    # Values reach the command only through the environment, never pasted into it.
    assert apply["env"]["CAPI_CREDENTIALS_SECRET"] == names
    assert '"$CAPI_CREDENTIALS_SECRET"' in secret_cmd and names not in secret_cmd
    # CAPMOX skips TLS verification when the key is missing.
    assert '--from-literal=insecure="$CAPI_PROXMOX_INSECURE"' in secret_cmd
    assert apply["env"]["CAPI_PROXMOX_INSECURE"] == "false"
    checks = " ".join(p["sh"] for p in apply["preconditions"])
    if has_secrets_file:
        assert "sops --decrypt --extract" in secret_cmd and "exec-env" not in secret_cmd
        assert "$proxmox_api_token_id" in secret_cmd and "$proxmox_api_token_secret" in secret_cmd
        assert "command -v sops" in checks
    else:
        assert "sops" not in secret_cmd
        assert "$PROXMOX_TOKEN" in checks and "$PROXMOX_SECRET" in checks
    assert tasks["capi:delete"]["prompt"]

    schema = json.loads((reference_dir / "taskfile" / "schema.json").read_text(encoding="utf-8"))
    yaml = YAML(typ="safe", pure=True)
    errors = list(Draft7Validator(schema).iter_errors(yaml.load(files[TASKFILE].decode())))
    assert errors == []


def test_task_list_accepts_the_taskfile(
    example_copy: Callable[[str], Path], tmp_path: Path
) -> None:
    task = _tool("task")
    cluster, nodes = read_inputs(example_copy("multi-host"))
    _, files = render_context(capi_only(cluster), nodes)
    (tmp_path / "Taskfile.yaml").write_bytes(files[TASKFILE])
    result = subprocess.run(
        [task, "--list"], cwd=tmp_path, capture_output=True, text=True, timeout=30, check=False
    )
    assert result.returncode == 0, result.stderr
    for name in ("capi:init", "capi:apply", "capi:status", "capi:delete"):
        assert name in result.stdout
    # The kubeconfig precondition names the variable that is missing (a stub kubectl keeps
    # the kubectl precondition quiet on machines without one).
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "kubectl").write_text("#!/bin/sh\nexit 0\n", encoding="utf-8")
    (bin_dir / "kubectl").chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    result = subprocess.run(
        [task, "capi:status", "MGMT_KUBECONFIG=/nonexistent/kubeconfig"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode != 0
    assert "MGMT_KUBECONFIG" in result.stderr and "/nonexistent/kubeconfig" in result.stderr


def _capi_section(files: dict[str, bytes]) -> str:
    text = files[TASKFILE].decode()
    return text[text.index("  capi:init:") :]


@pytest.mark.parametrize("has_secrets_file", [False, True])
def test_capi_tasks_snapshot(
    has_secrets_file: bool, example_copy: Callable[[str], Path], snapshot: Any
) -> None:
    cluster, nodes = read_inputs(example_copy("multi-host"))
    _, files = render_context(capi_only(cluster), nodes, has_secrets_file=has_secrets_file)
    assert _capi_section(files) == snapshot


def test_apply_passes_the_sops_token_to_the_secret(
    example_copy: Callable[[str], Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Real sops and go-task: capi:apply creates the credentials Secret from the decrypted
    token of secrets.sops.yaml (kubectl is a stub that records its arguments)."""
    from pyrage import x25519

    from generator.commands.init import sops_config
    from generator.sops import SOPS_CONFIG, encrypt

    task, sops = _tool("task"), _tool("sops")
    identity = x25519.Identity.generate()
    key_file = tmp_path / "age.key"
    key_file.write_text(f"{identity}\n", encoding="utf-8")
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(key_file))
    config = example_copy("multi-host")
    cluster, nodes = read_inputs(config)
    write_inputs(config, capi_only(cluster), nodes)
    token_id, token_secret = "capi@pve!t" + os.urandom(4).hex(), str(uuid.uuid4())
    plaintext = f'proxmox_api_token_id: "{token_id}"\nproxmox_api_token_secret: "{token_secret}"\n'
    (config / "secrets.sops.yaml").write_bytes(
        encrypt(
            plaintext.encode(),
            "secrets.sops.yaml",
            age_recipients=[str(identity.to_public())],
            cwd=config,
        )
    )
    (config / SOPS_CONFIG).write_bytes(sops_config(str(identity.to_public())))
    rendered = render_tree(Options(config))
    (kustomization,) = load_docs(rendered.files[KUSTOMIZATION])
    assert [f"{CAPI_DIR}/{r}" for r in kustomization["resources"]] == [CLUSTER_YAML, CREDENTIALS]
    assert CREDENTIALS in rendered.files
    for path in (TASKFILE, CLUSTER_YAML):
        assert token_secret.encode() not in rendered.files[path]
    # Where render puts it: the tasks find every file from the Taskfile's own directory.
    (config / TASKFILE).parent.mkdir(parents=True)
    (config / TASKFILE).write_bytes(rendered.files[TASKFILE])
    (config / CAPI_DIR).mkdir(parents=True)
    (config / CLUSTER_YAML).write_bytes(rendered.files[CLUSTER_YAML])
    (config / "management.kubeconfig").write_text("", encoding="utf-8")
    bin_dir, log = tmp_path / "bin", tmp_path / "kubectl.log"
    bin_dir.mkdir()
    (bin_dir / "kubectl").write_text(
        f'#!/bin/sh\nfor a in "$@"; do printf "%s\\n" "$a"; done >> {shlex.quote(str(log))}\n',
        encoding="utf-8",
    )
    (bin_dir / "kubectl").chmod(0o755)
    # The Image Factory: capi:apply registers the schematic first; no test reaches the network.
    schematic_id = rendered.context["schematic"]["id"]
    (bin_dir / "curl").write_text(f'#!/bin/sh\nprintf \'{{"id":"{schematic_id}"}}\'\n')
    (bin_dir / "curl").chmod(0o755)
    (bin_dir / "sops").symlink_to(sops)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    result = subprocess.run(
        [task, "--taskfile", str(config / TASKFILE), "capi:apply"],
        cwd=config,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    args = log.read_text(encoding="utf-8").splitlines()
    assert f"--from-literal=token={token_id}" in args
    assert f"--from-literal=secret={token_secret}" in args
    assert f"--from-literal=url={cluster['proxmox_endpoint']}" in args
    assert "--from-literal=insecure=false" in args
    assert f"--filename={config / CLUSTER_YAML}" in args


@pytest.mark.parametrize("insecure", [False, True])
def test_credentials_secret_says_insecure_explicitly(
    insecure: bool, example_copy: Callable[[str], Path]
) -> None:
    """CAPMOX skips TLS verification when `insecure` is missing (pkg/scope/cluster.go), so the
    Secret always carries it, as the string CAPMOX compares: true or false."""
    cluster, nodes = read_inputs(example_copy("multi-host"))
    cluster["proxmox_insecure"] = insecure
    secrets = {"proxmox_api_token_id": "capi@pve!t", "proxmox_api_token_secret": "s3cret"}
    context = model.build(cluster, nodes, secrets, has_secrets_file=True)
    files = render.render(context, settings.load())
    (secret,) = load_docs(files[CREDENTIALS])
    assert secret["stringData"]["insecure"] == ("true" if insecure else "false")
    assert secret["stringData"]["url"] == context["proxmox_endpoint"]
    _, taskfile = render_context(cluster, nodes)
    apply = _capi_tasks(taskfile)["capi:apply"]
    assert apply["env"]["CAPI_PROXMOX_INSECURE"] == ("true" if insecure else "false")


def test_init_installs_every_provider_pinned(
    example_copy: Callable[[str], Path], tmp_path: Path
) -> None:
    """Real go-task runs capi:init; a stub clusterctl records the arguments it gets."""
    task = _tool("task")
    config = example_copy("multi-host")
    cluster, nodes = read_inputs(config)
    cluster.update(capi_core_version="1.12.4", capi_proxmox_version="0.8.1")
    _, files = render_context(capi_only(cluster), nodes)
    taskfile = config / TASKFILE
    taskfile.parent.mkdir(parents=True, exist_ok=True)
    taskfile.write_bytes(files[TASKFILE])
    (config / "management.kubeconfig").write_text("", encoding="utf-8")
    bin_dir, log = tmp_path / "bin", tmp_path / "clusterctl.log"
    bin_dir.mkdir()
    (bin_dir / "clusterctl").write_text(
        f'#!/bin/sh\nfor a in "$@"; do printf "%s\\n" "$a"; done > {shlex.quote(str(log))}\n',
        encoding="utf-8",
    )
    (bin_dir / "clusterctl").chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    result = subprocess.run(
        [task, "--taskfile", str(taskfile), "capi:init"],
        cwd=config,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    pins = derive.CLUSTER_DEFAULTS
    assert log.read_text(encoding="utf-8").splitlines() == [
        "init",
        "--core=cluster-api:v1.12.4",
        f"--bootstrap=talos:v{pins['capi_talos_bootstrap_version']}",
        f"--control-plane=talos:v{pins['capi_talos_control_plane_version']}",
        "--infrastructure=proxmox:v0.8.1",
        f"--ipam=in-cluster:v{pins['capi_ipam_in_cluster_version']}",
    ]


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
