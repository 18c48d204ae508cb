"""Where things are: the repository, its examples and fixtures, the reference, the built tools."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES_DIR = ROOT / "examples"
# Names of the examples (a folder with a cluster.yaml), and their folders, sorted alike.
EXAMPLES = sorted(p.name for p in EXAMPLES_DIR.iterdir() if (p / "cluster.yaml").is_file())
EXAMPLE_DIRS = [EXAMPLES_DIR / name for name in EXAMPLES]
FIXTURES_DIR = ROOT / "tests" / "fixtures"
# CLUSTERGEN_REFERENCE: the reference elsewhere (a worktree that is not beside ../shared).
REFERENCE = Path(os.environ.get("CLUSTERGEN_REFERENCE") or ROOT.parent / "shared" / "reference")

# The real downstream tools that scripts/build-tools.sh builds from their Go modules
# (session.prepare puts their bin/ first on PATH).
TOOLS_DIR = Path(os.environ.get("CLUSTERGEN_TOOLS_DIR") or ROOT / ".tools")
TOFU_PLUGIN_DIR = TOOLS_DIR / "tofu-plugins"
PACKER_PLUGIN_PATH = TOOLS_DIR / "packer-plugins"

# The rendered Taskfile, relative to the config directory.
TASKFILE = ".taskfiles/infrastructure/Taskfile.yaml"


def reference() -> Path:
    """../shared/reference, the ground truth of the downstream tools; skip when absent."""
    if not REFERENCE.is_dir():
        pytest.skip(f"reference data not found at {REFERENCE} (conformance tests need it)")
    return REFERENCE
