"""Running the rendered Taskfile's tasks with the real go-task (and the real sops) against
stand-in tools that record their argv, working directory and token variables; what each task
must run. Shared by test_taskfile_inputs.py and test_taskfile_include.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from .data import write_tree
from .paths import EXAMPLES_DIR, TASKFILE
from .tools import stand_in, tool

EXAMPLE = EXAMPLES_DIR / "multi-host"  # every provisioner, capi included
NS = "infrastructure"

# Would-be injections: go-task templates, shell syntax that runs `touch PWNED`, controls.
GO_TASK = ["{{.ROOT_DIR}}", '{{env "HOME"}}', '{{printf "%s" "x"}}', '{{env"HOME"}}']
SHELL = [
    "'",
    '"',
    ";touch${IFS}PWNED;",
    "|touch${IFS}PWNED|",
    "$(touch${IFS}PWNED)",
    "`touch${IFS}PWNED`",
    "\\",
    "$HOME",
    "&&touch${IFS}PWNED",
]
UNICODE = ["\u202e", "\u200b", "\u2028", "\x1b[2J", "\x07"]
FRAGMENTS = GO_TASK + SHELL + UNICODE
PAYLOAD = "".join(FRAGMENTS)
# Where a fragment may go in a value that must keep its shape.
ENDPOINT_SHAPES = [
    "https://[fe80::1%{f}]:8006",
    "https://pve.example:8006/{f}",
    "https://pve.example:8006/?q={f}",
    "https://u{f}@pve.example:8006",
]
# The tools the tasks run, and commands an injection would run (they must never be called).
TOOLS = (
    *("tofu", "packer", "ansible-playbook", "ansible-galaxy", "kubectl", "clusterctl", "curl"),
    *("nc", "clustergen", "sops", "rm", "sleep", "talosctl"),
    *("touch", "id", "sh", "bash", "env", "cat", "printenv"),
)
TOKEN_ENV = (
    "TF_VAR_proxmox_api_token",
    "PKR_VAR_proxmox_token_id",
    "PKR_VAR_proxmox_token_secret",
    "PROXMOX_API_TOKEN_ID",
    "PROXMOX_API_TOKEN_SECRET",
    "KUBECONFIG",
    "SOPS_AGE_KEY_FILE",
)

# One JSON line per call: tool, argv, cwd, the token variables, stdin where it is data.
STANDIN = """#!{python}
import json, os, sys
name = os.path.basename(sys.argv[0])
argv = sys.argv[1:]
entry = {{"tool": name, "argv": argv, "cwd": os.getcwd(),
         "env": {{k: os.environ[k] for k in {watch!r} if k in os.environ}}}}
if "@-" in argv or "--filename=-" in argv:
    entry["stdin"] = sys.stdin.read()
with open(os.environ["STANDIN_LOG"], "a", encoding="utf-8") as log:
    log.write(json.dumps(entry) + "\\n")
if name == "sops":
    os.execv({sops!r}, ["sops", *argv])
if name == "rm":
    os.execv("/bin/rm", ["rm", *argv])
if name == "tofu":
    for arg in argv:
        if arg.startswith("-out="):
            open(arg[5:], "w").close()
    if os.environ.get("STANDIN_HANG") == name:
        import time
        time.sleep(60)
    if os.environ.get("STANDIN_FAIL") == " ".join([name, *argv[:1]]):
        sys.exit(1)
if name == "curl":
    sys.stdout.write(json.dumps({{"id": os.environ["ANSWER_ID"]}}, separators=(",", ":")))
if name == "kubectl" and "--dry-run=client" in argv:
    sys.stdout.write("kind: Stub\\n")
