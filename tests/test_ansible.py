"""The ansible provisioner: rendered files (snapshots), their values against the inputs,
conformance of every proxmox_kvm task with the community.proxmox 1.5.0 argument spec, and the
ansible:* tasks of the Taskfile (schema, `task --list`, and what they really run)."""

from __future__ import annotations

import importlib
import json
import os
import re
import subprocess
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from ansible.parsing.yaml.loader import AnsibleLoader
from ansible.template import is_trusted_as_template, trust_as_template
from ruamel.yaml import YAML
from syrupy.assertion import SnapshotAssertion

from generator import constants, inputs, model, render, settings
from generator.errors import InputError
from helpers.data import plain
from helpers.paths import EXAMPLES, EXAMPLES_DIR, TASKFILE
from helpers.tools import tool

ANSIBLE_DIR = "infrastructure/ansible"
ANSIBLE_FILES = {
    f"{ANSIBLE_DIR}/{name}"
    for name in (
        "inventory.yaml",
        "requirements.yaml",
        "vars/cluster.yaml",
        "playbooks/provision-vms.yaml",
        "playbooks/destroy-vms.yaml",
        "playbooks/status-vms.yaml",
    )
}
PLAYBOOKS = sorted(p for p in ANSIBLE_FILES if "/playbooks/" in p)
KVM = "community.proxmox.proxmox_kvm"
# What proxmox_kvm forwards to the clone API call (module source: valid_clone_params), plus
# what identifies the source/new VM and controls the module itself. Anything else in a clone
# task is silently dropped by the module.
CLONE_HONOURED = {
    "clone", "vmid", "newid", "name", "node", "state", "timeout",
    "format", "full", "pool", "snapname", "storage", "target",
}  # fmt: skip
# Options that proxmox_kvm only writes on update with update_unsafe (module source).
UNSAFE_ON_UPDATE = {"net", "virtio", "sata", "scsi", "ide", "efidisk0", "tpmstate0"}
JINJA = re.compile(r"\{\{.*\}\}", re.S)


def ansible_enabled(example: str) -> bool:
    cluster = YAML(typ="safe").load(EXAMPLES_DIR / example / "cluster.yaml")
    return "ansible" in cluster.get("provisioners", ["packer", "tofu"])


ANSIBLE_EXAMPLES = [e for e in EXAMPLES if ansible_enabled(e)]


def load(data: bytes) -> Any:
    """Parse as ansible-playbook parses its own files: trusted as templates, except what is
    tagged !unsafe."""
    return AnsibleLoader(trust_as_template(data.decode())).get_single_data()


def strings(value: Any) -> Iterator[Any]:
    if isinstance(value, Mapping):
        for v in value.values():
            yield from strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from strings(v)
    elif isinstance(value, str):
        yield value


def context(example: str, *, has_secrets_file: bool) -> Mapping[str, Any]:
    read = inputs.read(EXAMPLES_DIR / example)
    return model.build(read.cluster.data, read.nodes.data, has_secrets_file=has_secrets_file)


def render_with(example: str, *, has_secrets_file: bool) -> dict[str, bytes]:
    return render.render(context(example, has_secrets_file=has_secrets_file), settings.load())


def tasks_of(playbook: Any) -> Iterator[dict[str, Any]]:
    for play in playbook:
        for section in ("pre_tasks", "tasks", "post_tasks", "handlers"):
            yield from play.get(section) or []


# --- files and values -------------------------------------------------------------------------


@pytest.mark.parametrize("example", EXAMPLES)
def test_ansible_files_exist_exactly_when_enabled(
    example: str, rendered: Callable[[str], dict[str, bytes]]
) -> None:
    files = {p for p in rendered(example) if p.startswith(f"{ANSIBLE_DIR}/")}
    assert files == (ANSIBLE_FILES if ansible_enabled(example) else set())


