"""The code stays ruff-clean, ruff-formatted and mypy --strict clean (pyproject.toml config)."""

from __future__ import annotations

import subprocess

import pytest

from helpers.paths import ROOT
from helpers.tools import tool


@pytest.mark.parametrize(
    "command",
    [["ruff", "check", "."], ["ruff", "format", "--check", "."], ["mypy"]],
    ids=["ruff-check", "ruff-format", "mypy"],
)
def test_tool_is_clean(command: list[str]) -> None:
    # The test extra's exact version (pyproject pins it), not another install on PATH.
    result = subprocess.run(
        [tool(command[0], prefer_venv=True), *command[1:]],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
