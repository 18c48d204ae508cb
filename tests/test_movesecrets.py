"""generator/movesecrets.py: `clustergen init --move-secrets` moves talos-cluster's token out of
the plaintext cluster.yaml."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from generator import validate
from generator.load import load_yaml
from helpers.paths import EXAMPLES_DIR
from helpers.sops import decrypt
from helpers.tools import clustergen

TOKEN_ID = "terraform@pve!clustergen"
TOKEN_SECRET = "5f1c1a4e-9d55-4a7e-8f43-2b4a0c7d9e11"


@pytest.fixture
def config(tmp_path: Path) -> Path:
    cfg = tmp_path / "cfg"
    shutil.copytree(EXAMPLES_DIR / "minimal", cfg)
    cluster = cfg / "cluster.yaml"
    cluster.write_text(
        cluster.read_text()
        + "# -- Proxmox API token for OpenTofu VM provisioning\n"
        + f'proxmox_api_token_id: "{TOKEN_ID}"\n'
        + f'proxmox_api_token_secret: "{TOKEN_SECRET}"\n'
    )
    return cfg


def test_validate_points_a_secret_in_cluster_yaml_at_the_sops_file(config: Path) -> None:
    found = validate.validate(load_yaml(config / "cluster.yaml"), load_yaml(config / "nodes.yaml"))
    assert {d.path: d.hint for d in found} == {
        key: "a secret: clustergen reads it from secrets.sops.yaml; "
        "`clustergen init --move-secrets` moves it there"
        for key in ("proxmox_api_token_id", "proxmox_api_token_secret")
    }
    assert not any(TOKEN_SECRET in d.message + d.hint for d in found)


def test_init_offers_the_move_and_changes_nothing_without_the_flag(
    config: Path, env: dict[str, str]
) -> None:
    before = (config / "cluster.yaml").read_bytes()
    done = clustergen("init", cwd=config, env=env)
    assert done.returncode == 0, done.stderr
    assert (
        "cluster.yaml holds proxmox_api_token_id, proxmox_api_token_secret in plaintext: "
        "`clustergen init --move-secrets` moves them into secrets.sops.yaml (encrypted)"
    ) in done.stdout
    assert (config / "cluster.yaml").read_bytes() == before


def test_move_secrets_encrypts_them_and_keeps_the_rest_of_cluster_yaml(
    config: Path, env: dict[str, str]
) -> None:
    original = (config / "cluster.yaml").read_text()
    done = clustergen("init", "--move-secrets", cwd=config, env=env)
    assert done.returncode == 0, done.stderr
    assert TOKEN_SECRET not in done.stdout + done.stderr
    assert "moved proxmox_api_token_id, proxmox_api_token_secret from cluster.yaml" in done.stdout
    cluster = (config / "cluster.yaml").read_text()
    assert "proxmox_api_token" not in cluster and TOKEN_SECRET not in cluster
    # Every other line (comments too) is as it was.
    kept = [line for line in original.splitlines() if "proxmox_api_token_" not in line]
    assert cluster.splitlines() == kept
    encrypted = (config / "secrets.sops.yaml").read_text()
    assert TOKEN_SECRET not in encrypted and "ENC[" in encrypted
    data = decrypt(config / "secrets.sops.yaml", config / "age.key", env)
    assert data == {"proxmox_api_token_id": TOKEN_ID, "proxmox_api_token_secret": TOKEN_SECRET}
    # The inputs are valid for clustergen now, and the secret reaches the capi Secret.
    validated = clustergen("validate", cwd=config, env=env)
    assert validated.returncode == 0, validated.stderr
    again = clustergen("init", "--move-secrets", cwd=config, env=env)
    assert again.returncode == 0 and "nothing to move" in again.stdout


def test_from_the_host_cluster_yaml_into_a_subdirectory(
    tmp_path: Path, env: dict[str, str]
) -> None:
    """talos-cluster keeps the token in its root cluster.yaml; clustergen's inputs live in
    provision/: the move takes it from the host's file into provision/secrets.sops.yaml."""
    repo = tmp_path / "repo"
    repo.mkdir()
    subprocess.run(["git", "init", "-q", str(repo)], check=True, timeout=60)
    host = repo / "cluster.yaml"
    host.write_text(
        "---\n# host settings\ncluster_name: matherlynet\ncloudflare_token: fake\n"
        f'proxmox_api_token_id: "{TOKEN_ID}"\nproxmox_api_token_secret: "{TOKEN_SECRET}"\n'
    )
    offered = clustergen("-C", "provision", "init", "--example", "minimal", cwd=repo, env=env)
    assert offered.returncode == 0, offered.stderr
    assert (
        "cluster.yaml holds proxmox_api_token_id, proxmox_api_token_secret in plaintext: "
        "`clustergen init --move-secrets` moves them into provision/secrets.sops.yaml"
    ) in offered.stdout
    moved = clustergen("-C", "provision", "init", "--move-secrets", cwd=repo, env=env)
    assert moved.returncode == 0, moved.stderr
    assert (
        host.read_text()
        == "---\n# host settings\ncluster_name: matherlynet\ncloudflare_token: fake\n"
    )
    data = decrypt(repo / "provision/secrets.sops.yaml", repo / "provision/age.key", env)
    assert data["proxmox_api_token_secret"] == TOKEN_SECRET
