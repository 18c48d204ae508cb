"""Shared fixtures: the example configs, rendering them, and the reference data folder."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest

from generator.pipeline import render_tree

# Ansible, imported by some tests, writes to ~/.ansible unless told otherwise.
_ANSIBLE_HOME = Path(tempfile.mkdtemp(prefix="clustergen-tests-ansible-"))
os.environ.setdefault("ANSIBLE_HOME", str(_ANSIBLE_HOME))
os.environ.setdefault("ANSIBLE_LOCAL_TEMP", str(_ANSIBLE_HOME / "tmp"))

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES_DIR = ROOT / "examples"
EXAMPLES = sorted(p.name for p in EXAMPLES_DIR.iterdir() if (p / "cluster.yaml").is_file())
REFERENCE = ROOT.parent / "shared" / "reference"


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    """../shared/reference, the ground truth of the downstream tools; skip when absent."""
    if not REFERENCE.is_dir():
        pytest.skip(f"reference data not found at {REFERENCE} (conformance tests need it)")
    return REFERENCE


@pytest.fixture(scope="session")
def rendered() -> Callable[[str], dict[str, bytes]]:
    """rendered(example_name) -> {output path: bytes}, cached per session."""
    cache: dict[str, dict[str, bytes]] = {}

    def get(name: str) -> dict[str, bytes]:
        if name not in cache:
            cache[name] = render_tree(EXAMPLES_DIR / name).files
        return cache[name]

    return get


@pytest.fixture
def example_copy(tmp_path: Path) -> Callable[[str], Path]:
    """example_copy(name) -> a fresh copy of examples/<name> in a temp dir."""

    def copy(name: str) -> Path:
        target = tmp_path / name
        shutil.copytree(EXAMPLES_DIR / name, target)
        return target

    return copy
