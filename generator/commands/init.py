"""`clustergen init`: a new config directory with the sops setup, never overwriting a file.

Creates, each only when absent: cluster.yaml and nodes.yaml (from an example), age.key (mode
0600), .sops.yaml, an encrypted secrets.sops.yaml with placeholder values, and the missing
.gitignore entries. Everything is prepared in memory first (including the encryption), so a
failure (no sops, no matching rule) leaves the directory as it was.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

from generator import secrets, writer
from generator.agekey import AGE_KEY, read_identity
from generator.errors import UsageError
from generator.init_files import GITIGNORE_ENTRIES, example_dir
from generator.init_plan import plan
from generator.init_sops import sops_config
from generator.load import display_name
from generator.options import Options
from generator.output import info

# Other modules and the tests import these from here.
__all__ = ["GITIGNORE_ENTRIES", "plan", "run", "sops_config"]


def _write_new(path: Path, data: bytes, mode: int) -> None:
    """Create path; O_EXCL makes "never overwrite" hold even against a racing writer, and
    the mode is set at creation, so age.key is never readable by others, not even briefly."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    try:
        os.fchmod(fd, mode)  # the umask may have removed bits; 0600 must be exact
        os.write(fd, data)
    finally:
        os.close(fd)


def _host_repo(options: Options) -> Any:
    """In a cluster-template or talos-cluster repo: the extension of its CUE schemas with
    clustergen's keys (generator.dialects.adopt), applied once the rest is prepared."""
    from generator.dialects import adopt

    return adopt.prepare(options.config_dir, options.dialect, options.example)


def _secrets_in_cluster_yaml(config_dir: Path, *, move: bool) -> list[str]:
    """--move-secrets moves the token out of a plaintext cluster.yaml; without it init only
    offers that (generator/movesecrets.py)."""
    from generator import hostrepo, movesecrets

    if not move:
        offer = movesecrets.offer(config_dir)
        return [offer] if offer else []
    key = hostrepo.age_key(config_dir)
    return movesecrets.move(config_dir, recipient=read_identity(key) if key else None)


def run(options: Options) -> int:
    config_dir = options.config_dir
    if config_dir.exists() and not config_dir.is_dir():
        raise UsageError(f"{display_name(config_dir)} exists and is not a directory")
    example_dir(options.example)  # an unknown example must not leave a new empty directory
    created = [p for p in (config_dir, *config_dir.parents) if not p.exists()]
    config_dir.mkdir(parents=True, exist_ok=True)
    schemas = _host_repo(options)
    example = schemas.dialect if schemas.dialect_example else options.example
    try:
        todo, kept = plan(config_dir, example, token_in_cluster_yaml=schemas.token_in_cluster_yaml)
    except BaseException:
        # plan() writes nothing, but it runs sops inside the directory; a failed init leaves
        # none of the directories it made behind (rmdir: only while they are empty).
        for directory in created:
            with contextlib.suppress(OSError):
                directory.rmdir()
        raise
    schemas.apply(options.fmt)
    for item in todo:
        path = config_dir / item.name
        try:
            if item.replace:
                writer.write_atomic(path, item.data)
            elif item.append:
                fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_NOFOLLOW)
                try:
                    os.write(fd, item.data)
                finally:
                    os.close(fd)
            else:
                _write_new(path, item.data, item.mode)
        except FileExistsError:
            if item.name == AGE_KEY:
                # secrets.sops.yaml was encrypted for the key that could not be written.
                raise UsageError(
                    f"{AGE_KEY} appeared while init ran; run `clustergen init` again"
                ) from None
            kept.append(f"{item.name} (appeared while init ran)")
            continue
        except OSError as exc:
            raise UsageError(f"cannot write {display_name(path)}: {exc.strerror}") from None
        verb = "updated" if item.append or item.replace else "created"
        info(options.fmt, f"{verb} {display_name(path) if item.replace else item.name}")
    for note in kept:
        # A note may span lines (the creation rules to paste): one message per line, since a
        # message's own control characters are escaped when printed.
        for line in f"kept {note}".split("\n"):
            info(options.fmt, line)
    for line in _secrets_in_cluster_yaml(config_dir, move=options.move_secrets):
        info(options.fmt, line)
    shown = display_name(config_dir)
    where = "" if shown == "." else f"cd {shown} && "
    if schemas.token_in_cluster_yaml and not (config_dir / secrets.SECRETS_FILE).exists():
        # talos-cluster keeps the token in its git-ignored cluster.yaml: no secrets file to fill.
        token_step = (
            "the Proxmox API token stays in cluster.yaml (proxmox_api_token_id/_secret; "
            "`clustergen init --move-secrets` moves it into an encrypted "
            f"{secrets.SECRETS_FILE})"
        )
    else:
        token_step = (
            f"put the real Proxmox API token in {secrets.SECRETS_FILE} with "
            f"`sops {secrets.SECRETS_FILE}`"
        )
    info(
        options.fmt,
        f"next: {where}export SOPS_AGE_KEY_FILE=$PWD/{AGE_KEY}; {token_step}; "
        "then `clustergen render`",
    )
    return 0
