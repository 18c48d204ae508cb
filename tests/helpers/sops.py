"""Secrets files encrypted with the real sops for a fresh age key."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from generator.commands.init import sops_config

from .tools import tool


def encrypt_secrets(
    config: Path, token_id: str, secret: str, *, key: Path | None = None, rules: bool = False
) -> Path:
    """config/secrets.sops.yaml holding the Proxmox token, encrypted for a new age key.

    The key is written to key (default: config/../age.key); returns its path. rules: also
    write config/.sops.yaml with init's creation rule for that key. The plaintext goes in as
    JSON, so a hostile token ID stays one string.
    """
    from pyrage import x25519

    identity = x25519.Identity.generate()
    key = key or config.parent / "age.key"
    key.write_text(f"{identity}\n")
    plaintext = json.dumps({"proxmox_api_token_id": token_id, "proxmox_api_token_secret": secret})
    done = subprocess.run(
        [
            *(tool("sops"), "encrypt", "--age", str(identity.to_public())),
            *("--input-type", "json", "--output-type", "yaml", "/dev/stdin"),
        ],
        input=plaintext,
        capture_output=True,
        text=True,
        check=True,
    )
    (config / "secrets.sops.yaml").write_text(done.stdout)
    if rules:
        (config / ".sops.yaml").write_bytes(sops_config(str(identity.to_public())))
    return key


def decrypt(path: Path, key: Path, env: Mapping[str, str]) -> Any:
    """The data of the sops file at path, decrypted by the real sops with key in env."""
    done = subprocess.run(
        [tool("sops"), "--decrypt", str(path)],
        env={**env, "SOPS_AGE_KEY_FILE": str(key)},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return YAML(typ="safe").load(done.stdout)
