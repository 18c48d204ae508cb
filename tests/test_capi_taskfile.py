"""The capi:* tasks of the Taskfile (templates/_partials/taskfile/capi.partial.j2), run with
real go-task where it matters; stub clusterctl/kubectl record the arguments they get.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft7Validator
from ruamel.yaml import YAML

from generator import derive, model, render, settings
from helpers.capi import (
    CLUSTER_YAML,
    TASKFILE,
    capi_only,
    capi_tasks,
    installed,
    read_inputs,
    recorder,
    render_context,
    run_task,
    stub,
    with_path,
)


@pytest.mark.parametrize("has_secrets_file", [False, True])
def test_capi_tasks(
    has_secrets_file: bool,
    example_copy: Callable[[str], Path],
    reference_dir: Path,
) -> None:
    cluster, nodes = read_inputs(example_copy("multi-host"))
    _, files = render_context(capi_only(cluster), nodes, has_secrets_file=has_secrets_file)
    tasks = capi_tasks(files)
    assert sorted(tasks) == ["capi:apply", "capi:delete", "capi:init", "capi:status"]
    assert all(t["desc"] for t in tasks.values())
    for task in tasks.values():
        assert task["env"]["KUBECONFIG"] == "{{.MGMT_KUBECONFIG}}"
        assert any('"$KUBECONFIG"' in p["sh"] for p in task["preconditions"])
    init_task = tasks["capi:init"]
    init = shlex.split(init_task["cmds"][0])
    assert init[:2] == ["clusterctl", "init"]
    # Every provider pinned: clusterctl would otherwise install whatever is newest. The
    # versions reach the command through the environment, never pasted into it.
    pins = derive.CLUSTER_DEFAULTS
    flags = {
        "--core": ("cluster-api", "CAPI_CORE_VERSION", "capi_core_version"),
        "--bootstrap": ("talos", "CAPI_TALOS_BOOTSTRAP_VERSION", "capi_talos_bootstrap_version"),
        "--control-plane": (
            "talos",
            "CAPI_TALOS_CONTROL_PLANE_VERSION",
            "capi_talos_control_plane_version",
        ),
        "--infrastructure": ("proxmox", "CAPI_PROXMOX_VERSION", "capi_proxmox_version"),
        "--ipam": ("in-cluster", "CAPI_IPAM_IN_CLUSTER_VERSION", "capi_ipam_in_cluster_version"),
    }
    assert sorted(init[2:]) == sorted(
        f"{flag}={name}:v${var}" for flag, (name, var, _) in flags.items()
    )
    assert {var: init_task["env"][var] for _, var, _ in flags.values()} == {
        var: pins[key] for _, var, key in flags.values()
    }
    apply = tasks["capi:apply"]
    secret_cmd = next(c for c in apply["cmds"] if "create secret" in c)
    names = f"{cluster['cluster_name']}-proxmox-credentials"
    # Values reach the command only through the environment, never pasted into it.
    assert apply["env"]["CAPI_CREDENTIALS_SECRET"] == names
    assert '"$CAPI_CREDENTIALS_SECRET"' in secret_cmd and names not in secret_cmd
    # CAPMOX skips TLS verification when the key is missing.
    assert '--from-literal=insecure="$CAPI_PROXMOX_INSECURE"' in secret_cmd
    assert apply["env"]["CAPI_PROXMOX_INSECURE"] == "false"
    checks = " ".join(p["sh"] for p in apply["preconditions"])
    if has_secrets_file:
        assert "sops --decrypt --extract" in secret_cmd and "exec-env" not in secret_cmd
        assert "$proxmox_api_token_id" in secret_cmd and "$proxmox_api_token_secret" in secret_cmd
        assert "command -v sops" in checks
    else:
        assert "sops" not in secret_cmd
        assert "$PROXMOX_TOKEN" in checks and "$PROXMOX_SECRET" in checks
    # The cluster's name reaches the prompt through a var, which go-task never re-renders.
    delete = tasks["capi:delete"]
    assert delete["prompt"] == "Delete Cluster API cluster {{.CAPI_CLUSTER_NAME}} and all its VMs?"
    assert delete["vars"]["CAPI_CLUSTER_NAME"] == cluster["cluster_name"]

    schema = json.loads((reference_dir / "taskfile" / "schema.json").read_text(encoding="utf-8"))
    yaml = YAML(typ="safe", pure=True)
    errors = list(Draft7Validator(schema).iter_errors(yaml.load(files[TASKFILE].decode())))
    assert errors == []


def test_task_list_accepts_the_taskfile(
    example_copy: Callable[[str], Path], tmp_path: Path
) -> None:
    task = installed("task")
    cluster, nodes = read_inputs(example_copy("multi-host"))
    _, files = render_context(capi_only(cluster), nodes)
    (tmp_path / "Taskfile.yaml").write_bytes(files[TASKFILE])
    result = subprocess.run(
        [task, "--list"], cwd=tmp_path, capture_output=True, text=True, timeout=30, check=False
    )
    assert result.returncode == 0, result.stderr
    for name in ("capi:init", "capi:apply", "capi:status", "capi:delete"):
        assert name in result.stdout
    # The kubeconfig precondition names the variable that is missing (a stub kubectl keeps
    # the kubectl precondition quiet on machines without one).
    bin_dir = tmp_path / "bin"
    stub(bin_dir, "kubectl", "exit 0")
    env = with_path(bin_dir)
    result = subprocess.run(
        [task, "capi:status", "MGMT_KUBECONFIG=/nonexistent/kubeconfig"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode != 0
    assert "MGMT_KUBECONFIG" in result.stderr and "/nonexistent/kubeconfig" in result.stderr


def _capi_section(files: dict[str, bytes]) -> str:
    text = files[TASKFILE].decode()
    return text[text.index("  capi:init:") :]


@pytest.mark.parametrize("has_secrets_file", [False, True])
def test_capi_tasks_snapshot(
    has_secrets_file: bool, example_copy: Callable[[str], Path], snapshot: Any
) -> None:
    cluster, nodes = read_inputs(example_copy("multi-host"))
    _, files = render_context(capi_only(cluster), nodes, has_secrets_file=has_secrets_file)
    assert _capi_section(files) == snapshot


def test_init_installs_every_provider_pinned(
    example_copy: Callable[[str], Path], tmp_path: Path
) -> None:
    """Real go-task runs capi:init; a stub clusterctl records the arguments it gets."""
    task = installed("task")
    config = example_copy("multi-host")
    cluster, nodes = read_inputs(config)
    cluster.update(capi_core_version="1.12.4", capi_proxmox_version="0.8.1")
    _, files = render_context(capi_only(cluster), nodes)
    taskfile = config / TASKFILE
    taskfile.parent.mkdir(parents=True, exist_ok=True)
    taskfile.write_bytes(files[TASKFILE])
    (config / "management.kubeconfig").write_text("", encoding="utf-8")
    bin_dir, log = tmp_path / "bin", tmp_path / "clusterctl.log"
    recorder(bin_dir, "clusterctl", log)
    env = with_path(bin_dir)
    result = run_task(task, taskfile, "capi:init", env)
    assert result.returncode == 0, result.stderr
    pins = derive.CLUSTER_DEFAULTS
    assert log.read_text(encoding="utf-8").splitlines() == [
        "init",
        "--core=cluster-api:v1.12.4",
        f"--bootstrap=talos:v{pins['capi_talos_bootstrap_version']}",
        f"--control-plane=talos:v{pins['capi_talos_control_plane_version']}",
        "--infrastructure=proxmox:v0.8.1",
        f"--ipam=in-cluster:v{pins['capi_ipam_in_cluster_version']}",
    ]


def test_delete_prompt_shows_the_cluster_name_literally(
    example_copy: Callable[[str], Path], tmp_path: Path
) -> None:
    """Real go-task on a terminal (a pty): the prompt names the cluster, and a name holding
    go-task and shell syntax (the model's, unvalidated) is shown as it is, never run."""
    task = installed("task")
    cluster, nodes = read_inputs(example_copy("multi-host"))
    context = dict(model.build(capi_only(cluster), nodes))
    hostile = '{{.TASKFILE_DIR}}"$(touch pwned)`touch pwned`'
    context["capi"] = {**context["capi"], "cluster_name": hostile}
    files = render.render(context, settings.load())
    for path in (TASKFILE, CLUSTER_YAML):
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_bytes(files[path])
    (tmp_path / "management.kubeconfig").write_text("", encoding="utf-8")
    # The preconditions come before the prompt: a kubectl that must never run.
    bin_dir = tmp_path / "bin"
    stub(bin_dir, "kubectl", 'touch "$0.ran"')
    env = with_path(bin_dir, NO_COLOR="1")
    leader, follower = os.openpty()
    with subprocess.Popen(
        [task, "--taskfile", str(tmp_path / TASKFILE), "capi:delete"],
        cwd=tmp_path,
        stdin=follower,
        stdout=follower,
        stderr=follower,
        env=env,
    ) as proc:
        os.close(follower)
        shown = b""
        while b"[y/N]" not in shown:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # the task ended (EIO on Linux) without prompting
                chunk = b""
            assert chunk, shown
            shown += chunk
        os.write(leader, b"n\n")
        assert proc.wait(timeout=30) != 0
    os.close(leader)
    assert f"Delete Cluster API cluster {hostile} and all its VMs?".encode() in shown, shown
    assert not (tmp_path / "pwned").exists() and not (bin_dir / "kubectl.ran").exists()
