"""Stage 3, model: every default applied, every derived value computed once, frozen."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from generator import constants, derive, inputs, model, schematic
from generator.models import PROVISIONERS
from helpers.paths import FIXTURES_DIR

FIXTURES = FIXTURES_DIR / "valid"


def _read(case: str) -> tuple[dict[str, Any], dict[str, Any]]:
    read = inputs.read(FIXTURES / case)
    return read.cluster.data, read.nodes.data


def _context(case: str) -> Mapping[str, Any]:
    return model.build(*_read(case))


@pytest.fixture(scope="module")
def minimal() -> Mapping[str, Any]:
    return _context("minimal")


@pytest.fixture(scope="module")
def all_keys() -> Mapping[str, Any]:
    return _context("all_keys")


def test_every_cluster_default_is_applied(minimal: Mapping[str, Any]) -> None:
    given, _ = _read("minimal")
    defaulted = [key for key in derive.CLUSTER_DEFAULTS if key not in given]
    assert defaulted, "the minimal fixture must leave optional keys out"
    for key in defaulted:
        expected = derive.CLUSTER_DEFAULTS[key]
        if key == "provisioners":
            assert list(minimal[key]) == expected
        elif isinstance(expected, list):
            assert minimal[key] == tuple(expected), key
        else:
            assert minimal[key] == expected, key


def test_computed_defaults(minimal: Mapping[str, Any]) -> None:
    assert minimal["node_default_gateway"] == "192.168.22.1"
    assert minimal["talos_template"] == "talos-1.12.0"
    for role in derive.ROLES:
        assert dict(minimal["vm_defaults"][role]) == derive.ROLE_DEFAULTS_BY_ROLE[role]


def test_given_values_win_over_defaults(all_keys: Mapping[str, Any]) -> None:
    given, _ = _read("all_keys")
    for key, value in given.items():
        if key in ("vm_defaults", "provisioners"):
            continue
        got = all_keys[key]
        assert (list(got) if isinstance(got, tuple) else got) == value, key


def test_partial_vm_defaults_are_completed(tmp_path: Path) -> None:
    cluster, nodes = _read("minimal")
    context = model.build({**cluster, "vm_defaults": {"worker": {"memory": 4096}}}, nodes)
    assert context["vm_defaults"]["worker"]["memory"] == 4096
    assert (
        context["vm_defaults"]["worker"]["cores"] == derive.ROLE_DEFAULTS_BY_ROLE["worker"]["cores"]
    )
    assert dict(context["vm_defaults"]["controller"]) == derive.ROLE_DEFAULTS_BY_ROLE["controller"]


def test_resources_resolve_node_then_role_then_builtin(all_keys: Mapping[str, Any]) -> None:
    cluster, nodes = _read("all_keys")
    by_name = {n["name"]: n for n in all_keys["nodes"]}
    raw = {n["name"]: n for n in nodes["nodes"]}
    for key in derive.RESOURCE_KEYS:
        # cp-0 overrides everything itself; cp-1 inherits its role's vm_defaults.
        assert by_name["cp-0"][key] == raw["cp-0"][key]
        assert by_name["cp-1"][key] == cluster["vm_defaults"]["controller"][key]
        assert by_name["worker-0"][key] == cluster["vm_defaults"]["worker"][key]
    assert by_name["cp-0"]["proxmox_node"] == "pve2"
    assert by_name["cp-1"]["proxmox_node"] == cluster["proxmox_node"]
    assert all_keys["proxmox_nodes"] == ("pve1", "pve2", "pve3")


def test_builtin_resources_when_nothing_is_given(minimal: Mapping[str, Any]) -> None:
    for node in minimal["nodes"]:
        for key in derive.RESOURCE_KEYS:
            assert node[key] == derive.ROLE_DEFAULTS_BY_ROLE[node["role"]][key]
        for key, value in derive.NODE_DEFAULTS.items():
            if key != "tags":
                assert node[key] == value


def test_vm_id_is_base_plus_host_number(all_keys: Mapping[str, Any]) -> None:
    cluster, _ = _read("all_keys")
    net = ipaddress.IPv4Network(cluster["node_cidr"])
    for node in all_keys["nodes"]:
        if node["name"] == "cp-0":
            assert node["vm_id"] == 2011  # explicit
            continue
        host = int(ipaddress.IPv4Address(node["address"])) - int(net.network_address)
        assert node["vm_id"] == cluster["vm_id_base"] + host


def test_vm_ids_are_stable_when_another_node_is_removed() -> None:
    cluster, nodes = _read("all_keys")
    before = {n["name"]: n["vm_id"] for n in model.build(cluster, nodes)["nodes"]}
    fewer = {"nodes": [n for n in nodes["nodes"] if n["name"] != "cp-1"]}
    after = {n["name"]: n["vm_id"] for n in model.build(cluster, fewer)["nodes"]}
    assert after == {name: vm_id for name, vm_id in before.items() if name != "cp-1"}


def test_roles_and_lists(all_keys: Mapping[str, Any]) -> None:
    assert [n["name"] for n in all_keys["controllers"]] == ["cp-0", "cp-1", "cp-2"]
    assert [n["name"] for n in all_keys["workers"]] == ["worker-0"]
    assert {n["role"] for n in all_keys["controllers"]} == {"controller"}
    assert all(n["controller"] is False for n in all_keys["workers"])
    assert all_keys["node_prefix"] == 24
    assert all_keys["node_network"] == "10.10.0.0"
    assert all_keys["node_netmask"] == "255.255.255.0"


def test_tags_carry_cluster_and_role_sorted(all_keys: Mapping[str, Any]) -> None:
    cp0 = next(n for n in all_keys["nodes"] if n["name"] == "cp-0")
    assert cp0["tags"] == ("controller", "etcd", "fast_disk", "lab")


def test_provisioners_in_canonical_order(all_keys: Mapping[str, Any]) -> None:
    # all_keys lists them reversed; outputs must not depend on the listing order.
    assert all_keys["provisioners"] == ("packer", "tofu", "ansible", "capi")
    assert dict(all_keys["enabled"]) == dict.fromkeys(PROVISIONERS, True)


def test_enabled_flags(minimal: Mapping[str, Any]) -> None:
    assert dict(minimal["enabled"]) == {
        "packer": True,
        "tofu": True,
        "ansible": False,
        "capi": False,
    }


def test_endpoint_parts(all_keys: Mapping[str, Any], minimal: Mapping[str, Any]) -> None:
    assert all_keys["proxmox_endpoint"] == "https://pve1.lab.example:443"
    assert all_keys["proxmox_host"] == "pve1.lab.example"
    assert all_keys["proxmox_port"] == 443
    assert all_keys["proxmox_api_url"] == "https://pve1.lab.example:443/api2/json"
    assert minimal["proxmox_port"] == 8006


def test_endpoint_without_port_gets_8006() -> None:
    cluster, nodes = _read("minimal")
    context = model.build({**cluster, "proxmox_endpoint": "https://pve.example/"}, nodes)
    assert context["proxmox_endpoint"] == "https://pve.example:8006"


def test_ipv6_endpoint_keeps_its_brackets() -> None:
    cluster, nodes = _read("minimal")
    context = model.build({**cluster, "proxmox_endpoint": "https://[fd00::5]:8006"}, nodes)
    assert context["proxmox_endpoint"] == "https://[fd00::5]:8006"
    assert context["proxmox_api_url"] == "https://[fd00::5]:8006/api2/json"
    assert context["proxmox_host"] == "fd00::5"


def test_schematic_matches_the_schematic_module(all_keys: Mapping[str, Any]) -> None:
    expected = schematic.build(
        extensions=["siderolabs/qemu-guest-agent", "siderolabs/iscsi-tools"],
        extra_kernel_args=["console=ttyS0", "talos.dashboard.disabled=1"],
        talos_version="1.12.0",
        platform="metal",
        arch="amd64",
        secureboot=False,
        factory_url="https://factory.lab.example:8443",
    )
    image = all_keys["schematic"]
    assert image["id"] == expected.id
    assert image["yaml"] == expected.yaml
    assert image["image_url"] == expected.image_url
    assert image["iso_url"] == expected.iso_url
    assert image["installer_image"] == expected.installer_image


def test_context_is_frozen(minimal: Mapping[str, Any]) -> None:
    with pytest.raises(TypeError):
        minimal["cluster_name"] = "x"  # type: ignore[index]
    with pytest.raises(TypeError):
        minimal["nodes"][0]["name"] = "x"
    with pytest.raises(AttributeError):
        minimal["nodes"].append({})
    assert isinstance(minimal["node_dns_servers"], tuple)


def test_building_does_not_change_the_inputs() -> None:
    cluster, nodes = _read("all_keys")
    snapshot = repr((cluster, nodes))
    model.build(cluster, nodes)
    assert repr((cluster, nodes)) == snapshot


def test_same_inputs_same_context() -> None:
    assert repr(_context("all_keys")) == repr(_context("all_keys"))


def test_template_keys_exist(minimal: Mapping[str, Any]) -> None:
    # The keys templates are written against (see the brief); renaming one breaks them.
    for key in (
        "schematic",
        "enabled",
        "controllers",
        "workers",
        "proxmox_nodes",
        "node_prefix",
        "node_network",
        "node_netmask",
        "proxmox_host",
        "proxmox_port",
        "proxmox_endpoint",
        "has_secrets_file",
        "generated_header",
    ):
        assert key in minimal, key
    node_keys = {"name", "address", "role", "controller", "mac_addr", "disk", "vm_id", "cores"}
    node_keys |= {"sockets", "memory", "disk_size", "cpu_type", "proxmox_node", "tags"}
    assert node_keys <= set(minimal["nodes"][0])
    assert set(minimal["schematic"]) >= {"id", "yaml", "image_url", "iso_url", "installer_image"}


@pytest.mark.parametrize(
    ("given", "url", "host", "port"),
    [
        ("https://pve.example", "https://pve.example:8006", "pve.example", 8006),
        ("https://pve.example:8443/", "https://pve.example:8443", "pve.example", 8443),
        ("https://[fd00::1]", "https://[fd00::1]:8006", "fd00::1", 8006),
        ("https://10.0.0.2:443", "https://10.0.0.2:443", "10.0.0.2", 443),
    ],
)
def test_the_endpoint_has_one_canonical_form(given: str, url: str, host: str, port: int) -> None:
    endpoint = derive.endpoint(given)
    assert (endpoint.url, endpoint.host, endpoint.port) == (url, host, port)
    cluster, nodes = _read("minimal")
    context = model.build({**cluster, "proxmox_endpoint": given}, nodes)
    assert (context["proxmox_endpoint"], context["proxmox_host"]) == (url, host)
    assert (context["proxmox_port"], context["proxmox_api_url"]) == (port, f"{url}/api2/json")


def test_the_header_is_the_one_the_manifest_recognises(minimal: Mapping[str, Any]) -> None:
    from generator import manifest

    assert minimal["generated_header"] == constants.GENERATED_HEADER
    assert manifest.HEADER_MARK in f"# {minimal['generated_header']}\n".encode()
    assert tuple(minimal["input_files"]) == constants.INPUT_FILES
