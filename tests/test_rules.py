"""Semantic rules: behaviour the fixture matrix does not pin down, and linear running time."""

from __future__ import annotations

import ast
import inspect
import time
from pathlib import Path
from typing import Any

import pytest

from generator import rules, validate
from generator.errors import Diagnostic
from generator.load import Document
from helpers.data import write_and_load

CLUSTER = """\
cluster_name: test
talos_version: 1.12.0
kubernetes_version: 1.35.0
node_cidr: 10.20.0.0/16
cluster_api_addr: 10.20.0.100
proxmox_endpoint: https://pve.example:8006
proxmox_node: pve
"""


def _node(i: int, controller: bool = False, **extra: Any) -> dict[str, Any]:
    # Host numbers from 256 up: clear of the gateway (.0.1) and the VIP (.0.100).
    host = 256 + i
    return {
        "name": f"node-{i}",
        "address": f"10.20.{host // 256}.{host % 256}",
        "controller": controller,
        "mac_addr": f"bc:24:11:{i >> 16 & 0xFF:02x}:{i >> 8 & 0xFF:02x}:{i & 0xFF:02x}",
        **extra,
    }


def _plain(cluster: dict[str, Any], nodes: list[dict[str, Any]]) -> tuple[Document, Document]:
    """Documents without positions (diagnostics then point at 1:1); building them is instant."""
    node_data = {"nodes": nodes}
    return Document("cluster.yaml", cluster, cluster), Document("nodes.yaml", node_data, node_data)


