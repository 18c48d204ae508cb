"""Issue 13's acceptance, with each host's OWN inputs: a cluster-template (77cc9f5) and a
talos-cluster (c999e05) repo, their root `cluster.yaml` + `nodes.yaml` (the hosts'
`.github/tests` configs, in the host dialect, plus the keys a user adds per the README), run
through the README's per-host steps verbatim, then `task --list`, `task configure`, the
working directory of every clustergen task, `check` in a fresh clone, the pre-commit hook and
`plan`.

The README's command blocks are executed line by line (comments dropped), so this test fails
when the README drifts. Where a step is a user edit, the test makes exactly that edit:
`$EDITOR cluster.yaml nodes.yaml` runs EDITOR-STAND-IN (below), which writes the keys the
README's step 2 names; the YAML blocks (the root Taskfile's include, the `:configure` line) are
pasted where the README says.

Real tools: go-task, cue, makejinja, sops, jq, yq, kubeconform, git, pre-commit, clustergen.
Stand-ins, each named: those of tests/host_repos.py (the hosts' makejinja plugin, talhelper,
cloudflare-tunnel.json, kubeconform.sh, the empty bootstrap/ and kubernetes/, and for
talos-cluster its missing Taskfiles, generate_jsonschema.py, re-keyed .sops.yaml,
infrastructure/secrets.sops.yaml and OpenTofu templates); EDITOR-STAND-IN; and, for the
working-directory check only, tests/taskfile_harness.py's recording stand-ins for tofu, packer,
curl, clustergen, ... (the Proxmox API is not reachable here).
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from generator import secrets
from generator.options import Options
from generator.pipeline import render_tree
from helpers import host_repos
from helpers.paths import ROOT, TASKFILE, TOOLS_DIR
from helpers.precommit import pre_commit, readme_hook_config, snapshot
from helpers.taskfile_harness import standin_tree
from helpers.tools import VENV_BIN, child_env, run_captured, stand_in, tool

README = (ROOT / "README.md").read_text(encoding="utf-8")
CT, TC = host_repos.CLUSTER_TEMPLATE, host_repos.TALOS_CLUSTER
DIALECT = {CT: "cluster-template", TC: "talos-cluster"}
HEADING = {
    CT: "### Adding clustergen to a cluster-template repo\n",
    TC: "### Adding clustergen to a talos-cluster repo\n",
}
# Where the host's root Taskfile includes clustergen's Taskfile.
NAMESPACE = {CT: "infrastructure", TC: "infra"}
TOKEN = ("clustergen@pve!acceptance", "0b6f1f0e-1111-2222-3333-444455556666")
# The README's step 2: the keys a user adds (clustergen's for cluster-template; the host's own
# Proxmox keys for talos-cluster), and per node (cluster-template) cores / memory / vm_id.
ADDED_KEYS = {
    CT: "proxmox_endpoint: https://pve.example.com:8006\nproxmox_node: pve\n",
    TC: (
        "proxmox_api_url: https://pve.example.com:8006/api2/json\nproxmox_node: pve\n"
        f'proxmox_api_token_id: "{TOKEN[0]}"\nproxmox_api_token_secret: "{TOKEN[1]}"\n'
    ),
}
CT_NODE_KEYS = {"k8s-0": "    cores: 4\n    memory: 8192\n    vm_id: 300\n",
                "k8s-1": "    cores: 4\n    memory: 16384\n    vm_id: 301\n"}  # fmt: skip
EDITOR = """#!/bin/sh
# EDITOR-STAND-IN: the user's edit of each file it is given, prepared by the test in $EDITS.
for f in "$@"; do cp "$EDITS/$(basename "$f")" "$f"; done
"""


def section(host: str) -> str:
    return README.split(HEADING[host], 1)[1].split("\n### ", 1)[0]


def blocks(text: str, lang: str) -> list[str]:
    """The fenced blocks of a language, without the indentation of a list item's fence."""
    found = re.finditer(rf"^( *)```{lang}\n(.*?)^\1```", text, flags=re.M | re.S)
    return [re.sub(rf"^{m.group(1)}", "", m.group(2), flags=re.M) for m in found]


