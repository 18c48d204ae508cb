"""The rendered Packer template, run by the real `packer` with the real packer-plugin-proxmox.

What each test proves:
- every rendered template parses (`packer validate -syntax-only`, Packer's HCL2 decoder);
- its `required_plugins` constraint is enforced by Packer and excludes the 1.1.1 plugin that
  scripts/build-tools.sh can build here (the proxy serves no 1.1.2-1.2.4);
- plugin 1.1.1 rejects nothing but fields that the 1.2.4 spec has (so what 1.1.1 cannot check
  is exactly the 1.2.x additions), and with those given their 1.1.1 form (packer_compat) the
  template passes 1.1.1's full `packer init` + `packer validate`;
- `packer build` against the Proxmox VE API double drives the API the way the plugin does:
  creates the VM from the template's values, boots it from the ISO, types boot_command as
  sendkey, logs in over SSH as root with the password it typed (helpers.sshvm: a loopback SSH
  server standing in for the build VM, which runs nothing and answers the provisioner's command
  with the status the test chooses), uploads exactly the rendered script and runs it with the
  rendered environment; on success it stops the VM and converts it to the template, which the
  test compares field by field with the values Packer itself evaluates from the rendered
  template; then the rendered OpenTofu (real bpg provider) clones that very template into the
  nodes' VMs, has nothing left to plan, and destroys them again; on a failed script Packer
  deletes the VM and makes no template;
- the uploaded script, run here with stand-ins for curl and sfdisk, writes the image.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hcl2
import paramiko
import pytest
from proxmox_double import ProxmoxDouble, self_signed_cert
from proxmox_double.config import disk_volume, split_options
from proxmox_double.keys import typed_text
from test_real_tofu import TOFU_DIR, assert_vm_matches, rendered_values, tofu_env

from generator.options import Options
from generator.pipeline import render_tree
from helpers import packer_compat
from helpers.data import write_tree
from helpers.paths import EXAMPLES, EXAMPLES_DIR, ROOT
from helpers.provisioner import FAKE_CURL, FAKE_SFDISK, hcl_string
from helpers.realtools import (
    isolated_env,
    packer_plugin_version,
    pin_built_provider,
    render_for_double,
    run,
    tofu_init,
)
from helpers.sshvm import BuildVM, host_key

PACKER_DIR = "infrastructure/packer"
TEMPLATE = "talos.pkr.hcl"
VAR_FILE = "variables.pkrvars.hcl"
TOKEN_ID = "clustergen@pve!packer"
TOKEN_SECRET = "4f9d2c7e-1a3b-4e5f-8a9b-0c1d2e3f4a5b"
VALID_FIXTURES = ROOT / "tests" / "fixtures" / "valid"
# PVE storage type -> the storage_pool_type plugin 1.1.1 requires.
POOL_TYPES = {
    "lvmthin": "lvm-thin",
    "lvm": "lvm",
    "rbd": "rbd",
    "dir": "directory",
    "zfspool": "zfspool",
}


def _configs() -> list[Path]:
    dirs = [EXAMPLES_DIR / name for name in EXAMPLES]
    dirs += sorted(p for p in VALID_FIXTURES.iterdir() if (p / "cluster.yaml").is_file())
    return [d for d in dirs if any(k.startswith(PACKER_DIR) for k in render_tree(Options(d)).files)]


CONFIGS = _configs()
IDS = [f"{p.parent.name}/{p.name}" for p in CONFIGS]


def packer_env(home: Path, **extra: str) -> dict[str, str]:
    # The token as the rendered Taskfile expects it (PKR_VAR_*).
    return isolated_env(
        home, PKR_VAR_proxmox_token_id=TOKEN_ID, PKR_VAR_proxmox_token_secret=TOKEN_SECRET, **extra
    )


def write_packer(config: Path, tmp_path: Path) -> Path:
    files = render_tree(Options(config)).files
    write_tree(tmp_path, {k: v for k, v in files.items() if k.startswith(f"{PACKER_DIR}/")})
    return tmp_path / PACKER_DIR


def compat_copy(
    workdir: Path, env: dict[str, str], pool_type: str
) -> list[packer_compat.Unsupported]:
    """Rewrite workdir's template for plugin 1.1.1 in place; return what 1.1.1 rejected."""
    template = workdir / TEMPLATE
    template.write_text(
        packer_compat.relax_constraint(template.read_text(), packer_plugin_version())
    )
    run("packer", ["init", "."], workdir, env)
    first = run("packer", ["validate", f"-var-file={VAR_FILE}", "."], workdir, env, ok=None)
    problems = packer_compat.unsupported(first.stdout + first.stderr)
    template.write_text(packer_compat.drop_unsupported(template.read_text(), problems))
    second = run("packer", ["validate", f"-var-file={VAR_FILE}", "."], workdir, env, ok=None)
    output = second.stdout + second.stderr
    if second.returncode != 0:
        # Only 1.1.1's storage_pool_type requirement may be left.
        errors = re.findall(r"^\* (.*)$", output, re.MULTILINE)
        assert errors and all("storage_pool_type must be specified" in e for e in errors), output
        template.write_text(packer_compat.add_pool_types(template.read_text(), output, pool_type))
    done = run("packer", ["validate", f"-var-file={VAR_FILE}", "."], workdir, env)
    assert "The configuration is valid." in done.stdout
    return problems


