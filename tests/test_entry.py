"""`python -m generator` (cli.entry): same exit codes and output as main(), flushed before the
process leaves through os._exit."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest

from generator import cli
from helpers.paths import ROOT


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "generator", *args], capture_output=True, text=True, check=False
    )


def test_version_and_usage_errors_keep_their_exit_codes() -> None:
    version = _run("--version")
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert (version.returncode, version.stdout) == (
        0,
        f"clustergen {pyproject['project']['version']}\n",
    )
    usage = _run("no-such-command")
    assert usage.returncode == 2
    assert "invalid choice" in usage.stderr


def test_output_is_flushed_and_exit_code_is_mains(
    example_copy: Callable[[str], Path], capsys: pytest.CaptureFixture[str]
) -> None:
    config = example_copy("homelab")
    rendered = _run("-C", str(config), "render", "--exit-code")
    assert rendered.returncode == 1  # files were created
    lines = rendered.stdout.splitlines()
    assert lines[-1].startswith("clustergen: ")
    assert sum(line.startswith("created ") for line in lines) == len(lines) - 1

    (config / "nodes.yaml").write_text("nodes: [\n")
    broken = _run("-C", str(config), "check")
    assert broken.returncode == cli.main(["-C", str(config), "check"]) != 0
    assert broken.stderr == capsys.readouterr().err


def test_exit_status_of_system_exit() -> None:
    assert cli._exit_status(None) == 0
    assert cli._exit_status(3) == 3
    assert cli._exit_status("message") == 1
