"""A render killed at any moment leaves every file fully old or fully new, and recovers."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from generator.manifest import MANIFEST
from generator.options import Options
from generator.pipeline import render_tree
from generator.writer import TMP_PREFIX
from helpers.data import cluster_yaml, nodes_yaml
from helpers.tools import clustergen

ROUNDS = 12


def write_config(directory: Path, nodes: int, memory: int) -> None:
    """A valid cluster with every provisioner, big enough that sync takes a while."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "cluster.yaml").write_text(
        cluster_yaml(
            "kill",
            "provisioners: [packer, tofu, ansible, capi]\n"
            f"vm_defaults:\n  worker: {{memory: {memory}}}\n",
        )
    )
    (directory / "nodes.yaml").write_text(nodes_yaml(nodes))


def test_kill_during_render_never_corrupts(tmp_path: Path) -> None:
    variants = {}
    for name, memory in (("a", 4096), ("b", 6144)):
        write_config(tmp_path / name, nodes=80, memory=memory)
        variants[name] = render_tree(Options(tmp_path / name)).files
    assert variants["a"].keys() == variants["b"].keys()
    out = tmp_path / "out"
    started = time.monotonic()
    assert clustergen("-C", str(tmp_path / "a"), "render", "-o", str(out)).returncode == 0
    duration = time.monotonic() - started

    rng = random.Random(20261129)
    killed_mid_sync = 0
    for round_ in range(ROUNDS):
        source = tmp_path / ("b" if round_ % 2 == 0 else "a")
        process = subprocess.Popen(
            [sys.executable, "-m", "generator", "-C", str(source), "render", "-o", str(out)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        time.sleep(rng.uniform(0.3, 1.1) * duration)
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
            killed_mid_sync += 1
        _, err = process.communicate(timeout=60)
        assert "Traceback" not in err

        for path in variants["a"]:
            data = (out / path).read_bytes() if (out / path).exists() else None
            # Fully old or fully new, never a mix; a missing file is impossible after round 0.
            assert data in (variants["a"][path], variants["b"][path]), (round_, path)

    assert killed_mid_sync > 0, "no kill landed before the render finished; the test proved nothing"
    check = clustergen("-C", str(tmp_path / "a"), "check", "-o", str(out))
    assert check.returncode in (0, 1) and "Traceback" not in check.stderr
    # Recovery needs no --force: every interrupted write is known to the manifest.
    recovered = clustergen("-C", str(tmp_path / "a"), "render", "-o", str(out))
    assert recovered.returncode == 0, recovered.stderr
    assert clustergen("-C", str(tmp_path / "a"), "check", "-o", str(out)).returncode == 0
    assert not list(out.rglob(f"{TMP_PREFIX}*"))
    assert (out / MANIFEST).is_file()


def test_manifest_temp_of_a_killed_render_is_swept(tmp_path: Path) -> None:
    """A kill mid-write leaves a temp file beside the target (the manifest's or an output's);
    the next render removes them even when no output changes (found by the test above, whose
    kill timing depends on how fast a render is)."""
    write_config(tmp_path / "a", nodes=3, memory=4096)
    out = tmp_path / "out"
    assert clustergen("-C", str(tmp_path / "a"), "render", "-o", str(out)).returncode == 0
    leftovers = [(out / MANIFEST).parent / f"{TMP_PREFIX}killed"]
    leftovers += [
        (out / path).parent / f"{TMP_PREFIX}killed"
        for path in render_tree(Options(tmp_path / "a")).files
    ]
    for leftover in leftovers:
        leftover.write_bytes(b"partial")
    assert clustergen("-C", str(tmp_path / "a"), "render", "-o", str(out)).returncode == 0
    assert not [p for p in leftovers if p.exists()]
    assert clustergen("-C", str(tmp_path / "a"), "check", "-o", str(out)).returncode == 0