@pytest.mark.parametrize("config", CONFIGS, ids=IDS)
def test_rendered_template_parses(config: Path, tmp_path: Path) -> None:
    workdir = write_packer(config, tmp_path)
    done = run("packer", ["validate", "-syntax-only", "."], workdir, packer_env(tmp_path / "home"))
    assert "Syntax-only check passed" in done.stdout


def test_rendered_constraint_excludes_the_built_plugin(tmp_path: Path) -> None:
    workdir = write_packer(EXAMPLES_DIR / "minimal", tmp_path)
    constraint = re.search(
        r'proxmox\s*=\s*\{[^}]*version\s*=\s*"([^"]+)"', (workdir / TEMPLATE).read_text()
    )
    assert constraint is not None
    done = run(
        "packer",
        ["validate", f"-var-file={VAR_FILE}", "."],
        workdir,
        packer_env(tmp_path / "home"),
        ok=False,
    )
    assert "Missing plugins" in done.stdout + done.stderr
    assert f"github.com/hashicorp/proxmox {constraint.group(1)}" in done.stdout + done.stderr


@pytest.mark.parametrize("config", CONFIGS, ids=IDS)
def test_plugin_1_1_1_rejects_only_fields_of_1_2(
    config: Path, tmp_path: Path, reference_dir: Path
) -> None:
    spec = json.loads((reference_dir / "packer/proxmox-iso.hcl2spec.json").read_text())
    names_1_2 = {
        name
        for flat in spec.values()
        for part in ("attrs", "blocks")
        for name in flat.get(part, {})
    }
    workdir = write_packer(config, tmp_path)
    problems = compat_copy(workdir, packer_env(tmp_path / "home"), "lvm-thin")
    assert problems, "plugin 1.1.1 accepted the whole template: packer_compat is obsolete"
    assert {p.file for p in problems} == {TEMPLATE}
    assert {p.name for p in problems} <= names_1_2, problems
    assert "boot_iso" in {p.name for p in problems}


# --- build against the double -----------------------------------------------------------------


def evaluate(workdir: Path, env: dict[str, str], expression: str) -> Any:
    """An HCL expression evaluated by `packer console` with the rendered variables."""
    done = run(
        "packer",
        ["console", f"-var-file={VAR_FILE}", "."],
        workdir,
        env,
        stdin=f"jsonencode({expression})\n",
    )
    # packer console prints the JSON text itself (tofu console prints it as a quoted string).
    return json.loads(done.stdout.strip())


def hcl_expression(value: Any) -> str:
    """python-hcl2's value back to HCL source (strings come quoted, bare references as ${x})."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        bare = re.fullmatch(r"\$\{(.*)\}", value)
        return bare.group(1) if bare and not value.startswith('"') else value
    if isinstance(value, list):
        return "[" + ", ".join(hcl_expression(v) for v in value) + "]"
    if isinstance(value, dict):
        items = (f"{k} = {hcl_expression(v)}" for k, v in value.items() if not k.startswith("__"))
        return "{" + ", ".join(items) + "}"
    raise TypeError(f"unexpected HCL value {value!r}")


def sources(workdir: Path, env: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Every proxmox-iso source by name, its arguments evaluated by Packer.

    Secrets (token, password, username arguments) are left out, and a sensitive local (a
    generated password) is evaluated as the placeholder "@name@": Packer would print the whole
    value as sensitive, and a generated value differs between runs anyway.
    """
    parsed = hcl2.loads((workdir / TEMPLATE).read_text())
    hidden = {
        name.strip('"')
        for block in parsed.get("local", [])
        for name, body in block.items()
        if isinstance(body, dict) and body.get("sensitive") is True
    }
    found: dict[str, dict[str, Any]] = {}
    for source in parsed["source"]:
        for name, body in source.get('"proxmox-iso"', {}).items():
            kept = {
                k: v
                for k, v in body.items()
                if not k.startswith("__") and not re.search(r"(^|_)(password|token|username)$", k)
            }
            expression = hcl_expression(kept)
            for local in hidden:
                expression = re.sub(rf"\blocal\.{local}\b", f'"@{local}@"', expression)
            found[name.strip('"')] = evaluate(workdir, env, expression)
    assert found, "no proxmox-iso source in the template"
    return found


