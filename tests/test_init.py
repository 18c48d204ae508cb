"""`clustergen init` with the real sops binary and real age keys, in temp dirs only."""

from __future__ import annotations

import io
import json
import re
import shutil
import stat
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from ruamel.yaml import YAML

from generator import cli, resources, secrets, sops
from generator.commands.init import GITIGNORE_ENTRIES, sops_config
from helpers.tools import clustergen

CREATED = (
    "cluster.yaml",
    "nodes.yaml",
    "age.key",
    ".sops.yaml",
    "secrets.sops.yaml",
    ".gitignore",
)


def _yaml(data: bytes | str) -> Any:
    return YAML(typ="safe", pure=True).load(
        io.StringIO(data if isinstance(data, str) else data.decode())
    )


def _decrypt(path: Path, key: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(key))
    return _yaml(sops.decrypt(path))


def test_init_on_an_empty_dir(
    tmp_path: Path, env: dict[str, str], monkeypatch: pytest.MonkeyPatch, snapshot: Any
) -> None:
    from pyrage import x25519

    target = tmp_path / "new" / "cluster"
    done = clustergen("-C", "new/cluster", "init", cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in target.iterdir()) == sorted(CREATED)
    assert done.stdout == snapshot

    example = resources.examples_dir() / "minimal"
    for name in ("cluster.yaml", "nodes.yaml"):
        assert (target / name).read_bytes() == (example / name).read_bytes()

    key = target / "age.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    comment, secret_line = key.read_text().splitlines()
    recipient = str(x25519.Identity.from_str(secret_line).to_public())
    assert comment == f"# public key: {recipient}"  # age-keygen's format, no timestamp

    rules = _yaml((target / ".sops.yaml").read_text())["creation_rules"]
    assert [r["age"] for r in rules] == [recipient, recipient]
    # First match wins: the input file whole, then Secrets with only data/stringData.
    assert re.search(rules[0]["path_regex"], "secrets.sops.yaml")
    assert "encrypted_regex" not in rules[0]
    assert re.search(rules[1]["path_regex"], "infrastructure/capi/proxmox-credentials.sops.yaml")
    assert not re.search(
        rules[0]["path_regex"], "infrastructure/capi/proxmox-credentials.sops.yaml"
    )
    assert rules[1]["encrypted_regex"] == "^(data|stringData)$"

    encrypted = _yaml((target / "secrets.sops.yaml").read_text())
    assert sops.is_encrypted(encrypted)
    assert all(str(encrypted[k]).startswith("ENC[") for k in secrets.SECRET_KEYS)
    placeholders = _decrypt(target / "secrets.sops.yaml", key, monkeypatch)
    schema = json.loads(resources.schema_path("secrets").read_text())
    assert list(Draft202012Validator(schema).iter_errors(placeholders)) == []

    ignored = (target / ".gitignore").read_text().splitlines()
    assert set(GITIGNORE_ENTRIES) <= set(ignored)


def test_init_never_overwrites_and_appends_only_missing_gitignore_entries(
    tmp_path: Path, env: dict[str, str]
) -> None:
    (tmp_path / "cluster.yaml").write_text("cluster_name: mine\n")
    (tmp_path / ".gitignore").write_text("node_modules/\n.terraform/\ntfplan")  # no final \n
    first = clustergen("init", "--example", "homelab", cwd=tmp_path, env=env)
    assert first.returncode == 0, first.stderr
    assert (tmp_path / "cluster.yaml").read_text() == "cluster_name: mine\n"
    assert "kept cluster.yaml (exists)" in first.stdout
    lines = (tmp_path / ".gitignore").read_text().splitlines()
    assert lines[:3] == ["node_modules/", ".terraform/", "tfplan"]
    assert sorted(e for e in lines if e in GITIGNORE_ENTRIES) == sorted(GITIGNORE_ENTRIES)

    before = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    again = clustergen("init", cwd=tmp_path, env=env)
    assert again.returncode == 0, again.stderr
    assert "created" not in again.stdout and "updated" not in again.stdout
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()} == before


def test_unknown_example_is_a_usage_error_and_writes_nothing(
    tmp_path: Path, env: dict[str, str]
) -> None:
    for name in ("nope", "../examples/minimal"):
        done = clustergen("-C", "d", "init", "--example", name, cwd=tmp_path, env=env)
        assert done.returncode == 2
        assert done.stderr.count("\n") == 1 and "minimal" in done.stderr
    assert not (tmp_path / "d").exists()


