"""Running the real OpenTofu and Packer (built by scripts/build-tools.sh) from tests.

Offline and isolated: every directory either tool writes to is under the test's tmp dir, no
registry or checkpoint request is made (providers come from paths.TOFU_PLUGIN_DIR, Packer
plugins from paths.PACKER_PLUGIN_PATH), and every run has a timeout.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Mapping
from pathlib import Path

import pytest

from .paths import PACKER_PLUGIN_PATH, TOFU_PLUGIN_DIR
from .tools import IN_CI, tool

TIMEOUT = 180  # seconds; a hung tool fails its test instead of hanging the suite
PROVIDER = "bpg/proxmox"
PACKER_PLUGIN = "github.com/hashicorp/proxmox"


def isolated_env(home: Path, **extra: str) -> dict[str, str]:
    """os.environ without the user's tool settings, writing only under home."""
    home.mkdir(parents=True, exist_ok=True)
    cli_config = home / "tofurc"
    cli_config.write_text("")  # no provider_installation, no plugin cache, no credentials
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TF_", "PKR_", "PACKER_", "CHECKPOINT_", "SSL_CERT_"))
    }
    env.update(
        HOME=str(home),
        XDG_CACHE_HOME=str(home / "cache"),
        XDG_CONFIG_HOME=str(home / "config"),
        XDG_DATA_HOME=str(home / "data"),
        TMPDIR=str(_mkdir(home / "tmp")),
        TF_CLI_CONFIG_FILE=str(cli_config),
        TF_IN_AUTOMATION="1",
        TF_INPUT="0",
        CHECKPOINT_DISABLE="1",
        PACKER_PLUGIN_PATH=str(PACKER_PLUGIN_PATH),
        PACKER_CONFIG_DIR=str(home / "packer-config"),
        PACKER_CACHE_DIR=str(home / "packer-cache"),
        PACKER_NO_COLOR="1",
        NO_COLOR="1",
        LC_ALL="C.UTF-8",
    )
    env.update(extra)
    return env


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def run(
    name: str,
    args: list[str],
    cwd: Path,
    env: Mapping[str, str],
    *,
    ok: bool | None = True,
    codes: tuple[int, ...] | None = None,
    timeout: int = TIMEOUT,
    stdin: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run tool name; ok=True/False asserts success/failure, codes the exact exit codes."""
    done = subprocess.run(
        [tool(name), *args],
        cwd=cwd,
        env=dict(env),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    shown = f"{name} {' '.join(args)} exited {done.returncode}:\n{done.stdout}{done.stderr}"
    if codes is not None:
        assert done.returncode in codes, shown
    elif ok is not None:
        assert (done.returncode == 0) is ok, shown
    return done


# --- OpenTofu -------------------------------------------------------------------------------


def missing(what: str) -> None:
    """conftest.tool's policy for a plugin: skip on a developer's machine, fail in CI."""
    reason = f"{what} is not installed (scripts/build-tools.sh builds it)"
    if IN_CI:
        pytest.fail(reason)
    pytest.skip(reason)


def provider_version() -> str:
    """The one bpg/proxmox version in the plugin dir (registry/namespace/type/VERSION/os_arch)."""
    if not TOFU_PLUGIN_DIR.is_dir():
        missing(f"the {PROVIDER} provider ({TOFU_PLUGIN_DIR})")
    versions = sorted(
        p.name for p in TOFU_PLUGIN_DIR.glob(f"*/{PROVIDER}/*") if (p.is_dir() and any(p.iterdir()))
    )
    assert len(versions) == 1, f"expected one {PROVIDER} in {TOFU_PLUGIN_DIR}, found {versions}"
    return versions[0]


def pin_built_provider(tofu_dir: Path) -> str:
    """Let the rendered config use the provider build-tools.sh built; return its version.

    The rendered providers.tf pins the version the project targets (v0.90.0), which the Go
    module proxy reachable here does not serve. An OpenTofu override file (a test-only file
    next to the rendered ones; OpenTofu merges it over required_providers) replaces that one
    constraint, so everything else is checked exactly as rendered.
    """
    version = provider_version()
    (tofu_dir / "zz_test_provider_override.tf").write_text(
        "terraform {\n"
        "  required_providers {\n"
        f'    proxmox = {{\n      source  = "{PROVIDER}"\n      version = "{version}"\n    }}\n'
        "  }\n"
        "}\n"
    )
    return version


def tofu_init(tofu_dir: Path, env: Mapping[str, str]) -> None:
    run(
        "tofu",
        ["init", "-backend=false", f"-plugin-dir={TOFU_PLUGIN_DIR}", "-input=false", "-no-color"],
        tofu_dir,
        env,
    )


# --- Packer ---------------------------------------------------------------------------------


def packer_plugin_version() -> str:
    """Version of the installed Proxmox plugin, from the name `packer plugins install` gave it."""
    if not PACKER_PLUGIN_PATH.is_dir():
        missing(f"packer-plugin-proxmox ({PACKER_PLUGIN_PATH})")
    found = sorted(
        {
            m.group(1)
            for p in PACKER_PLUGIN_PATH.glob(f"{PACKER_PLUGIN}/packer-plugin-proxmox_v*")
            if (m := re.fullmatch(r"packer-plugin-proxmox_v(\d+\.\d+\.\d+)_x[\d.]+_\w+", p.name))
        }
    )
    assert len(found) == 1, f"expected one Proxmox plugin in {PACKER_PLUGIN_PATH}, found {found}"
    return found[0]


def render_for_double(root: Path, port: int) -> None:
    """Point the config in root at the Proxmox double on 127.0.0.1:port and render it there."""
    from ruamel.yaml import YAML

    from generator.options import Options
    from generator.pipeline import render_tree

    from .data import write_tree

    yaml = YAML()
    data = yaml.load(root / "cluster.yaml")
    data["proxmox_endpoint"] = f"https://127.0.0.1:{port}"
    yaml.dump(data, root / "cluster.yaml")
    write_tree(root, render_tree(Options(root)).files)
