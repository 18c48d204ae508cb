"""`task configure` of a cluster-template repo with the README's one-line addition, run by the
real go-task, renders the host's files and clustergen's; then the hook, a fresh clone's
`check` and the change summary, as a user of such a repo meets them.

Real tools: go-task, cue (the host's `cue vet`), makejinja, sops, jq, kubeconform, git,
clustergen. Stand-ins (tests/host_repos.py names them): the host's makejinja plugin,
talhelper, cloudflare-tunnel.json, kubeconform.sh; and the empty bootstrap/ and kubernetes/
folders the host's full template set would render (its `encrypt-secrets` runs `find` on them).
talos-cluster needs a few more, listed above its test.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from helpers import host_repos
from helpers.paths import EXAMPLES_DIR, ROOT, TOOLS_DIR
from helpers.tools import VENV_BIN, child_env, run_captured, tool

README = (ROOT / "README.md").read_text(encoding="utf-8")


def readme_configure_line() -> str:
    section = README.split("### `task configure`\n", 1)[1].split("\n### ", 1)[0]
    block = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    (line,) = block.splitlines()
    return line


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    stand_ins = tmp_path / "stand-ins"
    stand_ins.mkdir()
    host_repos.talhelper(stand_ins)
    path = [str(stand_ins), str(TOOLS_DIR / "bin"), str(VENV_BIN)]
    return child_env(
        tmp_path / "home",
        PATH=os.pathsep.join([*path, os.environ.get("PATH", "/usr/bin:/bin")]),
        NO_COLOR="1",
    )


def run(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_captured(args, cwd=cwd, env=env, timeout=600)


@pytest.fixture
def repo(reference_dir: Path, tmp_path: Path, env: dict[str, str]) -> Path:
    for name in ("task", "cue", "makejinja", "sops", "jq", "kubeconform"):
        tool(name)
    repo = host_repos.build(reference_dir, host_repos.CLUSTER_TEMPLATE, tmp_path / "repo")
    host_repos.configure_stand_ins(repo, host_repos.CLUSTER_TEMPLATE)
    host_repos.add_to_configure(repo / ".taskfiles/template/Taskfile.yaml", readme_configure_line())
    init = run(env, repo, "clustergen", "-C", "provision", "init", "--example", "homelab")
    assert init.returncode == 0, init.stdout + init.stderr
    return repo


def test_task_configure_renders_the_host_and_clustergen(repo: Path, env: dict[str, str]) -> None:
    listed = run(env, repo, "task", "--list")
    assert listed.returncode == 0, listed.stderr
    assert "* configure:" in listed.stdout

    done = run(env, repo, "task", "--yes", "configure")
    assert done.returncode == 0, done.stdout + done.stderr
    # Every step of the host's :configure ran, then clustergen's line.
    for step in ("cue vet", "makejinja", "kubeconform.sh", "talhelper"):
        assert f"] {step}" in done.stderr or step in done.stderr, (step, done.stderr)
    assert "clustergen -C" in done.stderr and done.stderr.index("talhelper") < done.stderr.index(
        "clustergen -C"
    )
    # The host's render: talos config and .sops.yaml, now with clustergen's rules.
    assert (repo / "talos/talconfig.yaml").is_file()
    assert "^provision/secrets" in (repo / ".sops.yaml").read_text()
    # clustergen's: validated and rendered where its inputs are.
    assert (repo / "provision/infrastructure/tofu/nodes.tf").is_file()
    assert (repo / "provision/.taskfiles/infrastructure/Taskfile.yaml").is_file()
    assert "created infrastructure/tofu/nodes.tf" in done.stdout

    again = run(env, repo, "task", "--yes", "configure")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "clustergen: up to date" in again.stdout

    # An invalid input stops `task configure` with clustergen's diagnostic.
    nodes = repo / "provision/nodes.yaml"
    nodes.write_text(nodes.read_text().replace("address: 192.168.22.11", "address: 10.0.0.11"))
    bad = run(env, repo, "task", "--yes", "configure")
    assert bad.returncode != 0
    assert "provision/nodes.yaml" in bad.stderr and "outside node_cidr" in bad.stderr


def test_fresh_clone_check_and_plan(repo: Path, env: dict[str, str], tmp_path: Path) -> None:
    assert run(env, repo, "task", "--yes", "configure").returncode == 0
    host_repos.git(repo, "add", "-A")
    host_repos.git(repo, "commit", "-qm", "clustergen")

    clone = tmp_path / "clone"
    host_repos.git(tmp_path, "clone", "-q", str(repo), str(clone))
    # CI: no key, the inputs committed in provision/.
    checked = run(env, clone, "clustergen", "--format", "github", "-C", "provision", "check")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    # The host's own inputs are git-ignored: check at the root says so and what to do.
    root = run(env, clone, "clustergen", "check")
    assert root.returncode == 1
    assert (
        "cluster.yaml:1:1: error: (file): file not found: it is git-ignored by .gitignore:"
    ) in root.stderr
    assert "(/cluster.yaml)" in root.stderr and "--move-secrets" in root.stderr

    # Review: a node added and a node resized show in the summary.
    nodes = clone / "provision/nodes.yaml"
    nodes.write_text(
        nodes.read_text().replace(
            "mac_addr: bc:24:11:00:22:21\n", "mac_addr: bc:24:11:00:22:21\n    cores: 8\n"
        )
        + "  - name: k8s-worker-9\n    address: 192.168.22.29\n    controller: false\n"
        "    mac_addr: bc:24:11:00:22:29\n"
    )
    summary = run(env, clone, "clustergen", "-C", "provision", "plan", "--format", "markdown")
    assert summary.returncode == 0, summary.stderr
    rows = [line for line in summary.stdout.splitlines() if line.startswith("| ")][1:]
    assert [row.split(" | ")[:3] for row in rows] == [
        ["| add", "k8s-worker-9", "129"],
        ["| resize", "k8s-worker-0", "121"],
    ] or [row.split(" | ")[:3] for row in rows] == [
        ["| resize", "k8s-worker-0", "121"],
        ["| add", "k8s-worker-9", "129"],
    ]
    drift = run(env, clone, "clustergen", "--format", "github", "-C", "provision", "check")
    assert drift.returncode == 1
    annotations = [x for x in (drift.stdout + drift.stderr).splitlines() if x.startswith("::")]
    assert annotations and all(a.startswith("::error file=provision/") for a in annotations)
    assert len(annotations) == len({a.split(",")[0] for a in annotations})


# talos-cluster: the stand-ins host_repos.configure_stand_ins adds for it.
TALOS_CLUSTER_LINE = "      - clustergen -C {{.ROOT_DIR}}/provision render -o {{.ROOT_DIR}}"


def test_talos_cluster_configure_after_the_move_to_clustergens_tofu(
    reference_dir: Path, tmp_path: Path, env: dict[str, str]
) -> None:
    for name in ("task", "cue", "makejinja", "sops", "jq", "yq", "kubeconform", "tofu"):
        tool(name)
    repo = host_repos.build(reference_dir, host_repos.TALOS_CLUSTER, tmp_path / "repo")
    host_repos.configure_stand_ins(repo, host_repos.TALOS_CLUSTER)
    # The README's move: the host's own tofu files go (backend.tf stays), so does its Taskfile
    # for them; clustergen renders into the same folders.
    assert TALOS_CLUSTER_LINE in README
    for name in ("main.tf", "outputs.tf", "providers.tf", "variables.tf", "versions.tf"):
        (repo / "infrastructure/tofu" / name).unlink()
    (repo / ".taskfiles/infrastructure/Taskfile.yaml").unlink()
    backend = (repo / "infrastructure/tofu/backend.tf").read_bytes()
    (repo / "provision").mkdir()
    for name in ("cluster.yaml", "nodes.yaml"):
        shutil.copy(EXAMPLES_DIR / "homelab" / name, repo / "provision" / name)
    first = run(env, repo, "clustergen", "-C", "provision", "render", "-o", ".")
    assert first.returncode == 0, first.stdout + first.stderr
    host_repos.add_to_configure(repo / ".taskfiles/template/Taskfile.yaml", TALOS_CLUSTER_LINE)

    listed = run(env, repo, "task", "--list")
    assert listed.returncode == 0, listed.stderr
    assert "* configure:" in listed.stdout and "* infra:" in listed.stdout

    done = run(env, repo, "task", "--yes", "configure")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Infrastructure credentials not configured, skipping infra:init" in done.stdout
    assert "clustergen: up to date" in done.stdout
    assert (repo / "talos/talconfig.yaml").is_file()
    assert (repo / "infrastructure/tofu/backend.tf").read_bytes() == backend
    assert (repo / "infrastructure/tofu/nodes.tf").is_file()
    assert "ENC[" in (repo / "infrastructure/secrets.sops.yaml").read_text()  # encrypt-secrets ran
