"""The rendered Packer files with the real Packer and its Proxmox plugin: the variables as
plain values, the copy plugin 1.1.1 (the newest the proxy here serves) accepts, and `packer`
/ `packer console` runs on it."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import hcl2

from helpers.paths import PACKER_PLUGIN_PATH
from helpers.tools import run_captured, tool

DIR = "infrastructure/packer"


def pkrvars(files: dict[str, bytes]) -> dict[str, Any]:
    """variables.pkrvars.hcl as plain values (strings unquoted)."""
    parsed = hcl2.loads(files[f"{DIR}/variables.pkrvars.hcl"].decode())
    return {
        k: v[1:-1] if isinstance(v, str) and v.startswith('"') else v
        for k, v in parsed.items()
        if not k.startswith("__")
    }


# What packer-plugin-proxmox 1.1.1 (the newest the proxy here serves) lacks of the 1.2.x
# template: the boot_iso block (1.1.1: top-level iso_file/unmount_iso), tags, efi_format,
# disks.ssd/discard, and it still requires disks.storage_pool_type. The copy that the real
# Packer validates differs from the template by exactly these lines; the rest is checked.
def for_plugin_1_1_1(template: str) -> str:
    out = template.replace('version = ">= 1.2.3"', 'version = ">= 1.1.1"')
    out, isos = re.subn(
        r'  boot_iso \{\n    type     = "ide"\n    iso_file = (.*)\n    unmount  = true\n  \}\n',
        r"  iso_file    = \1\n  unmount_iso = true\n",
        out,
    )
    out = re.sub(r"\n  tags +=.*", "", out)
    out = re.sub(r"\n    (efi_format|ssd|discard) +=.*", "", out)
    out = out.replace(
        "    storage_pool = var.proxmox_storage\n",
        '    storage_pool = var.proxmox_storage\n    storage_pool_type = "lvm"\n',
    )
    assert isos == out.count('source "proxmox-iso"') >= 1
    return out


def packer(
    directory: Path, *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """The real Packer with the real Proxmox plugin on the rendered files in directory."""
    env = {
        **os.environ,
        "PACKER_PLUGIN_PATH": str(PACKER_PLUGIN_PATH),
        "PACKER_CONFIG_DIR": str(directory / ".packer.d"),
        "CHECKPOINT_DISABLE": "1",
        "PKR_VAR_proxmox_token_id": "packer@pve!build",
        "PKR_VAR_proxmox_token_secret": "0b6f1f0e-aaaa-bbbb-cccc-444455556666",
    }
    command = [tool("packer"), *args, "-var-file=variables.pkrvars.hcl", "."]
    return run_captured(command, cwd=directory, env=env, input=stdin, timeout=120)


def packer_dir(files: dict[str, bytes], where: Path) -> Path:
    where.mkdir(parents=True, exist_ok=True)
    (where / "talos.pkr.hcl").write_text(for_plugin_1_1_1(files[f"{DIR}/talos.pkr.hcl"].decode()))
    (where / "variables.pkrvars.hcl").write_bytes(files[f"{DIR}/variables.pkrvars.hcl"])
    return where


def console(directory: Path, expression: str, *args: str) -> Any:
    """An HCL expression as the real Packer evaluates it (packer console), as JSON."""
    done = packer(directory, "console", *args, stdin=f"jsonencode({expression})\n")
    assert done.returncode == 0, done.stdout + done.stderr
    # console prints the string jsonencode returns as it is: the JSON text.
    return json.loads(done.stdout.strip())
