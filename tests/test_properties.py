"""Property tests: configs built to respect every rule validate cleanly; random damage to
valid inputs is always reported as diagnostics, never as another exception."""

from __future__ import annotations

import io
import ipaddress
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from generator import derive, inputs, model
from generator.errors import InputError
from helpers.paths import EXAMPLE_DIRS as EXAMPLES

SETTINGS = settings(
    # A deeper hunt: CLUSTERGEN_PROPERTY_EXAMPLES=500 pytest tests/test_properties.py
    max_examples=int(os.environ.get("CLUSTERGEN_PROPERTY_EXAMPLES", "30")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

dns_label = st.from_regex(r"\A[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?\Z")
pve_name = st.from_regex(r"\A[a-z][a-z0-9]{0,8}\Z")
version = st.tuples(*[st.integers(0, 40)] * 3).map(lambda v: ".".join(map(str, v)))
kernel_arg = st.from_regex(r"\A[a-z][a-z0-9_.]{0,8}(=[a-z0-9,:/+-]{1,8})?\Z")
extension = st.sampled_from(
    [
        "siderolabs/qemu-guest-agent",
        "siderolabs/iscsi-tools",
        "siderolabs/intel-ucode",
        "siderolabs/amd-ucode",
        "siderolabs/util-linux-tools",
        "siderolabs/nfsd",
    ]
)
tag = st.from_regex(r"\A[a-z0-9_][a-z0-9_+.-]{0,8}\Z")


def _resources(draw: st.DrawFn, role: str) -> dict[str, Any]:
    minimum = derive.TALOS_MINIMUMS[role]
    keys = draw(st.sets(st.sampled_from(derive.RESOURCE_KEYS)))
    choices = {
        "cores": st.integers(minimum["cores"], 64),
        "sockets": st.integers(1, 4),
        "memory": st.integers(minimum["memory"], 262144),
        "disk_size": st.integers(minimum["disk_size"], 4096),
        "cpu_type": st.sampled_from(["host", "x86-64-v2-AES", "kvm64"]),
    }
    return {key: draw(choices[key]) for key in sorted(keys)}


@st.composite
def valid_config(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any]]:
    # 192.168.0.0/16 never meets the default pod (10.42/16) and service (10.43/16) CIDRs.
    prefix = draw(st.integers(20, 29))
    size = 2 ** (32 - prefix)
    start = draw(st.integers(0, 2**16 // size - 1)) * size
    net = ipaddress.IPv4Network((int(ipaddress.IPv4Address("192.168.0.0")) + start, prefix))
    last_host = size - 2
    count = draw(st.integers(1, min(12, last_host - 2)))
    # Host 1 is the default gateway; the others are the VIP and one per node.
    hosts = draw(
        st.lists(st.integers(2, last_host), min_size=count + 1, max_size=count + 1, unique=True)
    )
    vip, node_hosts = hosts[0], hosts[1:]
    controllers = draw(st.integers(0, (count - 1) // 2)) * 2 + 1

    cluster: dict[str, Any] = {
        "cluster_name": draw(dns_label),
        "talos_version": draw(version),
        "kubernetes_version": draw(version),
        "node_cidr": str(net),
        "cluster_api_addr": str(net.network_address + vip),
        "proxmox_endpoint": f"https://{draw(pve_name)}.example:{draw(st.integers(1, 65535))}",
        "proxmox_node": draw(pve_name),
    }
    optional: dict[str, st.SearchStrategy[Any]] = {
        "node_mtu": st.integers(1280, 9000),
        "node_vlan_tag": st.integers(1, 4094) | st.none(),
        "node_dns_servers": st.lists(
            st.ip_addresses(v=4).map(str), min_size=1, max_size=3, unique=True
        ),
        "cluster_api_port": st.integers(1, 65535),
        "proxmox_insecure": st.booleans(),
        "talos_extensions": st.lists(extension, max_size=4, unique=True),
        "talos_extra_kernel_args": st.lists(kernel_arg, max_size=3, unique=True),
        "talos_secureboot": st.booleans(),
        "talos_platform": st.sampled_from(["nocloud", "metal"]),
        "talos_arch": st.sampled_from(["amd64", "arm64"]),
        "provisioners": st.lists(
            st.sampled_from(["packer", "tofu", "ansible", "capi"]), min_size=1, unique=True
        ),
        "capi_namespace": dns_label,
        "vm_id_base": st.integers(100, 10_000_000),
        "talos_template_vmid": st.integers(100, 999_999_999),
    }
    for key in draw(st.sets(st.sampled_from(sorted(optional)))):
        cluster[key] = draw(optional[key])
    if draw(st.booleans()):
        cluster["vm_defaults"] = {role: _resources(draw, role) for role in derive.ROLES}

    nodes = []
    for i, host in enumerate(node_hosts):
        role = "controller" if i < controllers else "worker"
        node: dict[str, Any] = {
            "name": f"{draw(dns_label)[:40]}-{i}",
            "address": str(net.network_address + host),
            "controller": role == "controller",
            "mac_addr": f"bc:24:11:00:{i // 256:02x}:{i % 256:02x}",
            **_resources(draw, role),
        }
        if draw(st.booleans()):
            node["tags"] = draw(st.lists(tag, max_size=3))
        if draw(st.booleans()):
            node["proxmox_node"] = draw(pve_name)
        nodes.append(node)

    # What the Packer build and Proxmox clones can really do (rules_provisioning): fix the
    # draw rather than filter it, so every key keeps being varied.
    provisioners = cluster.get("provisioners", derive.CLUSTER_DEFAULTS["provisioners"])
    if "packer" in provisioners:
        cluster.pop("talos_arch", None)  # the live ISO is x86_64 only
        extensions = cluster.get("talos_extensions")
        if extensions is not None and "siderolabs/qemu-guest-agent" not in extensions:
            cluster["talos_extensions"] = [*extensions, "siderolabs/qemu-guest-agent"]
    if "capi" in provisioners:
        cluster["proxmox_storage_shared"] = True
    old_talos = derive.version(cluster["talos_version"])[:2] < derive.SECUREBOOT_ENROLL_VERSION
    if cluster.get("talos_secureboot") is True and old_talos:
        cluster.pop("talos_secureboot")  # warns: such disk images cannot enroll keys

    base = cluster.get("vm_id_base", derive.CLUSTER_DEFAULTS["vm_id_base"])
    template = cluster.get("talos_template_vmid", derive.CLUSTER_DEFAULTS["talos_template_vmid"])
    assume(all(base + host != template for host in node_hosts))
    if "capi" in cluster.get("provisioners", []):
        _capi_valid(cluster, net, hosts, last_host, controllers, base)
    return cluster, {"nodes": nodes}


def _capi_valid(
    cluster: dict[str, Any],
    net: ipaddress.IPv4Network,
    hosts: list[int],
    last_host: int,
    controllers: int,
    base: int,
) -> None:
    """What the CAPI rules (generator/rules_capi.py) add to a valid config."""
    if tuple(int(p) for p in cluster["talos_version"].split(".")) < (1, 12, 0):
        cluster["talos_version"] = "1.12.0"
    capi_template = derive.CLUSTER_DEFAULTS["talos_capi_template_vmid"]
    assume(cluster.get("talos_template_vmid") != capi_template)
    assume(all(base + host != capi_template for host in hosts[1:]))
    if controllers < 3:  # a control-plane rollout needs a spare pool address
        free = [h for h in range(2, last_host + 1) if h not in hosts]
        assume(free)
        cluster["capi_spare_addresses"] = [str(net.network_address + free[0])]
    if "vm_defaults" in cluster:  # one CPU type for all CAPI machines, else a warning
        roles = cluster["vm_defaults"]
        default = derive.ROLE_DEFAULTS_BY_ROLE["controller"]["cpu_type"]
        roles["worker"]["cpu_type"] = roles["controller"].get("cpu_type", default)


def _dump(data: Mapping[str, Any]) -> str:
    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    out = io.StringIO()
    yaml.dump(data, out)
    return out.getvalue()


def _run(directory: Path, cluster: str | bytes, nodes: str | bytes) -> None:
    """Everything `validate` and the model do; only InputError may escape."""
    for name, text in (("cluster.yaml", cluster), ("nodes.yaml", nodes)):
        (directory / name).write_bytes(text.encode() if isinstance(text, str) else text)
    try:
        read = inputs.read(directory)
    except InputError as exc:
        assert exc.diagnostics
        assert all(d.line >= 1 and d.col >= 1 for d in exc.diagnostics)
        return
    # What validation accepts, the model must be able to build.
    model.build(read.cluster.data, read.nodes.data)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("properties")


@SETTINGS
@given(config=valid_config())
def test_valid_configs_have_no_diagnostics(
    workdir: Path, config: tuple[dict[str, Any], dict[str, Any]]
) -> None:
    cluster, nodes = config
    (workdir / "cluster.yaml").write_text(_dump(cluster))
    (workdir / "nodes.yaml").write_text(_dump(nodes))
    read = inputs.read(workdir)
    assert read.warnings == ()
    context = model.build(read.cluster.data, read.nodes.data)
    assert len(context["nodes"]) == len(nodes["nodes"])
    assert len(context["controllers"]) % 2 == 1


_EXAMPLE_TEXTS = [
    (
        (p / "cluster.yaml").read_text(encoding="utf-8"),
        (p / "nodes.yaml").read_text(encoding="utf-8"),
    )
    for p in EXAMPLES
]
_NOISE = st.text(alphabet=st.sampled_from(list(":-[]{}&*!|>'\"%@`#,?\t\n \\x0a1.~")), max_size=6)


@st.composite
def text_mutation(draw: st.DrawFn) -> tuple[str, str]:
    cluster, nodes = draw(st.sampled_from(_EXAMPLE_TEXTS))
    which = draw(st.booleans())
    text = cluster if which else nodes
    for _ in range(draw(st.integers(1, 3))):
        lines = text.splitlines(keepends=True)
        op = draw(st.sampled_from(["insert", "delete", "dup_line", "drop_line", "swap"]))
        if op == "insert":
            at = draw(st.integers(0, len(text)))
            text = text[:at] + draw(_NOISE) + text[at:]
        elif op == "delete" and text:
            at = draw(st.integers(0, len(text) - 1))
            text = text[:at] + text[at + draw(st.integers(1, 8)) :]
        elif op == "dup_line" and lines:
            i = draw(st.integers(0, len(lines) - 1))
            lines.insert(i, lines[i])
            text = "".join(lines)
        elif op == "drop_line" and lines:
            del lines[draw(st.integers(0, len(lines) - 1))]
            text = "".join(lines)
        elif op == "swap" and len(lines) > 1:
            i = draw(st.integers(0, len(lines) - 2))
            lines[i], lines[i + 1] = lines[i + 1], lines[i]
            text = "".join(lines)
    return (text, nodes) if which else (cluster, text)


@SETTINGS
@given(texts=text_mutation())
def test_text_mutations_never_crash(workdir: Path, texts: tuple[str, str]) -> None:
    _run(workdir, *texts)


json_value = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**40), 2**40)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
    | st.sampled_from(["192.168.22.5", "10.0.0.0/8", "bc:24:11:00:00:01", "https://x:1/api2/json"]),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)


@st.composite
def value_mutation(draw: st.DrawFn) -> tuple[str, str]:
    cluster, nodes = draw(valid_config())
    targets: list[tuple[dict[str, Any], str]] = [(cluster, key) for key in cluster]
    targets += [(node, key) for node in nodes["nodes"] for key in node]
    for _ in range(draw(st.integers(1, 3))):
        owner, key = draw(st.sampled_from(targets))
        op = draw(st.sampled_from(["replace", "delete", "add"]))
        if op == "replace":
            owner[key] = draw(json_value)
        elif op == "delete":
            owner.pop(key, None)
        else:
            owner[draw(st.text(min_size=1, max_size=12))] = draw(json_value)
    # JSON is YAML: the value reaches the loader exactly as drawn.
    return json.dumps(cluster), json.dumps(nodes)


@SETTINGS
@given(texts=value_mutation())
def test_value_mutations_never_crash(workdir: Path, texts: tuple[str, str]) -> None:
    _run(workdir, *texts)


@SETTINGS
@given(data=st.binary(max_size=64))
def test_random_bytes_never_crash(workdir: Path, data: bytes) -> None:
    _run(workdir, data, _EXAMPLE_TEXTS[0][1])
