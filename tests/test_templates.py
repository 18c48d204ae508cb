"""One Talos template per (schematic, SecureBoot) pair (issue 12): every output clones each
node from its own template; VM IDs stay put when nodes or other pairs come and go."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import hcl2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_ansible import load as load_ansible
from test_tofu import validated

from generator import talos_templates
from generator.cli import main
from generator.inputs import read
from generator.options import Options
from generator.pipeline import render_tree
from helpers.data import edit, input_errors, node
from helpers.hcl import tfvars, unquote
from helpers.packer import console, packer, packer_dir
from helpers.packer import pkrvars as packer_vars
from helpers.paths import EXAMPLES_DIR, TASKFILE
from helpers.tools import tool

OTHER_SCHEMATIC = "a" * 64
HOST_SCHEMATIC = "376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba"
GPU = ["siderolabs/qemu-guest-agent", "siderolabs/nvidia-open-gpu-kernel-modules-production"]


def pkrvars(files: dict[str, bytes]) -> dict[str, Any]:
    parsed: dict[str, Any] = unquote(packer_vars(files))
    return parsed


def ansible_vars(files: dict[str, bytes]) -> Any:
    return load_ansible(files["infrastructure/ansible/vars/cluster.yaml"])


@pytest.fixture
def two_schematics(example_copy: Callable[[str], Path]) -> Path:
    """homelab with GPU workers: their talos_extensions make a second schematic."""
    config = example_copy("homelab")

    def gpu(data: Any) -> None:
        node(data, "k8s-worker-0")["talos_extensions"] = GPU
        node(data, "k8s-worker-1")["talos_extensions"] = list(reversed(GPU))

    edit(config, "nodes.yaml", gpu)
    return config


def test_each_node_clones_the_template_of_its_schematic(two_schematics: Path) -> None:
    tree = render_tree(Options(two_schematics))
    templates = tree.context["talos_templates"]
    assert len(templates) == 2
    plain, gpu = templates
    # The cluster's pair keeps talos_template(_vmid); the GPU pair is named by its schematic.
    assert (plain["vmid"], plain["name"]) == (9000, "talos-1.12.0")
    assert 9100 <= gpu["vmid"] < 10000
    assert gpu["name"] == f"talos-1.12.0-{gpu['schematic']['id'][:8]}"
    assert plain["schematic"]["id"] != gpu["schematic"]["id"]
    # The order of a node's extensions does not make a third schematic.
    assert list(gpu["nodes"]) == ["k8s-worker-0", "k8s-worker-1"]
    expected = {n: plain["vmid"] for n in plain["nodes"]} | {n: gpu["vmid"] for n in gpu["nodes"]}

    nodes = tfvars(tree.files)["nodes"]
    assert {name: n["template_vmid"] for name, n in nodes.items()} == expected
    (resource,) = hcl2.loads(tree.files["infrastructure/tofu/nodes.tf"].decode())["resource"]
    clone = resource['"proxmox_virtual_environment_vm"']['"node"']["clone"][0]
    assert clone["vm_id"] == "${each.value.template_vmid}"

    variables = pkrvars(tree.files)
    assert "talos_template_vmid" not in variables and "talos_schematic_id" not in variables
    assert variables["talos_templates"] == {
        f"talos-{t['vmid']}": {
            "vm_id": t["vmid"],
            "name": t["name"],
            "schematic_id": t["schematic"]["id"],
            "secureboot": False,
            "image_url": t["schematic"]["image_url"],
        }
        for t in templates
    }

    vars_ = ansible_vars(tree.files)
    assert vars_["talos_templates"] == [{"vmid": t["vmid"], "name": t["name"]} for t in templates]
    assert {v["name"]: v["template_vmid"] for v in vars_["cluster_vms"]} == expected
    assert {v["name"]: v["template_name"] for v in vars_["cluster_vms"]} == {
        n: t["name"] for t in templates for n in t["nodes"]
    }
    playbook = tree.files["infrastructure/ansible/playbooks/provision-vms.yaml"].decode()
    assert 'vmid: "{{ item.template_vmid }}"' in playbook
    assert 'loop: "{{ talos_templates }}"' in playbook

    # Installer images follow the split, per node.
    by_name = {n["name"]: n for n in tree.context["nodes"]}
    assert by_name["k8s-worker-0"]["installer_image"] == gpu["schematic"]["installer_image"]
    assert by_name["k8s-cp-0"]["installer_image"] == plain["schematic"]["installer_image"]


def test_real_tofu_validates_two_templates(two_schematics: Path, tmp_path: Path) -> None:
    done = validated(render_tree(Options(two_schematics)).files, tmp_path / "tofu")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "The configuration is valid." in done.stdout


def test_real_packer_builds_every_template_with_its_own_image(
    two_schematics: Path, tmp_path: Path
) -> None:
    tree = render_tree(Options(two_schematics))
    where = packer_dir(tree.files, tmp_path / "packer")
    done = packer(where, "validate")
    assert done.returncode == 0, done.stdout + done.stderr
    template = (where / "talos.pkr.hcl").read_text()
    sources = [f"talos-{t['vmid']}" for t in tree.context["talos_templates"]]
    assert all(f'source "proxmox-iso" "{s}"' in template for s in sources)
    built = hcl2.loads(template)["build"][0]["sources"]
    assert built == [f'"source.proxmox-iso.{s}"' for s in sources]
    # Each source writes its own template's image: the URL the model built, per template.
    urls = console(where, "{ for source, t in var.talos_templates : source => t.image_url }")
    assert urls == {
        f"talos-{t['vmid']}": t["schematic"]["image_url"] for t in tree.context["talos_templates"]
    }
    assert '"IMAGE_URL=${var.talos_templates[source.name].image_url}"' in template


def test_template_vm_ids_do_not_move_when_pairs_or_nodes_come_and_go(
    two_schematics: Path,
) -> None:
    before = {
        t["name"]: t["vmid"]
        for t in render_tree(Options(two_schematics)).context["talos_templates"]
    }

    def third(data: Any) -> None:
        node(data, "k8s-cp-2")["talos_secureboot"] = True
        data["nodes"] = [n for n in data["nodes"] if n["name"] != "k8s-worker-1"]

    edit(two_schematics, "nodes.yaml", third)
    after = {
        t["name"]: t["vmid"]
        for t in render_tree(Options(two_schematics)).context["talos_templates"]
    }
    assert len(after) == 3
    assert {name: after[name] for name in before} == before
    # The SecureBoot image of the cluster's schematic is a template of its own.
    (extra,) = set(after) - set(before)
    assert extra.endswith("-sb")


def test_slots_are_stable_and_collisions_take_the_next_free_one() -> None:
    cluster = talos_templates.with_defaults(
        {"talos_version": "1.12.0", "proxmox_endpoint": "https://pve:8006"}
    )
    ids = [f"{i:064x}" for i in range(1, 400)]
    nodes = [{"name": f"n{i}", "talos_schematic_id": s} for i, s in enumerate(ids)]
    templates, by_node = talos_templates.plan(cluster, nodes)
    vmids = [t.vmid for t in templates]
    assert len(set(vmids)) == len(vmids) == len(ids)
    assert all(9100 <= v < 10000 for v in vmids)
    # One pair alone has the same VM ID as among 398 others unless it collided.
    alone, _ = talos_templates.plan(cluster, nodes[:1])
    assert alone[0].vmid == by_node["n0"].vmid


def test_per_node_mtu_reaches_tofu_and_ansible(example_copy: Callable[[str], Path]) -> None:
    config = example_copy("homelab")
    edit(config, "nodes.yaml", lambda d: node(d, "k8s-worker-1").update(mtu=9000))
    files = render_tree(Options(config)).files
    mtus = {name: n["mtu"] for name, n in tfvars(files)["nodes"].items()}
    assert mtus["k8s-worker-1"] == 9000 and mtus["k8s-cp-0"] == 1500
    assert "mtu         = each.value.mtu" in files["infrastructure/tofu/nodes.tf"].decode()
    net0 = {v["name"]: v["net0"] for v in ansible_vars(files)["cluster_vms"]}
    assert "mtu=9000" in net0["k8s-worker-1"] and "mtu=1500" in net0["k8s-cp-0"]


def test_capi_with_another_mtu_is_an_error(example_copy: Callable[[str], Path]) -> None:
    config = example_copy("multi-host")  # node_mtu 9000
    edit(config, "nodes.yaml", lambda d: d["nodes"][0].update(mtu=1500))
    found = input_errors(config)
    assert len(found) == 1 and "nodes[0].mtu" in found[0] and "CAPI" in found[0], found


def test_a_node_without_the_guest_agent_is_an_error(example_copy: Callable[[str], Path]) -> None:
    config = example_copy("homelab")
    edit(
        config,
        "nodes.yaml",
        lambda d: node(d, "k8s-worker-0").update(talos_extensions=["siderolabs/iscsi-tools"]),
    )
    found = input_errors(config)
    assert len(found) == 1 and "nodes[3].talos_extensions" in found[0], found
    assert "guest agent is one setting for every VM" in found[0]


def test_a_node_vm_id_on_another_template_is_an_error(two_schematics: Path) -> None:
    vmid = render_tree(Options(two_schematics)).context["talos_templates"][1]["vmid"]
    edit(two_schematics, "nodes.yaml", lambda d: node(d, "k8s-cp-1").update(vm_id=vmid))
    found = input_errors(two_schematics)
    assert len(found) == 1 and "nodes[1].vm_id" in found[0], found
    assert "the VM ID of the Talos template talos-1.12.0-" in found[0]


def test_a_typo_in_a_per_node_key_is_one_error(example_copy: Callable[[str], Path]) -> None:
    config = example_copy("homelab")
    edit(config, "nodes.yaml", lambda d: node(d, "k8s-worker-0").update(talos_extension=GPU))
    found = input_errors(config)
    assert len(found) == 1, found
    assert "talos_extension" in found[0] and "did you mean 'talos_extensions'" in found[0]


# --- host dialects -------------------------------------------------------------------------


def test_a_host_node_with_another_schematic_gets_its_own_template(tmp_path: Path) -> None:
    config = tmp_path / "ct"
    shutil.copytree(EXAMPLES_DIR / "cluster-template", config)
    edit(config, "nodes.yaml", lambda d: d["nodes"][3].update(schematic_id=OTHER_SCHEMATIC))
    tree = render_tree(Options(config))
    templates = tree.context["talos_templates"]
    assert [t["schematic"]["id"] for t in templates] == [HOST_SCHEMATIC, OTHER_SCHEMATIC]
    assert list(templates[1]["nodes"]) == [tree.context["nodes"][3]["name"]]
    names = [n["name"] for n in tree.context["nodes"]]
    assert {n: v["template_vmid"] for n, v in tfvars(tree.files)["nodes"].items()} == {
        n: templates[1]["vmid"] if i == 3 else templates[0]["vmid"] for i, n in enumerate(names)
    }
    sources = pkrvars(tree.files)["talos_templates"]
    assert [s["schematic_id"] for s in sources.values()] == [HOST_SCHEMATIC, OTHER_SCHEMATIC]
    # A given schematic: the factory must already know it (no document to upload).
    assert not any(t["schematic"]["known"] for t in templates)


def test_a_host_node_with_secureboot_gets_the_secureboot_image(tmp_path: Path) -> None:
    config = tmp_path / "tc"
    shutil.copytree(EXAMPLES_DIR / "talos-cluster", config)
    edit(config, "nodes.yaml", lambda d: d["nodes"][1].update(secureboot=True, mtu=9000))
    tree = render_tree(Options(config))
    plain, signed = tree.context["talos_templates"]
    assert (plain["secureboot"], signed["secureboot"]) == (False, True)
    assert signed["schematic"]["id"] == plain["schematic"]["id"]
    assert signed["schematic"]["image_url"].endswith("-secureboot.raw.xz")
    assert signed["name"].endswith("-sb")
    second = tree.context["nodes"][1]
    assert second["template_vmid"] == signed["vmid"] and second["mtu"] == 9000
    assert "installer-secureboot/" in second["installer_image"]
    assert tfvars(tree.files)["nodes"][second["name"]]["mtu"] == 9000


# A stand-in Image Factory: it answers the SHA-256 of each posted schematic, as the real one
# does, and keeps every posted document (the Taskfile posts it on stdin, `@-`).
HASHING_CURL = """#!/bin/sh
for arg in "$@"; do
  case "$arg" in
    @-) n=$(ls "$RECORD" | wc -l); cat > "$RECORD/$n.yaml"
        printf '{"id":"%s"}' "$(sha256sum "$RECORD/$n.yaml" | cut -d' ' -f1)" ;;
  esac
