"""The packer:* and tofu:* tasks of .taskfiles/infrastructure/Taskfile.yaml, run with the real
go-task and sops binaries; packer, tofu and nc are stand-ins that record what they got."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from ruamel.yaml import YAML

from generator.options import Options
from generator.pipeline import render_tree
from helpers.data import write_tree
from helpers.paths import EXAMPLES, TASKFILE
from helpers.sops import encrypt_secrets
from helpers.taskfile_harness import read_calls
from helpers.tools import run_captured, stand_in, tool

PREFIXES = ("packer:", "tofu:")
# Tasks whose tool talks to the Proxmox VE API, so they need the token.
TOKEN_TASKS = {
    "packer:validate": ("PKR_VAR_proxmox_token_id", "PKR_VAR_proxmox_token_secret"),
    "packer:build": ("PKR_VAR_proxmox_token_id", "PKR_VAR_proxmox_token_secret"),
    "tofu:plan": ("TF_VAR_proxmox_api_token",),
    "tofu:apply": ("TF_VAR_proxmox_api_token",),
    "tofu:destroy": ("TF_VAR_proxmox_api_token",),
}
TOKEN_ID = "root@pam!clustergen"
TOKEN_SECRET = "0b6f1f0e-1111-2222-3333-444455556666"
Rendered = Callable[[str], dict[str, bytes]]

# Stand-in for packer/tofu/nc: log argv, cwd and the token variables, one JSON line per call;
# exit 1 when an argument equals $STANDIN_FAIL.
STANDIN = """#!/bin/sh
"{python}" - "$0" "$@" <<'EOF'
import json, os, sys
keys = ("TF_VAR_proxmox_api_token", "PKR_VAR_proxmox_token_id", "PKR_VAR_proxmox_token_secret")
entry = {"argv": [os.path.basename(sys.argv[1])] + sys.argv[2:], "cwd": os.getcwd(),
         "env": {k: os.environ[k] for k in keys if k in os.environ}}
with open(os.environ["STANDIN_LOG"], "a") as log:
    log.write(json.dumps(entry) + "\\n")
for arg in sys.argv[2:]:
    if arg.startswith("-out="):  # like tofu plan, leave the plan file behind
        open(arg[5:], "w").close()
