"""`clustergen plan`: the VM change summary against a git revision's inputs."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from generator.cli import main
from helpers.paths import EXAMPLES_DIR
from helpers.tools import git

WORKER = (
    "  - name: k8s-worker-9\n"
    "    address: 192.168.22.29\n"
    "    controller: false\n"
    "    mac_addr: bc:24:11:00:22:29\n"
    "    cores: 8\n"
)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    (repo / "provision").mkdir(parents=True)
    for name in ("cluster.yaml", "nodes.yaml"):
        shutil.copy(EXAMPLES_DIR / "homelab" / name, repo / "provision" / name)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "inputs")
    return repo


def plan(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["plan", *args])
    out, err = capsys.readouterr()
    return code, out, err


def edit_text(path: Path, change: Callable[[str], str]) -> None:
    path.write_text(change(path.read_text()))


def test_nothing_changed(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = plan(capsys, "-C", str(repo / "provision"), "--exit-code")
    assert code == 0
    assert out.startswith("no VM changes compared with HEAD")


def test_a_node_added_and_a_node_resized(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    nodes = repo / "provision/nodes.yaml"
    edit_text(
        nodes,
        lambda t: (
            t.replace(
                "mac_addr: bc:24:11:00:22:11\n",
                "mac_addr: bc:24:11:00:22:11\n    memory: 16384\n    disk_size: 200\n",
            )
            + WORKER
        ),
    )
    cfg = str(repo / "provision")

    code, out, _ = plan(capsys, "-C", cfg, "--exit-code")
    assert code == 1
    lines = out.splitlines()
    assert lines[0].startswith("2 VM(s) change compared with HEAD") and lines[0].endswith(
        "1 added, 1 resized"
    )
    assert lines[1].split() == [
        "change",
        "VM",
        "VM",
        "ID",
        "PVE",
        "node",
        "cores",
        "sockets",
        "memory",
        "MiB",
        "disk",
        "GB",
        "address",
        "template",
    ]
    assert lines[2].split() == [
        "resize",
        "k8s-cp-0",
        "111",
        "pve",
        "4",
        "1",
        "8192",
        "->",
        "16384",
        "64",
        "->",
        "200",
        "192.168.22.11",
        "talos-1.12.0",
    ]
    assert lines[3].split() == [
        "add",
        "k8s-worker-9",
        "129",
        "pve",
        "8",
        "1",
        "4096",
        "128",
        "192.168.22.29",
        "talos-1.12.0",
    ]

    _, markdown, _ = plan(capsys, "-C", cfg, "--format", "markdown")
    table = [line for line in markdown.splitlines() if line.startswith("|")]
    assert table == [
        "| change | VM | VM ID | PVE node | cores | sockets | memory MiB | disk GB | address "
        "| template |",
        "|---|---|---|---|---|---|---|---|---|---|",
        "| resize | k8s-cp-0 | 111 | pve | 4 | 1 | 8192 → 16384 | 64 → 200 | 192.168.22.11 "
        "| talos-1.12.0 |",
        "| add | k8s-worker-9 | 129 | pve | 8 | 1 | 4096 | 128 | 192.168.22.29 | talos-1.12.0 |",
    ]
    assert plan(capsys, "-C", cfg, "--format", "github")[1] == markdown

    _, raw, _ = plan(capsys, "-C", cfg, "--format", "json")
    doc = json.loads(raw)
    assert doc["base"] == "HEAD"
    resized, added = doc["changes"]
    assert resized["name"] == "k8s-cp-0" and resized["actions"] == ["resize"]
    assert resized["changed"] == ["memory", "disk_size"]
    assert (resized["before"]["memory"], resized["after"]["memory"]) == (8192, 16384)
    assert added["actions"] == ["add"] and added["before"] is None
    assert added["after"]["vm_id"] == 129 and added["after"]["proxmox_node"] == "pve"


def test_removed_and_moved(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    nodes = repo / "provision/nodes.yaml"
    text = nodes.read_text()
    start = text.index("  - name: k8s-worker-1")
    end = text.index("  - name:", start + 1) if "  - name:" in text[start + 1 :] else len(text)
    nodes.write_text(text[:start] + text[end:])
    edit_text(
        nodes,
        lambda t: t.replace(
            "mac_addr: bc:24:11:00:22:21\n",
            "mac_addr: bc:24:11:00:22:21\n    proxmox_node: pve2\n    cores: 6\n",
        ),
    )
    _, raw, _ = plan(capsys, "-C", str(repo / "provision"), "--format", "json")
    by_name = {c["name"]: c for c in json.loads(raw)["changes"]}
    assert by_name["k8s-worker-1"]["actions"] == ["remove"]
    assert by_name["k8s-worker-0"]["actions"] == ["resize", "move"]
    assert by_name["k8s-worker-0"]["changed"] == ["proxmox_node", "cores"]
    assert set(by_name) == {"k8s-worker-0", "k8s-worker-1"}


def test_against_another_revision(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    edit_text(repo / "provision/nodes.yaml", lambda t: t + WORKER)
    git(repo, "commit", "-qam", "worker")
    assert plan(capsys, "-C", str(repo / "provision"))[1].startswith("no VM changes")
    code, out, _ = plan(capsys, "-C", str(repo / "provision"), "--base", "HEAD~1")
    assert code == 0 and "1 added" in out.splitlines()[0]


def test_inputs_not_committed_count_as_added(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = tmp_path / "r"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    git(repo, "commit", "-q", "--allow-empty", "-m", "empty")
    for name in ("cluster.yaml", "nodes.yaml"):
        shutil.copy(EXAMPLES_DIR / "minimal" / name, repo / name)
    code, out, err = plan(capsys, "-C", str(repo))
    assert code == 0
    assert "note: cluster.yaml is not committed at HEAD: every VM counts as added" in err
    assert all(line.startswith("add ") for line in out.splitlines()[2:])


@pytest.mark.parametrize(
    ("base", "message"),
    [("nope", "--base nope: no such git revision"), ("--all", "is not a git revision")],
)
def test_bad_base(repo: Path, capsys: pytest.CaptureFixture[str], base: str, message: str) -> None:
    code, _, err = plan(capsys, "-C", str(repo / "provision"), f"--base={base}")
    assert code == 2 and message in err


def test_outside_git(
    example_copy: Callable[[str], Path], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    cfg = example_copy("minimal")
    if subprocess.run(["git", "-C", str(cfg), "rev-parse"], capture_output=True).returncode == 0:
        pytest.skip("the temp dir is inside a git work tree")
    code, _, err = plan(capsys, "-C", str(cfg))
    assert code == 2 and "is not in a git repository" in err


def test_markdown_cells_cannot_break_the_table() -> None:
    from generator import vmplan

    change = vmplan.VmChange("a|b", ("add",), None, {k: "x|y" for _, k in vmplan.COLUMNS})
    (row,) = [
        line
        for line in vmplan.as_markdown([change], "HEAD").splitlines()
        if line.startswith("| add")
    ]
    assert row.count("|") - row.count("\\|") == len(vmplan.COLUMNS) + 2


def test_a_host_dialect_reads_its_other_files_at_the_base(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """cluster-template's versions live in talos/talenv.yaml: the base reads it at the rev too
    (without it the committed inputs had no talos_version)."""
    repo = tmp_path / "ct"
    shutil.copytree(EXAMPLES_DIR / "cluster-template", repo)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "inputs")
    code, out, err = plan(capsys, "-C", str(repo), "--exit-code")
    assert (code, err) == (0, ""), err
    assert out.startswith("no VM changes compared with HEAD")
