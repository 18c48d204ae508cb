"""scripts/build-tools.sh through the repository's `task tools`: with every tool already built
it reuses them all (one `cached` line per tool) and builds nothing.

The cold build itself takes minutes and downloads modules, so the suite does not run it; the
tools the other real-tool tests use are its output, so a broken build fails those tests."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from helpers.paths import ROOT, TOOLS_DIR
from helpers.tools import tool

TOOLS = ("tofu", "bpg/proxmox", "packer", "packer-plugin-proxmox", "cue", "kubeconform")


def mirror(tools: Path, target: Path) -> None:
    """target: a TOOLS_DIR whose entries link to the built tools (stamps copied)."""
    target.mkdir()
    shutil.copytree(tools / "stamps", target / "stamps")
    # bin is a directory of links, so a tool that would be rebuilt lands here, not in tools.
    (target / "bin").mkdir()
    for binary in (tools / "bin").iterdir():
        (target / "bin" / binary.name).symlink_to(binary)
    for entry in ("tofu-plugins", "packer-plugins", "packer-plugin-proxmox"):
        (target / entry).symlink_to(tools / entry)


def test_task_tools_reuses_every_built_tool(tmp_path: Path) -> None:
    for name in ("tofu", "packer", "cue", "kubeconform"):
        tool(name)  # the tools exist (skip, or in CI fail, like every real-tool test)
    go = tool("go")
    task = tool("task")
    mirrored = tmp_path / "tools"
    mirror(TOOLS_DIR, mirrored)
    env = {
        "PATH": os.pathsep.join([str(Path(go).parent), "/usr/bin", "/bin"]),
        "HOME": str(tmp_path),
        "GOPATH": os.environ.get("GOPATH", str(Path.home() / "go")),
        "GOCACHE": str(tmp_path / "gocache"),  # nothing is built: stays empty
        "GOFLAGS": "-mod=mod",
        "GOPROXY": "off",  # a reused tool needs no download
        "TOOLS_DIR": str(mirrored),
    }
    done = subprocess.run(
        [task, "--taskfile", str(ROOT / "Taskfile.yaml"), "tools"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = [line for line in done.stdout.splitlines() if line.startswith("tools: ")]
    assert lines[-1] == f"tools: ready in {mirrored}"
    # One line per tool, in build order; every one reused (talospatch only where its source is).
    assert all(line.endswith(" cached") for line in lines[:-1]), done.stdout
    names = [line.split()[1] for line in lines[:-1]]
    assert names[: len(TOOLS)] == list(TOOLS) and set(names[len(TOOLS) :]) <= {"talospatch"}
    assert not (tmp_path / "gocache").exists() or not any((tmp_path / "gocache").iterdir())