EOF
case " $* " in *" $STANDIN_FAIL "*) exit 1;; esac
"""


def load(data: bytes) -> Any:
    return YAML(typ="safe", pure=True).load(io.BytesIO(data))


def own_tasks(taskfile: Any) -> dict[str, Any]:
    return {k: v for k, v in taskfile["tasks"].items() if k.startswith(PREFIXES)}


def text_of(task: Any) -> str:
    return json.dumps(task)


@pytest.mark.parametrize("example", EXAMPLES)
def test_tasks_are_named_by_provisioner_and_described(example: str, rendered: Rendered) -> None:
    taskfile = load(rendered(example)[TASKFILE])
    tasks = own_tasks(taskfile)
    expected = {
        "packer:init",
        "packer:validate",
        "packer:build",
        "tofu:init",
        "tofu:plan",
        "tofu:apply",
        "tofu:apply:confirm",
        "tofu:destroy",
        "tofu:output",
        "tofu:show",
        "tofu:provision",
        "tofu:wait-for-nodes",
    }
    assert set(tasks) == expected
    for name, task in tasks.items():
        assert task.get("desc") or task.get("internal"), name
    # The design notes' names, for `task infrastructure:provision` etc.
    assert tasks["tofu:provision"]["aliases"] == ["provision"]
    assert tasks["tofu:wait-for-nodes"]["aliases"] == ["wait-for-nodes"]


@pytest.mark.parametrize("example", EXAMPLES)
def test_own_tasks_validate_against_the_taskfile_schema(
    example: str, rendered: Rendered, reference_dir: Path, tmp_path: Path
) -> None:
    taskfile = load(rendered(example)[TASKFILE])
    # Only the packer/tofu tasks (with the base vars they use): other provisioners' tasks are
    # their own tests' business.
    doc = {"version": taskfile["version"], "vars": taskfile["vars"], "tasks": own_tasks(taskfile)}
    schema = json.loads((reference_dir / "taskfile/schema.json").read_text())
    jsonschema.Draft7Validator(schema).validate(doc)
    (tmp_path / "Taskfile.yaml").write_text(json.dumps(doc))
    result = subprocess.run(
        [tool("task"), "--list"], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    for name, task in doc["tasks"].items():
        # go-task lists every task but the internal confirmation step.
        assert (f"* {name}:" in result.stdout) != bool(task.get("internal")), name


@pytest.mark.parametrize("example", EXAMPLES)
def test_without_secrets_file_tasks_expect_the_token_in_the_environment(
    example: str, rendered: Rendered
) -> None:
    tasks = own_tasks(load(rendered(example)[TASKFILE]))
    for name, variables in TOKEN_TASKS.items():
        task = tasks[name]
        assert "sops" not in text_of(task["cmds"]), name
        checks = {p["sh"]: p["msg"] for p in task["preconditions"]}
        for variable in variables:
            assert checks[f'test -n "${variable}"'].startswith(f"{variable} is not set"), name
    for name, task in tasks.items():
        if name not in TOKEN_TASKS:
            assert "TF_VAR" not in text_of(task) and "PKR_VAR" not in text_of(task), name


def test_every_tool_task_names_the_missing_tool(rendered: Rendered) -> None:
    tasks = own_tasks(load(rendered("minimal")[TASKFILE]))
    for name, task in tasks.items():
        if "preconditions" not in task:
            assert all("task" in cmd for cmd in task["cmds"]), name  # only calls other tasks
            continue
        tool_name = {"packer": "packer", "tofu": "tofu"}[name.split(":")[0]]
        if name == "tofu:wait-for-nodes":
            tool_name = "nc"
        checks = {p["sh"]: p["msg"] for p in task["preconditions"]}
        assert f"{tool_name} " in checks[f"command -v {tool_name}"], name


# --- running the tasks ---------------------------------------------------------------------


class Project:
    """A rendered config dir with a root Taskfile that includes the generated one, as in a
    cluster-template repo, and stand-ins for the tools."""

    def __init__(self, root: Path, env: dict[str, str]) -> None:
        self.root = root
        self.env = env
        self.log = root.parent / "calls.jsonl"

    @classmethod
    def create(cls, config: Path, tools: tuple[str, ...], extra_env: dict[str, str]) -> Project:
        rendered = render_tree(Options(config))
        write_tree(config, rendered.files)
        (config / "Taskfile.yaml").write_text(
            'version: "3"\nincludes:\n  infrastructure: ' + TASKFILE + "\n"
        )
        bin_dir = config.parent / "bin"
        bin_dir.mkdir()
        for name in tools:
            stand_in(bin_dir / name, STANDIN.replace("{python}", sys.executable))
        # The Image Factory, as packer:build registers the schematic first.
        factory = f'#!/bin/sh\nprintf \'{{"id":"%s"}}\' {rendered.context["schematic"]["id"]}\n'
        stand_in(bin_dir / "curl", factory)
        # Nothing else on PATH, so a tool this machine happens to have cannot leak in.
        for name in ("sops", "task", "rm", "sleep", "cat", "mktemp"):
            (bin_dir / name).symlink_to(tool(name))
        env = {
            "PATH": str(bin_dir),
            "HOME": str(config.parent),
            "STANDIN_LOG": str(config.parent / "calls.jsonl"),
            **extra_env,
        }
        return cls(config, env)

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        task = str(self.root.parent / "bin" / "task")
        return run_captured([task, "--yes", *args], cwd=self.root, env=self.env)

    def calls(self) -> list[dict[str, Any]]:
        return read_calls(self.log)


def test_tasks_get_the_token_from_sops_exec_env(example_copy: Callable[[str], Path]) -> None:
    config = example_copy("minimal")
    key = encrypt_secrets(config, TOKEN_ID, TOKEN_SECRET)
    project = Project.create(config, ("packer", "tofu"), {"SOPS_AGE_KEY_FILE": str(key)})

    result = project.run("infrastructure:provision")
    assert result.returncode == 0, result.stderr
    result = project.run("infrastructure:packer:build", "--", "-var", "bootstrap_iso=x.iso")
    assert result.returncode == 0, result.stderr

    assert not (config / "infrastructure/tofu/tfplan").exists()  # applied plans are removed
    calls = [
        (c["argv"], Path(c["cwd"]).relative_to(config).as_posix(), c["env"])
        for c in project.calls()
    ]
    tofu_env = {"TF_VAR_proxmox_api_token": f"{TOKEN_ID}={TOKEN_SECRET}"}
    packer_env = {
        "PKR_VAR_proxmox_token_id": TOKEN_ID,
        "PKR_VAR_proxmox_token_secret": TOKEN_SECRET,
    }
    assert calls == [
        (["tofu", "init"], "infrastructure/tofu", {}),
        (["tofu", "plan", "-out=tfplan"], "infrastructure/tofu", tofu_env),
        (["tofu", "apply", "tfplan"], "infrastructure/tofu", tofu_env),
        (["packer", "init", "."], "infrastructure/packer", {}),
        (
            [
                "packer",
                "build",
                "-var-file=variables.pkrvars.hcl",
                "-var",
                "bootstrap_iso=x.iso",
                ".",
            ],
            "infrastructure/packer",
            packer_env,
        ),
    ]


def test_without_secrets_file_tasks_use_the_environment_or_say_what_is_missing(
    example_copy: Callable[[str], Path],
) -> None:
    config = example_copy("minimal")
    project = Project.create(config, ("packer", "tofu"), {})
    result = project.run("infrastructure:tofu:plan")
    assert result.returncode != 0
    assert "TF_VAR_proxmox_api_token is not set" in result.stderr
    assert project.calls() == []  # preconditions stop the task before any command

    project.env["TF_VAR_proxmox_api_token"] = f"{TOKEN_ID}={TOKEN_SECRET}"
    result = project.run("infrastructure:tofu:plan")
    assert result.returncode == 0, result.stderr
    assert project.calls()[-1]["env"] == {"TF_VAR_proxmox_api_token": f"{TOKEN_ID}={TOKEN_SECRET}"}


def test_missing_tool_is_named(example_copy: Callable[[str], Path]) -> None:
    config = example_copy("minimal")
    project = Project.create(config, ("packer",), {})
    result = project.run("infrastructure:tofu:init")
    assert result.returncode != 0
    assert "tofu is not installed" in result.stderr


def test_wait_for_nodes_checks_every_node_and_gives_up(example_copy: Callable[[str], Path]) -> None:
    config = example_copy("minimal")
    (config / "nodes.yaml").write_text(
        "nodes:\n"
        "  - {name: cp-0, address: 192.168.22.10, controller: true, mac_addr: bc:24:11:00:01:01}\n"
        "  - {name: w-0, address: 192.168.22.20, controller: false, mac_addr: bc:24:11:00:01:20}\n"
    )
    project = Project.create(config, ("nc",), {})
    result = project.run("infrastructure:wait-for-nodes", "WAIT_INTERVAL=0")
    assert result.returncode == 0, result.stderr
    probed = [c["argv"][-2:] for c in project.calls()]
    assert probed == [["192.168.22.10", "50000"], ["192.168.22.20", "50000"]]

    project.log.unlink()
    project.env["STANDIN_FAIL"] = "192.168.22.20"
    result = project.run("infrastructure:wait-for-nodes", "WAIT_ATTEMPTS=3", "WAIT_INTERVAL=0")
    assert result.returncode != 0
    assert "192.168.22.20:50000 did not answer after 3 attempts" in result.stderr
    probed = [c["argv"][-2] for c in project.calls()]
    assert probed == ["192.168.22.10"] + ["192.168.22.20"] * 3
