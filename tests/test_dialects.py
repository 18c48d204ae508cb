"""Input dialects: the host repos' own cluster.yaml/nodes.yaml (cluster-template @77cc9f5,
talos-cluster @c999e05) validate, map onto clustergen's model with the host's meaning, and
reach every output that uses them; `clustergen init` extends the hosts' CUE schemas."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from generator import dialects
from generator.errors import InputError
from generator.options import Options
from generator.pipeline import render_tree
from helpers.cli import run_cli
from helpers.data import input_errors
from helpers.hcl import tfvars
from helpers.paths import EXAMPLES_DIR, ROOT
from helpers.tools import tool

CT = "cluster-template-77cc9f5"
TC = "talos-cluster-c999e05"
HOST_DIALECT = {CT: "cluster-template", TC: "talos-cluster"}
SCHEMATIC = "376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba"
# What clustergen needs that the host's test configs do not carry (a user adds these).
NEEDS = {
    CT: {"proxmox_endpoint": "https://pve.example.com:8006", "proxmox_node": "pve"},
    TC: {"proxmox_api_url": "https://pve.example.com:8006/api2/json", "proxmox_node": "pve"},
}


# --- helpers -------------------------------------------------------------------------------


def host_repo(reference: Path, host: str, target: Path) -> Path:
    shutil.copytree(reference / "hosts" / host, target)
    return target


def dump(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=False)


def sops_config(config: Path) -> None:
    """A .sops.yaml for a fresh age recipient: sops can then seal the CAPI credentials."""
    from pyrage import x25519

    recipient = x25519.Identity.generate().to_public()
    (config / ".sops.yaml").write_text(
        "creation_rules:\n  - path_regex: \\.sops\\.ya?ml$\n"
        f"    encrypted_regex: ^(data|stringData)$\n    age: {recipient}\n"
    )


def text(files: dict[str, bytes], path: str) -> str:
    return files[path].decode("utf-8")


def write(config: Path, cluster: dict[str, Any], nodes: dict[str, Any]) -> None:
    (config / "cluster.yaml").write_text(dump(cluster))
    (config / "nodes.yaml").write_text(dump(nodes))


def load_example(name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    cluster = yaml.safe_load((EXAMPLES_DIR / name / "cluster.yaml").read_text())
    nodes = yaml.safe_load((EXAMPLES_DIR / name / "nodes.yaml").read_text())
    return cluster, nodes


def relative(err: str, config: Path) -> list[str]:
    return [line.removeprefix(str(config) + "/") for line in err.splitlines()]


# --- schemas -------------------------------------------------------------------------------


def test_dialect_schemas_are_what_the_script_makes_from_the_reference(reference_dir: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "dialect_schemas.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
        env={"CLUSTERGEN_REFERENCE": str(reference_dir), "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr


def test_talos_cluster_schema_holds_every_host_key_with_the_host_type(reference_dir: Path) -> None:
    resources = reference_dir / "hosts" / TC / ".taskfiles" / "template" / "resources"
    host = json.loads((resources / "cluster.schema.json").read_text())["properties"]
    ours = json.loads((ROOT / "schemas/dialects/talos-cluster.cluster.schema.json").read_text())
    for key, spec in host.items():
        mine = {
            k: v
            for k, v in ours["properties"][key].items()
            if k not in ("description", "x-dialect")
        }
        theirs = {k: v for k, v in spec.items() if k not in ("description", "default")}
        assert mine == theirs, key
    own = json.loads((ROOT / "schemas/cluster.schema.json").read_text())["properties"]
    assert set(ours["properties"]) == set(host) | set(own)
    assert ours["additionalProperties"] is False


def test_cluster_template_schema_holds_exactly_the_cue_keys(reference_dir: Path) -> None:
    resources = reference_dir / "hosts" / CT / ".taskfiles" / "template" / "resources"
    cue_keys = set(
        re.findall(r"^\t(\w+)\??:", (resources / "cluster.schema.cue").read_text(), re.M)
    )
    ours = json.loads((ROOT / "schemas/dialects/cluster-template.cluster.schema.json").read_text())
    hosts = {k for k, v in ours["properties"].items() if v.get("x-dialect") == "cluster-template"}
    assert hosts == cue_keys
    assert ours["properties"]["node_vlan_tag"]["type"] == "string"  # the host's type


# --- host configs validate -----------------------------------------------------------------


@pytest.mark.parametrize("host", [CT, TC])
@pytest.mark.parametrize("config", ["public", "private"])
def test_host_test_configs_validate_under_their_dialect(
    host: str, config: str, reference_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = host_repo(reference_dir, host, tmp_path / "repo")
    tests = repo / ".github" / "tests"
    cluster = {**yaml.safe_load((tests / f"{config}.yaml").read_text()), **NEEDS[host]}
    nodes = yaml.safe_load((tests / "nodes.yaml").read_text())
    write(repo, cluster, nodes)
    if host == CT:
        assert run_cli(capsys, "init", "-C", str(repo))[0] == 0
    # As the host wrote them: k8s-1 boots the SecureBoot image, so it has a template of its own.
    code, out, err = run_cli(capsys, "validate", "-C", str(repo))
    assert code == 0, err
    assert out == f"valid: 2 node(s), 1 controller(s), 1 worker(s) ({HOST_DIALECT[host]} dialect)\n"


def _filled(sample: Path, values: dict[str, Any]) -> dict[str, Any]:
    data = yaml.safe_load(sample.read_text())
    return {k: (values[k] if v in ("", None) and k in values else v) for k, v in data.items()}


@pytest.mark.parametrize("host", [CT, TC])
def test_filled_in_samples_validate(host: str, reference_dir: Path, tmp_path: Path) -> None:
    repo = host_repo(reference_dir, host, tmp_path / "repo")
    public = yaml.safe_load((repo / ".github" / "tests" / "public.yaml").read_text())
    cluster = {**_filled(repo / "cluster.sample.yaml", public), **NEEDS[host]}
    nodes = yaml.safe_load((repo / ".github" / "tests" / "nodes.yaml").read_text())
    assert yaml.safe_load((repo / "nodes.sample.yaml").read_text()) == {"nodes": []}
    write(repo, cluster, nodes)
    assert input_errors(repo) == []


def test_talos_cluster_configs_still_pass_the_hosts_json_schemas(reference_dir: Path) -> None:
    from jsonschema import Draft7Validator

    resources = reference_dir / "hosts" / TC / ".taskfiles" / "template" / "resources"
    cluster_schema = json.loads((resources / "cluster.schema.json").read_text())
    nodes_schema = json.loads((resources / "nodes.schema.json").read_text())
    tests = reference_dir / "hosts" / TC / ".github" / "tests"
    for config in ("public", "private"):
        as_is = yaml.safe_load((tests / f"{config}.yaml").read_text())
        cluster = {**as_is, **NEEDS[TC]}

        def problems(data: dict[str, Any]) -> list[str]:
            return sorted(e.message for e in Draft7Validator(cluster_schema).iter_errors(data))

        # What clustergen needs adds no problem (the host's JSON Schema requires the CIDRs
        # that its CUE defaults, so its own test configs do not pass it as they are).
        assert problems(cluster) == problems(as_is)
    nodes = yaml.safe_load((tests / "nodes.yaml").read_text())
    assert list(Draft7Validator(nodes_schema).iter_errors(nodes)) == []
    # The example, as a talos-cluster user writes it, is valid for the host too.
    cluster, nodes = load_example("talos-cluster")
    assert list(Draft7Validator(cluster_schema).iter_errors(cluster)) == []
    assert list(Draft7Validator(nodes_schema).iter_errors(nodes)) == []


# --- detection and the option --------------------------------------------------------------


def test_detection_from_the_repo(reference_dir: Path, tmp_path: Path) -> None:
    assert dialects.detect(host_repo(reference_dir, CT, tmp_path / "ct")) == "cluster-template"
    assert dialects.detect(host_repo(reference_dir, TC, tmp_path / "tc")) == "talos-cluster"
    assert dialects.detect(EXAMPLES_DIR / "minimal") == "clustergen"
    for name in ("cluster-template", "talos-cluster"):
        cluster, _ = load_example(name)
        assert dialects.detect(EXAMPLES_DIR / name, cluster) == name


def test_a_symlinked_cue_schema_is_not_followed(reference_dir: Path, tmp_path: Path) -> None:
    repo = host_repo(reference_dir, CT, tmp_path / "ct")
    target = repo / dialects.CLUSTER_CUE
    (tmp_path / "elsewhere.cue").write_text(target.read_text())
    target.unlink()
    target.symlink_to(tmp_path / "elsewhere.cue")
    with pytest.raises(dialects.UsageError, match="symlink"):
        dialects.detect(repo)


def test_the_option_overrides_detection(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "tc"
    shutil.copytree(EXAMPLES_DIR / "talos-cluster", config)
    code, out, err = run_cli(capsys, "validate", "--dialect", "clustergen", "-C", str(config))
    assert code == 1
    lines = relative(err, config)[:-1]
    assert lines and all(
        re.match(r"^(cluster|nodes)\.yaml:\d+:\d+: error: ", line) for line in lines
    )
    assert any(
        "unknown key 'proxmox_api_url'" in line
        and "proxmox_api_url is a talos-cluster key; this repo is read as clustergen" in line
        and "(--dialect talos-cluster to switch)" in line
        for line in lines
    ), lines
    code, out, _ = run_cli(capsys, "--dialect", "talos-cluster", "validate", "-C", str(config))
    assert code == 0 and "(talos-cluster dialect)" in out


# --- typos ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("example", "typo", "wanted"),
    [
        ("minimal", "proxmox_endpiont", "proxmox_endpoint"),
        ("cluster-template", "cloudflare_tokn", "cloudflare_token"),
        ("talos-cluster", "proxmox_disk_storag", "proxmox_disk_storage"),
    ],
)
def test_a_typo_is_one_line_with_did_you_mean_among_the_union(
    example: str, typo: str, wanted: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / example
    shutil.copytree(EXAMPLES_DIR / example, config)
    path = config / "cluster.yaml"
    path.write_text(path.read_text() + f"{typo}: x\n")
    line = len(path.read_text().splitlines())
    code, _, err = run_cli(capsys, "validate", "-C", str(config))
    assert code == 1
    assert relative(err, config)[0] == (
        f"cluster.yaml:{line}:1: error: {typo}: unknown key {typo!r} (did you mean {wanted!r}?)"
    )
    assert len(err.splitlines()) == 2  # the one problem and the summary


def test_a_key_of_another_dialect_says_which(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "ct"
    shutil.copytree(EXAMPLES_DIR / "cluster-template", config)
    path = config / "nodes.yaml"
    path.write_text(path.read_text() + "    vm_cores: 4\n")
    code, _, err = run_cli(capsys, "validate", "-C", str(config))
    assert code == 1
    assert "vm_cores is a talos-cluster key; this repo is read as cluster-template" in err


# --- mapped keys in every output -----------------------------------------------------------


@pytest.fixture(scope="module")
def tc_all(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """The talos-cluster example with every provisioner (OpenTofu, Packer, Ansible, CAPI)."""
    config = tmp_path_factory.mktemp("tc") / "tc"
    shutil.copytree(EXAMPLES_DIR / "talos-cluster", config)
    path = config / "cluster.yaml"
    path.write_text(path.read_text() + "provisioners: [packer, tofu, ansible, capi]\n")
    sops_config(config)
    return render_tree(Options(config)).files


def test_talos_cluster_keys_in_the_opentofu_files(rendered: Any) -> None:
    files = rendered("talos-cluster")
    values = tfvars(files)
    assert values["proxmox_endpoint"] == "https://pve.example.com:8006"  # /api2/json removed
    assert values["proxmox_storage"] == "ceph-vm"  # proxmox_disk_storage
    assert values["proxmox_bridge"] == "vmbr1"  # proxmox_vm_advanced.network_bridge
    assert values["node_vlan_tag"] == 30  # proxmox_vlan_mode: true
    assert values["qemu_agent"] is True
    nodes = values["nodes"]
    gpu = nodes["gpu-0"]
    assert (gpu["vm_id"], gpu["cores"], gpu["sockets"], gpu["memory"], gpu["disk_size"]) == (
        3020,
        16,
        2,
        32768,
        512,
    )
    assert gpu["startup"] == {"order": 2, "up_delay": -1, "down_delay": 180}
    assert nodes["cp-0"]["startup"] == {"order": 1, "up_delay": 30, "down_delay": -1}
    # role defaults over the global ones; cpu_type from proxmox_vm_advanced; its tags on every VM
    assert (nodes["cp-1"]["cores"], nodes["cp-1"]["memory"], nodes["cp-1"]["disk_size"]) == (
        4,
        8192,
        64,
    )
    assert {n["cpu_type"] for n in nodes.values()} == {"x86-64-v2-AES"}
    assert all({"talos", "lab"} <= set(n["tags"]) for n in nodes.values())
    tf = text(files, "infrastructure/tofu/nodes.tf")
    for line in (
        'scsi_hardware = "virtio-scsi-single"',
        "numa    = true",
        "queues      = 4",
        "backup       = false",
        "replicate    = false",
        'bios          = "ovmf"',
        'machine       = "q35"',
        'type = "l26"',
    ):
        assert line in tf, line


def test_host_defaults_apply_where_a_host_key_is_absent(tmp_path: Path) -> None:
    config = tmp_path / "tc"
    shutil.copytree(EXAMPLES_DIR / "talos-cluster", config)
    cluster, nodes = load_example("talos-cluster")
    for key in (
        "proxmox_vm_advanced",
        "proxmox_disk_storage",
        "proxmox_vm_worker_defaults",
        "talos_version",
    ):
        cluster.pop(key)
    cluster["proxmox_vm_defaults"] = {"cores": 6}
    write(config, cluster, nodes)
    files = render_tree(Options(config)).files
    values = tfvars(files)
    assert values["proxmox_storage"] == "local-lvm"
    assert values["proxmox_bridge"] == "vmbr0"
    # worker: no role block -> proxmox_vm_defaults.cores, then the host's global defaults
    assert (values["nodes"]["gpu-0"]["sockets"], values["nodes"]["gpu-0"]["cpu_type"]) == (
        2,
        "host",
    )
    tf = text(files, "infrastructure/tofu/nodes.tf")
    assert 'scsi_hardware = "virtio-scsi-pci"' in tf  # the host's default, not clustergen's
    assert "iothread     = false" in tf  # an I/O thread needs virtio-scsi-single
    assert "numa    = true" in tf and "queues      = 4" in tf
    assert '"1.12.0"' in text(files, "infrastructure/packer/variables.pkrvars.hcl")


def test_talos_cluster_keys_in_packer_ansible_and_capi(tc_all: dict[str, bytes]) -> None:
    pkr = text(tc_all, "infrastructure/packer/variables.pkrvars.hcl")
    assert (
        '"https://pve.example.com:8006/api2/json"' in pkr or '"https://pve.example.com:8006"' in pkr
    )
    for value in ('"ceph-vm"', '"vmbr1"', '"30"', SCHEMATIC):
        assert value in pkr, value
    assert "secureboot          = false" in pkr.replace(
        "talos_secureboot    = false", "secureboot          = false"
    )
    flat = text(tc_all, "infrastructure/ansible/vars/cluster.yaml")
    for value in ("ceph-vm", "vmbr1", "tag=30", "3020", "32768"):
        assert value in flat, value
    capi = [d for d in yaml.safe_load_all(tc_all["infrastructure/capi/cluster.yaml"]) if d]
    flat = json.dumps(capi)
    for value in ("vmbr1", SCHEMATIC, '"vlan": 30', "ceph-vm", "32768"):
        assert value in flat, value
    assert "installer/" + SCHEMATIC in flat or f"installer/{SCHEMATIC}" in flat or SCHEMATIC in flat


def test_the_token_in_cluster_yaml_is_a_secret_everywhere(tc_all: dict[str, bytes]) -> None:
    secret = "0d5b6a3c-1b2e-4f5a-9c8d-7e6f5a4b3c2d"
    for path, data in tc_all.items():
        if ".sops." not in path:
            assert secret.encode() not in data, path
            assert b"terraform@pve!talos" not in data, path


def test_a_leaking_template_is_caught_for_the_inline_token(tmp_path: Path) -> None:
    # The pipeline hands the inline token to the same guard as a decrypted secrets file.
    from generator import inputs, leaks

    inline = inputs.read(EXAMPLES_DIR / "talos-cluster").inline_secrets
    assert set(inline) == {"proxmox_api_token_id", "proxmox_api_token_secret"}
    with pytest.raises(InputError) as caught:
        leaks.guard({"x.tf": b"token = 0d5b6a3c-1b2e-4f5a-9c8d-7e6f5a4b3c2d"}, inline)
    assert "proxmox_api_token_secret" in caught.value.diagnostics[0].message


def test_a_bad_token_is_reported_without_its_value(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "tc"
    shutil.copytree(EXAMPLES_DIR / "talos-cluster", config)
    path = config / "cluster.yaml"
    path.write_text(path.read_text().replace('"terraform@pve!talos"', '"no-realm-s3cr3t"'))
    code, _, err = run_cli(capsys, "validate", "-C", str(config))
    assert code == 1
    assert "proxmox_api_token_id: is not valid" in err and "s3cr3t" not in err


# --- VLAN semantics ------------------------------------------------------------------------


def test_vlan_modes(tmp_path: Path) -> None:
    # cluster-template: inside Talos, the Proxmox NIC untagged.
    files = render_tree(Options(EXAMPLES_DIR / "cluster-template")).files
    assert tfvars(files)["node_vlan_tag"] is None
    assert "node_vlan_tag" not in text(files, "infrastructure/packer/variables.pkrvars.hcl")
    # talos-cluster without proxmox_vlan_mode: the same.
    config = tmp_path / "tc"
    shutil.copytree(EXAMPLES_DIR / "talos-cluster", config)
    cluster, nodes = load_example("talos-cluster")
    cluster["proxmox_vlan_mode"] = False
    write(config, cluster, nodes)
    assert tfvars(render_tree(Options(config)).files)["node_vlan_tag"] is None
    # with proxmox_vlan_mode: true, on the NIC (the example).
    assert tfvars(render_tree(Options(EXAMPLES_DIR / "talos-cluster")).files)["node_vlan_tag"] == 30
    # In-Talos VLAN with CAPI: clustergen cannot put it into Talos, an error.
    cluster["provisioners"] = ["capi"]
    write(config, cluster, nodes)
    found = input_errors(config)
    assert len(found) == 1 and "cannot create a VLAN sub-interface" in found[0]


# --- versions ------------------------------------------------------------------------------


def test_versions_from_talenv_and_their_conflict(tmp_path: Path) -> None:
    config = tmp_path / "ct"
    shutil.copytree(EXAMPLES_DIR / "cluster-template", config)
    (config / "talos" / "talenv.yaml").write_text(
        "talosVersion: v1.12.3\nkubernetesVersion: v1.35.2\n"
    )
    files = render_tree(Options(config)).files
    assert '"1.12.3"' in text(files, "infrastructure/packer/variables.pkrvars.hcl")
    cluster, nodes = load_example("cluster-template")
    cluster["talos_version"] = "1.12.4"
    write(config, cluster, nodes)
    found = input_errors(config)
    assert len(found) == 1
    assert re.match(
        r"cluster\.yaml:\d+:\d+: error: talos_version: talos_version '1\.12\.4' disagrees with "
        r"talosVersion v1\.12\.3 in talos/talenv\.yaml:1 ",
        found[0],
    ), found
    cluster["talos_version"] = "1.12.3"  # the same in both places is fine
    write(config, cluster, nodes)
    assert input_errors(config) == []


@pytest.mark.parametrize("value", ['"v1.12.3\\n"', '"1.12.3\\n"', '"v1.12.3 "'])
def test_a_talenv_version_with_a_trailing_line_break_is_refused(tmp_path: Path, value: str) -> None:
    """Python's `$` also matches before a final newline: a quoted version ending in one must
    not pass as a version (it would reach every image URL)."""
    config = tmp_path / "ct"
    shutil.copytree(EXAMPLES_DIR / "cluster-template", config)
    (config / "talos" / "talenv.yaml").write_text(
        f"talosVersion: {value}\nkubernetesVersion: v1.35.2\n"
    )
    found = input_errors(config)
    assert any(
        line.startswith("talos/talenv.yaml:1:") and "is not a version like v1.12.0" in line
        for line in found
    ), found


def test_cluster_name_defaults_to_kubernetes_in_cluster_template() -> None:
    files = render_tree(Options(EXAMPLES_DIR / "cluster-template")).files
    assert all("kubernetes" in n["tags"] for n in tfvars(files)["nodes"].values())


# --- unsupported host values are errors ----------------------------------------------------


def test_the_schematic_comes_from_the_nodes(rendered: Any) -> None:
    pkr = text(rendered("cluster-template"), "infrastructure/packer/variables.pkrvars.hcl")
    assert SCHEMATIC in pkr
    assert "secureboot" in pkr and "= false" in pkr  # the hosts' default


def test_a_disk_serial_with_capi_is_an_error(tmp_path: Path) -> None:
    config = tmp_path / "ct"
    shutil.copytree(EXAMPLES_DIR / "cluster-template", config)
    cluster, nodes = load_example("cluster-template")
    cluster.pop("node_vlan_tag")
    cluster["provisioners"] = ["capi"]
    write(config, cluster, nodes)
    found = input_errors(config)
    assert len(found) == 1 and "disk serial" in found[0] and "nodes[3].disk" in found[0]


def test_both_spellings_of_one_value_are_an_error(tmp_path: Path) -> None:
    config = tmp_path / "tc"
    shutil.copytree(EXAMPLES_DIR / "talos-cluster", config)
    cluster, nodes = load_example("talos-cluster")
    cluster["proxmox_storage"] = "local-zfs"
    nodes["nodes"][3]["cores"] = 2
    write(config, cluster, nodes)
    found = input_errors(config)
    assert any(
        "proxmox_storage 'local-zfs' disagrees with proxmox_disk_storage 'ceph-vm'" in f
        for f in found
    )
    assert any("nodes[3].cores: cores and vm_cores both given" in f for f in found)


def test_a_normalised_value_is_reported_at_its_source(tmp_path: Path) -> None:
    config = tmp_path / "tc"
    shutil.copytree(EXAMPLES_DIR / "talos-cluster", config)
    path = config / "cluster.yaml"
    path.write_text(path.read_text().replace("  bios: ovmf", "  bios: uefi"))
    lines = path.read_text().splitlines()
    line = next(i for i, text in enumerate(lines, 1) if "bios: uefi" in text)
    found = input_errors(config)
    assert found == [
        f"cluster.yaml:{line}:9: error: proxmox_vm_advanced.bios: "
        "'uefi' is not one of ovmf, seabios ()"
    ]


# --- adoption ------------------------------------------------------------------------------


@pytest.mark.parametrize("host", [CT, TC])
def test_init_extends_the_host_cue_schemas(
    host: str, reference_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from generator.dialects import adopt

    cue = tool("cue")
    repo = host_repo(reference_dir, host, tmp_path / "repo")
    tests = repo / ".github" / "tests"
    cluster = {**yaml.safe_load((tests / "public.yaml").read_text()), **NEEDS[host]}
    # clustergen's own keys in the host's files, as a user adds them
    cluster.update(
        {"proxmox_insecure": True, "provisioners": ["packer", "tofu"], "vm_id_base": 200}
    )
    nodes = yaml.safe_load((tests / "nodes.yaml").read_text())
    nodes["nodes"][0].update({"cores": 4, "tags": ["gpu"], "startup_order": 3})
    write(repo, cluster, nodes)
    resources = ".taskfiles/template/resources"

    def vet() -> list[int]:
        return [
            subprocess.run(
                [cue, "vet", f"{name}.yaml", f"{resources}/{name}.schema.cue"],
                cwd=repo,
                capture_output=True,
                text=True,
                check=False,
                timeout=120,
            ).returncode
            for name in ("cluster", "nodes")
        ]

    assert vet() == [1, 1]
    before = (repo / resources / "cluster.schema.cue").read_text()
    code, out, _ = run_cli(capsys, "init", "-C", str(repo))
    assert code == 0
    after = (repo / resources / "cluster.schema.cue").read_text()
    assert after.startswith(before.rstrip("\n"))
    assert after.count(adopt.BEGIN) == 1 and after.count(adopt.END) == 1
    assert f"+++ b/{resources}/cluster.schema.cue" in out and "+\tproxmox_insecure?: bool" in out
    if host == TC:  # keys talos-cluster defines itself are not added again
        block = after.split(adopt.BEGIN, 1)[1]
        assert "proxmox_node?" not in block and "talos_version?" not in block
    # The last step names where the token lives: talos-cluster keeps it in cluster.yaml and
    # gets no secrets.sops.yaml to fill in.
    next_step = next(line for line in out.splitlines() if line.startswith("next: "))
    if host == TC:
        assert not (repo / "secrets.sops.yaml").exists()
        assert "token stays in cluster.yaml" in next_step and "sops secrets" not in next_step
    else:
        assert "put the real Proxmox API token in secrets.sops.yaml" in next_step
    assert vet() == [0, 0]
    assert input_errors(repo) == []
    # Idempotent: a second init changes no schema and prints no diff.
    code, out, _ = run_cli(capsys, "init", "-C", str(repo))
    assert code == 0 and "+++" not in out
    assert (repo / resources / "cluster.schema.cue").read_text() == after
    assert dialects.detect(repo) == HOST_DIALECT[host]


def test_init_in_a_fresh_cluster_template_repo_starts_from_its_example(
    reference_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = host_repo(reference_dir, CT, tmp_path / "repo")
    assert run_cli(capsys, "init", "-C", str(repo))[0] == 0
    assert (repo / "cluster.yaml").read_text() == (
        EXAMPLES_DIR / "cluster-template" / "cluster.yaml"
    ).read_text()
    assert input_errors(repo) == []


def test_a_bad_advanced_tag_is_reported_in_cluster_yaml(tmp_path: Path) -> None:
    config = tmp_path / "tc"
    shutil.copytree(EXAMPLES_DIR / "talos-cluster", config)
    path = config / "cluster.yaml"
    path.write_text(path.read_text().replace('tags: ["talos", "lab"]', 'tags: ["talos", "Lab"]'))
    found = input_errors(config)
    assert len(found) == 1
    assert "error: proxmox_vm_advanced.tags[1]: 'Lab' is not a Proxmox tag" in found[0]
    assert "did you mean 'lab'?" in found[0]


def test_json_diagnostics_of_a_host_dialect(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "tc"
    shutil.copytree(EXAMPLES_DIR / "talos-cluster", config)
    path = config / "nodes.yaml"
    # A controller with one core breaks a Talos minimum (a clustergen rule on `cores`).
    path.write_text(path.read_text().replace("vm_id: 3010\n", "vm_id: 3010\n    vm_cores: 1\n"))
    line = path.read_text().splitlines().index("    vm_cores: 1") + 1
    code, out, _ = run_cli(capsys, "--format", "json", "validate", "-C", str(config))
    assert code == 1
    (problem,) = json.loads(out)
    assert (problem["path"], problem["line"], problem["col"]) == ("nodes[0].vm_cores", line, 15)


@pytest.mark.parametrize(
    ("extra", "clash"),
    [
        ({"vm_id_base": 8980}, 9000),  # the Talos template's VM ID
        ({"vm_id_base": 8981, "provisioners": ["packer", "tofu", "capi"]}, 9001),  # CAPI's twin
        ({"vm_id_base": 2990}, 3010),  # another node's explicit vm_id (cp-0)
    ],
    ids=["template", "capi-twin", "node"],
)
def test_a_talos_cluster_node_without_vm_id_steps_over_every_taken_id(
    tmp_path: Path, extra: dict[str, Any], clash: int
) -> None:
    """talos-cluster leaves a node's VM ID to Proxmox; clustergen numbers it (base + host
    number) and steps over an ID a template, a Cluster API twin or another node holds, instead
    of reporting a clash on a vm_id the user never wrote."""
    cluster, nodes = load_example("talos-cluster")
    worker = next(n for n in nodes["nodes"] if n["name"] == "gpu-0")
    del worker["vm_id"]
    assert worker["address"].endswith(".20")  # host number 20: its ID would be base + 20
    if "capi" in extra.get("provisioners", []):
        extra["capi_spare_addresses"] = ["10.20.30.99"]
    write(tmp_path, {**cluster, **extra}, nodes)
    assert input_errors(tmp_path) == []
    context = render_tree(Options(tmp_path), check=True).context
    ids = {n["name"]: n["vm_id"] for n in context["nodes"]}
    taken = {t["vmid"] for t in context["talos_templates"]} | {
        n["vm_id"] for n in context["nodes"] if n["name"] != "gpu-0"
    }
    if context["enabled"]["capi"]:
        taken |= {t["vmid"] for t in context["capi"]["twins"]}
    assert clash in taken
    first_free = next(i for i in range(clash, clash + 100) if i not in taken)
    assert ids["gpu-0"] == first_free
