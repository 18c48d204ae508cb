"""collisions.check: another OpenTofu config in clustergen's module folder stops the render;
the folder is read through the snapshot of the output tree, never through a link."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from helpers.cli import run_cli
from helpers.paths import EXAMPLES_DIR

TOFU = "infrastructure/tofu"


@pytest.fixture
def config(tmp_path: Path) -> Path:
    target = tmp_path / "config"
    shutil.copytree(EXAMPLES_DIR / "minimal", target)
    (target / TOFU).mkdir(parents=True)
    return target


def test_a_declaration_past_the_head_of_a_large_file_is_found(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The snapshot keeps only the head of a user's file; the decision reads it whole."""
    host = config / TOFU / "host.tf"
    host.write_text("# the host's own module\n" + "# padding\n" * 400 + 'provider "proxmox" {}\n')
    code, _, err = run_cli(capsys, "-C", str(config), "render")
    assert code == 1
    assert any(line.endswith(f"/{TOFU}/host.tf") for line in err.splitlines())
    assert not (config / ".clustergen").exists()


def test_state_and_override_files_are_the_users(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("backend.tf", "main_override.tf"):
        (config / TOFU / name).write_text('terraform {\n  backend "local" {}\n}\n')
    (config / TOFU / "main_override.tf").write_text('provider "proxmox" {}\n')
    code, _, err = run_cli(capsys, "-C", str(config), "render")
    assert code == 0, err


def test_a_linked_tf_file_is_not_followed(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outside = tmp_path / "elsewhere.tf"
    outside.write_text('provider "proxmox" {}\n')
    (config / TOFU / "linked.tf").symlink_to(outside)
    code, _, err = run_cli(capsys, "-C", str(config), "render")
    assert "linked.tf" not in err, err
    assert code == 0, err
    assert outside.read_text() == 'provider "proxmox" {}\n'
