"""Moving a talos-cluster repo from its own OpenTofu to clustergen's without replacing a VM.

The host repo comes from the reference (tests/host_repos.py). STAND-IN: talos-cluster renders
infrastructure/tofu/*.tf from templates/config/infrastructure/tofu/*.tf.j2, which the reference
does not hold; the test puts the reference's rendered files there as those templates.
The real OpenTofu and bpg provider come from .tools (conftest); the provider pin is rewritten
to the bpg version built there (0.80.0; the proxy does not serve 0.90.0).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from generator.cli import main
from helpers import host_repos
from helpers.paths import EXAMPLES_DIR, TOFU_PLUGIN_DIR
from helpers.tools import run_captured, tool

HOST_TOFU = host_repos.HOST_TOFU
MIGRATE = (
    "tofu_migrate:\n"
    "  vm_address: proxmox_virtual_environment_vm.talos_node\n"
    "  forget:\n"
    "    - proxmox_virtual_environment_download_file.talos_iso\n"
)
# The homelab example's nodes and the VM IDs they already have on Proxmox VE.
EXISTING = {"k8s-cp-0": 111, "k8s-cp-1": 112, "k8s-cp-2": 113, "k8s-worker-0": 121}


@pytest.fixture
def repo(reference_dir: Path, tmp_path: Path) -> Path:
    repo = host_repos.build(reference_dir, host_repos.TALOS_CLUSTER, tmp_path / "repo")
    host_repos.tofu_templates(repo)  # STAND-IN (see module docstring)
    (repo / "provision").mkdir()
    for name in ("cluster.yaml", "nodes.yaml"):
        shutil.copy(EXAMPLES_DIR / "homelab" / name, repo / "provision" / name)
    cluster = repo / "provision/cluster.yaml"
    cluster.write_text(cluster.read_text() + MIGRATE)
    nodes = repo / "provision/nodes.yaml"
    text = nodes.read_text()
    for name, vm_id in EXISTING.items():  # the README's step 1: every VM keeps its ID
        text = text.replace(f"  - name: {name}\n", f"  - name: {name}\n    vm_id: {vm_id}\n")
    nodes.write_text(text)
    return repo


def render(capsys: pytest.CaptureFixture[str], repo: Path) -> tuple[int, str, str]:
    code = main(["-C", str(repo / "provision"), "render", "-o", str(repo)])
    out, err = capsys.readouterr()
    return code, out, err


def test_render_refuses_until_the_host_tofu_is_removed_then_keeps_backend_tf(
    repo: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(repo)
    backend = (repo / "infrastructure/tofu/backend.tf").read_bytes()
    before = {p: p.read_bytes() for p in repo.rglob("*") if p.is_file() and ".git" not in p.parts}

    code, _, err = render(capsys, repo)
    assert code == 1
    for name in HOST_TOFU:
        assert f"  templates/config/infrastructure/tofu/{name}.j2\n" in err + "\n"
    # Without the templates, the rendered files that clash are named (never backend.tf).
    after = {p: p.read_bytes() for p in repo.rglob("*") if p.is_file() and ".git" not in p.parts}
    assert after == before

    shutil.rmtree(repo / "templates/config/infrastructure")
    code, _, err = render(capsys, repo)
    assert code == 1
    named = re.findall(r"^  (infrastructure/tofu/\S+)$", err, re.MULTILINE)
    assert "infrastructure/tofu/main.tf" in named and "infrastructure/tofu/versions.tf" in named
    assert "infrastructure/tofu/backend.tf" not in named

    for name in HOST_TOFU:
        if name != "backend.tf":
            (repo / "infrastructure/tofu" / name).unlink()
    code, _, err = render(capsys, repo)
    # The host's own .taskfiles/infrastructure/Taskfile.yaml is where clustergen's goes.
    assert code == 1 and ".taskfiles/infrastructure/Taskfile.yaml" in err
    (repo / ".taskfiles/infrastructure/Taskfile.yaml").unlink()
    code, out, err = render(capsys, repo)
    assert code == 0, err
    assert "created infrastructure/tofu/moved.tf" in out
    # The one node without vm_id (new, or forgotten in step 1) is pointed out.
    (warning,) = [line for line in err.splitlines() if ": warning: " in line]
    assert "nodes[4]: no vm_id while tofu_migrate adopts existing VMs" in warning
    assert "unless 122 (vm_id_base + host number) is its current ID" in warning
    assert (repo / "infrastructure/tofu/backend.tf").read_bytes() == backend
    moved = (repo / "infrastructure/tofu/moved.tf").read_text()
    for name in EXISTING:
        assert (
            f'moved {{\n  from = proxmox_virtual_environment_vm.talos_node["{name}"]\n'
            f'  to   = proxmox_virtual_environment_vm.node["{name}"]\n}}'
        ) in moved
    assert "removed {\n  from = proxmox_virtual_environment_download_file.talos_iso\n" in moved


def _tofu_module(repo: Path, dest: Path, *, backend: bool) -> Path:
    dest.mkdir()
    for path in (repo / "infrastructure/tofu").iterdir():
        if path.is_file() and (backend or path.name != "backend.tf"):
            shutil.copy(path, dest / path.name)
    versions = sorted(p.name for p in TOFU_PLUGIN_DIR.glob("registry.opentofu.org/bpg/proxmox/*"))
    if not versions:
        pytest.skip(f"no bpg provider in {TOFU_PLUGIN_DIR} (scripts/build-tools.sh)")
    providers = dest / "providers.tf"
    providers.write_text(
        re.sub(
            r'(source\s*=\s*"bpg/proxmox"\s*\n\s*version\s*=\s*)"[^"]+"',
            rf'\g<1>"{versions[-1]}"',
            providers.read_text(),
        )
    )
    return dest


def _tofu(module: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "TF_CLI_CONFIG_FILE": os.devnull,
        "TF_IN_AUTOMATION": "1",
        "TF_VAR_proxmox_api_token": "root@pam!ci=00000000-0000-0000-0000-000000000000",
    }
    return run_captured([tool("tofu"), *args, "-no-color"], cwd=module, env=env, timeout=300)


def _state(path: Path, storage: str) -> None:
    """A state as talos-cluster's main.tf leaves it, for the attributes the plan compares."""
    provider = 'provider["registry.opentofu.org/bpg/proxmox"]'
    vms = [
        {
            "index_key": name,
            "schema_version": 0,
            "attributes": {
                "id": str(vm_id),
                "vm_id": vm_id,
                "name": name,
                "node_name": "pve",
                "template": False,
                "efi_disk": [
                    {
                        "datastore_id": storage,
                        "file_format": "raw",
                        "type": "4m",
                        "pre_enrolled_keys": False,
                    }
                ],
            },
        }
        for name, vm_id in EXISTING.items()
    ]
    iso = {
        "index_key": "376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba-false",
        "schema_version": 0,
        "attributes": {"id": "local:iso/talos.iso", "node_name": "pve", "datastore_id": "local"},
    }
    resources = [
        {"mode": "managed", "type": "proxmox_virtual_environment_vm", "name": "talos_node",
         "provider": provider, "instances": vms},
        {"mode": "managed", "type": "proxmox_virtual_environment_download_file",
         "name": "talos_iso", "provider": provider, "instances": [iso]},
    ]  # fmt: skip
    state = {
        "version": 4,
        "terraform_version": "1.11.5",
        "serial": 1,
        "lineage": "8a4b7c1e-0000-4000-8000-000000000001",
        "outputs": {},
        "resources": resources,
    }
    path.write_text(json.dumps(state))


