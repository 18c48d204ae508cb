"""The tofu provisioner: infrastructure/tofu/{providers,variables,nodes,outputs}.tf and
terraform.tfvars. Schema conformance and formatting are in test_hcl_conformance.py."""

from __future__ import annotations

import difflib
import functools
import os
import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import hcl2
import pytest
from ruamel.yaml import YAML
from syrupy.assertion import SnapshotAssertion

from generator.options import Options
from generator.pipeline import render_tree
from helpers.hcl import tfvars, unquote
from helpers.paths import EXAMPLES, EXAMPLES_DIR, TOFU_PLUGIN_DIR
from helpers.tools import run_captured, tool

DIR = "infrastructure/tofu"
FILES = ("providers.tf", "variables.tf", "nodes.tf", "outputs.tf", "terraform.tfvars")
RESOURCE = "proxmox_virtual_environment_vm"
Rendered = Callable[[str], dict[str, bytes]]

THREE_NODES = """\
nodes:
  - name: talos-cp-0
    address: 192.168.22.10
    controller: true
    mac_addr: bc:24:11:00:01:01
  - name: talos-worker-0
    address: 192.168.22.20
    controller: false
    mac_addr: bc:24:11:00:01:20
  - name: talos-worker-1
    address: 192.168.22.21
    controller: false
    mac_addr: bc:24:11:00:01:21
    vm_id: 4242
"""


@functools.cache
def context(example: str) -> Any:
    """The template context of an example (rendering is slow, so once per module)."""
    return render_tree(Options(EXAMPLES_DIR / example)).context


def text(files: dict[str, bytes], name: str) -> str:
    return files[f"{DIR}/{name}"].decode()


def resource_addresses(files: dict[str, bytes]) -> dict[str, dict[str, Any]]:
    """Resource address -> the node object it is created from (for_each over var.nodes)."""
    resource = hcl2.loads(text(files, "nodes.tf"))["resource"][0][f'"{RESOURCE}"']
    (label,) = resource
    assert resource[label]["for_each"] == "${var.nodes}"
    return {
        f'{RESOURCE}.{unquote(label)}["{name}"]': node
        for name, node in tfvars(files)["nodes"].items()
    }


def set_cluster(config: Path, **values: Any) -> None:
    yaml = YAML()
    data = yaml.load(config / "cluster.yaml")
    data.update(values)
    yaml.dump(data, config / "cluster.yaml")


@pytest.mark.parametrize("name", FILES)
@pytest.mark.parametrize("example", EXAMPLES)
def test_snapshot(example: str, name: str, rendered: Rendered, snapshot: SnapshotAssertion) -> None:
    assert text(rendered(example), name) == snapshot


@pytest.mark.parametrize("example", EXAMPLES)
def test_every_node_with_its_model_values(example: str, rendered: Rendered) -> None:
    nodes = tfvars(rendered(example))["nodes"]
    model = context(example)
    assert list(nodes) == [n["name"] for n in model["nodes"]]
    for node in model["nodes"]:
        values = nodes[node["name"]]
        for key in ("vm_id", "proxmox_node", "role", "address", "mac_addr", "cores", "sockets"):
            assert values[key] == node[key], (node["name"], key)
        for key in ("cpu_type", "memory", "disk_size"):
            assert values[key] == node[key], (node["name"], key)
        assert values["tags"] == list(node["tags"])


def test_removing_the_second_of_three_nodes_moves_no_other_node(
    example_copy: Callable[[str], Path],
) -> None:
    config = example_copy("minimal")
    (config / "nodes.yaml").write_text(THREE_NODES)
    before = render_tree(Options(config)).files
    yaml = YAML()
    data = yaml.load(config / "nodes.yaml")
    del data["nodes"][1]
    yaml.dump(data, config / "nodes.yaml")
    after = render_tree(Options(config)).files

    old, new = resource_addresses(before), resource_addresses(after)
    assert len(old) == 3 and len(new) == 2
    removed = f'{RESOURCE}.node["talos-worker-0"]'
    assert set(old) - set(new) == {removed}
    for address, node in new.items():
        assert node == old[address]  # same VM ID, same everything
    assert {n["vm_id"] for n in new.values()} == {110, 4242}
    # Only the removed node's lines leave terraform.tfvars; nothing else in tofu/ changes.
    diff = difflib.ndiff(
        text(before, "terraform.tfvars").splitlines(), text(after, "terraform.tfvars").splitlines()
    )
    changed = [line for line in diff if line[:1] in "+-?"]
    assert changed and all(line.startswith("- ") for line in changed)
    assert any("talos-worker-0" in line for line in changed)
    for name in FILES:
        if name != "terraform.tfvars":
            assert text(before, name) == text(after, name)


@pytest.mark.parametrize("example", EXAMPLES)
def test_vm_ids_and_outputs_never_use_list_positions(example: str, rendered: Rendered) -> None:
    files = rendered(example)
    for name in ("nodes.tf", "outputs.tf"):
        code = text(files, name)
        assert "index(" not in code and "count" not in code
        assert not re.search(r"\[\d+\]", code), name
    assert "vm_id       = each.value.vm_id" in text(files, "nodes.tf")
    assert RESOURCE not in text(files, "outputs.tf")  # from the inputs, not from state