def readme_commands(host: str) -> list[str]:
    """The section's shell block, one command a line, without the trailing comments."""
    (block,) = blocks(section(host), "sh")
    commands = [line.split("  #", 1)[0].strip() for line in block.splitlines()]
    return [c for c in commands if c]


def readme_yaml(host: str) -> list[str]:
    return [block.rstrip("\n") for block in blocks(section(host), "yaml")]


@pytest.fixture(scope="module")
def hook_source(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, Path]:
    """This working tree as the hook's repo (helpers.precommit's snapshot), and one
    PRE_COMMIT_HOME for the module, so pre-commit installs the hook's environment once."""
    base = tmp_path_factory.mktemp("hook")
    source, sha = snapshot(base)
    return source, sha, base / "pre-commit-home"


@pytest.fixture
def env(tmp_path: Path) -> Iterator[dict[str, str]]:
    stand_ins = tmp_path / "stand-ins"
    host_repos.talhelper(stand_ins)
    stand_in(stand_ins / "editor", EDITOR)
    path = [str(stand_ins), str(TOOLS_DIR / "bin"), str(VENV_BIN)]
    yield child_env(
        tmp_path / "home",
        drop=("SOPS_", "TF_VAR", "PKR_VAR"),
        PATH=os.pathsep.join([*path, os.environ.get("PATH", "/usr/bin:/bin")]),
        NO_COLOR="1",
        EDITOR=str(stand_ins / "editor"),
        EDITS=str(tmp_path / "edits"),
        PIP_DISABLE_PIP_VERSION_CHECK="1",
    )


def run(
    env: dict[str, str], cwd: Path, *args: str, timeout: int = 180
) -> subprocess.CompletedProcess[str]:
    return run_captured(args, cwd=cwd, env=env, timeout=timeout)


def prepare_edits(repo: Path, host: str, edits: Path) -> None:
    """What the user types into cluster.yaml and nodes.yaml at the README's step 2."""
    edits.mkdir()
    cluster = (repo / "cluster.yaml").read_text()
    (edits / "cluster.yaml").write_text(cluster.rstrip("\n") + "\n" + ADDED_KEYS[host])
    nodes = (repo / "nodes.yaml").read_text()
    if host == CT:
        for name, keys in CT_NODE_KEYS.items():
            at = nodes.index(f"  - name: {name}\n")
            at = nodes.index("\n", nodes.index("mac_addr:", at)) + 1
            nodes = nodes[:at] + keys + nodes[at:]
    (edits / "nodes.yaml").write_text(nodes)


def add_include(repo: Path, line: str) -> None:
    """The README's include line, under the root Taskfile's `includes:` (beside the host's)."""
    taskfile = repo / "Taskfile.yaml"
    text = taskfile.read_text()
    anchor = "  template: .taskfiles/template\n"
    assert anchor in text
    taskfile.write_text(text.replace(anchor, anchor + line + "\n", 1))


@pytest.fixture(params=[CT, TC], ids=["cluster-template", "talos-cluster"])
def host_repo(
    request: pytest.FixtureRequest, reference_dir: Path, tmp_path: Path, env: dict[str, str]
) -> tuple[str, Path]:
    """The host repo after the README's steps, committed (the inputs stay git-ignored)."""
    host: str = request.param
    for name in ("task", "cue", "makejinja", "sops", "jq", "yq", "kubeconform"):
        tool(name)
    repo = host_repos.build(reference_dir, host, tmp_path / "repo")
    host_repos.configure_stand_ins(repo, host)
    if host == TC:
        host_repos.tofu_templates(repo)
    host_repos.git(repo, "add", "-A")
    host_repos.git(repo, "commit", "-qm", "host stand-ins")
    prepare_edits(repo, host, tmp_path / "edits")

    for command in readme_commands(host):
        done = run(env, repo, "bash", "-c", command)
        assert done.returncode == 0, (command, done.stdout, done.stderr)
        if command == "clustergen validate":
            assert f"({DIALECT[host]} dialect)" in done.stdout, done.stdout
        if command == "clustergen init":
            assert "// BEGIN clustergen" in done.stdout  # the CUE change, as a diff
    assert (repo / TASKFILE).is_file() and (repo / "infrastructure/tofu/nodes.tf").is_file()

    yaml_blocks = readme_yaml(host)
    if host == CT:
        include, configure = yaml_blocks
        add_include(repo, include)
    else:
        (configure,) = yaml_blocks
        assert (repo / "infrastructure/tofu/backend.tf").is_file()  # kept, beside clustergen's
    host_repos.add_to_configure(repo / ".taskfiles/template/Taskfile.yaml", configure)
    host_repos.git(repo, "add", "-A")
    host_repos.git(repo, "commit", "-qm", "clustergen")
    return host, repo


