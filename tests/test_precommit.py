"""The pre-commit hook, tried from this repository in a consumer repo."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from helpers.paths import EXAMPLES_DIR, ROOT
from helpers.precommit import hook_env, pre_commit, readme_hook_config, snapshot
from helpers.tools import git

needs_checkout = pytest.mark.skipif(
    not (ROOT / ".git").exists(), reason="needs clustergen as a git checkout"
)

# Paths of a host repo (cluster-template / talos-cluster layout) -> does the hook run for them.
HOOK_RUNS = {
    "cluster.yaml": True,
    "nodes.yaml": True,
    "secrets.sops.yaml": True,
    ".sops.yaml": True,
    "provision/cluster.yaml": True,
    "provision/nodes.yaml": True,
    "provision/secrets.sops.yaml": True,
    "clusters/prod/nodes.yaml": True,
    ".clustergen/manifest.json": True,
    "provision/.clustergen/manifest.json": True,
    "infrastructure/tofu/nodes.tf": True,
    "infrastructure/packer/talos.pkr.hcl": True,
    "infrastructure/ansible/playbooks/provision-vms.yaml": True,
    "infrastructure/capi/proxmox-credentials.sops.yaml": True,
    "provision/infrastructure/tofu/terraform.tfvars": True,
    ".taskfiles/infrastructure/Taskfile.yaml": True,
    # The host's own files: its renderer's config and templates are not clustergen's inputs.
    "makejinja.toml": False,
    "templates/config/.sops.yaml.j2": False,
    "templates/config/talos/talconfig.yaml.j2": False,
    "templates/config/infrastructure/tofu/main.tf.j2": False,
    "templates/config/cluster.yaml": False,
    "templates/scripts/plugin.py": False,
    "Taskfile.yaml": False,
    ".taskfiles/template/Taskfile.yaml": False,
    "cluster.sample.yaml": False,
    "nodes.sample.yaml": False,
    "talos/talconfig.yaml": False,
    "kubernetes/apps/default/echo/app/helmrelease.yaml": False,
    "README.md": False,
    "mycluster.yaml": False,
    "infrastructure/secrets.sops.yaml.bak": False,
}


def _hook() -> dict[str, object]:
    from ruamel.yaml import YAML

    (hook,) = YAML(typ="safe").load((ROOT / ".pre-commit-hooks.yaml").read_text())
    assert isinstance(hook, dict)
    return hook


def _runs_for(path: str) -> bool:
    """pre-commit's own filter: re.search of files, then not re.search of exclude."""
    hook = _hook()
    included = re.search(str(hook["files"]), path) is not None
    return included and re.search(str(hook.get("exclude", "^$")), path) is None


@pytest.mark.parametrize("path", sorted(HOOK_RUNS))
def test_hook_files_pattern(path: str) -> None:
    assert _runs_for(path) is HOOK_RUNS[path]


def test_hook_manifest_is_valid_for_pre_commit() -> None:
    pre_commit()  # installed (skip, or in CI fail, like every tool)
    from pre_commit.clientlib import load_manifest

    (hook,) = load_manifest(str(ROOT / ".pre-commit-hooks.yaml"))
    assert hook["id"] == "clustergen" and hook["pass_filenames"] is False


@needs_checkout
def test_try_repo_regenerates_then_passes(tmp_path: Path) -> None:
    command = [pre_commit(), "try-repo", str(ROOT), "clustergen", "--all-files"]
    repo = tmp_path / "cluster-repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.email", "ci@example.invalid")
    git(repo, "config", "user.name", "CI")
    for name in ("cluster.yaml", "nodes.yaml"):
        shutil.copy(EXAMPLES_DIR / "homelab" / name, repo / name)
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "inputs")
    env = hook_env(tmp_path / "pre-commit-home")

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


