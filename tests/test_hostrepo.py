"""generator/hostrepo.py and generator/gitignore.py on small trees."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from generator import gitignore, hostrepo


def git_init(path: Path) -> None:
    subprocess.run(["git", "init", "-q", str(path)], check=True, capture_output=True, timeout=60)


def test_age_key_is_found_up_to_the_repo_root_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SOPS_AGE_KEY_FILE", raising=False)
    outside = tmp_path / "age.key"
    outside.write_text("x")
    repo = tmp_path / "repo"
    (repo / "a/b").mkdir(parents=True)
    git_init(repo)
    assert hostrepo.age_key(repo / "a/b") is None  # never above the repo root
    (repo / "age.key").write_text("x")
    assert hostrepo.age_key(repo / "a/b") == (repo / "age.key").resolve()
    (repo / "a/age.key").write_text("x")
    assert hostrepo.age_key(repo / "a/b") == (repo / "a/age.key").resolve()


def test_age_key_symlink_is_not_followed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SOPS_AGE_KEY_FILE", raising=False)
    git_init(tmp_path)
    (tmp_path / "real.key").write_text("x")
    (tmp_path / "age.key").symlink_to(tmp_path / "real.key")
    assert hostrepo.age_key(tmp_path) is None


def test_outside_a_repo_only_the_folder_itself(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SOPS_AGE_KEY_FILE", raising=False)
    if hostrepo.repo_root(tmp_path) is not None:
        pytest.skip("the temp dir is inside a git work tree")
    (tmp_path / "age.key").write_text("x")
    (tmp_path / "sub").mkdir()
    assert hostrepo.age_key(tmp_path / "sub") is None
    assert hostrepo.age_key(tmp_path) == (tmp_path / "age.key").resolve()


def test_sops_env_never_overrides_the_users_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    git_init(tmp_path)
    (tmp_path / "age.key").write_text("x")
    for name in hostrepo.KEY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    env = hostrepo.sops_env(tmp_path)
    assert env is not None and env["SOPS_AGE_KEY_FILE"] == str((tmp_path / "age.key").resolve())
    monkeypatch.setenv("SOPS_AGE_KEY", "AGE-SECRET-KEY-1X")
    assert hostrepo.sops_env(tmp_path) is None


def test_host_template_follows_makejinja_toml(tmp_path: Path) -> None:
    git_init(tmp_path)
    (tmp_path / "makejinja.toml").write_text(
        '[makejinja]\ninputs = ["./templates/overrides", "./templates/config"]\noutput = "./"\n'
    )
    config = tmp_path / "templates/config"
    (config / "infrastructure/tofu").mkdir(parents=True)
    (config / ".sops.yaml.j2").write_text("creation_rules: []\n")
    (config / "infrastructure/tofu/main.tf.j2").write_text("")
    (config / "infrastructure/tofu/backend.tf").write_text("")
    assert hostrepo.host_template(tmp_path / ".sops.yaml") == config / ".sops.yaml.j2"
    assert hostrepo.host_template(tmp_path / "other.yaml") is None
    found = hostrepo.host_templates_under(tmp_path / "infrastructure/tofu")
    assert sorted(p.name for p in found) == ["backend.tf", "main.tf.j2"]
    assert hostrepo.host_templates_under(tmp_path / "infrastructure/packer") == []


def test_gitignore_rule_and_negation(tmp_path: Path) -> None:
    git_init(tmp_path)
    (tmp_path / ".gitignore").write_text("# secrets\n/cluster.yaml\n/nodes.yaml\n!/nodes.yaml\n")
    assert gitignore.ignore_rule(tmp_path / "cluster.yaml") == ".gitignore:2 (/cluster.yaml)"
    assert gitignore.ignore_rule(tmp_path / "nodes.yaml") is None
    assert gitignore.ignore_rule(tmp_path / "README.md") is None


def test_gitignore_outside_a_repo(tmp_path: Path) -> None:
    if hostrepo.repo_root(tmp_path) is not None:
        pytest.skip("the temp dir is inside a git work tree")
    assert gitignore.ignore_rule(tmp_path / "cluster.yaml") is None


def test_host_template_never_points_outside_or_through_a_symlink(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / ".sops.yaml.j2").write_text("creation_rules: []\n")
    repo.mkdir()
    git_init(repo)
    (repo / "makejinja.toml").write_text(
        '[makejinja]\ninputs = ["../elsewhere", "./linked"]\noutput = "./"\n'
    )
    assert hostrepo.host_template(repo / ".sops.yaml") is None
    (repo / "linked").symlink_to(elsewhere)
    assert hostrepo.host_template(repo / ".sops.yaml") is None


def test_rules_in_a_template_that_is_no_yaml_are_found(tmp_path: Path) -> None:
    from generator import sopssetup

    rules = sopssetup.rules_for(tmp_path / "provision", tmp_path)
    template = (
        "creation_rules:\n"
        + rules.text("\"#{ age_key('public') }#\"")
        + "#% if extra %#\n  - path_regex: extra/.*\n#% endif %#\n"
    )
    assert sopssetup.covered(template, rules)
    assert not sopssetup.covered("creation_rules:\n#% if x %#\n#% endif %#\n", rules)
