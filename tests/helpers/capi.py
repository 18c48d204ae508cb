"""Shared by the tests/test_capi*.py modules: rendering a capi cluster, parsing its manifests,
the checkers of the CEL / admission-webhook rules of ../shared/reference/README.md that JSON
Schema cannot express, the reference CRD schemas, and the capi variants of the examples.
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
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from ruamel.yaml import YAML

from generator import inputs, model, render, settings
from generator.options import Options
from generator.pipeline import render_tree
from helpers.data import plain
from helpers.paths import EXAMPLES_DIR, TASKFILE

CAPI_DIR = "infrastructure/capi"
CLUSTER_YAML = f"{CAPI_DIR}/cluster.yaml"
KUSTOMIZATION = f"{CAPI_DIR}/kustomization.yaml"
CREDENTIALS = f"{CAPI_DIR}/proxmox-credentials.sops.yaml"
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
        # The templates CAPI clones have no Proxmox cloud-init drive; the tofu/Ansible ones have.
        if spec.get("templateID") not in {t["vmid"] for t in context["capi"]["twins"]}:
            problems.append(f"{name}: templateID is not a Cluster API template")
        if spec.get("templateID") in {t["vmid"] for t in context["talos_templates"]}:
            problems.append(f"{name}: templateID is a template with a cloud-init drive")
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


def max_surge(strategy: Mapping[str, Any] | None, default: int) -> int:
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
        surge = max_surge(spec.get("rolloutStrategy"), 1)  # CACPPT's default
        needed += spec.get("replicas", 1) + surge
        if surge == 0 and spec.get("replicas", 1) < 3:
            problems.append("TalosControlPlane: maxSurge 0 below 3 replicas loses etcd quorum")
    for doc in of_kind(docs, "MachineDeployment"):
        spec = doc["spec"]
        needed += spec.get("replicas", 1) + max_surge(spec.get("strategy"), 1)  # CAPI's default
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
    rendered = render_tree(Options(EXAMPLES_DIR / "multi-host"))
    return rendered.context, rendered.files


# Extensions of the second schematic of the "two-schematics" variant (multi-host's plus a GPU
# driver), and the workers that boot it; prod-worker-gpu boots the cluster's with SecureBoot.
GPU_EXTENSIONS = [
    "siderolabs/qemu-guest-agent",
    "siderolabs/iscsi-tools",
    "siderolabs/nvidia-open-gpu-kernel-modules-production",
]
GPU_WORKERS = ("prod-worker-0", "prod-worker-1")
SECUREBOOT_WORKER = "prod-worker-gpu"
# Which example each variant changes (a variant named after an example changes that one).
VARIANT_EXAMPLES = {"two-schematics": "multi-host"}


def two_schematics(c: dict[str, Any], n: dict[str, Any]) -> tuple[Any, Any]:
    """multi-host with its controllers on the cluster's image and its workers on two others:
    two alike with a second schematic (one MachineDeployment of 2), one with the cluster's
    schematic, SecureBoot and MTU 1500."""
    nodes = [dict(x) for x in n["nodes"]]
    for node in nodes:
        if node["name"] in GPU_WORKERS:
            for key in ("cores", "memory", "disk_size", "tags"):
                node.pop(key, None)
            node["talos_extensions"] = list(GPU_EXTENSIONS)
        if node["name"] == SECUREBOOT_WORKER:
            node.update(talos_secureboot=True, mtu=1500)
    return capi_only(c), {"nodes": nodes}


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
        "two-schematics": two_schematics,
    }


@pytest.fixture(scope="module", params=sorted(variants()))
def variant(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, Mapping[str, Any], dict[str, bytes]]:
    """An example changed to enable capi, rendered through the whole pipeline (validated)."""
    return render_variant(request.param, tmp_path_factory.mktemp(request.param))


def render_variant(name: str, config_dir: Path) -> tuple[str, Mapping[str, Any], dict[str, bytes]]:
    """(name, context, files) of the variant, its inputs written to config_dir."""
    source = VARIANT_EXAMPLES.get(name, name)
    shutil.copytree(EXAMPLES_DIR / source, config_dir, dirs_exist_ok=True)
    cluster, nodes = read_inputs(config_dir)
    write_inputs(config_dir, *variants()[name](cluster, nodes))
    rendered = render_tree(Options(config_dir))
    return name, rendered.context, rendered.files


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


def deployments(files: dict[str, bytes]) -> dict[str, Doc]:
    return {
        d["metadata"]["name"]: d
        for d in of_kind(load_docs(files[CLUSTER_YAML]), "MachineDeployment")
    }


def installed(name: str) -> str:
    """A downstream tool on PATH or next to this Python (the venv); skip when absent."""
    found = shutil.which(name) or str(Path(sys.executable).parent / name)
    if not Path(found).exists():
        pytest.skip(f"{name} is not installed")
    return found


def capi_tasks(files: dict[str, bytes]) -> dict[str, Any]:
    yaml = YAML(typ="safe", pure=True)
    taskfile = yaml.load(files[TASKFILE].decode())
    return {k: v for k, v in taskfile["tasks"].items() if k.startswith("capi:")}


def stub(bin_dir: Path, name: str, script: str) -> Path:
    """An executable sh script `name` in bin_dir (made if missing) standing in for a tool."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    path = bin_dir / name
    path.write_text(f"#!/bin/sh\n{script}\n", encoding="utf-8")
    path.chmod(0o755)
    return path


def recorder(bin_dir: Path, name: str, log: Path, *, append: bool = False) -> Path:
    """A stand-in tool that writes each argument it gets as one line of log."""
    redirect = ">>" if append else ">"
    return stub(
        bin_dir,
        name,
        f'for a in "$@"; do printf "%s\\n" "$a"; done {redirect} {shlex.quote(str(log))}',
    )


def with_path(bin_dir: Path, **extra: str) -> dict[str, str]:
    """This process's environment with bin_dir first on PATH."""
    return {**os.environ, **extra, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}


def run_task(
    task: str, taskfile: Path, name: str, env: Mapping[str, str]
) -> subprocess.CompletedProcess[str]:
    """Real go-task runs the task `name` of taskfile, from the directory above the output."""
    return subprocess.run(
        [task, "--taskfile", str(taskfile), name],
        cwd=taskfile.parents[2],
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
