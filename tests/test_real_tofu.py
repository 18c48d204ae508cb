"""The rendered OpenTofu, run by the real `tofu` with the real bpg/proxmox provider.

- `tofu init -backend=false -plugin-dir` + `tofu validate` on every example and valid fixture:
  the provider's own schema and OpenTofu's type checks accept the configuration as rendered.
- `tofu plan` / `apply` / `plan` / `destroy` against the Proxmox VE API double: the VMs the
  double ends with are the ones the inputs describe (IDs, names, nodes, CPU, memory, disk,
  EFI disk, NIC with MAC/bridge/VLAN/MTU, cloud-init address, gateway, DNS, tags), a second
  plan has nothing to do, and destroy removes exactly them and their volumes.

The provider is the one scripts/build-tools.sh built (v0.80.0: the targeted v0.90.0 is not
served by the Go module proxy here); realtools.pin_built_provider explains the one test-only
override file that lets the rendered v0.90.0 constraint accept it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from proxmox_double import ProxmoxDouble, self_signed_cert
from proxmox_double.config import split_options
from ruamel.yaml import YAML

from generator.options import Options
from generator.pipeline import render_tree
from helpers.data import write_tree
from helpers.paths import EXAMPLES, EXAMPLES_DIR, ROOT, TOFU_PLUGIN_DIR
from helpers.realtools import (
    isolated_env,
    pin_built_provider,
    provider_version,
    render_for_double,
    run,
    tofu_init,
)

TOFU_DIR = "infrastructure/tofu"
TOKEN = "clustergen@pve!tofu=0b6e4a1c-55d2-4f0e-9d51-7c0f2a9e8b13"
VALID_FIXTURES = ROOT / "tests" / "fixtures" / "valid"


def _configs() -> list[Path]:
    """Every example and valid fixture that renders OpenTofu."""
    dirs = [EXAMPLES_DIR / name for name in EXAMPLES]
    dirs += sorted(p for p in VALID_FIXTURES.iterdir() if (p / "cluster.yaml").is_file())
    return [
        d for d in dirs if any(k.startswith(f"{TOFU_DIR}/") for k in render_tree(Options(d)).files)
    ]


CONFIGS = _configs()


@pytest.mark.parametrize("config", CONFIGS, ids=[f"{p.parent.name}/{p.name}" for p in CONFIGS])
def test_rendered_tofu_validates_with_the_real_provider(config: Path, tmp_path: Path) -> None:
    files = render_tree(Options(config)).files
    write_tree(tmp_path, {k: v for k, v in files.items() if k.startswith(f"{TOFU_DIR}/")})
    workdir = tmp_path / TOFU_DIR
    env = isolated_env(tmp_path / "home")
    pin_built_provider(workdir)
    tofu_init(workdir, env)
    done = run("tofu", ["validate", "-json", "-no-color"], workdir, env)
    result = json.loads(done.stdout)
    assert result["valid"] is True, done.stdout
    assert result["warning_count"] == 0, done.stdout


def test_the_rendered_constraint_is_the_target_version(tmp_path: Path) -> None:
    """Without the override the built provider does not satisfy the rendered pin: the override
    is needed and the rendered file still asks for the version the project targets."""
    files = render_tree(Options(EXAMPLES_DIR / "minimal")).files
    write_tree(tmp_path, {k: v for k, v in files.items() if k.startswith(f"{TOFU_DIR}/")})
    workdir = tmp_path / TOFU_DIR
    env = isolated_env(tmp_path / "home")
    done = run(
        "tofu",
        ["init", "-backend=false", f"-plugin-dir={TOFU_PLUGIN_DIR}", "-input=false", "-no-color"],
        workdir,
        env,
        ok=False,
    )
    pinned = re.search(
        r'source\s*=\s*"bpg/proxmox"\s*version\s*=\s*"([^"]+)"',
        files[f"{TOFU_DIR}/providers.tf"].decode(),
    )
    assert pinned is not None
    assert pinned.group(1) != provider_version()
    message = " ".join(done.stderr.split())
    assert f"no available releases match the given constraints {pinned.group(1)}" in message


# --- apply against the double -----------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    example: str
    nodes: tuple[str, ...]
    storages: dict[str, tuple[str, bool]]  # name -> (type, shared)
    template_storage: str


CASES = {
    # One host, thin LVM, a tagged VLAN: clone on the host itself.
    "homelab": Case("homelab", ("pve",), {}, "local-lvm"),
    # Three hosts on shared Ceph: the provider clones straight to each VM's node.
    "multi-host": Case(
        "multi-host", ("pve1", "pve2", "pve3"), {"ceph-vm": ("rbd", True)}, "ceph-vm"
    ),
    # The template on local storage of one host: the provider clones there, then migrates.
    "multi-host-local-template": Case(
        "multi-host", ("pve1", "pve2", "pve3"), {"ceph-vm": ("rbd", True)}, "local-lvm"
    ),
}
FOREIGN_VM = 300  # someone else's VM on the cluster: nothing may touch it


@pytest.fixture
def case(request: pytest.FixtureRequest) -> Case:
    return CASES[request.param]


@pytest.fixture
def cluster(
    case: Case, example_copy: Callable[[str], Path], tmp_path: Path
) -> Iterator[tuple[ProxmoxDouble, Path, dict[str, Any]]]:
    """(double, rendered tofu dir, the rendered values as tofu reads them)."""
    certfile, keyfile = self_signed_cert(tmp_path)
    double = ProxmoxDouble(token=TOKEN, nodes=case.nodes)
    for name, (type_, shared) in case.storages.items():
        double.add_storage(name, type_, shared=shared, content=("images", "rootdir"))
    double.serve(certfile, keyfile)
    try:
        root = example_copy(case.example)
        render_for_double(root, double.port)
        workdir = root / TOFU_DIR
        env = tofu_env(tmp_path, double)
        pin_built_provider(workdir)
        tofu_init(workdir, env)
        values = rendered_values(workdir, env)
        double.add_template(
            values["template_vmid"],
            values["template_node"],
            "talos-template",
            storage=case.template_storage,
            efi=True,
        )
        double.add_template(FOREIGN_VM, case.nodes[-1], "someone-elses-vm")
        double.vms[FOREIGN_VM].template = False
        double.vms[FOREIGN_VM].config.pop("template")
        double.vms[FOREIGN_VM].status = "running"
        yield double, workdir, values
    finally:
        double.shutdown()


def tofu_env(tmp_path: Path, double: ProxmoxDouble) -> dict[str, str]:
    # The token as the rendered Taskfile expects it (TF_VAR_proxmox_api_token); Go trusts the
    # double's self-signed certificate through SSL_CERT_FILE, so proxmox_insecure stays as
    # rendered.
    return isolated_env(
        tmp_path / "home",
        TF_VAR_proxmox_api_token=double.token,
        SSL_CERT_FILE=str(double.certfile),
    )


def rendered_values(workdir: Path, env: dict[str, str]) -> dict[str, Any]:
    """The variables as OpenTofu itself reads them from terraform.tfvars."""
    expression = (
        "jsonencode({nodes = var.nodes, storage = var.proxmox_storage, "
        "bridge = var.proxmox_bridge, vlan = var.node_vlan_tag, mtu = var.node_mtu, "
        "prefix = var.node_prefix, gateway = var.node_gateway, dns = var.node_dns_servers, "
        "template_vmid = var.talos_template_vmid, template_node = var.talos_template_node, "
        "agent = var.qemu_agent})\n"
    )
    done = run("tofu", ["console", "-no-color"], workdir, env, stdin=expression)
    values: dict[str, Any] = json.loads(json.loads(done.stdout))
    return values


def options(value: str) -> dict[str, str]:
    """'vol,a=1' -> {'': 'vol', 'a': '1'}; a leading key=value (cputype=host) is kept too."""
    first, rest = split_options(value)
    parsed = dict(o.split("=", 1) for o in rest)
    parsed[""] = first
    if re.fullmatch(r"[a-z-]+=[^=]*", first):
        key, _, val = first.partition("=")
        parsed[key] = val
    return parsed


def assert_vm_matches(
    double: ProxmoxDouble, vmid: int, name: str, want: dict[str, Any], values: dict[str, Any]
) -> None:
    vm = double.vms[vmid]
    config = vm.config
    where = f"VM {vmid} ({name})"
    assert (vm.name, vm.node, vm.status, vm.template) == (
        name,
        want["proxmox_node"],
        "running",
        False,
    ), where
    assert config["description"] == want["description"], where
    assert int(config["cores"]) == want["cores"], where
    assert int(config["sockets"]) == want["sockets"], where
    assert int(config["memory"]) == want["memory"], where
    cpu = options(config["cpu"])
    assert cpu.get("cputype", cpu[""]) == want["cpu_type"], where
    assert (config["bios"], config["machine"], config["scsihw"]) == (
        "ovmf",
        "q35",
        "virtio-scsi-single",
    ), where
    assert config["onboot"] == "1", where
    assert options(config["agent"]).get("enabled", options(config["agent"])[""]) == (
        "1" if values["agent"] else "0"
    ), where
    assert set(config["tags"].split(";")) == set(want["tags"]), where

    disk = options(config["scsi0"])
    assert disk[""].startswith(f"{values['storage']}:vm-{vmid}-disk-"), (where, config["scsi0"])
    assert disk["size"] == f"{want['disk_size']}G", (where, config["scsi0"])
    assert (disk["iothread"], disk["discard"], disk["ssd"]) == ("1", "on", "1"), where
    efi = options(config["efidisk0"])
    assert efi[""].startswith(f"{values['storage']}:vm-{vmid}-disk-"), (where, config["efidisk0"])
    assert (efi["efitype"], efi["pre-enrolled-keys"]) == ("4m", "0"), where

    nic = options(config["net0"])
    model, _, mac = nic[""].partition("=")
    assert (model, mac.lower()) == ("virtio", want["mac_addr"].lower()), where
    assert nic["bridge"] == values["bridge"], where
    assert nic.get("tag") == (None if values["vlan"] is None else str(values["vlan"])), where
    assert nic["mtu"] == str(values["mtu"]), where
    assert not any(re.fullmatch(r"net[1-9]\d*", k) for k in config), where

    ipconfig = dict(o.split("=", 1) for o in config["ipconfig0"].split(","))
    assert ipconfig == {
        "ip": f"{want['address']}/{values['prefix']}",
        "gw": values["gateway"],
    }, where
    assert config["nameserver"].split() == values["dns"], where
    cloudinit = [k for k, v in config.items() if re.fullmatch(r"ide\d", k) and "cloudinit" in v]
    assert len(cloudinit) == 1, where
    assert config[cloudinit[0]].startswith(f"{values['storage']}:vm-{vmid}-cloudinit"), where


@pytest.mark.parametrize("case", sorted(CASES), indirect=True)
def test_plan_apply_replan_destroy_against_the_double(
    case: Case, cluster: tuple[ProxmoxDouble, Path, dict[str, Any]], tmp_path: Path
) -> None:
    double, workdir, values = cluster
    env = tofu_env(tmp_path, double)
    nodes: dict[str, dict[str, Any]] = values["nodes"]
    wanted = {node["vm_id"]: name for name, node in nodes.items()}
    assert len(wanted) == len(nodes) > 0
    # The values tofu reads are the inputs' nodes (names, addresses, MACs).
    inputs: Any = YAML().load((workdir.parents[1] / "nodes.yaml").read_text())
    assert {n["name"]: n["address"] for n in inputs["nodes"]} == {
        name: node["address"] for name, node in nodes.items()
    }
    volumes_before = double.volumes()
    foreign = json.dumps(double.vms[FOREIGN_VM].config, sort_keys=True)

    # A plan only reads.
    run(
        "tofu", ["plan", "-out=tfplan", "-detailed-exitcode", "-no-color"], workdir, env, codes=(2,)
    )
    assert double.writes() == []

    run("tofu", ["apply", "-no-color", "tfplan"], workdir, env)
    assert set(double.vms) == {values["template_vmid"], FOREIGN_VM, *wanted}
    for vmid, name in wanted.items():
        assert_vm_matches(double, vmid, name, nodes[name], values)
    clones = [c for c in double.calls if c.method == "POST" and c.path.endswith("/clone")]
    template_path = f"/nodes/{values['template_node']}/qemu/{values['template_vmid']}/clone"
    assert [c.path for c in clones] == [template_path] * len(wanted)
    migrated = {
        int(c.path.split("/")[4]): c.params["target"]
        for c in double.calls
        if c.method == "POST" and c.path.endswith("/migrate")
    }
    if case.template_storage in case.storages and case.storages[case.template_storage][1]:
        assert migrated == {}  # shared storage: cloned straight to the node
    else:
        assert migrated == {
            vmid: nodes[name]["proxmox_node"]
            for vmid, name in wanted.items()
            if nodes[name]["proxmox_node"] != values["template_node"]
        }

    # Nothing left to do: the provider reads back exactly what it wrote.
    before = len(double.writes())
    run("tofu", ["plan", "-detailed-exitcode", "-no-color"], workdir, env, codes=(0,))
    assert len(double.writes()) == before

    run("tofu", ["destroy", "-auto-approve", "-no-color"], workdir, env)
    assert set(double.vms) == {values["template_vmid"], FOREIGN_VM}
    assert double.vms[values["template_vmid"]].template
    assert double.volumes() == volumes_before
    assert json.dumps(double.vms[FOREIGN_VM].config, sort_keys=True) == foreign
    assert double.vms[FOREIGN_VM].status == "running"
    assert double.unknown == []
    assert double.rejected == []


@pytest.mark.parametrize("case", ["homelab"], indirect=True)
def test_a_wrong_token_changes_nothing(
    case: Case, cluster: tuple[ProxmoxDouble, Path, dict[str, Any]], tmp_path: Path
) -> None:
    double, workdir, _ = cluster
    before = set(double.vms)
    env = {**tofu_env(tmp_path, double), "TF_VAR_proxmox_api_token": f"{TOKEN[:-4]}0000"}
    done = run("tofu", ["apply", "-auto-approve", "-no-color"], workdir, env, ok=False)
    assert "401" in done.stderr and "authentication failure" in done.stderr, done.stderr
    assert double.rejected and set(double.vms) == before
    assert double.writes() == []