done
"""


def test_schematic_upload_registers_every_schematic(two_schematics: Path, tmp_path: Path) -> None:
    tree = render_tree(Options(two_schematics))
    work = tmp_path / "run"
    (work / "bin").mkdir(parents=True)
    (work / "posted").mkdir()
    (work / "Taskfile.yaml").write_bytes(tree.files[TASKFILE])
    (work / "bin" / "curl").write_text(HASHING_CURL)
    (work / "bin" / "curl").chmod(0o755)
    env = {
        "PATH": f"{work / 'bin'}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "RECORD": str(work / "posted"),
    }
    done = subprocess.run(
        [tool("task"), "schematic:upload"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    ids = [t["schematic"]["id"] for t in tree.context["talos_templates"]]
    assert all(f"schematic {i} is registered" in done.stdout for i in ids)
    posted = sorted((work / "posted").iterdir())
    assert [p.read_text() for p in posted] == [
        t["schematic"]["yaml"] for t in tree.context["talos_templates"]
    ]


def test_schematic_command_lists_every_template(
    two_schematics: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["schematic", "-C", str(two_schematics)]) == 0
    out = capsys.readouterr().out
    templates = render_tree(Options(two_schematics)).context["talos_templates"]
    assert all(t["schematic"]["image_url"] in out for t in templates)
    assert f"template {templates[1]['name']} (VM {templates[1]['vmid']}) for k8s-worker-0" in out
    assert main(["--format", "json", "schematic", "-C", str(two_schematics)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [t["vmid"] for t in data["templates"]] == [t["vmid"] for t in templates]


def test_host_secureboot_before_1_14_warns_at_each_node_only(tmp_path: Path) -> None:
    config = tmp_path / "tc"
    shutil.copytree(EXAMPLES_DIR / "talos-cluster", config)
    edit(config, "nodes.yaml", lambda d: [n.update(secureboot=True) for n in d["nodes"]])
    warnings = read(config).warnings
    assert [(w.file.rsplit("/", 1)[1], w.path) for w in warnings] == [
        ("nodes.yaml", f"nodes[{i}].secureboot") for i in range(4)
    ]
    assert all("carry no SecureBoot keys" in w.message for w in warnings)


def test_templates_with_one_static_build_address_build_one_at_a_time(
    two_schematics: Path, tmp_path: Path
) -> None:
    command = "packer build -parallel-builds=1 -var-file=variables.pkrvars.hcl"
    assert command not in render_tree(Options(two_schematics)).files[TASKFILE].decode()
    edit(two_schematics, "cluster.yaml", lambda d: d.update(packer_build_address="192.168.22.250"))
    tree = render_tree(Options(two_schematics))
    assert command in tree.files[TASKFILE].decode()
    # The real Packer takes the flag (a build filtered to no source starts nothing).
    done = packer(
        packer_dir(tree.files, tmp_path / "packer"), "build", "-parallel-builds=1", "-only=none"
    )
    assert "flag provided but not defined" not in done.stderr + done.stdout, done.stderr


def test_other_templates_must_stay_valid_vm_ids(two_schematics: Path) -> None:
    edit(two_schematics, "cluster.yaml", lambda d: d.update(talos_template_vmid=999_999_500))
    found = input_errors(two_schematics)
    assert len(found) == 1 and "talos_template_vmid" in found[0], found
    assert "use at most 999999000" in found[0]
    edit(two_schematics, "cluster.yaml", lambda d: d.update(talos_template_vmid=999_999_000))
    assert input_errors(two_schematics) == []


def test_a_long_talos_template_leaves_no_room_for_other_templates(two_schematics: Path) -> None:
    edit(two_schematics, "cluster.yaml", lambda d: d.update(talos_template="t" * 60))
    found = input_errors(two_schematics)
    assert len(found) == 1 and "talos_template: " in found[0] and "at most 51" in found[0], found


def test_extensions_and_a_given_schematic_on_one_node_are_an_error(tmp_path: Path) -> None:
    config = tmp_path / "ct"
    shutil.copytree(EXAMPLES_DIR / "cluster-template", config)
    edit(config, "nodes.yaml", lambda d: d["nodes"][1].update(talos_extensions=GPU))
    found = input_errors(config)
    assert len(found) == 1 and "nodes.yaml:" in found[0], found
    assert "nodes[1].talos_extensions: talos_extensions has no effect here" in found[0]
    assert HOST_SCHEMATIC in found[0]


@settings(max_examples=60, deadline=None)
@given(
    pairs=st.sets(
        st.tuples(st.text("0123456789abcdef", min_size=64, max_size=64), st.booleans()),
        min_size=1,
        max_size=12,
    ),
    data=st.data(),
)
def test_a_template_keeps_its_vm_id_when_other_pairs_go(pairs: Any, data: Any) -> None:
    cluster = talos_templates.with_defaults(
        {"talos_version": "1.12.0", "proxmox_endpoint": "https://pve:8006"}
    )
    nodes = [
        {"name": f"n{i}", "talos_schematic_id": s, "talos_secureboot": b}
        for i, (s, b) in enumerate(sorted(pairs))
    ]
    everything, _ = talos_templates.plan(cluster, nodes)
    kept = data.draw(st.lists(st.sampled_from(nodes), min_size=1, unique_by=lambda n: n["name"]))
    some, _ = talos_templates.plan(cluster, kept)
    slots = [t.vmid for t in everything]
    for template in some:
        (same,) = [
            t
            for t in everything
            if t.image.id == template.image.id and t.secureboot == template.secureboot
        ]
        # Without a collision in the full set, the VM ID is the pair's own slot in both.
        if slots.count(same.vmid) == 1 and not _collided(everything, same):
            assert template.vmid == same.vmid


def _collided(
    templates: list[talos_templates.Template], template: talos_templates.Template
) -> bool:
    """Whether the template was pushed off its own slot (or pushed another off)."""
    own = {t.vmid: talos_templates._slot(t.image.id, t.secureboot) for t in templates}
    base = 9000 + talos_templates.OFFSET
    slots = list(own.values())
    return own[template.vmid] != template.vmid - base or slots.count(own[template.vmid]) > 1