@pytest.mark.parametrize("example", ANSIBLE_EXAMPLES)
def test_snapshot(
    example: str, rendered: Callable[[str], dict[str, bytes]], snapshot: SnapshotAssertion
) -> None:
    files = rendered(example)
    taskfile = YAML(typ="safe").load(files[TASKFILE])
    ansible_tasks = {k: v for k, v in taskfile["tasks"].items() if k.startswith("ansible:")}
    assert {p: files[p].decode() for p in sorted(ANSIBLE_FILES)} == snapshot(name="files")
    assert ansible_tasks == snapshot(name="taskfile")


@pytest.mark.parametrize("example", ANSIBLE_EXAMPLES)
@pytest.mark.parametrize("path", sorted(ANSIBLE_FILES))
def test_every_file_starts_with_the_generated_header(
    example: str, path: str, rendered: Callable[[str], dict[str, bytes]]
) -> None:
    first, second = rendered(example)[path].decode().splitlines()[:2]
    assert first.startswith(f"# {constants.GENERATED_HEADER}")
    assert second == "---"


@pytest.mark.parametrize("example", ANSIBLE_EXAMPLES)
def test_vars_resolve_every_node_from_the_inputs(
    example: str, rendered: Callable[[str], dict[str, bytes]]
) -> None:
    ctx = context(example, has_secrets_file=False)
    vars_file = load(rendered(example)[f"{ANSIBLE_DIR}/vars/cluster.yaml"])
    assert vars_file["proxmox_api_host"] == ctx["proxmox_host"]
    assert vars_file["proxmox_api_port"] == ctx["proxmox_port"]
    assert vars_file["proxmox_validate_certs"] is (not ctx["proxmox_insecure"])
    assert vars_file["talos_template_vmid"] == ctx["talos_template_vmid"]
    assert vars_file["talos_template_name"] == ctx["talos_template"]
    assert vars_file["proxmox_storage"] == ctx["proxmox_storage"]
    vms = vars_file["cluster_vms"]
    assert [vm["name"] for vm in vms] == [n["name"] for n in ctx["nodes"]]
    for vm, node in zip(vms, ctx["nodes"], strict=True):
        assert vm["vmid"] == node["vm_id"]
        assert vm["node"] == node["proxmox_node"]
        for key in ("cores", "sockets", "memory"):
            assert vm[key] == node[key], key
        assert vm["cpu"] == node["cpu_type"]
        assert vm["disk_size"] == f"{node['disk_size']}G"
        assert vm["tags"] == list(node["tags"])
        assert vm["nameservers"] == list(ctx["node_dns_servers"])
        model_, _, rest = vm["net0"].partition(",")
        assert model_ == f"virtio={node['mac_addr']}"
        options = dict(o.split("=", 1) for o in rest.split(","))
        expected = {"bridge": ctx["proxmox_bridge"], "mtu": str(ctx["node_mtu"])}
        if ctx.get("node_vlan_tag") is not None:
            expected["tag"] = str(ctx["node_vlan_tag"])
        assert options == expected
        gateway = ctx["node_default_gateway"]
        assert vm["ipconfig0"] == f"ip={node['address']}/{ctx['node_prefix']},gw={gateway}"


def test_the_trust_check_can_fail() -> None:
    assert is_trusted_as_template(load(b"key: plain")["key"])
    assert not is_trusted_as_template(load(b'key: !unsafe "plain"')["key"])


@pytest.mark.parametrize("example", ANSIBLE_EXAMPLES)
def test_user_strings_reach_ansible_unsafe(
    example: str, rendered: Callable[[str], dict[str, bytes]]
) -> None:
    found = list(strings(load(rendered(example)[f"{ANSIBLE_DIR}/vars/cluster.yaml"])))
    assert found
    assert not any(is_trusted_as_template(s) for s in found)