def _cluster(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for line in CLUSTER.splitlines():
        key, value = line.split(": ", 1)
        data[key] = value
    data.update(overrides)
    return data


def _messages(found: list[Diagnostic]) -> list[str]:
    return [f"{d.path}: {d.message}" for d in found]


def test_a_large_valid_cluster_validates_quickly() -> None:
    nodes = [_node(i, controller=i < 3) for i in range(5000)]
    started = time.perf_counter()
    found = validate.validate(*_plain(_cluster(), nodes))
    elapsed = time.perf_counter() - started
    assert found == []
    assert elapsed < 5, f"5000 nodes took {elapsed:.1f}s"


def test_many_clashes_are_found_in_linear_time() -> None:
    # Every node repeats the first MAC: one diagnostic each, no pairwise comparison.
    nodes = [_node(i, controller=i < 3, mac_addr="bc:24:11:00:00:01") for i in range(5000)]
    started = time.perf_counter()
    found = rules.check(*_plain(_cluster(), nodes))
    elapsed = time.perf_counter() - started
    assert len([d for d in found if "MAC address" in d.message]) == 4999
    assert elapsed < 5


def _best_of(runs: int, nodes: list[dict[str, Any]]) -> float:
    docs = _plain(_cluster(), nodes)
    best = float("inf")
    for _ in range(runs):
        started = time.perf_counter()
        rules.check(*docs)
        best = min(best, time.perf_counter() - started)
    return best


def test_rules_scale_linearly() -> None:
    small = _best_of(3, [_node(i, controller=i < 3) for i in range(500)])
    large = _best_of(3, [_node(i, controller=i < 3) for i in range(4000)])
    # 8x the nodes: linear is ~8x, pairwise would be ~64x. Generous for noisy CI machines.
    assert large < small * 24, f"500 nodes {small:.4f}s, 4000 nodes {large:.4f}s"


def test_no_rule_loops_over_nodes_inside_another_loop() -> None:
    tree = ast.parse(inspect.getsource(rules))
    loops = (ast.For, ast.comprehension)

    def walk(node: ast.AST, depth: int) -> list[str]:
        found = []
        for child in ast.iter_child_nodes(node):
            if isinstance(child, loops):
                iterates_nodes = "_nodes(" in ast.unparse(child.iter)
                if iterates_nodes and depth > 0:
                    found.append(f"line {getattr(child, 'lineno', '?')}")
                found += walk(child, depth + 1)
            else:
                found += walk(child, depth)
        return found

    assert walk(tree, 0) == []


def test_default_gateway_is_the_first_host_in_checks() -> None:
    found = rules.check(*_plain(_cluster(cluster_api_addr="10.20.0.1"), [_node(0, True)]))
    assert _messages(found) == [
        "cluster_api_addr: 10.20.0.1 is also the default gateway "
        "(node_default_gateway defaults to the first host)"
    ]


def test_even_count_is_a_warning_and_odd_is_silent() -> None:
    for count, expected in ((2, ["warning"]), (3, []), (4, ["warning"])):
        nodes = [_node(i, controller=i < count) for i in range(5)]
        found = rules.check(*_plain(_cluster(), nodes))
        assert [d.severity for d in found] == expected
    (warning,) = rules.check(*_plain(_cluster(), [_node(0, True), _node(1, True)]))
    assert warning.hint == "use 1 or 3"


def test_vm_id_clash_names_both_owners_and_lines(tmp_path: Path) -> None:
    nodes = (
        "nodes:\n"
        "  - name: a\n    address: 10.20.1.1\n    controller: true\n"
        "    mac_addr: bc:24:11:00:00:01\n"
        "    vm_id: 300\n"
        "  - name: b\n    address: 10.20.1.2\n    controller: false\n"
        "    mac_addr: bc:24:11:00:00:02\n"
        "    vm_id: 300\n"
    )
    (found,) = rules.check(*write_and_load(tmp_path, CLUSTER, nodes))
    assert (found.line, found.path) == (11, "nodes[1].vm_id")
    assert found.message == (
        "VM ID 300 of nodes[1] (b) is already used by nodes[0] (a) at nodes.yaml:6:12"
    )


def test_explicit_template_vmid_is_named_with_its_line(tmp_path: Path) -> None:
    cluster = CLUSTER + "talos_template_vmid: 777\n"
    nodes = (
        "nodes:\n"
        "  - name: a\n    address: 10.20.1.1\n    controller: true\n"
        "    mac_addr: bc:24:11:00:00:01\n"
        "    vm_id: 777\n"
    )
    (found,) = rules.check(*write_and_load(tmp_path, cluster, nodes))
    assert "is talos_template_vmid (cluster.yaml:8:22)" in found.message


def test_a_duplicate_address_is_not_also_a_duplicate_vm_id() -> None:
    nodes = [_node(0, True), _node(1, address=_node(0)["address"])]
    assert _messages(rules.check(*_plain(_cluster(), nodes))) == [
        "nodes[1].address: address 10.20.1.0 of nodes[1] (node-1) is already used by "
        "nodes[0] (node-0) at nodes.yaml:1:1"
    ]


def test_mac_duplicates_ignore_case() -> None:
    nodes = [_node(0, True), _node(1, mac_addr=_node(0)["mac_addr"].upper())]
    assert any("MAC address" in d.message for d in rules.check(*_plain(_cluster(), nodes)))


@pytest.mark.parametrize(
    ("endpoint", "message"),
    [
        ("ftp://pve:8006", "'ftp://pve:8006' must use https"),
        ("https://pve:8006/", None),
        ("https://pve", None),
        ("https://pve:99999", "'https://pve:99999' is not a URL with a valid port (1-65535)"),
        ("https://pve:0", "'https://pve:0' has port 0, outside 1-65535"),
        ("https://:8006", "'https://:8006' has no valid host name or IP address"),
        ("https://{{.ROOT_DIR}}:8006", "has no valid host name or IP address"),
        ("https://1.2.3.4.5:8006", "has no valid host name or IP address"),
        ("https://[fd00::1]:8006", None),
        ("https://root:pw@pve:8006", "must not contain credentials"),
        ("https://pve:8006/?x=1", "must not have a path"),
        ("pve:8006", "must use https"),
    ],
)
def test_endpoint(endpoint: str, message: str | None) -> None:
    found = rules.check(*_plain(_cluster(proxmox_endpoint=endpoint), [_node(0, True)]))
    if message is None:
        assert found == []
    else:
        (problem,) = found
        assert message in problem.message


def test_talos_minimums_apply_to_the_resolved_role_defaults() -> None:
    cluster = _cluster(vm_defaults={"worker": {"cores": 1, "memory": 1024, "disk_size": 10}})
    # Exactly at the worker minimums: fine for a worker.
    assert rules.check(*_plain(cluster, [_node(0, True), _node(1)])) == []
    low = _cluster(vm_defaults={"controller": {"cores": 1}})
    assert _messages(rules.check(*_plain(low, [_node(0, True)]))) == [
        "vm_defaults.controller.cores: 1 is below the Talos minimum 2 for a controller"
    ]


def test_rules_survive_values_of_the_wrong_type() -> None:
    cluster = _cluster(
        node_cidr=5,
        cluster_api_addr=["x"],
        vm_id_base="a",
        talos_template_vmid=None,
        vm_defaults={"controller": "big"},
        proxmox_endpoint=3,
        talos_extensions="x",
    )
    nodes: list[Any] = [
        {"name": 1, "address": None, "controller": "yes", "mac_addr": 5, "cores": "many"},
        "not a node",
        [],
    ]
    # Only the schema reports these; the rules must simply not crash.
    rules.check(*_plain(cluster, nodes))
