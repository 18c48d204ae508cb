"""End to end: the rendered provision/status/destroy playbooks, run by the real
ansible-playbook with the real community.proxmox modules against an HTTPS Proxmox VE API
double on 127.0.0.1 (tests/proxmox_double)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from ansible.parsing.yaml.loader import AnsibleLoader
from proxmox_double import ApiCall, ProxmoxDouble, self_signed_cert
from ruamel.yaml import YAML

from generator.options import Options
from generator.pipeline import render_tree
from helpers.ansible import ansible_env
from helpers.tools import tool

try:
    import proxmoxer  # noqa: F401  (the modules import it; say so before ansible does)
except ImportError:
    # CI must run this test: there a missing test extra is an error, not a skip.
    if os.environ.get("CI"):
        raise
    pytest.skip(
        "community.proxmox needs proxmoxer: pip install -e '.[test]'", allow_module_level=True
    )

TOKEN_ID = "clustergen@pve!ansible"
TOKEN_SECRET = "6d4f1f2e-7a1b-4c3d-9e8f-0a1b2c3d4e5f"
# A subset of multi-host that still covers a clone to the template's own node (pve1) and one
# to another node with per-node overrides and user tags; every module call costs about a
# second of CPU (and proxmox_kvm sleeps a second after each task), so few nodes keep it fast.
KEEP_NODES = ("prod-cp-0", "prod-worker-1")
RUN_TIMEOUT = 120


@pytest.fixture
def double(tmp_path: Path) -> Iterator[ProxmoxDouble]:
    certfile, keyfile = self_signed_cert(tmp_path)
    api = ProxmoxDouble(token=f"{TOKEN_ID}={TOKEN_SECRET}", nodes=("pve1", "pve2", "pve3"))
    # multi-host keeps its disks on shared Ceph: a clone to another node needs shared storage.
    api.add_storage("ceph-vm", "rbd", shared=True, content=("images", "rootdir"))
    api.add_template(9100, "pve1", "talos-prod-template", storage="ceph-vm")
    # A VM that is not part of the cluster: nothing may touch it.
    api.add_template(300, "pve2", "someone-elses-vm")
    api.vms[300].template = False
    api.vms[300].status = "running"
    api.serve(certfile, keyfile)
    try:
        yield api
    finally:
        api.shutdown()


def render_for_double(
    double: ProxmoxDouble,
    example_copy: Callable[[str], Path],
    node_keys: dict[str, dict[str, Any]] | None = None,
    **cluster_keys: Any,
) -> Path:
    """multi-host, pointed at the double and reduced to KEEP_NODES, rendered in place."""
    root = example_copy("multi-host")
    yaml = YAML()
    cluster: Any = yaml.load(root / "cluster.yaml")
    cluster["proxmox_endpoint"] = f"https://127.0.0.1:{double.port}"
    # Only the ansible files: the other provisioners are not under test here.
    cluster["provisioners"] = ["ansible"]
    cluster.update(cluster_keys)
    yaml.dump(cluster, root / "cluster.yaml")
    nodes: Any = yaml.load(root / "nodes.yaml")
    nodes["nodes"] = [n for n in nodes["nodes"] if n["name"] in KEEP_NODES]
    for node in nodes["nodes"]:
        node.update((node_keys or {}).get(node["name"], {}))
    yaml.dump(nodes, root / "nodes.yaml")
    for path, data in render_tree(Options(root)).files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(data)
    return root / "infrastructure" / "ansible"


@pytest.fixture
def cluster_dir(double: ProxmoxDouble, example_copy: Callable[[str], Path]) -> Path:
    """multi-host as it is: its storage (Ceph) is shared, so clones go straight to a node."""
    return render_for_double(double, example_copy)


def playbook(
    ansible_dir: Path,
    names: str | list[str],
    double: ProxmoxDouble,
    home: Path,
    *extra: str,
    succeed: bool = True,
) -> subprocess.CompletedProcess[str]:
    env = ansible_env(
        home,
        PROXMOX_API_TOKEN_ID=TOKEN_ID,
        PROXMOX_API_TOKEN_SECRET=TOKEN_SECRET,
        # The example validates certificates (proxmox_insecure is false): trust the double's.
        REQUESTS_CA_BUNDLE=str(double.certfile),
        # Saves a temp file per module call; the run is CPU-bound on module start-up.
        ANSIBLE_PIPELINING="1",
    )
    done = subprocess.run(
        [
            tool("ansible-playbook", prefer_venv=True),
            "-i",
            "inventory.yaml",
            *(f"playbooks/{name}.yaml" for name in ([names] if isinstance(names, str) else names)),
            *extra,
        ],
        cwd=ansible_dir,
        env=env,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )
    assert (done.returncode == 0) is succeed, done.stdout + done.stderr
    return done


def recap_changed(output: str) -> int:
    line = next(line for line in output.splitlines() if line.startswith("localhost"))
    return int(line.split("changed=")[1].split()[0])


def calls(double: ProxmoxDouble, method: str, suffix: str) -> list[ApiCall]:
    return [c for c in double.calls if c.method == method and c.path.endswith(suffix)]


def test_provision_is_idempotent_and_destroy_removes_only_this_cluster(
    double: ProxmoxDouble, cluster_dir: Path, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    vars_file: Any = AnsibleLoader(
        (cluster_dir / "vars" / "cluster.yaml").read_text()
    ).get_single_data()
    wanted = {int(vm["vmid"]): vm for vm in vars_file["cluster_vms"]}
    assert len(wanted) == len(KEEP_NODES)

    playbook(cluster_dir, "provision-vms", double, home, "-e", "talos_wait=false")

    # One clone per node, from the template's VM ID on the template's node, with newid/name.
    clones = calls(double, "POST", "/clone")
    assert [c.path for c in clones] == ["/nodes/pve1/qemu/9100/clone"] * len(wanted)
    assert {int(c.params["newid"]): c.params["name"] for c in clones} == {
        vmid: vm["name"] for vmid, vm in wanted.items()
    }
    for c in clones:
        vm = wanted[int(c.params["newid"])]
        assert c.params["target"] == vm["node"]
        assert c.params["full"] == "1"
        assert c.params["storage"] == vars_file["proxmox_storage"]
        # A clone call carries nothing that the module would silently drop.
        assert set(c.params) <= {"newid", "name", "full", "storage", "target", "format", "pool"}

    # Then a config call on the VM's own node with every resolved value.
    configs = {int(c.path.split("/")[4]): c for c in calls(double, "PUT", "/config")}
    assert set(configs) == set(wanted)
    for vmid, vm in wanted.items():
        sent = configs[vmid]
        assert sent.path == f"/nodes/{vm['node']}/qemu/{vmid}/config"
        assert sent.params["cores"] == str(vm["cores"])
        assert sent.params["sockets"] == str(vm["sockets"])
        assert sent.params["memory"] == str(vm["memory"])
        assert sent.params["cpu"] == vm["cpu"]
        assert sent.params["net0"] == vm["net0"]
        assert sent.params["ipconfig0"] == vm["ipconfig0"]
        assert sent.params["nameserver"] == " ".join(vm["nameservers"])
        assert sent.params["tags"].split(",") == list(vm["tags"])
        state = double.vms[vmid]
        assert state.node == vm["node"]
        assert state.status == "running"
        assert state.config["scsi0"].endswith(f"size={vm['disk_size']}")
    assert double.vms[300].status == "running"
    assert double.rejected == []

    # Second run, then status in the same ansible-playbook call (one start-up less): nothing
    # to clone, configure, start or resize, so no write at all and 0 changed; status writes
    # nothing either.
    before = {vmid: (vm.node, vm.status, dict(vm.config)) for vmid, vm in double.vms.items()}
    double.calls.clear()
    second = playbook(
        cluster_dir, ["provision-vms", "status-vms"], double, home, "-e", "talos_wait=false"
    )
    assert double.writes() == []
    after = {vmid: (vm.node, vm.status, dict(vm.config)) for vmid, vm in double.vms.items()}
    assert after == before
    assert recap_changed(second.stdout) == 0
    for vmid, vm in wanted.items():
        line = f"{vmid} {vm['name']} ({vm['role']}, {vm['address']}): running on {vm['node']}"
        assert line in second.stdout

    # Destroy: exactly this cluster's VMs go, matched by VM ID and name; a VM ID that now holds
    # a VM of another name (someone reused it) stays, and so do the template and VM 300.
    # Provision runs after it in the same call (one start-up less) and must refuse that VM ID
    # before it changes anything, so every write of this call is destroy's.
    reused, *mine = sorted(wanted)
    double.vms[reused].name = double.vms[reused].config["name"] = "someone-reused-this-id"
    double.calls.clear()
    last = playbook(
        cluster_dir,
        ["destroy-vms", "provision-vms"],
        double,
        home,
        "-e",
        "talos_wait=false",
        succeed=False,
    )
    deleted = calls(double, "DELETE", "")
    assert sorted(int(c.path.rsplit("/", 1)[1]) for c in deleted) == mine
    assert {c.path.rsplit("/", 1)[1] for c in double.writes()} <= {"shutdown", *map(str, mine)}
    assert set(double.vms) == {9100, 300, reused}
    assert double.vms[reused].status == "running"
    assert double.vms[300].status == "running"
    assert f"VM {reused} is someone-reused-this-id, not {wanted[reused]['name']}" in last.stdout
    assert f"VM {reused} should be {wanted[reused]['name']} on" in last.stdout
    assert double.rejected == []


def test_configure_runs_again_only_for_a_vm_that_drifted(
    double: ProxmoxDouble, example_copy: Callable[[str], Path], tmp_path: Path
) -> None:
    """Node-local storage: clone on the template's node, migrate, configure; a second run
    writes nothing; a VM whose config was changed by hand is configured again, alone."""
    cluster_dir = render_for_double(double, example_copy, proxmox_storage_shared=False)
    home = tmp_path / "home"
    vars_file: Any = AnsibleLoader(
        (cluster_dir / "vars" / "cluster.yaml").read_text()
    ).get_single_data()
    wanted = {int(vm["vmid"]): vm for vm in vars_file["cluster_vms"]}
    playbook(cluster_dir, "provision-vms", double, home, "-e", "talos_wait=false")

    clones = calls(double, "POST", "/clone")
    assert [c.path for c in clones] == ["/nodes/pve1/qemu/9100/clone"] * len(wanted)
    assert all("target" not in c.params for c in clones)
    # Only the VM of another node moves, from the template's node to its own.
    away = {vmid: vm for vmid, vm in wanted.items() if vm["node"] != "pve1"}
    assert away, "the test needs a node on another PVE node"
    migrations = calls(double, "POST", "/migrate")
    assert {c.path: c.params["target"] for c in migrations} == {
        f"/nodes/pve1/qemu/{vmid}/migrate": vm["node"] for vmid, vm in away.items()
    }
    for vmid, vm in wanted.items():
        assert double.vms[vmid].node == vm["node"]
        assert double.vms[vmid].status == "running"
        assert double.vms[vmid].config["net0"] == vm["net0"]
    assert double.rejected == []

    # Someone changes one VM's memory by hand: only that VM is configured again.
    drifted = max(wanted)
    double.vms[drifted].config["memory"] = "1024"
    double.calls.clear()
    second = playbook(cluster_dir, "provision-vms", double, home, "-e", "talos_wait=false")
    assert [(c.method, c.path) for c in double.writes()] == [
        ("PUT", f"/nodes/{wanted[drifted]['node']}/qemu/{drifted}/config")
    ]
    assert double.vms[drifted].config["memory"] == str(wanted[drifted]["memory"])
    assert recap_changed(second.stdout) == 1


def test_each_node_is_cloned_from_the_template_of_its_schematic(
    double: ProxmoxDouble, example_copy: Callable[[str], Path], tmp_path: Path
) -> None:
    """A node with a SecureBoot setting of its own is cloned from its own template."""
    ansible_dir = render_for_double(
        double, example_copy, {"prod-worker-1": {"talos_secureboot": True}}
    )
    vars_file: Any = AnsibleLoader(
        (ansible_dir / "vars" / "cluster.yaml").read_text()
    ).get_single_data()
    templates = {int(t["vmid"]): t["name"] for t in vars_file["talos_templates"]}
    assert len(templates) == 2 and templates[9100] == "talos-prod-template"
    (other,) = set(templates) - {9100}
    double.add_template(other, "pve1", templates[other], storage="ceph-vm")
    playbook(ansible_dir, "provision-vms", double, tmp_path / "home", "-e", "talos_wait=false")
    clones = {int(c.params["newid"]): c.path for c in calls(double, "POST", "/clone")}
    by_name = {vm["name"]: int(vm["vmid"]) for vm in vars_file["cluster_vms"]}
    assert clones == {
        by_name["prod-cp-0"]: "/nodes/pve1/qemu/9100/clone",
        by_name["prod-worker-1"]: f"/nodes/pve1/qemu/{other}/clone",
    }
    assert double.rejected == []
    # Without the second template the playbook stops before cloning anything.
    double.vms.pop(other)
    for vmid in by_name.values():
        double.vms.pop(vmid)
    before = len(calls(double, "POST", "/clone"))
    done = playbook(
        ansible_dir,
        "provision-vms",
        double,
        tmp_path / "home",
        "-e",
        "talos_wait=false",
        succeed=False,
    )
    assert f"VM {other} ({templates[other]}) is missing or not a template" in done.stdout
    assert len(calls(double, "POST", "/clone")) == before
