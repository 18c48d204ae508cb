"""Finding the tools a test runs, and running them (clustergen, git, any other)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from .paths import ROOT

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
VENV_BIN = Path(sys.executable).parent  # the console scripts of the Python running the tests


def tool(name: str, *, prefer_venv: bool = False) -> str:
    """An executable on PATH (the built tools' bin/ first, see session.py) or in VENV_BIN.

    prefer_venv: VENV_BIN first, for a Python tool of the test extra (ansible-playbook,
    ansible-lint) whose collections and version must be those this Python imports, not those
    of another install earlier on PATH.

    Missing: a skip with the reason on a developer's machine, a failure in CI (CI=true), where
    .ci/run installs every tool and a skipped real-tool test would hide a missing install step.
    """
    in_venv = shutil.which(name, path=str(VENV_BIN))
    found = (in_venv or shutil.which(name)) if prefer_venv else (shutil.which(name) or in_venv)
    if not found:
        reason = (
            f"{name} is not installed (scripts/build-tools.sh builds the Go tools, "
            "pip install -e '.[test]' the Python ones)"
        )
        if IN_CI:
            pytest.fail(reason)
        pytest.skip(reason)
    return found


def stand_in(path: Path, script: str) -> Path:
    """An executable script at path (its folder made as needed): a stand-in for a tool."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(script)
    path.chmod(0o755)
    return path


def run_captured(
    command: Sequence[str],
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    input: str | None = None,
    timeout: float = 300,
) -> subprocess.CompletedProcess[str]:
    """command's exit code and text output; never raises on a non-zero exit, always times out."""
    return subprocess.run(
        list(command),
        cwd=cwd,
        env=None if env is None else dict(env),
        input=input,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def clustergen(
    *args: str,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    age_key: Path | None = None,
    timeout: float = 300,
) -> subprocess.CompletedProcess[str]:
    """`python -m generator ARGS` in a child process (this Python, this checkout's generator),
    in env (default: os.environ); age_key: the key sops decrypts with (SOPS_AGE_KEY_FILE)."""
    if age_key is not None:
        env = {**(os.environ if env is None else env), "SOPS_AGE_KEY_FILE": str(age_key)}
    return run_captured(
        [sys.executable, "-m", "generator", *args], cwd=cwd, env=env, timeout=timeout
    )


def git(repo: Path, *args: str) -> str:
    """git -C repo ARGS with a committer identity; its stdout; raises when git fails."""
    return subprocess.run(
        [
            *("git", "-C", str(repo)),
            *("-c", "user.email=ci@example.invalid", "-c", "user.name=CI"),
            *args,
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout


def child_env(home: Path, *, drop: tuple[str, ...] = ("SOPS_",), **extra: str) -> dict[str, str]:
    """os.environ for a child clustergen: without the variables named drop* (the user's sops
    settings), a fresh HOME (so no ~/.config/sops key), PYTHONPATH at this checkout (its
    generator, not an installed one); then extra."""
    home.mkdir(parents=True, exist_ok=True)
    out = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    out.update(HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"), PYTHONPATH=str(ROOT))
    out.update(extra)
    return out