CASES = {
    "homelab": (("pve",), {}),
    "multi-host": (
        ("pve1", "pve2", "pve3"),
        {"ceph-vm": ("rbd", True, ("images", "rootdir")), "cephfs": ("cephfs", True, ("iso",))},
    ),
}


def builds(status: int) -> list[Any]:
    """Each case, its build VM answering the provisioner's script with exit status `status`."""
    return [pytest.param((case, status), id=case) for case in sorted(CASES)]


def typed_passwords(double: ProxmoxDouble) -> set[str]:
    """The root passwords boot_command has typed (`echo root:PW | chpasswd`) into any VM."""
    keys: dict[str, list[str]] = {}
    for call in double.writes():
        if call.path.endswith("/sendkey"):
            keys.setdefault(call.path, []).append(call.params["key"])
    line = re.compile(r"^echo root:(\S+) \| chpasswd$", re.MULTILINE)
    return {pw for typed in keys.values() for pw in line.findall(typed_text(typed))}


@dataclass
class Build:
    double: ProxmoxDouble
    vm: BuildVM
    workdir: Path
    sources: dict[str, dict[str, Any]]  # each source's values by name, evaluated by Packer
    done: subprocess.CompletedProcess[str]  # the finished `packer build`


@pytest.fixture
def built(
    request: pytest.FixtureRequest, example_copy: Callable[[str], Path], tmp_path: Path
) -> Iterator[Build]:
    case, status = request.param
    nodes, storages = CASES[case]
    certfile, keyfile = self_signed_cert(tmp_path)
    double = ProxmoxDouble(token=f"{TOKEN_ID}={TOKEN_SECRET}", nodes=nodes)
    for name, (type_, shared, content) in storages.items():
        double.add_storage(name, type_, shared=shared, content=content)
    double.serve(certfile, keyfile)
    (tmp_path / "vm").mkdir()
    vm = BuildVM(
        tmp_path / "vm",
        host_key(tmp_path),
        lambda: typed_passwords(double),
        # The provisioner's script gets the chosen status; Packer's chmod and rm succeed.
        lambda command: status if "PACKER_BUILD_NAME=" in command else 0,
    )
    try:
        root = example_copy(case)
        render_for_double(root, double.port)
        workdir = root / PACKER_DIR
        env = packer_env(tmp_path / "home", SSL_CERT_FILE=str(certfile))
        by_source = sources(workdir, env)
        assert {v.get("communicator") for v in by_source.values()} == {"ssh"}
        for values in by_source.values():
            iso_storage, _, iso = str(values["boot_iso"][0]["iso_file"]).partition(":")
            double.add_iso(iso_storage, iso.removeprefix("iso/"))
        pool = next(iter(by_source.values()))["disks"][0]["storage_pool"]
        compat_copy(workdir, env, POOL_TYPES[double.storages[pool].type])
        template = workdir / TEMPLATE
        text = packer_compat.for_build(template.read_text())
        template.write_text(packer_compat.loopback_ssh(text, vm.port, "20s"))
        done = run(
            "packer",
            ["build", "-color=false", "-timestamp-ui=false", f"-var-file={VAR_FILE}", "."],
            workdir,
            env,
            ok=None,
            timeout=60,
        )
        yield Build(double, vm, workdir, by_source, done)
    finally:
        vm.close()
        double.shutdown()


def expected_typing(boot_command: list[str]) -> re.Pattern[str]:
    """What boot_command types: <enter> is a newline, pauses type nothing, "@name@" (a
    sensitive local) is some non-empty text of one line."""
    text = re.sub(r"<wait[^>]*>", "", "".join(boot_command))
    text = text.replace("<enter>", "\n").replace("<return>", "\n").replace("<spacebar>", " ")
    text = text.replace("<tab>", "\t")
    assert not re.search(r"<[a-zA-Z]+>", text), f"unhandled special key: {text}"
    parts = re.split(r"@[a-z_]+@", text)
    return re.compile("[^\n]+?".join(re.escape(p) for p in parts), re.DOTALL)


