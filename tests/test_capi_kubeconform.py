"""kubeconform -strict over the rendered Cluster API manifests, with schemas made from the CRDs
in ../shared/reference/capi (JSON Schemas already) laid out in tmp_path the way kubeconform's
-schema-location template `{dir}/{{ .Group }}/{{ .ResourceKind }}_{{ .ResourceAPIVersion }}.json`
finds them. CAPMOX ships two versions of its v1alpha1 schemas (v0.7.7 and v0.9.0): one run
per version, each with the same CAPI and Talos provider schemas.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from helpers.capi import CLUSTER_YAML, load_docs, of_kind, variant
from helpers.tools import tool

__all__ = ["variant"]  # the fixture of helpers.capi

LOCATION = "{root}/{{{{ .Group }}}}/{{{{ .ResourceKind }}}}_{{{{ .ResourceAPIVersion }}}}.json"
CAPMOX_VERSIONS = ("v0.7.7", "v0.9.0")


def _schema_dirs(reference_dir: Path, root: Path) -> dict[str, Path]:
    """CAPMOX version -> a schema tree with that version's CAPMOX kinds and every other kind."""
    out = {}
    for capmox in CAPMOX_VERSIONS:
        tree = root / capmox
        for path in sorted((reference_dir / "capi").glob("*.json")):
            if path.name.startswith("capmox-") and not path.name.startswith(f"capmox-{capmox}-"):
                continue
            schema = json.loads(path.read_text(encoding="utf-8"))
            group, _, version = schema["properties"]["apiVersion"]["const"].rpartition("/")
            kind = schema["properties"]["kind"]["const"].lower()
            target = tree / group / f"{kind}_{version}.json"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(json.dumps(schema), encoding="utf-8")
        out[capmox] = tree
    return out


@pytest.fixture(scope="module")
def schema_dirs(reference_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return _schema_dirs(reference_dir, tmp_path_factory.mktemp("kubeconform-schemas"))


def kubeconform(manifest: Path, schemas: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            tool("kubeconform"),
            "-strict",
            "-summary",
            "-output",
            "json",
            "-schema-location",
            LOCATION.format(root=schemas),
            str(manifest),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _summary(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    return dict(json.loads(result.stdout)["summary"])


@pytest.mark.parametrize("capmox", CAPMOX_VERSIONS)
def test_kubeconform_strict_accepts_the_manifests(
    capmox: str,
    variant: tuple[str, Mapping[str, Any], dict[str, bytes]],
    schema_dirs: Mapping[str, Path],
    tmp_path: Path,
) -> None:
    _, _, files = variant
    manifest = tmp_path / "cluster.yaml"
    manifest.write_bytes(files[CLUSTER_YAML])
    result = kubeconform(manifest, schema_dirs[capmox])
    assert result.returncode == 0, result.stdout + result.stderr
    summary = _summary(result)
    # Every document was checked against a schema: none skipped for want of one.
    assert summary["valid"] == len(load_docs(files[CLUSTER_YAML])), summary
    assert summary["skipped"] == summary["invalid"] == summary["errors"] == 0, summary


BROKEN = {
    "unknown field": (
        "ProxmoxMachineTemplate",
        lambda d: d["spec"]["template"]["spec"].update(cpuType="host"),
    ),
    "disks as list": (
        "ProxmoxMachineTemplate",
        lambda d: d["spec"]["template"]["spec"].update(disks=[{"size": "100Gi"}]),
    ),
    "patches as objects": (
        "TalosControlPlane",
        lambda d: d["spec"]["controlPlaneConfig"]["controlplane"].update(
            strategicPatches=[{"machine": {}}]
        ),
    ),
    "no dnsServers": ("ProxmoxCluster", lambda d: d["spec"].pop("dnsServers")),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_kubeconform_rejects_broken_manifests(
    case: str,
    variant: tuple[str, Mapping[str, Any], dict[str, bytes]],
    schema_dirs: Mapping[str, Path],
    tmp_path: Path,
) -> None:
    _, _, files = variant
    docs = load_docs(files[CLUSTER_YAML])
    kind, mutate = BROKEN[case]
    mutate(of_kind(docs, kind)[0])
    manifest = tmp_path / "cluster.yaml"
    manifest.write_text("".join(f"---\n{json.dumps(d)}\n" for d in docs), encoding="utf-8")
    for capmox in CAPMOX_VERSIONS:
        result = kubeconform(manifest, schema_dirs[capmox])
        assert result.returncode == 1, result.stdout
        assert _summary(result)["invalid"] == 1, result.stdout


def test_kubeconform_fails_a_kind_without_schema(
    schema_dirs: Mapping[str, Path], tmp_path: Path
) -> None:
    """No schema is no pass: a kind the reference lacks is an error, not a skip."""
    manifest = tmp_path / "other.yaml"
    manifest.write_text(
        "apiVersion: cluster.x-k8s.io/v1beta1\nkind: MachineSet\nmetadata:\n  name: x\n",
        encoding="utf-8",
    )
    result = kubeconform(manifest, schema_dirs[CAPMOX_VERSIONS[0]])
    assert result.returncode == 1
    assert _summary(result)["errors"] == 1, result.stdout
