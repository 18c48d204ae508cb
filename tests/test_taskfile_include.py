"""The rendered Taskfile finds everything from its own directory: included from parent
Taskfiles at different depths, through a nested include, with the output root elsewhere than
the config directory and from copies of the host repos' Taskfiles, each task works in and reads
the files of its own tree, and its messages name tasks as the user calls them. tfplan, which
holds the API token, is gone after every way tofu:apply ends."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from generator.options import Options
from generator.pipeline import render_tree
from helpers.data import write_tree
from helpers.sops import encrypt_secrets
from helpers.taskfile_harness import (
    EXAMPLE,
    NS,
    TOKEN_SECRET,
    Tree,
    make_tree,
    parent_taskfile,
    run_all,
    standin_tree,
)
from helpers.tools import tool

# --- B: included from anywhere ---------------------------------------------------------------


def sops_tree(tmp_path: Path, *, out_rel: str, root_rel: str, parent_extra: str = "") -> Tree:
    """multi-host rendered with a secrets file into tmp/<out_rel> (config dir tmp/cfg) and a
    parent Taskfile in tmp/<root_rel> that includes it."""
    config = tmp_path / "cfg"
    config.mkdir()
    for name in ("cluster.yaml", "nodes.yaml"):
        (config / name).write_bytes((EXAMPLE / name).read_bytes())
    key = tmp_path / "age.key"
    encrypt_secrets(config, "clustergen@pve!t", TOKEN_SECRET, key=key, rules=True)
    os.environ["SOPS_AGE_KEY_FILE"] = str(key)
    try:
        out = (tmp_path / out_rel).resolve()
        out.mkdir(parents=True, exist_ok=True)
        rendered = render_tree(Options(config, out))
    finally:
        del os.environ["SOPS_AGE_KEY_FILE"]
    root = tmp_path / root_rel
    root.mkdir(parents=True, exist_ok=True)
    env = {"SOPS_AGE_KEY_FILE": str(key)}
    if out != config:  # rendered with -o elsewhere: say where the config directory is
        env["CLUSTERGEN_CONFIG_DIR"] = str(config)
    return make_tree(
        tmp_path / "run", rendered.files, rendered.context, config=config, out=out, root=root,
        extra_env=env, parent_extra=parent_extra,
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
        # Output root elsewhere than the config directory (CLUSTERGEN_CONFIG_DIR says where).
        ("deep/er/tree", "deep"),
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
    encrypt_secrets(config, "clustergen@pve!t", TOKEN_SECRET, key=key, rules=True)
    # cluster-template's Taskfile sets SOPS_CONFIG to the repo's .sops.yaml, which its
    # makejinja renders; here a copy of clustergen's rules stands for it.
    (repo / ".sops.yaml").write_bytes((config / ".sops.yaml").read_bytes())
    os.environ["SOPS_AGE_KEY_FILE"] = str(key)
    try:
        rendered = render_tree(Options(config))
    finally:
        del os.environ["SOPS_AGE_KEY_FILE"]
    write_tree(config, rendered.files)
    (config / "management.kubeconfig").write_text("")
    tree = standin_tree(
        tmp_path, rendered.files, rendered.context, root=repo, taskfile=repo / "Taskfile.yaml",
        config=config, out=config, namespace=f"{namespace}:",
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