def options(value: str) -> dict[str, str]:
    first, rest = split_options(value)
    return {"": first, **dict(o.split("=", 1) for o in rest)}


def vm_writes(double: ProxmoxDouble, vmid: int) -> list[tuple[str, str]]:
    mine = [c for c in double.calls if re.match(rf"/nodes/[^/]+/qemu/{vmid}/", c.path)]
    return [(c.method, c.path.rsplit("/", 1)[-1]) for c in mine if c.method != "GET"]


def check_created(double: ProxmoxDouble, values: dict[str, Any]) -> None:
    """The plugin created the VM from the source's values, booted it and typed boot_command."""
    vmid = values["vm_id"]
    creates = [
        c
        for c in double.calls
        if c.method == "POST"
        and c.path == f"/nodes/{values['node']}/qemu"
        and c.params.get("vmid") == str(vmid)
    ]
    assert len(creates) == 1, f"VM {vmid} created {len(creates)} times"
    created = creates[0].params
    iso_file = values["boot_iso"][0]["iso_file"]
    assert any(v.startswith(f"{iso_file},") and "media=cdrom" in v for v in created.values())
    assert created["name"] == values["vm_name"]
    for key in ("cores", "sockets", "memory"):
        assert created[key] == str(values[key]), key
    assert created["cpu"] == values["cpu_type"]
    assert (created["bios"], created["machine"], created["ostype"], created["scsihw"]) == (
        values["bios"],
        values["machine"],
        values["os"],
        values["scsi_controller"],
    )
    writes = vm_writes(double, vmid)
    assert ("POST", "start") in writes and ("PUT", "sendkey") in writes
    assert writes.index(("POST", "start")) < writes.index(("PUT", "sendkey"))
    keys = [c.params["key"] for c in double.calls if c.path.endswith(f"/qemu/{vmid}/sendkey")]
    assert expected_typing(values["boot_command"]).fullmatch(typed_text(keys)), typed_text(keys)


def check_template(double: ProxmoxDouble, values: dict[str, Any]) -> None:
    """The VM became the template the source describes."""
    vmid = values["vm_id"]
    vm = double.vms[vmid]
    config = vm.config
    assert (vm.node, vm.template, vm.status) == (values["node"], True, "stopped")
    writes = vm_writes(double, vmid)
    assert writes.index(("PUT", "sendkey")) < writes.index(("POST", "template"))
    assert config["name"] == values["template_name"]
    assert config["description"] == values["template_description"]
    (disk,) = values["disks"]
    scsi0 = options(config["scsi0"])
    assert scsi0[""].startswith(f"{disk['storage_pool']}:base-{vmid}-disk-"), config["scsi0"]
    assert scsi0["size"] == disk["disk_size"]
    (efi,) = values["efi_config"]
    efidisk = options(config["efidisk0"])
    assert efidisk[""].startswith(f"{efi['efi_storage_pool']}:base-{vmid}-disk-")
    assert efidisk["efitype"] == efi["efi_type"]
    assert efidisk["pre-enrolled-keys"] == str(int(efi["pre_enrolled_keys"]))
    (nic,) = values["network_adapters"]
    net0 = options(config["net0"])
    assert net0[""].split("=")[0] == nic["model"] and net0["bridge"] == nic["bridge"]
    if nic.get("vlan_tag") not in (None, ""):
        assert net0["tag"] == str(nic["vlan_tag"])
    drives = [v for k, v in config.items() if re.fullmatch(r"(ide|sata|scsi)\d+", k)]
    cloudinit = [disk_volume(d) for d in drives if disk_volume(d).endswith(f"vm-{vmid}-cloudinit")]
    if values.get("cloud_init"):
        assert [v.split(":")[0] for v in cloudinit] == [values["cloud_init_storage_pool"]]
    else:
        assert cloudinit == []
    if values["boot_iso"][0].get("unmount"):
        iso_file = values["boot_iso"][0]["iso_file"]
        assert not any(iso_file in str(v) for v in config.values()), config


