"""Cluster API follows the per-(schematic, SecureBoot) template split (issue 12).

The "two-schematics" variant of helpers.capi (multi-host: controllers on the cluster's image,
two alike workers on a second schematic, one worker on the cluster's schematic with SecureBoot
and MTU 1500) also runs through every variant test of test_capi, test_capi_kubeconform
(kubeconform -strict with the reference CRDs) and test_capi_talos (talospatch). Here: which
template and installer each machine owner gets, the Packer twins (real packer validate), the
rules (the controllers' one image and one MTU, the twins' VM IDs), and the stability of names
and VM IDs.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import hcl2
import pytest

from generator import talos_templates
from generator.cli import main
from generator.options import Options
from generator.pipeline import render_tree
from generator.talos_templates import TWIN_STEP
from helpers.capi import (
    CLUSTER_YAML,
    GPU_EXTENSIONS,
    GPU_WORKERS,
    SECUREBOOT_WORKER,
    Doc,
    capi_only,
    deployments,
    load_docs,
    of_kind,
    read_inputs,
    render_context,
    render_variant,
    two_schematics,
    v1alpha1_patch,
    write_inputs,
)
from helpers.data import edit, input_errors, node
from helpers.hcl import unquote
from helpers.packer import console, packer, packer_dir, pkrvars

PACKER_HCL = "infrastructure/packer/talos.pkr.hcl"


@pytest.fixture(scope="module")
def split(tmp_path_factory: pytest.TempPathFactory) -> tuple[Mapping[str, Any], dict[str, bytes]]:
    """The two-schematics variant (capi only), rendered through the whole pipeline."""
    _, context, files = render_variant("two-schematics", tmp_path_factory.mktemp("split"))
    return context, files


def _by_name(docs: list[Doc], kind: str) -> dict[str, Doc]:
    return {d["metadata"]["name"]: d for d in of_kind(docs, kind)}


def _template(context: Mapping[str, Any], node: str) -> Mapping[str, Any]:
    (found,) = [t for t in context["talos_templates"] if node in t["nodes"]]
    return found


def test_each_worker_group_clones_and_installs_its_own_image(
    split: tuple[Mapping[str, Any], dict[str, bytes]],
) -> None:
    context, files = split
    docs = load_docs(files[CLUSTER_YAML])
    cluster = context["capi"]["cluster_name"]
    machines = _by_name(docs, "ProxmoxMachineTemplate")
    configs = _by_name(docs, "TalosConfigTemplate")
    gpu, sb = _template(context, GPU_WORKERS[0]), _template(context, SECUREBOOT_WORKER)
    default = _template(context, "prod-cp-0")
    assert len({gpu["vmid"], sb["vmid"], default["vmid"]}) == 3
    assert (sb["secureboot"], gpu["secureboot"], default["secureboot"]) == (True, False, False)
    assert sb["schematic"]["id"] == default["schematic"]["id"] != gpu["schematic"]["id"]
    # Names: the other pair's schematic prefix (+ -sb), another MTU as mtu<N>; deterministic.
    expected = {
        f"{cluster}-workers-{gpu['schematic']['id'][:8]}": (gpu, 2, 9000),
        f"{cluster}-workers-gpu-sdb-{sb['schematic']['id'][:8]}-sb-mtu1500": (sb, 1, 1500),
    }
    found = deployments(files)
    assert sorted(found) == sorted(expected)
    for name, (template, replicas, mtu) in expected.items():
        spec = found[name]["spec"]
        assert (
            spec["replicas"]
            == replicas
            == len([n for n in context["workers"] if n["template_vmid"] == template["vmid"]])
        )
        refs = spec["template"]["spec"]
        machine = machines[refs["infrastructureRef"]["name"]]["spec"]["template"]["spec"]
        # The Cluster API twin of the pair's template: its VM ID + TWIN_STEP, no cloud-init.
        assert machine["templateID"] == template["vmid"] + TWIN_STEP
        assert machine["network"]["default"]["mtu"] == mtu
        config = configs[refs["bootstrap"]["configRef"]["name"]]
        image = v1alpha1_patch(config)["machine"]["install"]["image"]
        assert image == template["schematic"]["installer_image"]
        flavour = "nocloud-installer-secureboot" if template["secureboot"] else "nocloud-installer"
        assert image == f"factory.talos.dev/{flavour}/{template['schematic']['id']}:v1.12.0"
    # The controllers: the cluster's pair, its twin talos_capi_template_vmid, node_mtu.
    (control_plane,) = of_kind(docs, "TalosControlPlane")
    owner = machines[control_plane["spec"]["infrastructureTemplate"]["name"]]
    assert owner["spec"]["template"]["spec"]["templateID"] == context["talos_capi_template_vmid"]
    assert owner["spec"]["template"]["spec"]["network"]["default"]["mtu"] == 9000
    image = v1alpha1_patch(control_plane)["machine"]["install"]["image"]
    assert image == default["schematic"]["installer_image"]


def test_twins_pair_up_with_the_templates(
    split: tuple[Mapping[str, Any], dict[str, bytes]],
) -> None:
    context, _ = split
    twins = context["capi"]["twins"]
    templates = context["talos_templates"]
    assert [t["template_vmid"] for t in twins] == [t["vmid"] for t in templates]
    assert [t["name"] for t in twins] == [f"{t['name']}-capi" for t in templates]
    vmids = [t["vmid"] for t in twins] + [t["vmid"] for t in templates]
    vmids += [n["vm_id"] for n in context["nodes"]]
    assert len(set(vmids)) == len(vmids), vmids  # no twin is another VM
    base = context["talos_template_vmid"]
    for twin, template in zip(twins, templates, strict=True):
        if template["default"]:
            assert twin["vmid"] == context["talos_capi_template_vmid"]
        else:
            # Above every other pair's template (talos_template_vmid + OFFSET + slot).
            assert twin["vmid"] >= base + talos_templates.OFFSET + talos_templates.SLOTS


def test_single_template_keeps_talos_capi_template_vmid(
    example_copy: Callable[[str], Path],
) -> None:
    """One pair (even one that is not the cluster's): its twin is talos_capi_template_vmid and
    no group name gains an image token, exactly as before the split."""
    cluster, nodes = read_inputs(example_copy("multi-host"))
    for each in nodes["nodes"]:
        each["talos_extensions"] = list(GPU_EXTENSIONS)
    context, files = render_context(capi_only(cluster), nodes)
    (template,) = context["talos_templates"]
    assert not template["default"]
    (twin,) = context["capi"]["twins"]
    assert twin["vmid"] == context["talos_capi_template_vmid"] == 9001
    names = {g["name"] for g in context["capi"]["worker_groups"]}
    assert not any(template["schematic"]["id"][:8] in n for n in names), names
    for doc in of_kind(load_docs(files[CLUSTER_YAML]), "ProxmoxMachineTemplate"):
        assert doc["spec"]["template"]["spec"]["templateID"] == 9001


def _context(config: Path) -> Mapping[str, Any]:
    return render_tree(Options(config)).context


def split_config(example_copy: Callable[[str], Path]) -> Path:
    """A copy of multi-host with the inputs of the two-schematics variant."""
    config = example_copy("multi-host")
    cluster, nodes = read_inputs(config)
    write_inputs(config, *two_schematics(cluster, nodes))
    return config


def test_names_and_twin_ids_do_not_move_when_other_pairs_come_and_go(
    example_copy: Callable[[str], Path],
) -> None:
    config = split_config(example_copy)
    before = _context(config)["capi"]
    # Drop the SecureBoot worker (its pair goes), add a worker with a third image.
    cluster, nodes = read_inputs(config)
    third = {**nodes["nodes"][-1], "name": "prod-worker-iscsi", "address": "10.20.1.24"}
    third.update(mac_addr="bc:24:11:20:01:24", vm_id=2501, talos_secureboot=False, mtu=9000)
    third["talos_extensions"] = ["siderolabs/qemu-guest-agent", "siderolabs/zfs"]
    nodes["nodes"] = [n for n in nodes["nodes"] if n["name"] != SECUREBOOT_WORKER] + [third]
    write_inputs(config, cluster, nodes)
    after = _context(config)["capi"]
    kept = {
        t["name"]: t["vmid"]
        for t in before["twins"]
        if t["name"] in {x["name"] for x in after["twins"]}
    }
    assert len(kept) == 2  # the cluster's pair and the GPU pair
    assert kept == {t["name"]: t["vmid"] for t in after["twins"] if t["name"] in kept}
    gpu_group = next(g for g in before["worker_groups"] if GPU_WORKERS[0] in g["nodes"])
    same = next(g for g in after["worker_groups"] if GPU_WORKERS[0] in g["nodes"])
    assert (same["name"], same["machine_template"], same["config_template"]) == (
        gpu_group["name"],
        gpu_group["machine_template"],
        gpu_group["config_template"],
    )
    assert before["control_plane"]["machine_template"] == after["control_plane"]["machine_template"]


# --- Packer: one cloud-init-free twin per pair ---------------------------------------------


@pytest.fixture
def packer_split(example_copy: Callable[[str], Path]) -> Path:
    """The two-schematics variant with Packer building the templates."""
    config = example_copy("multi-host")
    cluster, nodes = read_inputs(config)
    changed, split_nodes = two_schematics(cluster, nodes)
    write_inputs(config, {**changed, "provisioners": ["packer", "capi"]}, split_nodes)
    return config


def test_packer_builds_a_twin_of_every_template(packer_split: Path, tmp_path: Path) -> None:
    tree = render_tree(Options(packer_split))
    context = tree.context
    variables = unquote(pkrvars(tree.files))
    twins = {t["vmid"]: t for t in context["capi"]["twins"]}
    assert len(twins) == 3
    # The one-template variables give way to the map; the twins' CPU type stays.
    assert "talos_capi_template" not in variables
    assert "talos_capi_template_vmid" not in variables
    assert variables["talos_capi_cpu_type"] == context["vm_defaults"]["controller"]["cpu_type"]
    entries = {v["vm_id"]: v for v in variables["talos_templates"].values()}
    for t in context["talos_templates"]:
        twin = next(x for x in twins.values() if x["template_vmid"] == t["vmid"])
        pair = {
            "schematic_id": t["schematic"]["id"],
            "secureboot": t["secureboot"],
            "image_url": t["schematic"]["image_url"],
        }
        assert entries[t["vmid"]] == {"vm_id": t["vmid"], "name": t["name"], **pair}
        assert entries[twin["vmid"]] == {"vm_id": twin["vmid"], "name": twin["name"], **pair}
    assert len(entries) == 6
    # Each twin source: no cloud-init drive, the controllers' CPU type.
    sources = {
        name.strip('"'): body
        for block in hcl2.loads(tree.files[PACKER_HCL].decode())["source"]
        for name, body in block['"proxmox-iso"'].items()
    }
    for vmid in entries:
        body = sources[f"talos-{vmid}"]
        assert body["cloud_init"] is (vmid not in twins), vmid
        expected = "talos_capi_cpu_type" if vmid in twins else "cpu_type"
        assert body["cpu_type"] == f"${{var.{expected}}}"
    where = packer_dir(tree.files, tmp_path / "packer")
    done = packer(where, "validate")
    assert done.returncode == 0, done.stdout + done.stderr
    # Each twin writes its pair's image, the URL the model built (Packer never rebuilds it).
    urls = console(where, "{ for source, t in var.talos_templates : source => t.image_url }")
    for t in context["talos_templates"]:
        twin = next(x for x in twins.values() if x["template_vmid"] == t["vmid"])
        assert urls[f"talos-{twin['vmid']}"] == urls[f"talos-{t['vmid']}"]
        assert urls[f"talos-{t['vmid']}"] == t["schematic"]["image_url"]


def test_schematic_command_names_each_templates_twin(
    packer_split: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """capi alone: the user provides the twins, so `schematic` says where each one must be."""
    twins = {
        t["template_vmid"]: t for t in render_tree(Options(packer_split)).context["capi"]["twins"]
    }
    assert main(["schematic", "-C", str(packer_split)]) == 0
    out = capsys.readouterr().out
    for twin in twins.values():
        assert f"cluster api:  {twin['name']} (VM {twin['vmid']}, no cloud-init drive)" in out
    assert main(["--format", "json", "schematic", "-C", str(packer_split)]) == 0
    data = json.loads(capsys.readouterr().out)
    first = twins[data["templates"][0]["vmid"]]
    assert data["capi_template"] == {"name": first["name"], "vmid": first["vmid"]}
    assert {t["vmid"]: t["capi_template"]["vmid"] for t in data["templates"]} == {
        vmid: twin["vmid"] for vmid, twin in twins.items()
    }


# --- rules ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "key", "what"),
    [
        ({"talos_extensions": GPU_EXTENSIONS}, "talos_extensions", "schematic"),
        ({"talos_secureboot": True}, "talos_secureboot", "with SecureBoot"),
    ],
)
def test_controllers_share_one_image(
    change: dict[str, Any], key: str, what: str, example_copy: Callable[[str], Path]
) -> None:
    config = example_copy("multi-host")
    edit(config, "nodes.yaml", lambda d: node(d, "prod-cp-2").update(change))
    (line,) = input_errors(config)
    # One line, at the key that makes the controller differ, naming the one that sets it.
    assert line.startswith("nodes.yaml:") and f": error: nodes[2].{key}: " in line, line
    assert "controller prod-cp-2 boots" in line and "as set by controller prod-cp-0" in line
    assert "(nodes[0], " in line and "nodes.yaml:" in line and what in line
    assert "one TalosControlPlane takes one machine template" in line
    assert "give prod-cp-2 the talos_extensions/talos_schematic_id and talos_secureboot" in line


def test_one_line_per_controller_that_differs(example_copy: Callable[[str], Path]) -> None:
    """No image is the most common: the first controller's is the control plane's, and each
    other controller is one error line (nodes.yaml order)."""
    config = example_copy("multi-host")

    def change(data: Any) -> None:
        node(data, "prod-cp-1")["talos_secureboot"] = True
        node(data, "prod-cp-2")["talos_extensions"] = list(GPU_EXTENSIONS)

    edit(config, "nodes.yaml", change)
    found = input_errors(config)
    assert [line.split(": ")[2] for line in found] == [
        "nodes[1].talos_secureboot",
        "nodes[2].talos_extensions",
    ], found
    assert all("as set by controller prod-cp-0" in line for line in found)


def test_the_image_most_controllers_have_wins(example_copy: Callable[[str], Path]) -> None:
    config = example_copy("multi-host")
    edit(config, "nodes.yaml", lambda d: node(d, "prod-cp-0").update(talos_secureboot=True))
    (line,) = input_errors(config)
    assert ": error: nodes[0].talos_secureboot: controller prod-cp-0 boots" in line, line
    assert "as set by controller prod-cp-1 (nodes[1], " in line


def test_workers_may_differ_in_image_and_mtu(example_copy: Callable[[str], Path]) -> None:
    config = split_config(example_copy)
    assert input_errors(config) == []


def test_controllers_share_one_mtu(example_copy: Callable[[str], Path]) -> None:
    config = example_copy("multi-host")  # node_mtu 9000
    edit(config, "nodes.yaml", lambda d: node(d, "prod-cp-1").update(mtu=1500))
    (line,) = input_errors(config)
    assert ": error: nodes[1].mtu: controller prod-cp-1 has MTU 1500" in line, line
    assert "MTU 9000 as set by controller prod-cp-0" in line
    assert "whose network device has one MTU" in line and "give prod-cp-1 MTU 9000" in line


def test_a_node_on_a_twins_vm_id_is_an_error(example_copy: Callable[[str], Path]) -> None:
    config = split_config(example_copy)
    gpu = next(t for t in _context(config)["capi"]["twins"] if GPU_WORKERS[0] in t["nodes"])
    edit(config, "nodes.yaml", lambda d: node(d, SECUREBOOT_WORKER).update(vm_id=gpu["vmid"]))
    (line,) = input_errors(config)
    assert f": error: nodes[5].vm_id: VM ID {gpu['vmid']} of nodes[5] ({SECUREBOOT_WORKER})" in (
        line
    )
    assert f"the Cluster API template {gpu['name']}" in line


def test_capi_template_vmid_on_another_template_is_an_error(
    example_copy: Callable[[str], Path],
) -> None:
    config = split_config(example_copy)
    context = _context(config)
    gpu = next(t for t in context["talos_templates"] if GPU_WORKERS[0] in t["nodes"])
    gpu_twin = next(t for t in context["capi"]["twins"] if GPU_WORKERS[0] in t["nodes"])
    for taken, name in ((gpu["vmid"], gpu["name"]), (gpu_twin["vmid"], gpu_twin["name"])):
        edit(config, "cluster.yaml", lambda d, v=taken: d.update(talos_capi_template_vmid=v))
        (line,) = input_errors(config)
        assert ": error: talos_capi_template_vmid: " in line, line
        assert f"is also the VM ID of the template {name}" in line


def test_twins_must_stay_valid_vm_ids(example_copy: Callable[[str], Path]) -> None:
    config = split_config(example_copy)
    reach = talos_templates.OFFSET + 2 * talos_templates.SLOTS - 1
    # The templates still fit (up to + OFFSET + SLOTS - 1); their twins do not.
    edit(config, "cluster.yaml", lambda d: d.update(talos_template_vmid=999_999_999 - 1000))
    found = [line for line in input_errors(config) if ": talos_template_vmid: " in line]
    assert len(found) == 1, found
    assert f"talos_template_vmid + {reach}" in found[0]
    assert f"use at most {999_999_999 - reach}" in found[0]


def test_twin_names_must_stay_vm_names(example_copy: Callable[[str], Path]) -> None:
    """With Packer building them, another pair's twin is <talos_template>-<id8>[-sb]-capi."""
    config = split_config(example_copy)
    limit = 63 - talos_templates.NAME_SUFFIX_MAX - len("-capi")
    edit(config, "cluster.yaml", lambda d: d.update(talos_template="t" * (limit + 1)))
    assert input_errors(config) == []  # capi alone: the twins are the user's to build and name
    edit(config, "cluster.yaml", lambda d: d.update(provisioners=["packer", "capi"]))
    (line,) = input_errors(config)
    assert ": error: talos_template: " in line and f"use at most {limit} characters" in line
    edit(config, "cluster.yaml", lambda d: d.update(talos_template="t" * limit))
    assert input_errors(config) == []