def task_list_and_configure(host: str, repo: Path, env: dict[str, str]) -> None:
    tasks = YAML(typ="safe").load((repo / TASKFILE).read_text())["tasks"]
    public = [name for name, task in tasks.items() if not task.get("internal")]
    listed = run(env, repo, "task", "--list")
    assert listed.returncode == 0, listed.stderr
    assert "* configure:" in listed.stdout
    for name in public:
        assert f"* {NAMESPACE[host]}:{name}:" in listed.stdout, name

    # A user change, then the host's `task configure` with the README's line: the host's
    # validation and render, then clustergen's.
    nodes = repo / "nodes.yaml"
    if host == CT:
        nodes.write_text(nodes.read_text().replace("memory: 16384", "memory: 24576"))
    else:
        nodes.write_text(nodes.read_text() + "    vm_memory: 24576\n")
    done = run(env, repo, "task", "--yes", "configure", timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    for step in ("cue vet", "makejinja", "kubeconform.sh", "talhelper", "clustergen -C"):
        assert step in done.stderr, (step, done.stderr)
    assert done.stderr.index("talhelper") < done.stderr.index("clustergen -C")
    assert (repo / "talos/talconfig.yaml").is_file()  # the host's render
    assert "updated infrastructure/tofu/terraform.tfvars" in done.stdout  # clustergen's
    assert "24576" in (repo / "infrastructure/tofu/terraform.tfvars").read_text()

    # An invalid host-dialect value stops configure with clustergen's diagnostic, at its line.
    nodes.write_text(nodes.read_text().replace("address: 10.10.10.101", "address: 10.0.0.101"))
    bad = run(env, repo, "task", "--yes", "configure", timeout=300)
    assert bad.returncode != 0
    assert "nodes.yaml:" in bad.stderr and "outside node_cidr" in bad.stderr, bad.stderr
    nodes.write_text(nodes.read_text().replace("address: 10.0.0.101", "address: 10.10.10.101"))


def every_task_runs_where_it_must(host: str, repo: Path, tmp_path: Path) -> None:
    """Each public task of clustergen's Taskfile, run by go-task through the host's root
    Taskfile; the recording stand-ins log every tool's argv and working directory."""
    tmp_path.mkdir()
    key = repo / "age.key"
    os.environ["SOPS_AGE_KEY_FILE"] = str(key)
    try:
        rendered = render_tree(Options(repo))
    finally:
        del os.environ["SOPS_AGE_KEY_FILE"]
    # talos-cluster has no secrets.sops.yaml: the tasks take the token from the environment.
    extra = {
        "TF_VAR_proxmox_api_token": f"{TOKEN[0]}={TOKEN[1]}",
        "PKR_VAR_proxmox_token_id": TOKEN[0],
        "PKR_VAR_proxmox_token_secret": TOKEN[1],
    }
    tree = standin_tree(
        tmp_path, rendered.files, rendered.context, root=repo, taskfile=repo / "Taskfile.yaml",
        config=repo, out=repo, namespace=f"{NAMESPACE[host]}:",
        extra_env=extra if host == TC else None,
    )  # fmt: skip
    infra = repo / "infrastructure"
    where = {"tofu": infra / "tofu", "packer": infra / "packer"}
    ran: set[str] = set()
    decrypted: set[str] = set()
    for name, task in tree.tasks.items():
        if task.get("internal") or name in ("tofu:apply", "tofu:destroy"):
            continue  # apply needs a plan; destroy is run below
        tree.clear()
        done = tree.run(name)
        assert done.returncode == 0, (name, done.stdout, done.stderr)
        for call in tree.calls():
            ran.add(call["tool"])
            if call["tool"] in where:
                assert Path(call["cwd"]) == where[call["tool"]], (name, call)
            if call["tool"] == "clustergen":
                assert call["argv"][:2] == ["-C", str(repo)], (name, call)
            if call["tool"] == "sops":  # the host's key, as its root Taskfile sets it
                decrypted.add(call["argv"][-1])
                assert call["env"].get("SOPS_AGE_KEY_FILE") == str(key), (name, call)
    assert {"tofu", "packer", "curl", "clustergen"} <= ran, ran
    tree.clear()
    assert tree.run("tofu:destroy").returncode == 0
    assert {Path(c["cwd"]) for c in tree.calls() if c["tool"] == "tofu"} == {infra / "tofu"}
    if host == CT:  # the tasks decrypt the token from the secrets file init made, at the root
        assert str(repo / secrets.SECRETS_FILE) in decrypted, decrypted


def drifted_nodes(host: str, text: str) -> str:
    """nodes.yaml with k8s-1 (the last node) resized and a node k8s-2 added, in the host's
    keys."""
    head, k8s_1 = text.split("  - name: k8s-1\n")
    if host == CT:
        assert "    cores: 4\n" in k8s_1
        k8s_1 = k8s_1.replace("    cores: 4\n", "    cores: 8\n")
    else:
        k8s_1 += "    vm_cores: 8\n"
    return (
        head
        + "  - name: k8s-1\n"
        + k8s_1
        + (
            "  - name: k8s-2\n    address: 10.10.10.102\n    controller: false\n"
            "    disk: /dev/sdfake\n    mac_addr: 00:00:00:00:00:02\n"
            '    schematic_id: "376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba"\n'
        )
    )


def fresh_clone_check_and_plan(host: str, repo: Path, env: dict[str, str], tmp_path: Path) -> None:
    # The README's "Inputs in git", second setup: the Proxmox token moves to the encrypted
    # secrets.sops.yaml (talos-cluster; cluster-template's init made that file already), then
    # the user deletes the /cluster.yaml and /nodes.yaml lines from .gitignore and commits.
    # (The hosts' test configs' cloudflare_token is the placeholder "fake".)
    if host == TC:
        moved = run(env, repo, "clustergen", "init", "--move-secrets")
        assert moved.returncode == 0, moved.stdout + moved.stderr
        assert TOKEN[1] not in (repo / "cluster.yaml").read_text()
    gitignore = repo / ".gitignore"
    lines = gitignore.read_text().splitlines(keepends=True)
    gitignore.write_text("".join(x for x in lines if x not in ("/cluster.yaml\n", "/nodes.yaml\n")))
    rendered = run(env, repo, "clustergen", "render")
    assert rendered.returncode == 0, rendered.stderr
    host_repos.git(repo, "add", "-A")
    host_repos.git(repo, "commit", "-qm", "inputs in git")

    tmp_path.mkdir()
    clone = tmp_path / "clone"
    host_repos.git(tmp_path, "clone", "-q", str(repo), str(clone))
    assert not (clone / "age.key").exists()  # CI: no key
    checked = run(env, clone, "clustergen", "--format", "github", "check")
    assert checked.returncode == 0, checked.stdout + checked.stderr

    nodes = clone / "nodes.yaml"
    nodes.write_text(drifted_nodes(host, nodes.read_text()))
    drift = run(env, clone, "clustergen", "--format", "github", "check")
    assert drift.returncode == 1, drift.stdout + drift.stderr
    # One ::error per drifted file (validation warnings, e.g. k8s-1's SecureBoot, stay
    # ::warning).
    output = (drift.stdout + drift.stderr).splitlines()
    errors = [x for x in output if x.startswith("::error")]
    files = [a.split("::", 2)[1].split(",")[0] for a in errors]
    assert errors and all("(drift)" in a for a in errors), errors
    assert len(files) == len(set(files))
    assert "error file=infrastructure/tofu/terraform.tfvars" in files, errors

    text_plan = run(env, clone, "clustergen", "plan")
    assert text_plan.returncode == 0, text_plan.stderr
    rows = {line.split()[0]: line.split() for line in text_plan.stdout.splitlines() if line}
    assert rows["add"][1] == "k8s-2" and rows["resize"][1] == "k8s-1", text_plan.stdout
    assert "4 -> 8" in text_plan.stdout
    markdown = run(env, clone, "clustergen", "plan", "--format", "markdown")
    assert markdown.returncode == 0, markdown.stderr
    table = [
        line.split(" | ")[:2] for line in markdown.stdout.splitlines() if line.startswith("| ")
    ]
    assert sorted(table[1:]) == [["| add", "k8s-2"], ["| resize", "k8s-1"]], markdown.stdout


def pre_commit_hook(
    host: str, repo: Path, env: dict[str, str], hook_source: tuple[Path, str, Path]
) -> None:
    """The README's hook config (its repo and rev: this working tree's snapshot). The inputs
    are at the root, so without its `args: [-C, provision]` line, as its comment says
    (`-C provision` is test_precommit's); try-repo, which passes no args, fits the root."""
    source, sha, home = hook_source
    config = readme_hook_config(source, sha)
    config = "".join(
        x for x in config.splitlines(keepends=True) if "args: [-C, provision]" not in x
    )
    (repo / ".pre-commit-config.yaml").write_text(config)
    host_repos.git(repo, "add", ".pre-commit-config.yaml")
    hook_env = {**env, "PRE_COMMIT_HOME": str(home)}

    def hook(*args: str) -> subprocess.CompletedProcess[str]:
        return run(hook_env, repo, pre_commit(), *args, timeout=600)

    only_host = hook("run", "clustergen", "--files", "makejinja.toml", "Taskfile.yaml")
    assert only_host.returncode == 0 and "(no files to check)Skipped" in only_host.stdout
    clean = hook("run", "clustergen", "--all-files")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    nodes = repo / "nodes.yaml"  # git-ignored: the hook runs for it with --files
    nodes.write_text(nodes.read_text().replace("memory: 24576", "memory: 20480"))
    changed = hook("run", "clustergen", "--files", "nodes.yaml")
    assert changed.returncode == 1, changed.stdout + changed.stderr
    assert "updated infrastructure/tofu/terraform.tfvars" in changed.stdout
    again = hook("run", "clustergen", "--files", "nodes.yaml")
    assert again.returncode == 0, again.stdout + again.stderr
    host_repos.git(repo, "add", "-A")
    tried = hook("try-repo", str(source), "clustergen", "--ref", sha, "--all-files")
    assert tried.returncode == 0, tried.stdout + tried.stderr
    assert "Passed" in tried.stdout


def test_acceptance(
    host_repo: tuple[str, Path],
    env: dict[str, str],
    tmp_path: Path,
    hook_source: tuple[Path, str, Path],
) -> None:
    """One repo per host through every step, in the order a user meets them."""
    pre_commit()  # installed (skip, or in CI fail, like every tool)
    host, repo = host_repo
    task_list_and_configure(host, repo, env)
    every_task_runs_where_it_must(host, repo, tmp_path / "tasks")
    host_repos.git(repo, "add", "-A")
    host_repos.git(repo, "commit", "-qm", "configure")
    pre_commit_hook(host, repo, env, hook_source)
    fresh_clone_check_and_plan(host, repo, env, tmp_path / "ci")
