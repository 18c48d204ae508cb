"""Shared fixtures: the example configs, rendering them, and the reference data folder."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest

from generator.load import Document, load_yaml
from generator.options import Options
from generator.pipeline import render_tree

# Ansible, imported by some tests, writes to ~/.ansible unless told otherwise.
_ANSIBLE_HOME = Path(tempfile.mkdtemp(prefix="clustergen-tests-ansible-"))
os.environ.setdefault("ANSIBLE_HOME", str(_ANSIBLE_HOME))
os.environ.setdefault("ANSIBLE_LOCAL_TEMP", str(_ANSIBLE_HOME / "tmp"))

# go-task (and others) colour their output when CI is set; tests compare plain text.
os.environ["NO_COLOR"] = "1"

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES_DIR = ROOT / "examples"
EXAMPLES = sorted(p.name for p in EXAMPLES_DIR.iterdir() if (p / "cluster.yaml").is_file())
# CLUSTERGEN_REFERENCE: the reference elsewhere (a worktree that is not beside ../shared).
REFERENCE = Path(os.environ.get("CLUSTERGEN_REFERENCE") or ROOT.parent / "shared" / "reference")

# The real downstream tools that scripts/build-tools.sh builds from their Go modules. Their
# bin/ goes first on PATH, so tests and the programs they start (go-task running tofu, ...)
# run them instead of whatever else is installed.
TOOLS_DIR = Path(os.environ.get("CLUSTERGEN_TOOLS_DIR") or ROOT / ".tools")
TOFU_PLUGIN_DIR = TOOLS_DIR / "tofu-plugins"
PACKER_PLUGIN_PATH = TOOLS_DIR / "packer-plugins"
if (TOOLS_DIR / "bin").is_dir():
    os.environ["PATH"] = f"{TOOLS_DIR / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
# cluster.yaml lines that turn capi on for examples/minimal (one controller): a control-plane
# rollout needs a spare address in the IP pool (issue 15).
CAPI_ON_MINIMAL = "provisioners: [capi]\ncapi_spare_addresses: [192.168.22.11]\n"


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
            cache[name] = render_tree(Options(EXAMPLES_DIR / name)).files
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


def tool(name: str) -> str:
    """An executable on PATH or next to this Python (the venv's bin/).

    Missing: a skip with the reason on a developer's machine, a failure in CI (CI=true), where
    .ci/run installs every tool and a skipped real-tool test would hide a missing install step.
    """
    found = shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))
    if not found:
        reason = f"{name} is not installed (scripts/build-tools.sh builds the Go tools)"
        if IN_CI:
            pytest.fail(reason)
        pytest.skip(reason)
    return found


def encrypt_secrets(config: Path, token_id: str, secret: str) -> Path:
    """config/secrets.sops.yaml encrypted with the real sops for a fresh age key.

    The key is written next to config (config/../age.key); returns its path.
    """
    from pyrage import x25519

    identity = x25519.Identity.generate()
    key = config.parent / "age.key"
    key.write_text(f"{identity}\n")
    plain = f"proxmox_api_token_id: {token_id}\nproxmox_api_token_secret: {secret}\n"
    encrypted = subprocess.run(
        [
            tool("sops"),
            "encrypt",
            "--age",
            str(identity.to_public()),
            "--input-type",
            "yaml",
            "--output-type",
            "yaml",
            "/dev/stdin",
        ],
        input=plain,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    (config / "secrets.sops.yaml").write_text(encrypted)
    return key


def write_and_load(directory: Path, cluster: str, nodes: str) -> tuple[Document, Document]:
    """Write cluster.yaml + nodes.yaml into directory and load them as the CLI would."""
    (directory / "cluster.yaml").write_text(cluster)
    (directory / "nodes.yaml").write_text(nodes)
    return (
        load_yaml(directory / "cluster.yaml", shown="cluster.yaml"),
        load_yaml(directory / "nodes.yaml", shown="nodes.yaml"),
    )
