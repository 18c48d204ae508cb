"""`clustergen init --move-secrets`: the Proxmox API token out of a plaintext cluster.yaml.

talos-cluster keeps `proxmox_api_token_id` / `proxmox_api_token_secret` in its git-ignored
cluster.yaml. clustergen reads them from its sops file, so once they live there (and the
host's other plaintext secrets are gone too) the inputs can be committed and CI can check
them. The move keeps every other line and comment of cluster.yaml (ruamel round trip) and
writes the encrypted file before it touches cluster.yaml, so a failure loses nothing.

Dialects (the host keys another input format spells differently) plug in through
SECRET_KEYS_BY_NAME: the name in cluster.yaml -> clustergen's key in secrets.sops.yaml.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from generator import secrets, sops, writer
from generator.errors import UsageError
from generator.load import display_name

SECRET_KEYS_BY_NAME: Mapping[str, str] = {key: key for key in secrets.SECRET_KEYS}


def _round_trip() -> Any:
    from ruamel.yaml import YAML

    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096
    return yaml


def found(cluster: Path) -> dict[str, str]:
    """clustergen key -> plaintext value of the secrets cluster.yaml holds (empty values,
    the samples' `""`, do not count)."""
    try:
        data = _round_trip().load(cluster.read_text(encoding="utf-8"))
    except Exception:  # an unreadable cluster.yaml is validate's to report
        return {}
    if not isinstance(data, dict):
        return {}
    return {
        ours: str(data[name])
        for name, ours in SECRET_KEYS_BY_NAME.items()
        if data.get(name) not in (None, "")
    }


def without_secrets(cluster: Path) -> bytes:
    yaml = _round_trip()
    text = cluster.read_text(encoding="utf-8")
    yaml.explicit_start = text.startswith("---")  # ruamel drops a leading `---` otherwise
    data = yaml.load(text)
    for name in SECRET_KEYS_BY_NAME:
        if name in data:
            del data[name]
    out = io.StringIO()
    yaml.dump(data, out)
    return out.getvalue().encode("utf-8")


def plaintext(values: Mapping[str, str], existing: Mapping[str, str] | None = None) -> bytes:
    merged = {**secrets.PLACEHOLDERS, **(existing or {}), **values}
    out = io.StringIO()
    _round_trip().dump({key: merged[key] for key in secrets.SECRET_KEYS}, out)
    return out.getvalue().encode("utf-8")


def source(config_dir: Path) -> Path:
    """The cluster.yaml that holds the token: DIR's own, else (clustergen's inputs in a
    subdirectory of a talos-cluster repo) the host's at the repo root."""
    from generator import hostrepo

    own = config_dir / "cluster.yaml"
    root = hostrepo.repo_root(config_dir)
    if found(own) or root is None or root == config_dir.resolve():
        return own
    host = root / "cluster.yaml"
    return host if host.is_file() and not host.is_symlink() and found(host) else own


def move(config_dir: Path, *, recipient: str | None) -> list[str]:
    """Move the secrets; returns what it did, one line each."""
    cluster = source(config_dir)
    if cluster.is_symlink():
        raise UsageError(
            f"{display_name(cluster)} is a symlink: clustergen never writes through one"
        )
    values = found(cluster)
    if not values:
        return [f"nothing to move: {display_name(cluster)} holds no proxmox_api_token_*"]
    target = config_dir / secrets.SECRETS_FILE
    existing: dict[str, str] | None = None
    if target.exists():
        existing = secrets.load_secrets(target, shown=secrets.SECRETS_FILE)
    data = plaintext(values, existing)
    from generator import sopssetup

    config = sops.find_config(config_dir)
    rules = sopssetup.rules_for(config_dir, config.parent) if config else None
    if config is not None and rules and sopssetup.covered(config.read_text("utf-8"), rules):
        # Its rules name every recipient (maybe a team's), as for every other sops file.
        sealed = sops.encrypt(data, secrets.SECRETS_FILE, config=config, cwd=config_dir)
    elif recipient is not None:
        sealed = sops.encrypt(
            data, secrets.SECRETS_FILE, age_recipients=[recipient], cwd=config_dir
        )
    else:
        raise UsageError(f"no {sops.SOPS_CONFIG} rule and no age key: run `clustergen init`")
    writer.write_atomic(target, sealed)
    writer.write_atomic(cluster, without_secrets(cluster))
    keys = ", ".join(sorted(values))
    return [
        f"moved {keys} from {display_name(cluster)} into {display_name(target)} (encrypted)",
        f"rotate the token if {display_name(cluster)} was ever committed or pushed",
    ]


def offer(config_dir: Path) -> str | None:
    """The hint init prints when cluster.yaml holds the token in plaintext."""
    cluster = source(config_dir)
    values = found(cluster)
    if not values:
        return None
    target = display_name(config_dir / secrets.SECRETS_FILE)
    return (
        f"{display_name(cluster)} holds {', '.join(sorted(values))} in plaintext: "
        f"`clustergen init --move-secrets` moves them into {target} (encrypted)"
    )
