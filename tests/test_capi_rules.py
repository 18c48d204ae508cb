"""The Cluster API rules (generator/rules_capi.py): each refuses, or warns about, an input whose
CAPI cluster would render valid CRDs but not come up or not roll out; none fires without capi.
The last test runs `clustergen validate` as a user would and reads its one-line diagnostics.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from generator import derive, validate
from generator.errors import Diagnostic
from helpers.data import write_and_load

CLUSTER = """\
cluster_name: test
talos_version: 1.12.0
kubernetes_version: 1.35.0
node_cidr: 10.20.0.0/24
cluster_api_addr: 10.20.0.100
proxmox_endpoint: https://pve.example:8006
proxmox_node: pve
provisioners: [packer, capi]
"""


def _nodes(controllers: int = 3, workers: int = 1, **first: Any) -> str:
    lines = ["nodes:"]
    for i in range(controllers + workers):
        extra = first if i == 0 else {}
        lines += [
            f"  - name: n{i}",
            f"    address: 10.20.0.{11 + i}",
            f"    controller: {'true' if i < controllers else 'false'}",
            f"    mac_addr: bc:24:11:00:00:{11 + i:02x}",
            *(f"    {k}: {v}" for k, v in extra.items()),
        ]
    return "\n".join(lines) + "\n"


def _check(tmp_path: Path, cluster_extra: str = "", nodes: str | None = None) -> list[Diagnostic]:
    cluster, node_doc = write_and_load(
        tmp_path, CLUSTER + cluster_extra, _nodes() if nodes is None else nodes
    )
    return validate.validate(cluster, node_doc)


def _lines(found: list[Diagnostic]) -> list[str]:
    return [f"{d.file}:{d.line}:{d.col}: {d.severity}: {d.path}: {d.message}" for d in found]


def test_a_good_capi_cluster_is_silent(tmp_path: Path) -> None:
    assert _lines(_check(tmp_path)) == []


def test_talos_before_1_12_is_refused(tmp_path: Path) -> None:
    cluster = CLUSTER.replace("talos_version: 1.12.0", "talos_version: 1.11.5")
    cluster_doc, nodes_doc = write_and_load(tmp_path, cluster, _nodes())
    (problem,) = validate.validate(cluster_doc, nodes_doc)
    assert (problem.path, problem.line, problem.is_error) == ("talos_version", 2, True)
    assert "Talos >= 1.12" in problem.message and "1.11.5" in problem.message
    assert "remove capi" in problem.hint


def test_rules_are_off_without_capi(tmp_path: Path) -> None:
    cluster = CLUSTER.replace("[packer, capi]", "[packer, tofu]").replace(
        "talos_version: 1.12.0", "talos_version: 1.11.0"
    )
    extra = "talos_capi_template_vmid: 9000\ncapi_core_version: 1.12.0\n"
    cluster_doc, nodes_doc = write_and_load(tmp_path, cluster + extra, _nodes(controllers=1))
    assert _lines(validate.validate(cluster_doc, nodes_doc)) == []


def test_capi_template_vmid_is_its_own(tmp_path: Path) -> None:
    (problem,) = _check(tmp_path, "talos_template_vmid: 9001\n")
    assert problem.path == "talos_template_vmid"  # the key the user wrote
    assert "the default talos_capi_template_vmid 9001 is also talos_template_vmid" in (
        problem.message
    )
    (problem,) = _check(tmp_path, "talos_capi_template_vmid: 9000\n")
    assert (problem.path, problem.line) == ("talos_capi_template_vmid", 9)


def test_capi_template_vmid_is_no_nodes(tmp_path: Path) -> None:
    # An explicit vm_id, and a derived one (vm_id_base + host number 11 = 9001).
    for extra, nodes, key in (
        ("", _nodes(vm_id=9001), "vm_id"),
        ("vm_id_base: 8990\n", _nodes(), "address"),
    ):
        (problem,) = _check(tmp_path, extra, nodes)
        assert problem.file == "nodes.yaml" and problem.path == f"nodes[0].{key}"
        assert "VM ID 9001 of nodes[0] (n0)" in problem.message
        assert "the VM ID of the Cluster API template" in problem.message


@pytest.mark.parametrize("controllers", [1, 2])
def test_few_controllers_need_a_spare_address(tmp_path: Path, controllers: int) -> None:
    # (2 controllers also warn about the even count: only errors here.)
    (problem,) = [d for d in _check(tmp_path, nodes=_nodes(controllers)) if d.is_error]
    assert problem.path == "provisioners[1]"
    assert f"{controllers} controller(s)" in problem.message
    assert problem.hint == "add an unused address of 10.20.0.0/24 to capi_spare_addresses"
    spare = _check(tmp_path, "capi_spare_addresses: [10.20.0.50]\n", _nodes(controllers))
    assert [d for d in spare if d.is_error] == []


@pytest.mark.parametrize(
    ("spare", "expected"),
    [
        ("10.30.0.5", "outside node_cidr 10.20.0.0/24"),
        ("10.20.0.255", "not a host address"),
        ("10.20.0.1", "already node_default_gateway"),
        ("10.20.0.100", "already cluster_api_addr"),
        ("10.20.0.12", "already the address of nodes[1] (n1)"),
    ],
)
def test_spare_addresses_must_be_free(tmp_path: Path, spare: str, expected: str) -> None:
    (problem,) = _check(tmp_path, f"capi_spare_addresses: [10.20.0.60, {spare}]\n")
    assert problem.path == "capi_spare_addresses[1]"
    assert expected in problem.message


def test_spare_listed_twice(tmp_path: Path) -> None:
    (problem,) = _check(tmp_path, "capi_spare_addresses: [10.20.0.60, 10.20.0.60]\n")
    assert problem.path == "capi_spare_addresses[1]" and "listed twice" in problem.message


@pytest.mark.parametrize("version", ["1.11.0", "1.11.4", "1.12.0", "1.12.1"])
def test_core_versions_with_the_status_bug_are_refused(tmp_path: Path, version: str) -> None:
    (problem,) = _check(tmp_path, f"capi_core_version: {version}\n")
    assert problem.path == "capi_core_version" and "cluster-api #13184" in problem.message


@pytest.mark.parametrize("version", ["1.11.5", "1.12.2", "1.12.9", "1.13.0"])
def test_fixed_core_versions_pass(tmp_path: Path, version: str) -> None:
    assert _check(tmp_path, f"capi_core_version: {version}\n") == []


def test_default_pins_pass_the_rules() -> None:
    version = tuple(int(p) for p in derive.CLUSTER_DEFAULTS["capi_core_version"].split("."))
    assert version >= (1, 12, 2)


def test_worker_cpu_type_other_than_the_templates_warns(tmp_path: Path) -> None:
    extra = "vm_defaults:\n  controller:\n    cpu_type: host\n  worker:\n    cpu_type: x86-64-v3\n"
    (problem,) = _check(tmp_path, extra)
    assert not problem.is_error and problem.path == "vm_defaults.worker.cpu_type"
    assert "CPU type host of the Cluster API template" in problem.message
    # Without workers nothing runs with the worker role's type.
    assert _check(tmp_path, extra, _nodes(workers=0)) == []


def test_schema_rejects_bad_capi_values(tmp_path: Path) -> None:
    for extra, path in (
        ("capi_core_version: v1.12.9\n", "capi_core_version"),
        ("capi_spare_addresses: [10.20.0.300]\n", "capi_spare_addresses[0]"),
        ("talos_capi_template_vmid: 99\n", "talos_capi_template_vmid"),
        ("capi_talos_ccm_version: latest\n", "capi_talos_ccm_version"),
    ):
        found = _check(tmp_path, extra)
        assert [d.path for d in found] == [path], _lines(found)


def test_validate_cli_prints_one_line_per_problem(tmp_path: Path) -> None:
    (tmp_path / "cluster.yaml").write_text(CLUSTER + "capi_core_version: 1.12.1\n")
    (tmp_path / "nodes.yaml").write_text(_nodes(controllers=1))
    result = subprocess.run(
        [sys.executable, "-m", "generator", "validate"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    lines = [ln for ln in (result.stdout + result.stderr).splitlines() if ": error: " in ln]
    assert len(lines) == 2, result.stdout + result.stderr
    assert lines[0].startswith("cluster.yaml:8:")  # the capi item: the spare address
    assert any("capi_core_version" in ln for ln in lines)
