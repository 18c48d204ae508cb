"""The environment every test (and every program a test starts) runs in."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .paths import TOOLS_DIR


def prepare() -> None:
    """Set once, before collection, by conftest's pytest_configure."""
    # Ansible, imported by some tests, writes to ~/.ansible unless told otherwise.
    ansible_home = Path(tempfile.mkdtemp(prefix="clustergen-tests-ansible-"))
    os.environ.setdefault("ANSIBLE_HOME", str(ansible_home))
    os.environ.setdefault("ANSIBLE_LOCAL_TEMP", str(ansible_home / "tmp"))
    # go-task (and others) colour their output when CI is set; tests compare plain text.
    os.environ["NO_COLOR"] = "1"
    # The built tools' bin/ goes first on PATH, so tests and the programs they start (go-task
    # running tofu, ...) run them instead of whatever else is installed.
    if (TOOLS_DIR / "bin").is_dir():
        os.environ["PATH"] = f"{TOOLS_DIR / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"