"""


HOSTILE_TOKEN_ID = 'a\'"{{.ROOT_DIR}}$(touch${IFS}PWNED);|`touch${IFS}PWNED`\\{{env"HOME"}}@pve!t'
TOKEN_SECRET = str(uuid.UUID(int=0x0B6F1F0E111122223333444455556666))


# --- the string inputs, from the schemas -----------------------------------------------------


# --- a tree to run tasks in ------------------------------------------------------------------


@dataclass
class Tree:
    """A parent Taskfile including a rendered tree, stand-in tools, a log of their calls."""

    root: Path  # where the parent Taskfile is (the user's cwd)
    parent: Path  # the parent Taskfile
    config: Path  # cluster.yaml etc.
    out: Path  # the output root
    namespace: str
    env: dict[str, str]
    log: Path
    context: Mapping[str, Any]
    tasks: dict[str, Any] = field(default_factory=dict)

    def run(self, name: str, *args: str, timeout: int = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                tool("task"),
                "--yes",
                "--taskfile",
                str(self.parent),
                f"{self.namespace}{name}",
                *args,
            ],
            cwd=self.root,
            env=self.env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def calls(self) -> list[dict[str, Any]]:
        return read_calls(self.log)

    def clear(self) -> None:
        self.log.unlink(missing_ok=True)


def standins(bin_dir: Path) -> None:
    bin_dir.mkdir(parents=True)
    text = STANDIN.format(python=sys.executable, watch=TOKEN_ENV, sops=tool("sops"))
    for name in TOOLS:
        stand_in(bin_dir / name, text)


def read_calls(log: Path) -> list[dict[str, Any]]:
    """The stand-ins' log: one JSON object per call, in order (none when nothing ran)."""
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines()]


def parent_taskfile(root: Path, includes: Mapping[str, str], extra: str = "") -> Path:
    lines = ['version: "3"', extra.rstrip(), "includes:"]
    lines += [f"  {name}: {json.dumps(path)}" for name, path in includes.items()]
    (root / "Taskfile.yaml").write_text("\n".join(line for line in lines if line) + "\n")
    return root / "Taskfile.yaml"


def make_tree(
    base: Path,
    files: Mapping[str, bytes],
    context: Mapping[str, Any],
    *,
    config: Path,
    out: Path,
    root: Path,
    extra_env: Mapping[str, str],
    parent_extra: str = "",
) -> Tree:
    """files written to out, included from a new parent Taskfile in root as NS."""
    write_tree(out, files)
    (config / "management.kubeconfig").write_text("")
    include = os.path.relpath(out / TASKFILE, root)
    parent = parent_taskfile(root, {NS: include}, parent_extra)
    return standin_tree(
        base, files, context, root=root, taskfile=parent, config=config, out=out,
        namespace=f"{NS}:", extra_env=extra_env,
    )  # fmt: skip


def standin_tree(
    base: Path,
    files: Mapping[str, bytes],
    context: Mapping[str, Any],
    *,
    root: Path,
    taskfile: Path,
    config: Path,
    out: Path,
    namespace: str,
    extra_env: Mapping[str, str] | None = None,
) -> Tree:
    """A Tree whose tasks (root's taskfile, clustergen's under namespace) find only the
    recording stand-ins (base/bin) on PATH and an empty HOME (base/HOME-CANARY)."""
    bin_dir = base / "bin"
    standins(bin_dir)
    home = base / "HOME-CANARY"
    home.mkdir()
    env = {
        "PATH": str(bin_dir),
        "HOME": str(home),
        "NO_COLOR": "1",
        "STANDIN_LOG": str(base / "calls.jsonl"),
        "ANSWER_ID": context["schematic"]["id"],
        **(extra_env or {}),
    }
    tasks = YAML(typ="safe").load(files[TASKFILE])["tasks"]
    return Tree(root, taskfile, config, out, namespace, env, base / "calls.jsonl", context, tasks)


def token_env(token_id: str, secret: str) -> dict[str, str]:
    """Every variable a task may take the Proxmox token from, when there is no secrets file."""
    return {
        "TF_VAR_proxmox_api_token": f"{token_id}={secret}",
        "PKR_VAR_proxmox_token_id": token_id,
        "PKR_VAR_proxmox_token_secret": secret,
        "PROXMOX_API_TOKEN_ID": token_id,
        "PROXMOX_API_TOKEN_SECRET": secret,
        "PROXMOX_TOKEN": token_id,
        "PROXMOX_SECRET": secret,
    }


# --- what each task must run -----------------------------------------------------------------