@pytest.mark.parametrize("example", EXAMPLES)
def test_provider_and_network_settings_come_from_the_inputs(
    example: str, rendered: Rendered
) -> None:
    values = tfvars(rendered(example))
    model = context(example)
    assert values["proxmox_endpoint"] == model["proxmox_endpoint"]
    assert not values["proxmox_endpoint"].endswith("/api2/json")
    assert values["node_vlan_tag"] == model["node_vlan_tag"]
    assert values["node_mtu"] == model["node_mtu"]
    assert values["node_prefix"] == model["node_prefix"]
    assert values["node_gateway"] == model["node_default_gateway"]
    assert values["node_dns_servers"] == list(model["node_dns_servers"])
    assert values["talos_template_vmid"] == model["talos_template_vmid"]
    assert values["proxmox_ssh_username"] == model["proxmox_ssh_username"]


def test_vlan_is_null_when_unset(rendered: Rendered) -> None:
    assert tfvars(rendered("homelab"))["node_vlan_tag"] == 22
    assert tfvars(rendered("minimal"))["node_vlan_tag"] is None


def test_guest_agent_follows_the_extension(example_copy: Callable[[str], Path]) -> None:
    config = example_copy("minimal")
    # Without packer: its build VM needs the agent (or a static address), tofu does not.
    set_cluster(config, talos_extensions=["siderolabs/iscsi-tools"], provisioners=["tofu"])
    assert tfvars(render_tree(Options(config)).files)["qemu_agent"] is False


@pytest.mark.parametrize("example", EXAMPLES)
def test_token_is_a_sensitive_variable_and_never_a_value(example: str, rendered: Rendered) -> None:
    files = rendered(example)
    declared = hcl2.loads(text(files, "variables.tf"))["variable"]
    token = next(v['"proxmox_api_token"'] for v in declared if '"proxmox_api_token"' in v)
    assert token["sensitive"] is True and "default" not in token
    assert "proxmox_api_token" not in tfvars(files)
    assert "api_token = var.proxmox_api_token" in text(files, "providers.tf")


def test_no_tofu_files_when_tofu_is_disabled(example_copy: Callable[[str], Path]) -> None:
    config = example_copy("minimal")
    set_cluster(config, provisioners=["packer"])
    files = render_tree(Options(config)).files
    assert not [p for p in files if p.startswith(DIR)]
    taskfile = files[".taskfiles/infrastructure/Taskfile.yaml"]
    assert b"tofu:" not in taskfile and b"wait-for-nodes" not in taskfile


# --- issue 16: runtime behaviour the schema does not show -------------------------------------

# The bpg version the Go module proxy here serves; the files pin the target 0.90.0.
SERVED_BPG = "0.80.0"


def tofu(directory: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "TF_CLI_CONFIG_FILE": "/dev/null",
        "CHECKPOINT_DISABLE": "1",
        "TF_DATA_DIR": str(directory / ".terraform"),
    }
    return run_captured([tool("tofu"), *args], cwd=directory, env=env, timeout=300)


def validated(files: dict[str, bytes], where: Path) -> subprocess.CompletedProcess[str]:
    """tofu init (offline, from the built provider) + tofu validate of the rendered files."""
    where.mkdir(parents=True, exist_ok=True)
    for path, data in files.items():
        if path.startswith(f"{DIR}/") and path.count("/") == 2:
            (where / path.rsplit("/", 1)[1]).write_bytes(data)
    providers = where / "providers.tf"
    pinned = providers.read_text()
    assert 'version = "0.90.0"' in pinned
    providers.write_text(pinned.replace('version = "0.90.0"', f'version = "{SERVED_BPG}"'))
    init = tofu(where, "init", "-backend=false", "-input=false", f"-plugin-dir={TOFU_PLUGIN_DIR}")
    assert init.returncode == 0, init.stdout + init.stderr
    return tofu(where, "validate", "-no-color")


@pytest.mark.parametrize("example", EXAMPLES)
def test_destroy_stops_instead_of_waiting_for_a_graceful_shutdown(
    example: str, rendered: Rendered
) -> None:
    (resource,) = hcl2.loads(text(rendered(example), "nodes.tf"))["resource"]
    vm = resource['"proxmox_virtual_environment_vm"']['"node"']
    assert vm["stop_on_destroy"] is True


@pytest.mark.parametrize("example", EXAMPLES)
def test_real_tofu_validates_with_the_real_provider(
    example: str, rendered: Rendered, tmp_path: Path
) -> None:
    done = validated(rendered(example), tmp_path / "ok")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "The configuration is valid." in done.stdout
    # The same check rejects an argument the provider does not have.
    files = dict(rendered(example))
    files[f"{DIR}/nodes.tf"] = files[f"{DIR}/nodes.tf"].replace(
        b"stop_on_destroy = true", b"stop_on_destroyed = true"
    )
    broken = validated(files, tmp_path / "broken")
    assert broken.returncode != 0
    assert 'An argument named "stop_on_destroyed" is not expected here' in broken.stderr