def test_build_vm_stand_in_lets_in_only_root_and_runs_nothing(tmp_path: Path) -> None:
    key = host_key(tmp_path)
    vm = BuildVM(tmp_path / "vm", key, lambda: {"typed"}, lambda command: 7)
    try:

        def login(user: str, password: str) -> paramiko.SSHClient:
            client = paramiko.SSHClient()
            client.get_host_keys().add(f"[127.0.0.1]:{vm.port}", key.get_name(), key)
            client.connect(
                "127.0.0.1",
                vm.port,
                user,
                password,
                timeout=10,
                auth_timeout=10,
                look_for_keys=False,
                allow_agent=False,
            )
            return client

        for user, password in (("root", "guessed"), ("admin", "typed"), ("root", "")):
            with pytest.raises(paramiko.AuthenticationException):
                login(user, password)
        client = login("root", "typed")
        try:
            marker = tmp_path / "ran"
            _, stdout, _ = client.exec_command(f"touch {marker}", timeout=10)
            assert stdout.channel.recv_exit_status() == 7
        finally:
            client.close()
        assert not marker.exists()
        assert vm.record.logins == [("root", "typed")]
        assert vm.record.refused == [("root", "guessed"), ("admin", "typed"), ("root", "")]
        assert vm.record.commands == [f"touch {marker}"]
    finally:
        vm.close()


def rendered_provisioner(workdir: Path) -> dict[str, Any]:
    (build,) = hcl2.loads((workdir / TEMPLATE).read_text())["build"]
    (shell,) = build["provisioner"]
    return dict(shell['"shell"'])


def script_runs(build: Build, cleaned: bool) -> dict[str, tuple[str, dict[str, str]]]:
    """By source: the script Packer uploaded and the environment its command gives it.

    For an upload to PATH Packer's shell provisioner runs `chmod 0755 PATH`, then
    `chmod +x PATH; NAME='value' ... PATH` (execute_command's default; each source names
    itself in PACKER_BUILD_NAME) and, when that succeeded, cleans up with `rm -f PATH` and
    `rm -f ` (the environment file it did not use). Nothing else.
    """
    record = build.vm.record
    commands = [c.removesuffix("\n") for c in record.commands]
    runs: dict[str, tuple[str, dict[str, str]]] = {}
    expected: list[str] = []
    for command in (c for c in commands if c.startswith("chmod +x ")):
        first, _, rest = command.partition("; ")
        *assignments, path = shlex.split(rest)
        assert shlex.split(first) == ["chmod", "+x", path], command
        env = dict(a.split("=", 1) for a in assignments)
        source = env["PACKER_BUILD_NAME"]
        assert source in build.sources and source not in runs, command
        assert env["PACKER_BUILDER_TYPE"] == "proxmox-iso"
        mine = {k: v for k, v in env.items() if not k.startswith("PACKER_")}
        runs[source] = (record.uploads[path].decode(), mine)
        expected += [f"chmod 0755 {path}", command]
        expected += [f"rm -f {path}", "rm -f "] if cleaned else []
    assert sorted(commands) == sorted(expected)
    assert set(runs) == set(build.sources)
    return runs


@pytest.mark.parametrize("built", builds(0), indirect=True)
def test_packer_build_against_the_double(built: Build, tmp_path: Path) -> None:
    double, by_source, done = built.double, built.sources, built.done
    output = done.stdout + done.stderr
    assert TOKEN_SECRET not in output
    check_build_started(built)
    assert done.returncode == 0, output

    # Each source uploaded exactly the rendered inline lines, under Packer's shebang, and ran
    # them with exactly the rendered environment: the model's image URL among them.
    shell = rendered_provisioner(built.workdir)
    lines = [f"#!{hcl_string(shell['inline_shebang'])}"]
    lines += [hcl_string(line) for line in shell["inline"]]
    rendered_env = dict(hcl_string(v).split("=", 1) for v in shell["environment_vars"])
    context = render_tree(Options(built.workdir.parents[1])).context
    assert not context["packer"]["template_split"]
    expected_env = {
        **rendered_env,
        "IMAGE_URL": context["schematic"]["image_url"],
        "DOWNLOAD_RETRIES": str(
            evaluate(built.workdir, packer_env(tmp_path / "home"), "var.download_retries")
        ),
    }
    runs = script_runs(built, cleaned=True)
    for script, env in runs.values():
        assert script.split("\n") == [*lines, ""]
        assert env == expected_env

    for values in by_source.values():
        assert f"A template was created: {values['vm_id']}" in output
        check_template(double, values)
    assert set(double.vms) == {v["vm_id"] for v in by_source.values()}

    # The uploaded script itself, run here with stand-ins for curl and sfdisk and a file as
    # the disk, writes the image and succeeds: what the stand-in answered is what it does.
    script, env = next(iter(runs.values()))
    image = b"TALOS" + bytes(range(256)) * 64
    ran, disk = run_uploaded(script, env, tmp_path / "local", image)
    assert ran.returncode == 0, ran.stderr
    assert disk.read_bytes() == image
    assert "Talos disk image written" in ran.stdout

    # The rendered OpenTofu clones exactly one of these templates into the nodes' VMs, has
    # nothing left to plan, and destroys them again.
    tofu_dir = built.workdir.parents[1] / TOFU_DIR
    env = tofu_env(tmp_path, double)
    pin_built_provider(tofu_dir)
    tofu_init(tofu_dir, env)
    tofu_values = rendered_values(tofu_dir, env)
    templates = {v["vm_id"]: v["node"] for v in by_source.values()}
    assert templates.get(tofu_values["template_vmid"]) == tofu_values["template_node"]
    volumes, before = double.volumes(), set(double.vms)
    run("tofu", ["apply", "-auto-approve", "-no-color"], tofu_dir, env)
    nodes = tofu_values["nodes"]
    assert set(double.vms) == before | {node["vm_id"] for node in nodes.values()}
    for name, node in nodes.items():
        assert_vm_matches(double, node["vm_id"], name, node, tofu_values)
    run("tofu", ["plan", "-detailed-exitcode", "-no-color"], tofu_dir, env, codes=(0,))
    run("tofu", ["destroy", "-auto-approve", "-no-color"], tofu_dir, env)
    assert set(double.vms) == before and double.volumes() == volumes
    assert double.unknown == [] and double.rejected == []