def test_moved_blocks_validate_and_plan_replaces_no_vm(
    repo: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    shutil.rmtree(repo / "templates/config/infrastructure")
    for name in HOST_TOFU:
        if name != "backend.tf":
            (repo / "infrastructure/tofu" / name).unlink()
    (repo / ".taskfiles/infrastructure/Taskfile.yaml").unlink()
    monkeypatch.chdir(repo)
    assert render(capsys, repo)[0] == 0

    # With the user's backend.tf: the module is valid (the HTTP backend is not contacted).
    with_backend = _tofu_module(repo, tmp_path / "with-backend", backend=True)
    init = _tofu(with_backend, "init", "-backend=false", f"-plugin-dir={TOFU_PLUGIN_DIR}")
    assert init.returncode == 0, init.stdout + init.stderr
    valid = _tofu(with_backend, "validate")
    assert valid.returncode == 0 and "The configuration is valid" in valid.stdout, valid.stderr

    # A local state as the host's tofu left it: every VM moves, none is replaced or destroyed.
    local = _tofu_module(repo, tmp_path / "local", backend=False)
    assert _tofu(local, "init", f"-plugin-dir={TOFU_PLUGIN_DIR}").returncode == 0
    tfvars = (local / "terraform.tfvars").read_text()
    storage = re.search(r'^proxmox_storage\s*=\s*"([^"]+)"', tfvars, re.MULTILINE)
    assert storage is not None
    _state(local / "terraform.tfstate", storage.group(1))
    plan = _tofu(local, "plan", "-refresh=false", "-input=false")
    assert plan.returncode == 0, plan.stdout + plan.stderr
    for name in EXISTING:
        assert (
            f'# proxmox_virtual_environment_vm.node["{name}"] will be updated in-place\n'
            f'  # (moved from proxmox_virtual_environment_vm.talos_node["{name}"])'
        ) in plan.stdout
    assert "must be replaced" not in plan.stdout
    assert "will be removed from the OpenTofu state but will not be destroyed" in plan.stdout
    summary = re.search(r"Plan: (\d+) to add, (\d+) to change, (\d+) to destroy", plan.stdout)
    assert summary is not None and summary.group(3) == "0"
    # The one node the state does not hold yet is the only one added.
    assert summary.group(1) == "1" and summary.group(2) == str(len(EXISTING))


def test_migrating_from_clustergens_own_address_is_an_error(
    example_copy: Callable[[str], Path], capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = example_copy("minimal")
    cluster = cfg / "cluster.yaml"
    cluster.write_text(
        cluster.read_text() + "tofu_migrate:\n  vm_address: proxmox_virtual_environment_vm.node\n"
    )
    assert main(["-C", str(cfg), "validate"]) == 1
    err = capsys.readouterr().err
    assert "tofu_migrate.vm_address: is clustergen's own address: there is nothing to move" in err


@pytest.mark.parametrize(
    "address",
    [
        'proxmox_virtual_environment_vm.x["a"]',
        "proxmox_virtual_environment_vm.x } resource",
        "module.vms.proxmox_virtual_environment_vm.x",
        "aws_instance.x",
    ],
)
def test_an_address_is_never_written_unless_it_is_one(
    example_copy: Callable[[str], Path], capsys: pytest.CaptureFixture[str], address: str
) -> None:
    cfg = example_copy("minimal")
    cluster = cfg / "cluster.yaml"
    cluster.write_text(cluster.read_text() + f"tofu_migrate:\n  vm_address: '{address}'\n")
    assert main(["-C", str(cfg), "render"]) == 1
    assert "tofu_migrate.vm_address" in capsys.readouterr().err
    assert not (cfg / "infrastructure").exists()