def expected_calls(tree: Tree, name: str, token: tuple[str, str], sops: bool) -> list[Any]:
    """(tool, argv, cwd, env) of every call the task makes, sops and rm left out."""
    ctx = tree.context
    infra = tree.out / "infrastructure"
    token_id, secret = token
    tofu_env = {"TF_VAR_proxmox_api_token": f"{token_id}={secret}"}
    packer_env = {"PKR_VAR_proxmox_token_id": token_id, "PKR_VAR_proxmox_token_secret": secret}
    ansible_env = {"PROXMOX_API_TOKEN_ID": token_id, "PROXMOX_API_TOKEN_SECRET": secret}
    kube = {"KUBECONFIG": str(tree.config / "management.kubeconfig")}
    capi = ctx["capi"]
    ns, cluster = capi["namespace"], capi["cluster_name"]
    upload = (
        "curl",
        [
            "-fsS",
            "-X",
            "POST",
            "--data-binary",
            "@-",
            f"{ctx['taskfile']['factory_url']}/schematics",
        ],
        None,
        {},
    )
    tofu_init = ("tofu", ["init"], infra / "tofu", {})
    plan = ("tofu", ["plan", "-out=tfplan"], infra / "tofu", tofu_env)
    apply = ("tofu", ["apply", "tfplan"], infra / "tofu", tofu_env)
    packer_init = ("packer", ["init", "."], infra / "packer", {})

    def packer(verb: str) -> Any:
        return (
            "packer",
            [verb, "-var-file=variables.pkrvars.hcl", "."],
            infra / "packer",
            packer_env,
        )

    def playbook(book: str) -> Any:
        argv = ["-i", "inventory.yaml", f"playbooks/{book}"]
        return ("ansible-playbook", argv, infra / "ansible", ansible_env)

    def kubectl(*argv: str) -> Any:
        return ("kubectl", list(argv), None, kube)

    pipe_apply = kubectl("apply", "--filename=-")
    table: dict[str, list[Any]] = {
        "schematic": [("clustergen", ["-C", str(tree.config), "schematic"], None, {})],
        "schematic:upload": [upload],
        "packer:init": [packer_init],
        "packer:validate": [packer_init, packer("validate")],
        "packer:build": [packer_init, upload, packer("build")],
        "tofu:init": [tofu_init],
        "tofu:plan": [tofu_init, plan],
        "tofu:apply": [apply],
        "tofu:destroy": [("tofu", ["destroy", "-auto-approve"], infra / "tofu", tofu_env)],
        "tofu:output": [("tofu", ["output", "-json"], infra / "tofu", {})],
        "tofu:show": [("tofu", ["show"], infra / "tofu", {})],
        "tofu:provision": [tofu_init, plan, apply],
        "tofu:wait-for-nodes": [
            ("nc", ["-z", "-w", "2", n["address"], "50000"], None, {}) for n in ctx["nodes"]
        ],
        "ansible:deps": [
            (
                "ansible-galaxy",
                ["collection", "install", "-r", "requirements.yaml"],
                infra / "ansible",
                {},
            )
        ],
        "ansible:provision": [playbook("provision-vms.yaml")],
        "ansible:destroy": [playbook("destroy-vms.yaml")],
        "ansible:status": [playbook("status-vms.yaml")],
        "capi:init": [
            (
                "clusterctl",
                [
                    "init",
                    f"--core=cluster-api:v{ctx['capi_core_version']}",
                    f"--bootstrap=talos:v{ctx['capi_talos_bootstrap_version']}",
                    f"--control-plane=talos:v{ctx['capi_talos_control_plane_version']}",
                    f"--infrastructure=proxmox:v{ctx['capi_proxmox_version']}",
                    f"--ipam=in-cluster:v{ctx['capi_ipam_in_cluster_version']}",
                ],
                None,
                kube,
            )
        ],
        "capi:apply": [
            upload,
            kubectl("create", "namespace", ns, "--dry-run=client", "--output=yaml"),
            pipe_apply,
            kubectl(
                "create",
                "secret",
                "generic",
                capi["credentials_secret"],
                f"--namespace={ns}",
                f"--from-literal=url={ctx['proxmox_endpoint']}",
                f"--from-literal=insecure={capi['credentials_insecure']}",
                f"--from-literal=token={token_id}",
                f"--from-literal=secret={secret}",
                "--dry-run=client",
                "--output=yaml",
            ),
            pipe_apply,
            kubectl("apply", f"--filename={infra / 'capi' / 'cluster.yaml'}"),
        ],
        "capi:status": [
            kubectl("get", f"cluster.cluster.x-k8s.io/{cluster}", f"--namespace={ns}"),
            kubectl(
                "get",
                "taloscontrolplanes.controlplane.cluster.x-k8s.io,machinedeployments.cluster.x-k8s.io,"
                "machines.cluster.x-k8s.io,proxmoxmachines.infrastructure.cluster.x-k8s.io",
                f"--namespace={ns}",
                f"--selector=cluster.x-k8s.io/cluster-name={cluster}",
            ),
        ],
        "capi:delete": [
            kubectl(
                "delete",
                f"cluster.cluster.x-k8s.io/{cluster}",
                f"--namespace={ns}",
                "--ignore-not-found",
                "--wait",
            ),
            kubectl(
                "delete", f"--filename={infra / 'capi' / 'cluster.yaml'}", "--ignore-not-found"
            ),
            kubectl(
                "delete",
                "secret",
                capi["credentials_secret"],
                f"--namespace={ns}",
                "--ignore-not-found",
            ),
        ],
    }
    return table[name]