@pytest.mark.parametrize("built", builds(1), indirect=True)
def test_failed_provisioner_fails_the_build_and_leaves_nothing(built: Build) -> None:
    double, by_source, done = built.double, built.sources, built.done
    output = done.stdout + done.stderr
    check_build_started(built)
    assert done.returncode != 0
    assert "Script exited with non-zero exit status: 1" in output, output
    script_runs(built, cleaned=False)  # ran once per source, was not retried
    assert set(double.vms).isdisjoint(v["vm_id"] for v in by_source.values())
    assert not any(c.path.endswith("/template") for c in double.writes())
    assert double.unknown == [] and double.rejected == []


def check_build_started(built: Build) -> None:
    """Packer created and booted every VM, typed boot_command, logged in as root with the
    password it typed (nothing else) and uploaded its script to the stand-in."""
    double, record = built.double, built.vm.record
    creates = [
        c for c in double.calls if c.method == "POST" and re.fullmatch(r"/nodes/[^/]+/qemu", c.path)
    ]
    assert sorted(int(c.params["vmid"]) for c in creates) == sorted(
        v["vm_id"] for v in built.sources.values()
    )
    for values in built.sources.values():
        check_created(double, values)
    typed = typed_passwords(double)
    assert len(typed) == 1, "one throw-away password per run"
    assert record.logins and set(record.logins) == {("root", p) for p in typed}
    assert record.refused == [] and record.errors == []
    assert len(record.uploads) == len(built.sources)
    for path, data in record.uploads.items():
        # Into the stand-in's private root, not this machine's /tmp.
        assert path.startswith("/tmp/") and (built.vm.root / path[1:]).read_bytes() == data


def run_uploaded(
    script: str, env: dict[str, str], where: Path, image: bytes
) -> tuple[subprocess.CompletedProcess[str], Path]:
    """The script with stand-ins for the network (curl) and the partition table (sfdisk); xz
    and dd are the real ones, TARGET_DISK a file and /tmp/ a private directory."""
    bin_dir = where / "bin"
    bin_dir.mkdir(parents=True)
    for name, body in (("curl", FAKE_CURL), ("sfdisk", FAKE_SFDISK)):
        (bin_dir / name).write_text(body)
        (bin_dir / name).chmod(0o755)
    disk = where / "sda"
    disk.write_bytes(b"\0" * 4096)
    (where / "image.raw.xz").write_bytes(
        subprocess.run(["xz", "-c"], input=image, capture_output=True, check=True).stdout
    )
    path = where / "script.sh"
    path.write_text(script.replace("/tmp/", f"{where}/"))
    ran = subprocess.run(
        ["/bin/bash", "-e", str(path)],
        env={
            **env,
            "TARGET_DISK": str(disk),
            "PATH": f"{bin_dir}:/usr/bin:/bin",
            "FAKE_IMAGE": str(where / "image.raw.xz"),
            "FAKE_LOG": str(where / "curl.log"),
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return ran, disk