@needs_checkout
def test_hook_with_config_in_a_subdirectory(tmp_path: Path) -> None:
    """A host repo keeps clustergen's inputs in provision/; the README's hook config with
    `args: [-C, provision]` regenerates there, then passes; the host's templates/ and
    makejinja.toml alone do not run it."""
    executable = pre_commit()
    source, sha = snapshot(tmp_path)
    repo = tmp_path / "host-repo"
    (repo / "provision").mkdir(parents=True)
    (repo / "templates/config").mkdir(parents=True)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.email", "ci@example.invalid")
    git(repo, "config", "user.name", "CI")
    for name in ("cluster.yaml", "nodes.yaml"):
        shutil.copy(EXAMPLES_DIR / "homelab" / name, repo / "provision" / name)
    (repo / "makejinja.toml").write_text("[makejinja]\n")
    (repo / "templates/config/talenv.yaml.j2").write_text("talosVersion: v1.12.0\n")
    (repo / ".pre-commit-config.yaml").write_text(readme_hook_config(source, sha))
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "inputs")
    env = hook_env(tmp_path / "pre-commit-home")

    def hook(*args: str) -> subprocess.CompletedProcess[str]:
        command = [executable, "run", "clustergen", *args]
        return subprocess.run(
            command, cwd=repo, env=env, capture_output=True, text=True, timeout=900
        )

    only_host = hook("--files", "makejinja.toml", "templates/config/talenv.yaml.j2")
    assert only_host.returncode == 0, only_host.stdout + only_host.stderr
    assert "(no files to check)Skipped" in only_host.stdout
    assert not (repo / "provision/.clustergen").exists()

    first = hook("--all-files")
    assert first.returncode == 1, first.stdout + first.stderr
    assert "created .taskfiles/infrastructure/Taskfile.yaml" in first.stdout
    assert (repo / "provision/.taskfiles/infrastructure/Taskfile.yaml").is_file()
    assert (repo / "provision/infrastructure/tofu/nodes.tf").is_file()
    assert not (repo / "infrastructure").exists() and not (repo / ".clustergen").exists()

    git(repo, "add", ".")
    second = hook("--all-files")
    assert second.returncode == 0, second.stdout + second.stderr
    assert "Passed" in second.stdout

    # A changed input in the subdirectory triggers it again.
    nodes = repo / "provision/nodes.yaml"
    nodes.write_text(nodes.read_text() + "    memory: 20480\n")
    git(repo, "add", ".")
    third = hook()
    assert third.returncode == 1 and "updated infrastructure/tofu/terraform.tfvars" in third.stdout


@needs_checkout
def test_readme_pip_install_line_installs_from_git(tmp_path: Path) -> None:
    """The README's `pip install 'clustergen @ git+URL@REV'`, verbatim but for the URL and
    REV (a snapshot of this tree over file://), installs a working clustergen."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    (line,) = {
        x.split("#", 1)[0].strip().removeprefix("- run: ")
        for x in readme.splitlines()
        if x.lstrip().startswith("pip install 'clustergen @ git+")
        or x.lstrip().startswith("- run: pip install 'clustergen @ git+")
    }
    assert line == "pip install 'clustergen @ git+https://github.com/OWNER/clustergen@REV'"
    source, sha = snapshot(tmp_path)
    requirement = line.split("'")[1].replace(
        "https://github.com/OWNER/clustergen", f"file://{source}"
    )
    requirement = requirement.replace("@REV", f"@{sha}")
    target = tmp_path / "site"
    # --no-deps/--no-build-isolation: the dependencies are the venv's; the test is the git install.
    done = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--target", str(target), requirement],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert (target / "generator/_data/templates/infrastructure/tofu/moved.tf.j2").is_file()
    env = {**os.environ, "PYTHONPATH": str(target)}
    version = subprocess.run(
        [sys.executable, "-m", "generator", "-C", str(EXAMPLES_DIR / "minimal"), "validate"],
        capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path, check=False,
    )  # fmt: skip
    assert version.returncode == 0 and version.stdout.startswith("valid: "), version.stderr
