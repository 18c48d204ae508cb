"""The pre-commit hook, tried from this repository in a consumer repo."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import EXAMPLES_DIR, ROOT

PRE_COMMIT = Path(sys.executable).with_name("pre-commit")

pytestmark = [
    pytest.mark.skipif(not PRE_COMMIT.exists(), reason="pre-commit is not installed (test extra)"),
    pytest.mark.skipif(not (ROOT / ".git").exists(), reason="needs clustergen as a git checkout"),
]


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, timeout=60)


def test_try_repo_regenerates_then_passes(tmp_path: Path) -> None:
    repo = tmp_path / "cluster-repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.email", "ci@example.invalid")
    git(repo, "config", "user.name", "CI")
    for name in ("cluster.yaml", "nodes.yaml"):
        shutil.copy(EXAMPLES_DIR / "homelab" / name, repo / name)
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "inputs")
    env = {
        **os.environ,
        "PRE_COMMIT_HOME": str(tmp_path / "pre-commit-home"),
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "PATH": f"{PRE_COMMIT.parent}:{os.environ.get('PATH', '/usr/bin:/bin')}",
    }
    command = [str(PRE_COMMIT), "try-repo", str(ROOT), "clustergen", "--all-files"]

    first = subprocess.run(command, cwd=repo, env=env, capture_output=True, text=True, timeout=600)
    # pre-commit's convention: a hook that changed files fails, so they get reviewed and added.
    assert first.returncode == 1, first.stdout + first.stderr
    assert "clustergen render" in first.stdout and "Failed" in first.stdout
    assert "created .taskfiles/infrastructure/Taskfile.yaml" in first.stdout
    assert (repo / ".taskfiles/infrastructure/Taskfile.yaml").is_file()

    git(repo, "add", ".")
    second = subprocess.run(command, cwd=repo, env=env, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "Passed" in second.stdout