def test_hostile_strings_stay_data() -> None:
    """Every string the vars file gets arrives verbatim and is never templated, whatever it
    holds (validation keeps such values out today; the vars file must not depend on that)."""
    ctx = context("homelab", has_secrets_file=False)
    hostile = "{{ lookup('pipe', 'id') }} {% raw %}\n'\"#: [x]"
    vms = [
        {
            k: f"{hostile}{k}"
            if isinstance(v, str)
            else ({ck: f"{hostile}{ck}" for ck in v} if k == "config" else v)
            for k, v in vm.items()
        }
        for vm in ctx["ansible"]["vms"]
    ]
    changed = {**ctx, "cluster_name": hostile, "ansible": {**ctx["ansible"], "vms": vms}}
    files = render.render(changed, settings.load())
    vars_file = load(files[f"{ANSIBLE_DIR}/vars/cluster.yaml"])
    assert vars_file["cluster_name"] == hostile
    assert json.loads(json.dumps(vars_file["cluster_vms"])) == json.loads(json.dumps(vms))
    assert not any(is_trusted_as_template(s) for s in strings(vars_file))


# --- proxmox_kvm conformance -----------------------------------------------------------------


@pytest.fixture(scope="session")
def kvm_reference(reference_dir: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(
        (reference_dir / "ansible" / "proxmox_kvm.argspec.1.5.0.json").read_text()
    )
    return data


def kvm_tasks(rendered: Callable[[str], dict[str, bytes]]) -> list[tuple[str, dict[str, Any]]]:
    found = []
    for example in ANSIBLE_EXAMPLES:
        for path in PLAYBOOKS:
            for task in tasks_of(load(rendered(example)[path])):
                if KVM in task:
                    found.append((f"{example}:{path}:{task['name']}", dict(task[KVM])))
    return found


def test_the_playbooks_use_proxmox_kvm(rendered: Callable[[str], dict[str, bytes]]) -> None:
    assert len(kvm_tasks(rendered)) >= 5 * len(ANSIBLE_EXAMPLES)


def check_value(spec: Mapping[str, Any], value: Any) -> str | None:
    """A problem with a literal option value, or None (templated values are Ansible's)."""
    if isinstance(value, str) and JINJA.search(value):
        return None
    kind = spec.get("type", "str")
    if "choices" in spec and value not in spec["choices"]:
        return f"{value!r} not in {spec['choices']}"
    ok: Callable[[Any], bool] = {
        "bool": lambda v: isinstance(v, bool),
        "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "str": lambda v: isinstance(v, str),
        "dict": lambda v: isinstance(v, dict),
        "list": lambda v: isinstance(v, list),
    }.get(kind, lambda v: True)
    return None if ok(value) else f"{value!r} is not a {kind}"


def test_proxmox_kvm_tasks_conform_to_the_1_5_0_argspec(
    kvm_reference: dict[str, Any], rendered: Callable[[str], dict[str, bytes]]
) -> None:
    spec = {**kvm_reference["auth_argument_spec"], **kvm_reference["module_argument_spec"]}
    constraints = kvm_reference["module_constraints"]
    problems = []
    for where, args in kvm_tasks(rendered):
        for key, value in args.items():
            if key not in spec:
                problems.append(f"{where}: unknown option {key}")
            elif problem := check_value(spec[key], value):
                problems.append(f"{where}: {key}: {problem}")
        required = [k for k, s in spec.items() if s.get("required")]
        problems += [f"{where}: missing required {k}" for k in required if k not in args]
        for group in constraints["mutually_exclusive"]:
            if all(k in args for k in group):
                problems.append(f"{where}: mutually exclusive {group}")
        for group in constraints["required_one_of"]:
            if not any(k in args for k in group):
                problems.append(f"{where}: needs one of {group}")
        for group in constraints["required_together"]:
            if any(k in args for k in group) and not all(k in args for k in group):
                problems.append(f"{where}: needs all of {group}")
        state = args.get("state", spec["state"].get("default"))
        for key, value, needed in constraints["required_if"]:
            if (state if key == "state" else args.get(key)) == value:
                problems += [f"{where}: {key}={value} needs {k}" for k in needed if k not in args]
    assert problems == []


def test_clone_tasks_carry_only_what_a_clone_call_sends(
    rendered: Callable[[str], dict[str, bytes]],
) -> None:
    clones = [(w, a) for w, a in kvm_tasks(rendered) if "clone" in a]
    assert clones
    for where, args in clones:
        extra = {k for k in args if not k.startswith(("api_", "validate_certs"))} - CLONE_HONOURED
        assert extra == set(), f"{where}: the module ignores {sorted(extra)} when cloning"
        assert args["full"] is True
        assert "newid" in args and "storage" in args


def test_configuration_is_a_separate_unsafe_update(
    rendered: Callable[[str], dict[str, bytes]],
) -> None:
    updates = [(w, a) for w, a in kvm_tasks(rendered) if a.get("update") is True]
    assert len(updates) == len(ANSIBLE_EXAMPLES)
    for where, args in updates:
        assert {"cores", "sockets", "memory", "cpu", "net", "ipconfig", "tags"} <= set(args), where
        assert args.get("update_unsafe") is True, f"{where}: net would be dropped"
    for where, args in kvm_tasks(rendered):
        if UNSAFE_ON_UPDATE & set(args) and args.get("update"):
            assert args.get("update_unsafe") is True, where


def installed_spec(module_name: str) -> dict[str, Any]:
    """The AnsibleModule(...) arguments of an installed community.proxmox module."""
    module = importlib.import_module(
        f"ansible_collections.community.proxmox.plugins.modules.{module_name}"
    )
    captured: dict[str, Any] = {}

    class Captured(Exception):
        pass

    def capture(**kwargs: Any) -> None:
        captured.update(kwargs)
        raise Captured

    original = module.AnsibleModule
    module.AnsibleModule = capture  # type: ignore[attr-defined]
    try:
        with pytest.raises(Captured):
            module.main()
    finally:
        module.AnsibleModule = original  # type: ignore[attr-defined]
    result: dict[str, Any] = plain(captured)
    return result


def test_installed_module_matches_the_1_5_0_argspec_for_every_option_used(
    kvm_reference: dict[str, Any], rendered: Callable[[str], dict[str, bytes]]
) -> None:
    """Tests run the community.proxmox that the PyPI ansible package ships (1.4.0 with
    ansible 12.x, as Python 3.11 gets no newer ansible); users install >= 1.5.0. That stands in
    only while every option the playbooks use means the same in both."""
    installed = installed_spec("proxmox_kvm")
    spec = installed.pop("argument_spec")
    reference = {**kvm_reference["auth_argument_spec"], **kvm_reference["module_argument_spec"]}
    used = {k for _, args in kvm_tasks(rendered) for k in args}
    assert used <= set(spec)
    assert {k: spec[k] for k in used} == {k: reference[k] for k in used}
    assert installed == kvm_reference["module_constraints"]


def test_every_community_proxmox_task_fits_the_installed_module(
    rendered: Callable[[str], dict[str, bytes]],
) -> None:
    """What ansible-lint cannot check when values are templated (see test_ansible_lint)."""
    problems = []
    seen = set()
    for example in ANSIBLE_EXAMPLES:
        for path in PLAYBOOKS:
            for task in tasks_of(load(rendered(example)[path])):
                for key, args in task.items():
                    if not key.startswith("community.proxmox."):
                        continue
                    name = key.rsplit(".", 1)[1]
                    seen.add(name)
                    spec = installed_spec(name)["argument_spec"]
                    where = f"{example}:{path}:{task['name']}"
                    for option, value in args.items():
                        if option not in spec:
                            problems.append(f"{where}: unknown option {option}")
                        elif problem := check_value(spec[option], value):
                            problems.append(f"{where}: {option}: {problem}")
                    problems += [
                        f"{where}: missing required {k}"
                        for k, s in spec.items()
                        if s.get("required") and k not in args
                    ]
    assert seen == {"proxmox_kvm", "proxmox_vm_info", "proxmox_disk"}
    assert problems == []


# --- Taskfile ----------------------------------------------------------------------------------


@pytest.mark.parametrize("example", ANSIBLE_EXAMPLES)
@pytest.mark.parametrize("has_secrets_file", [False, True])
def test_taskfile_validates_and_lists_the_ansible_tasks(
    example: str, has_secrets_file: bool, reference_dir: Path, tmp_path: Path
) -> None:
    files = render_with(example, has_secrets_file=has_secrets_file)
    taskfile = YAML(typ="safe").load(files[TASKFILE])
    schema = json.loads((reference_dir / "taskfile" / "schema.json").read_text())
    jsonschema.Draft7Validator(schema).validate(taskfile)
    tasks = {k: v for k, v in taskfile["tasks"].items() if k.startswith("ansible:")}
    assert set(tasks) == {"ansible:deps", "ansible:provision", "ansible:destroy", "ansible:status"}
    assert all(t["desc"] for t in tasks.values())
    assert "prompt" in tasks["ansible:destroy"]
    commands = [c for name, t in tasks.items() if name != "ansible:deps" for c in t["cmds"]]
    assert all(("sops --decrypt" in c) == has_secrets_file for c in commands)
    (tmp_path / "Taskfile.yaml").write_bytes(files[TASKFILE])
    listed = subprocess.run(
        [tool("task"), "--list", "--taskfile", str(tmp_path / "Taskfile.yaml")],
        # go-task colours its output when CI is set, unless told not to.
        env={**os.environ, "NO_COLOR": "1"},
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    for name in tasks:
        assert f"* {name}:" in listed


SHIMS = {
    # sops --decrypt --extract '["KEY"]' FILE: the value of one key.
    "sops": """#!/bin/sh
[ "$1" = --decrypt ] && [ "$2" = --extract ] || exit 64
[ -f "$4" ] || exit 65
case "$3" in
  '["proxmox_api_token_id"]') printf '%s' 'root@pam!shim' ;;
  '["proxmox_api_token_secret"]') printf '%s' 'secret-uuid' ;;
  *) exit 66 ;;
esac
""",
    "ansible-playbook": """#!/bin/sh
echo "pwd=$(pwd) id=$PROXMOX_API_TOKEN_ID secret=$PROXMOX_API_TOKEN_SECRET args=$*"
""",
}


def run_task(
    files: Mapping[str, bytes], root: Path, name: str, env: Mapping[str, str]
) -> subprocess.CompletedProcess[str]:
    for path, data in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(data)
    # As in a cluster repo: the root Taskfile includes the generated one.
    (root / "Taskfile.yaml").write_text(
        'version: "3"\nincludes:\n  infra: .taskfiles/infrastructure/Taskfile.yaml\n'
    )
    shims = root / "shims"
    shims.mkdir()
    for shim, text in SHIMS.items():
        (shims / shim).write_text(text)
        (shims / shim).chmod(0o755)
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PROXMOX_")}
    return subprocess.run(
        [tool("task"), f"infra:{name}", "--", "-e", "talos_wait=false"],
        cwd=root,
        env={**clean, **env, "NO_COLOR": "1", "PATH": f"{shims}:{os.environ['PATH']}"},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_tasks_get_the_token_from_sops_exec_env(tmp_path: Path) -> None:
    files = render_with("homelab", has_secrets_file=True)
    (tmp_path / "secrets.sops.yaml").write_text("encrypted: true\n")
    done = run_task(files, tmp_path, "ansible:provision", {})
    assert done.returncode == 0, done.stderr
    assert f"pwd={tmp_path / ANSIBLE_DIR} " in done.stdout
    assert "id=root@pam!shim secret=secret-uuid" in done.stdout
    assert "playbooks/provision-vms.yaml -e talos_wait=false" in done.stdout


def test_tasks_without_secrets_file_name_the_missing_variable(tmp_path: Path) -> None:
    files = render_with("homelab", has_secrets_file=False)
    done = run_task(files, tmp_path, "ansible:status", {})
    assert done.returncode != 0
    assert "PROXMOX_API_TOKEN_ID is not set" in done.stderr
    token = {"PROXMOX_API_TOKEN_ID": "u@pve!t", "PROXMOX_API_TOKEN_SECRET": "s"}
    (tmp_path / "shims").rename(tmp_path / "old-shims")
    done = run_task(files, tmp_path, "ansible:status", token)
    assert done.returncode == 0, done.stderr
    assert "id=u@pve!t secret=s args=-i inventory.yaml playbooks/status-vms.yaml" in done.stdout


# --- issue 16: clones from node-local storage; an idempotent configure ------------------------


def provision_tasks(files: Mapping[str, bytes]) -> dict[str, dict[str, Any]]:
    playbook = load(files[f"{ANSIBLE_DIR}/playbooks/provision-vms.yaml"])
    return {task["name"]: task for task in tasks_of(playbook)}


def test_clone_goes_to_the_target_node_only_from_shared_storage(
    rendered: Callable[[str], dict[str, bytes]],
) -> None:
    shared = provision_tasks(rendered("multi-host"))  # Ceph: proxmox_storage_shared: true
    local = provision_tasks(rendered("homelab"))  # local-lvm
    assert shared["Clone the template for each node"][KVM]["target"] == "{{ item.node }}"
    assert "Migrate each VM to its node" not in shared
    assert "target" not in local["Clone the template for each node"][KVM]
    migrate = local["Migrate each VM to its node"][KVM]
    assert migrate["migrate"] is True
    assert (migrate["vmid"], migrate["node"]) == ("{{ item.vmid }}", "{{ item.node }}")
    names = list(local)
    assert (
        names.index("Clone the template for each node")
        < names.index("Migrate each VM to its node")
        < names.index("Configure each VM whose config differs")
    )


# Where each option of the configure task lands in the Proxmox VM config.
CONFIG_KEY_OF_OPTION = {
    "name": "name",
    "cores": "cores",
    "sockets": "sockets",
    "memory": "memory",
    "cpu": "cpu",
    "nameservers": "nameserver",
    "tags": "tags",
    "onboot": "onboot",
}
NOT_WRITTEN = {"node", "vmid", "update", "update_unsafe", "state"}


@pytest.mark.parametrize("example", ANSIBLE_EXAMPLES)
def test_configure_runs_only_when_a_value_it_writes_differs(
    example: str, rendered: Callable[[str], dict[str, bytes]]
) -> None:
    files = rendered(example)
    task = provision_tasks(files)["Configure each VM whose config differs"]
    assert task["when"] == "differing | length > 0"
    written = set()
    for option, value in task[KVM].items():
        if option.startswith(("api_", "validate_certs")) or option in NOT_WRITTEN:
            continue
        written |= set(value) if isinstance(value, dict) else {CONFIG_KEY_OF_OPTION[option]}
    vars_file = load(files[f"{ANSIBLE_DIR}/vars/cluster.yaml"])
    for vm in vars_file["cluster_vms"]:
        # Everything the update writes is compared, and with the value it writes.
        assert set(vm["config"]) == written
        assert vm["config"]["net0"] == vm["net0"]
        assert vm["config"]["ipconfig0"] == vm["ipconfig0"]
        assert vm["config"]["tags"] == ";".join(vm["tags"])
        assert vm["config"]["nameserver"] == " ".join(vm["nameservers"])
        # Ansible's !unsafe reads "8192" back as a number; the playbook compares as strings.
        assert str(vm["config"]["memory"]) == str(vm["memory"])


def _set(config: Path, **values: Any) -> None:
    yaml = YAML()
    data = yaml.load(config / "cluster.yaml")
    data.update(values)
    yaml.dump(data, config / "cluster.yaml")


def test_capi_clones_to_other_nodes_only_from_shared_storage(
    example_copy: Callable[[str], Path],
) -> None:
    config = example_copy("multi-host")
    inputs.read(config)
    _set(config, proxmox_storage_shared=False)
    with pytest.raises(InputError) as caught:
        inputs.read(config)
    (error,) = caught.value.diagnostics
    assert error.path == "proxmox_storage_shared"
    assert (
        "Cluster API clones the template from pve1 onto other nodes "
        "(pve2: prod-cp-1, prod-worker-1; pve3: prod-cp-2, prod-worker-gpu)"
    ) in error.message
    assert "unless ceph-vm is shared storage" in error.message
    # Ansible and OpenTofu alone clone locally and migrate: nothing to refuse.
    _set(config, provisioners=["packer", "tofu", "ansible"])
    inputs.read(config)