TOKEN_TASKS = {
    "packer:validate", "packer:build", "tofu:plan", "tofu:apply", "tofu:destroy",
    "tofu:provision", "ansible:provision", "ansible:destroy", "ansible:status", "capi:apply",
}  # fmt: skip


def check_task(tree: Tree, name: str, token: tuple[str, str], sops: bool) -> None:
    tree.clear()
    if name == "tofu:apply":  # needs a plan; the stand-in writes it
        assert tree.run("tofu:plan").returncode == 0
        tree.clear()
    result = tree.run(name)
    assert result.returncode == 0, f"{name}: {result.stderr}"
    calls = tree.calls()
    got = [
        (c["tool"], c["argv"], c["cwd"], c["env"]) for c in calls if c["tool"] not in ("sops", "rm")
    ]
    want = expected_calls(tree, name, token, sops)
    assert [c[0] for c in got] and len(got) == len(want), (name, got)

    # A pipe starts both sides at once, so compare as a multiset; env: the keys that matter.
    def key(call: Any) -> str:
        return json.dumps([call[0], call[1]])

    by_argv = {key(c): c for c in got}
    assert sorted(map(key, got)) == sorted(map(key, want)), name
    for tool_name, argv, cwd, env in want:
        call = by_argv[json.dumps([tool_name, argv])]
        if cwd is not None:
            assert Path(call[2]) == cwd, (name, tool_name, call[2])
        for variable, value in env.items():
            assert call[3].get(variable) == value, (name, tool_name, variable)
        if tool_name == "curl":
            stdin = next(c["stdin"] for c in calls if c["tool"] == "curl")
            assert stdin == tree.context["schematic"]["yaml"], name
    sops_calls = [c for c in calls if c["tool"] == "sops"]
    if sops and name in TOKEN_TASKS:
        secrets_file = str(tree.config / "secrets.sops.yaml")
        keys = {'["proxmox_api_token_id"]', '["proxmox_api_token_secret"]'}
        assert {c["argv"][2] for c in sops_calls} == keys, name
        for c in sops_calls:
            assert c["argv"] == ["--decrypt", "--extract", c["argv"][2], secrets_file], name
    else:
        assert sops_calls == [], name
    for c in calls:
        if c["tool"] == "rm":
            assert c["argv"] == ["-f", "tfplan"] and name.startswith("tofu:"), name
            assert Path(c["cwd"]) == tree.out / "infrastructure" / "tofu"
    everything = json.dumps(calls) + result.stdout + result.stderr
    assert "HOME-CANARY" not in everything.replace(tree.env["HOME"], "")  # no {{env "HOME"}}
    assert not list(tree.root.rglob("PWNED")) and not list(tree.out.rglob("PWNED")), name


def run_all(tree: Tree, token: tuple[str, str], sops: bool) -> list[str]:
    names = [n for n, t in tree.tasks.items() if not t.get("internal")]
    for name in names:
        check_task(tree, name, token, sops)
    return names