def test_existing_sops_config_is_used_and_no_stray_key_is_made(
    tmp_path: Path, env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from pyrage import x25519

    identity = x25519.Identity.generate()
    key = tmp_path / "elsewhere.key"
    key.write_text(f"{identity}\n")
    (tmp_path / ".sops.yaml").write_bytes(sops_config(str(identity.to_public())))
    done = clustergen("init", cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    assert not (tmp_path / "age.key").exists()
    assert "kept .sops.yaml (exists)" in done.stdout
    assert _decrypt(tmp_path / "secrets.sops.yaml", key, monkeypatch) == dict(secrets.PLACEHOLDERS)


def test_existing_sops_config_without_a_rule_writes_nothing(
    tmp_path: Path, env: dict[str, str]
) -> None:
    (tmp_path / ".sops.yaml").write_text(
        "creation_rules:\n  - path_regex: ^talos/\n    age: age1x\n"
    )
    done = clustergen("init", cwd=tmp_path, env=env)
    assert done.returncode == 2
    assert "no creation rule for secrets.sops.yaml" in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == [".sops.yaml", "home"]


def test_existing_age_key_becomes_the_recipient(
    tmp_path: Path, env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from pyrage import x25519

    identity = x25519.Identity.generate()
    key = tmp_path / "age.key"
    key.write_text(f"# public key: {identity.to_public()}\n{identity}\n")
    done = clustergen("init", cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    assert str(identity.to_public()) in (tmp_path / ".sops.yaml").read_text()
    assert _decrypt(tmp_path / "secrets.sops.yaml", key, monkeypatch) == dict(secrets.PLACEHOLDERS)


def test_init_then_render_twice_changes_nothing_and_leaks_nothing(
    tmp_path: Path,
    env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The acceptance test: every provisioner (multi-host), real token values."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    repo = tmp_path / "repo"
    done = clustergen("-C", "repo", "init", "--example", "multi-host", cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    key = repo / "age.key"

    # What a user does next with `sops secrets.sops.yaml`: real values in place of placeholders.
    values = {
        "proxmox_api_token_id": f"terraform@pve!k{uuid.uuid4().hex[:10]}",
        "proxmox_api_token_secret": str(uuid.uuid4()),
    }
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(key))
    plain = "".join(f"{k}: {json.dumps(v)}\n" for k, v in values.items()).encode()
    (repo / "secrets.sops.yaml").write_bytes(
        sops.encrypt(plain, "secrets.sops.yaml", config=repo / ".sops.yaml", cwd=repo)
    )

    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.invalid"]
    subprocess.run([*git, "init", "-q"], check=True, env=env)
    first = clustergen("render", cwd=repo, env=env, age_key=key)
    assert first.returncode == 0, first.stderr
    subprocess.run([*git, "add", "-A"], check=True, env=env)
    subprocess.run([*git, "commit", "-q", "-m", "first render"], check=True, env=env)
    tracked = subprocess.run(
        [*git, "ls-files"], check=True, env=env, capture_output=True, text=True
    ).stdout.split()
    assert "age.key" not in tracked
    assert "infrastructure/capi/proxmox-credentials.sops.yaml" in tracked

    second = clustergen("render", cwd=repo, env=env, age_key=key)
    assert second.returncode == 0, second.stderr
    status = subprocess.run(
        [*git, "status", "--porcelain", "--untracked-files=all"],
        check=True,
        env=env,
        capture_output=True,
        text=True,
    ).stdout
    assert status == ""

    check = clustergen("check", cwd=repo, env=env, age_key=key)
    assert check.returncode == 0, check.stdout + check.stderr
    for output in (first, second, check):
        assert all(v not in output.stdout + output.stderr for v in values.values())
    for name in tracked:
        if ".sops." in Path(name).name:
            continue
        text = (repo / name).read_text(errors="replace")
        assert all(v not in text for v in values.values()), name


def test_failed_init_leaves_no_new_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "new" / "cluster"
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.setattr("sys.executable", str(tmp_path / "nowhere" / "python"))
    sops.sops_binary.cache_clear()
    try:
        code = cli.main(["-C", str(target), "init"])
    finally:
        sops.sops_binary.cache_clear()
    assert code == 2
    assert "sops is not installed" in capsys.readouterr().err
    assert not (tmp_path / "new").exists()
