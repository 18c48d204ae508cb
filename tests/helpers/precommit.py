"""The pre-commit hook run from this working tree (test_precommit, test_host_acceptance)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from .paths import ROOT
from .tools import git, tool


def pre_commit() -> str:
    """The pre-commit of the Python running the tests (the test extra's)."""
    return tool("pre-commit", prefer_venv=True)


def hook_env(home: Path) -> dict[str, str]:
    """os.environ for pre-commit: its cache (the hook's environment) in home, this Python's
    pre-commit first on PATH."""
    return {
        **os.environ,
        "PRE_COMMIT_HOME": str(home),
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "PATH": f"{Path(pre_commit()).parent}:{os.environ.get('PATH', '/usr/bin:/bin')}",
    }


def snapshot(tmp_path: Path) -> tuple[Path, str]:
    """This working tree (committed or not, without ignored files) as a one-commit git repo:
    what a user's `repo:` line points at, so the test runs the code under test."""
    listed = git(ROOT, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
    snapshot = tmp_path / "clustergen-src"
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file() and not source.is_symlink():
            (snapshot / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, snapshot / name)
    git(snapshot, "init", "-q", "-b", "main")
    git(snapshot, "add", ".")
    git(snapshot, "commit", "-qm", "s")
    sha = git(snapshot, "rev-parse", "HEAD").strip()
    return snapshot, sha


def readme_hook_config(repo: Path, rev: str) -> str:
    """The README's .pre-commit-config.yaml, verbatim but for the repository and its rev."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## pre-commit\n", 1)[1].split("\n## ", 1)[0]
    block = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    assert "args: [-C, provision]" in block, block
    lines = []
    for line in block.splitlines():
        if line.strip().startswith("- repo:"):
            line = line.split("- repo:")[0] + f"- repo: {repo}"
        elif line.strip().startswith("rev:"):
            line = line.split("rev:")[0] + f"rev: {rev}"
        lines.append(line)
    return "\n".join(lines) + "\n"
