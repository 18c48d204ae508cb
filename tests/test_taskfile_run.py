"""Every task of the rendered Taskfile, run with the real go-task (and the real sops) against
stand-in tools that record what they got.

- No input value reaches a Taskfile where go-task or the shell could read it as syntax: every
  string input the schemas declare is set to values holding go-task templates, shell
  metacharacters and Unicode controls (as far as validation lets them through; a second run
  bypasses validation and puts them into every string of the model), then every task runs and
  only the intended tools get exactly the intended argv and environment.
- Every path is relative to the included Taskfile itself: included from parent Taskfiles at
  different depths (and through a nested include), each task works in and reads the files of
  its own tree, and its messages name tasks as the user calls them.
- tfplan, which holds the API token, is gone after every way tofu:apply ends.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from ruamel.yaml import YAML

from conftest import ROOT, tool
from generator import model, render, settings
from generator.commands.init import sops_config
from generator.pipeline import render_tree

TASKFILE = ".taskfiles/infrastructure/Taskfile.yaml"
EXAMPLE = ROOT / "examples" / "multi-host"  # every provisioner, capi included
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


def yaml_dump(data: Any, path: Path) -> None:
    with path.open("w", encoding="utf-8") as fh:
        YAML().dump(data, fh)


def plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


# --- the string inputs, from the schemas -----------------------------------------------------


def string_inputs(schema_name: str) -> list[tuple[tuple[str | int, ...], dict[str, Any]]]:
    """(path, schema) of every string the schema lets a user write (`0`: the first list
    element, e.g. the first node)."""
    schema = json.loads((ROOT / "schemas" / f"{schema_name}.schema.json").read_text())
    defs = schema.get("$defs", schema.get("definitions", {}))
    found: dict[str, tuple[tuple[str | int, ...], dict[str, Any]]] = {}

    def walk(node: Mapping[str, Any], path: tuple[str | int, ...]) -> None:
        if "$ref" in node:
            node = {**defs[node["$ref"].split("/")[-1]], **node}
            node.pop("$ref")
        kinds = node.get("type")
        kinds = kinds if isinstance(kinds, list) else [kinds]
        if "string" in kinds and "enum" not in node:
            found[str(path)] = (path, {**node, "type": "string"})
        for key, sub in node.get("properties", {}).items():
            walk(sub, (*path, key))
        if isinstance(node.get("items"), Mapping):
            walk(node["items"], (*path, 0))
        for key in ("anyOf", "oneOf", "allOf"):
            for sub in node.get(key, []):
                walk(sub, path)

    walk(schema, ())
    return [found[k] for k in sorted(found)]


def get_in(doc: Any, path: tuple[str | int, ...]) -> Any:
    for part in path:
        if isinstance(part, int):
            if not isinstance(doc, list) or not doc:
                return None
        elif not isinstance(doc, Mapping) or part not in doc:
            return None
        doc = doc[part]
    return doc


def set_in(doc: Any, path: tuple[str | int, ...], value: Any) -> None:
    for i, part in enumerate(path[:-1]):
        nxt: Any = [] if isinstance(path[i + 1], int) else {}
        if isinstance(part, int):
            if not doc:
                doc.append(nxt)
        elif part not in doc or doc[part] is None:
            doc[part] = nxt
        doc = doc[part]
    last = path[-1]
    if isinstance(last, int):
        if doc:
            doc[last] = value
        else:
            doc.append(value)
    else:
        doc[last] = value


def shapes(path: tuple[str | int, ...], original: str) -> list[str]:
    """Ways to put fragments ("{f}") into a value that must keep its form."""
    generic = [original + "{f}", "{f}" + original, original[:1] + "{f}" + original[1:]]
    return (ENDPOINT_SHAPES if path == ("proxmox_endpoint",) else []) + generic


def valid(config: Path, cluster: Any, nodes: Any) -> bool:
    from generator import inputs
    from generator.errors import InputError

    yaml_dump(cluster, config / "cluster.yaml")
    yaml_dump(nodes, config / "nodes.yaml")
    try:
        inputs.read(config)
    except InputError:
        return False
    return True


def hostile_inputs(config: Path) -> tuple[dict[str, Any], dict[str, Any], dict[str, list[str]]]:
    """cluster.yaml and nodes.yaml with every string input holding as many hostile fragments
    as validation lets through; and per input the fragments that got through."""
    from jsonschema import Draft202012Validator

    cluster = plain(YAML(typ="safe").load((EXAMPLE / "cluster.yaml").read_text()))
    nodes = plain(YAML(typ="safe").load((EXAMPLE / "nodes.yaml").read_text()))
    accepted: dict[str, list[str]] = {}
    for name, doc in (("cluster", cluster), ("nodes", nodes)):
        for path, schema in string_inputs(name):
            checker = Draft202012Validator(schema)
            before = get_in(doc, path)
            original = before if isinstance(before, str) else "x"
            best: tuple[str, list[str]] | None = None
            for shape in shapes(path, original):
                # The schema of the key first (cheap), then the whole of validation, adding
                # one fragment at a time.
                kept: list[str] = []
                for fragment in FRAGMENTS:
                    value = shape.replace("{f}", "".join([*kept, fragment]))
                    if not checker.is_valid(value):
                        continue
                    set_in(doc, path, value)
                    if valid(config, cluster, nodes):
                        kept.append(fragment)
                if kept and (best is None or len(kept) > len(best[1])):
                    best = (shape.replace("{f}", "".join(kept)), kept)
            if best is not None:
                set_in(doc, path, best[0])
                accepted[f"{name}:{'.'.join(map(str, path))}"] = best[1]
            elif before is None:
                _drop(doc, path)
            else:
                set_in(doc, path, before)
    assert valid(config, cluster, nodes), "the hostile values together must still validate"
    return cluster, nodes, accepted


def _drop(doc: Any, path: tuple[str | int, ...]) -> None:
    parent = get_in(doc, path[:-1])
    if isinstance(parent, dict):
        parent.pop(path[-1], None)
    elif isinstance(parent, list) and parent:
        parent.pop()


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
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines()]

    def clear(self) -> None:
        self.log.unlink(missing_ok=True)


def encrypt(config: Path, key_file: Path, token_id: str, secret: str) -> None:
    from pyrage import x25519

    identity = x25519.Identity.generate()
    key_file.write_text(f"{identity}\n")
    plaintext = json.dumps({"proxmox_api_token_id": token_id, "proxmox_api_token_secret": secret})
    encrypted = subprocess.run(
        [
            *(tool("sops"), "encrypt", "--age", str(identity.to_public())),
            *("--input-type", "json", "--output-type", "yaml", "/dev/stdin"),
        ],
        input=plaintext,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    (config / "secrets.sops.yaml").write_text(encrypted)
    (config / ".sops.yaml").write_bytes(sops_config(str(identity.to_public())))


def write_tree(files: Mapping[str, bytes], out: Path) -> None:
    for path, data in files.items():
        (out / path).parent.mkdir(parents=True, exist_ok=True)
        (out / path).write_bytes(data)


def standins(bin_dir: Path) -> None:
    bin_dir.mkdir(parents=True)
    text = STANDIN.format(python=sys.executable, watch=TOKEN_ENV, sops=tool("sops"))
    for name in TOOLS:
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)


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
    write_tree(files, out)
    (config / "management.kubeconfig").write_text("")
    bin_dir = base / "bin"
    standins(bin_dir)
    home = base / "HOME-CANARY"
    home.mkdir()
    include = os.path.relpath(out / TASKFILE, root)
    parent = parent_taskfile(root, {NS: include}, parent_extra)
    env = {
        "PATH": str(bin_dir),
        "HOME": str(home),
        "NO_COLOR": "1",
        "STANDIN_LOG": str(base / "calls.jsonl"),
        "ANSWER_ID": context["schematic"]["id"],
        **extra_env,
    }
    tasks = YAML(typ="safe").load(files[TASKFILE])["tasks"]
    return Tree(root, parent, config, out, f"{NS}:", env, base / "calls.jsonl", context, tasks)


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
                    *("init", "--infrastructure=proxmox", "--ipam=in-cluster"),
                    *("--bootstrap=talos", "--control-plane=talos"),
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


# --- A: hostile values ------------------------------------------------------------------------

HOSTILE_TOKEN_ID = 'a\'"{{.ROOT_DIR}}$(touch${IFS}PWNED);|`touch${IFS}PWNED`\\{{env"HOME"}}@pve!t'
TOKEN_SECRET = str(uuid.UUID(int=0x0B6F1F0E111122223333444455556666))


@pytest.mark.parametrize("with_sops", [False, True], ids=["env-token", "sops-token"])
def test_hostile_inputs_reach_no_tool_as_syntax(
    with_sops: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "repo"
    config.mkdir()
    _, _, accepted = hostile_inputs(config)
    # What validation let through (today the endpoint's zone ID takes go-task and shell
    # syntax); however little that is, the token ID always is hostile, and the unvalidated
    # test below puts the fragments into every string of the model.
    print(json.dumps(accepted, indent=1))
    secrets_schema = json.loads((ROOT / "schemas/secrets.schema.json").read_text())
    token = {"proxmox_api_token_id": HOSTILE_TOKEN_ID, "proxmox_api_token_secret": TOKEN_SECRET}
    jsonschema.validate(token, secrets_schema)
    extra: dict[str, str] = {}
    if with_sops:
        key = tmp_path / "age.key"
        encrypt(config, key, HOSTILE_TOKEN_ID, TOKEN_SECRET)
        monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(key))
        extra["SOPS_AGE_KEY_FILE"] = str(key)
    else:
        extra = {
            "TF_VAR_proxmox_api_token": f"{HOSTILE_TOKEN_ID}={TOKEN_SECRET}",
            "PKR_VAR_proxmox_token_id": HOSTILE_TOKEN_ID,
            "PKR_VAR_proxmox_token_secret": TOKEN_SECRET,
            "PROXMOX_API_TOKEN_ID": HOSTILE_TOKEN_ID,
            "PROXMOX_API_TOKEN_SECRET": TOKEN_SECRET,
            "PROXMOX_TOKEN": HOSTILE_TOKEN_ID,
            "PROXMOX_SECRET": TOKEN_SECRET,
        }
    rendered = render_tree(config)
    tree = make_tree(
        tmp_path, rendered.files, rendered.context, config=config, out=config, root=config,
        extra_env=extra,
    )  # fmt: skip
    names = run_all(tree, (HOSTILE_TOKEN_ID, TOKEN_SECRET), with_sops)
    assert {"capi:apply", "tofu:provision", "ansible:destroy", "schematic:upload"} <= set(names)


def poison(value: Any, path: tuple[str | int, ...]) -> Iterator[tuple[tuple[str | int, ...], Any]]:
    """Every string leaf of value with its path."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, Mapping):
        for k, v in value.items():
            yield from poison(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from poison(v, (*path, i))


def hostile_strings(doc: Any, parent_key: Any) -> Iterator[tuple[Any, str]]:
    """(key it is the value of, string) of every string in doc that holds a PAYLOAD part."""
    if isinstance(doc, str):
        if "touch${IFS}PWNED" in doc:
            yield parent_key, doc
    elif isinstance(doc, Mapping):
        for k, v in doc.items():
            yield from hostile_strings(v, k)
    elif isinstance(doc, list):
        for v in doc:
            yield from hostile_strings(v, parent_key)


def unvalidated_context(tmp_path: Path, has_secrets_file: bool) -> tuple[Mapping[str, Any], int]:
    """The model of multi-host with PAYLOAD added to every string input the model tolerates
    (addresses, CIDRs and the like must still parse)."""
    cluster = plain(YAML(typ="safe").load((EXAMPLE / "cluster.yaml").read_text()))
    nodes = plain(YAML(typ="safe").load((EXAMPLE / "nodes.yaml").read_text()))

    def build() -> Mapping[str, Any]:
        return model.build(cluster, nodes, has_secrets_file=has_secrets_file)

    poisoned = 0
    for doc in (cluster, nodes):
        for path, value in list(poison(doc, ())):
            if path and path[0] == "provisioners":
                continue
            set_in(doc, path, value + PAYLOAD)
            try:
                build()
                poisoned += 1
            except Exception:  # the model cannot take it (an address, a version): keep it valid
                set_in(doc, path, value)
    return build(), poisoned


@pytest.mark.parametrize("with_sops", [False, True], ids=["env-token", "sops-token"])
def test_templates_keep_hostile_values_inert_without_validation(
    with_sops: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Defence in depth: even values that validation would reject stay data."""
    config = tmp_path / "repo"
    config.mkdir()
    context, poisoned = unvalidated_context(tmp_path, with_sops)
    assert poisoned >= 10
    # The hostile text really is in what the Taskfile uses.
    assert PAYLOAD in context["proxmox_endpoint"] or PAYLOAD in context["capi"]["namespace"]
    assert PAYLOAD in context["ansible"]["destroy_prompt"]
    files = render.render(context, settings.load())
    # Where the values are in the Taskfile: only as a `ref` to a Go string constant or as the
    # constant of a text field, never in text that go-task would template.
    places = list(hostile_strings(YAML(typ="safe").load(files[TASKFILE]), None))
    assert places
    for parent_key, text in places:
        assert parent_key == "ref" or (text.startswith('{{"') and text.endswith('"}}')), text
    extra: dict[str, str]
    if with_sops:
        key = tmp_path / "age.key"
        encrypt(config, key, HOSTILE_TOKEN_ID, TOKEN_SECRET)
        extra = {"SOPS_AGE_KEY_FILE": str(key)}
    else:
        extra = {
            "TF_VAR_proxmox_api_token": f"{HOSTILE_TOKEN_ID}={TOKEN_SECRET}",
            "PKR_VAR_proxmox_token_id": HOSTILE_TOKEN_ID,
            "PKR_VAR_proxmox_token_secret": TOKEN_SECRET,
            "PROXMOX_API_TOKEN_ID": HOSTILE_TOKEN_ID,
            "PROXMOX_API_TOKEN_SECRET": TOKEN_SECRET,
            "PROXMOX_TOKEN": HOSTILE_TOKEN_ID,
            "PROXMOX_SECRET": TOKEN_SECRET,
        }
    tree = make_tree(
        tmp_path, files, context, config=config, out=config, root=config, extra_env=extra
    )
    run_all(tree, (HOSTILE_TOKEN_ID, TOKEN_SECRET), with_sops)
    # Prompts show the values literally.
    result = tree.run("ansible:destroy")
    assert context["ansible"]["destroy_prompt"] in result.stdout + result.stderr


# --- B: included from anywhere ---------------------------------------------------------------


def sops_tree(tmp_path: Path, *, out_rel: str, root_rel: str, parent_extra: str = "") -> Tree:
    """multi-host rendered with a secrets file into tmp/<out_rel> (config dir tmp/cfg) and a
    parent Taskfile in tmp/<root_rel> that includes it."""
    config = tmp_path / "cfg"
    config.mkdir()
    for name in ("cluster.yaml", "nodes.yaml"):
        (config / name).write_bytes((EXAMPLE / name).read_bytes())
    key = tmp_path / "age.key"
    encrypt(config, key, "clustergen@pve!t", TOKEN_SECRET)
    os.environ["SOPS_AGE_KEY_FILE"] = str(key)
    try:
        out = (tmp_path / out_rel).resolve()
        out.mkdir(parents=True, exist_ok=True)
        rendered = render_tree(config, out)
    finally:
        del os.environ["SOPS_AGE_KEY_FILE"]
    root = tmp_path / root_rel
    root.mkdir(parents=True, exist_ok=True)
    return make_tree(
        tmp_path / "run", rendered.files, rendered.context, config=config, out=out, root=root,
        extra_env={"SOPS_AGE_KEY_FILE": str(key)}, parent_extra=parent_extra,
    )  # fmt: skip


# A host Taskfile with vars and env of the names the rendered Taskfile used to have (and
# talos-cluster's own infrastructure Taskfile has): they must not leak into clustergen's tasks.
HOST_VARS = """vars:
  SECRETS_FILE: /nonexistent/secrets.sops.yaml
  INFRA_DIR: /nonexistent/infrastructure
  INFRASTRUCTURE_DIR: /nonexistent/infrastructure
"""


@pytest.mark.parametrize(
    ("out_rel", "root_rel"),
    [
        ("cfg", "."),  # the tree one level below the parent Taskfile
        ("cfg", "cfg"),  # the parent Taskfile in the output root itself
        ("deep/er/tree", "deep"),  # output root elsewhere than the config directory
    ],
)
def test_every_task_works_in_its_own_tree_from_any_include_depth(
    out_rel: str, root_rel: str, tmp_path: Path
) -> None:
    (tmp_path / "run").mkdir()
    tree = sops_tree(tmp_path, out_rel=out_rel, root_rel=root_rel, parent_extra=HOST_VARS)
    names = run_all(tree, ("clustergen@pve!t", TOKEN_SECRET), True)
    assert len(names) >= 20
    # Where each task ran and what it read: the tree's own directories and files.
    tree.clear()
    assert tree.run("tofu:destroy").returncode == 0
    assert {Path(c["cwd"]) for c in tree.calls()} == {tree.out / "infrastructure/tofu"}


def test_messages_name_tasks_as_the_user_calls_them(tmp_path: Path) -> None:
    (tmp_path / "run").mkdir()
    tree = sops_tree(tmp_path, out_rel="cluster", root_rel=".")
    result = tree.run("tofu:apply")
    assert result.returncode != 0
    assert f"run task {NS}:tofu:plan first" in result.stderr
    # Included once more from an outer Taskfile: the full name has both namespaces.
    outer = tmp_path / "outer"
    outer.mkdir()
    parent_taskfile(outer, {"lab": os.path.relpath(tree.parent, outer)})
    tree.parent, tree.root, tree.namespace = outer / "Taskfile.yaml", outer, f"lab:{NS}:"
    result = tree.run("tofu:apply")
    assert f"run task lab:{NS}:tofu:plan first" in result.stderr, result.stderr
    tree.env["PATH"] = str(tmp_path / "nothing")
    result = tree.run("ansible:status")
    assert f"then task lab:{NS}:ansible:deps" in result.stderr, result.stderr


# --- C: tfplan holds the token ----------------------------------------------------------------


def test_tfplan_is_removed_on_every_exit_of_apply(tmp_path: Path) -> None:
    (tmp_path / "run").mkdir()
    tree = sops_tree(tmp_path, out_rel="cfg", root_rel=".")
    plan = tree.out / "infrastructure/tofu/tfplan"

    # Applied.
    assert tree.run("tofu:plan").returncode == 0 and plan.exists()
    assert tree.run("tofu:apply").returncode == 0
    assert not plan.exists()
    # Failed apply.
    assert tree.run("tofu:plan").returncode == 0 and plan.exists()
    tree.env["STANDIN_FAIL"] = "tofu apply"
    assert tree.run("tofu:apply").returncode != 0
    assert not plan.exists()
    # Failed plan (the stand-in writes the plan file, then fails) or init: no plan left
    # behind, not even an older one.
    for failing in ("tofu plan", "tofu init"):
        plan.write_text("older plan")
        tree.env["STANDIN_FAIL"] = failing
        assert tree.run("tofu:plan").returncode != 0
        assert not plan.exists(), failing
    del tree.env["STANDIN_FAIL"]
    # Declined (no --yes, no terminal: go-task cancels the confirmation).
    assert tree.run("tofu:plan").returncode == 0 and plan.exists()
    tree.clear()
    declined = subprocess.run(
        [tool("task"), "--taskfile", str(tree.parent), f"{NS}:tofu:apply"],
        cwd=tree.root,
        env=tree.env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert declined.returncode != 0 and "cancelled" in declined.stderr
    assert not plan.exists()
    assert not any(c["argv"][:1] == ["apply"] for c in tree.calls() if c["tool"] == "tofu")
    # Interrupted (Ctrl-C: SIGINT to the whole process group while tofu runs).
    assert tree.run("tofu:plan").returncode == 0 and plan.exists()
    tree.env["STANDIN_HANG"] = "tofu"
    proc = subprocess.Popen(
        [tool("task"), "--yes", "--taskfile", str(tree.parent), f"{NS}:tofu:apply"],
        cwd=tree.root,
        env=tree.env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 30
        while not any(c["argv"][:1] == ["apply"] for c in tree.calls() if c["tool"] == "tofu"):
            assert time.monotonic() < deadline, "tofu apply never started"
            time.sleep(0.1)
        os.killpg(proc.pid, signal.SIGINT)
        assert proc.wait(timeout=30) != 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert not plan.exists()


def test_factory_url_comes_from_the_model_and_talos_factory_overrides_it(tmp_path: Path) -> None:
    (tmp_path / "run").mkdir()
    tree = sops_tree(tmp_path, out_rel="cfg", root_rel=".")
    assert tree.run("schematic:upload").returncode == 0
    (call,) = tree.calls()
    assert call["argv"][-1] == f"{tree.context['taskfile']['factory_url']}/schematics"
    for how in ("env", "arg"):
        tree.clear()
        if how == "env":
            result = subprocess.run(
                [tool("task"), "--taskfile", str(tree.parent), f"{NS}:schematic:upload"],
                cwd=tree.root,
                env={**tree.env, "TALOS_FACTORY": "https://factory.lab.example"},
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
        else:
            result = tree.run("schematic:upload", "TALOS_FACTORY=https://factory.lab.example")
        assert result.returncode == 0, result.stderr
        (call,) = tree.calls()
        assert call["argv"][-1] == "https://factory.lab.example/schematics", how


# --- B, in the real host layouts ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "namespace"),
    [("cluster-template-77cc9f5", NS), ("talos-cluster-c999e05", "clustergen")],
)
def test_included_from_a_host_repo_every_task_stays_in_its_tree(
    host: str, namespace: str, reference_dir: Path, tmp_path: Path
) -> None:
    """A copy of the host's Taskfiles (and talos-cluster's own infrastructure/), clustergen
    rendered with -C provision, included with one line. The host's vars (talos-cluster:
    INFRASTRUCTURE_DIR, SECRETS_FILE of its own infrastructure Taskfile) do not reach
    clustergen's tasks; its SOPS_AGE_KEY_FILE (the repo's age.key) does, as intended."""
    import shutil

    source = reference_dir / "hosts" / host
    repo = tmp_path / "repo"
    repo.mkdir()
    for name in ("Taskfile.yaml", ".taskfiles", "infrastructure"):
        if (source / name).is_dir():
            shutil.copytree(source / name, repo / name)
        elif (source / name).is_file():
            shutil.copy(source / name, repo / name)
    for path in repo.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    root_taskfile = YAML(typ="safe").load((repo / "Taskfile.yaml").read_text())
    # The reference copy holds only some of the host's included Taskfiles: drop the others.
    missing = [k for k, v in root_taskfile["includes"].items() if not (repo / v).exists()]
    lines = [
        line
        for line in (repo / "Taskfile.yaml").read_text().splitlines()
        if not any(line.strip().startswith(f"{k}:") for k in missing)
    ]
    at = lines.index("includes:") + 1
    lines.insert(at, f"  {namespace}: provision/.taskfiles/infrastructure/Taskfile.yaml")
    (repo / "Taskfile.yaml").write_text("\n".join(lines) + "\n")

    config = repo / "provision"
    config.mkdir()
    for name in ("cluster.yaml", "nodes.yaml"):
        (config / name).write_bytes((EXAMPLE / name).read_bytes())
    key = repo / "age.key"  # where the host's Taskfile points SOPS_AGE_KEY_FILE
    encrypt(config, key, "clustergen@pve!t", TOKEN_SECRET)
    # cluster-template's Taskfile sets SOPS_CONFIG to the repo's .sops.yaml, which its
    # makejinja renders; here a copy of clustergen's rules stands for it.
    (repo / ".sops.yaml").write_bytes((config / ".sops.yaml").read_bytes())
    os.environ["SOPS_AGE_KEY_FILE"] = str(key)
    try:
        rendered = render_tree(config)
    finally:
        del os.environ["SOPS_AGE_KEY_FILE"]
    write_tree(rendered.files, config)
    (config / "management.kubeconfig").write_text("")
    bin_dir = tmp_path / "bin"
    standins(bin_dir)
    (tmp_path / "HOME-CANARY").mkdir()
    env = {
        "PATH": str(bin_dir),
        "HOME": str(tmp_path / "HOME-CANARY"),
        "NO_COLOR": "1",
        "STANDIN_LOG": str(tmp_path / "calls.jsonl"),
        "ANSWER_ID": rendered.context["schematic"]["id"],
    }
    tasks = YAML(typ="safe").load(rendered.files[TASKFILE])["tasks"]
    tree = Tree(
        repo, repo / "Taskfile.yaml", config, config, f"{namespace}:", env,
        tmp_path / "calls.jsonl", rendered.context, tasks,
    )  # fmt: skip
    run_all(tree, ("clustergen@pve!t", TOKEN_SECRET), True)
    tree.clear()
    assert tree.run("tofu:destroy").returncode == 0
    calls = tree.calls()
    assert {Path(c["cwd"]) for c in calls} == {config / "infrastructure/tofu"}
    assert {c["env"]["SOPS_AGE_KEY_FILE"] for c in calls if c["tool"] == "sops"} == {str(key)}


def test_a_token_sops_cannot_decrypt_stops_the_task_before_the_tool(tmp_path: Path) -> None:
    from pyrage import x25519

    (tmp_path / "run").mkdir()
    tree = sops_tree(tmp_path, out_rel="cfg", root_rel=".")
    wrong = tmp_path / "wrong.key"
    wrong.write_text(f"{x25519.Identity.generate()}\n")
    tree.env["SOPS_AGE_KEY_FILE"] = str(wrong)
    for name in ("tofu:plan", "packer:build", "ansible:status", "capi:apply"):
        tree.clear()
        result = tree.run(name)
        assert result.returncode != 0, name
        ran = [c["tool"] for c in tree.calls()]
        assert "sops" in ran, name
        assert not {"tofu", "packer", "ansible-playbook"} & set(ran[ran.index("sops") :]), name
        assert not any(c["tool"] == "kubectl" and "secret" in c["argv"] for c in tree.calls())
