"""The files `clustergen init` may write, planned in memory (Planned): the example inputs,
the .gitignore entries, and the refusal of anything but a regular file where one of them
belongs."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from generator import constants, resources, secrets
from generator.errors import UsageError
from generator.load import display_name
from generator.safefs import kind

GITIGNORE = ".gitignore"
GITIGNORE_ENTRIES = ("age.key", ".terraform/", "*.tfstate*", "tfplan", ".clustergen/lock")
INPUT_FILES = constants.INPUT_FILES


@dataclass(frozen=True)
class Planned:
    name: str
    data: bytes
    mode: int = 0o644
    append: bool = False  # add to an existing file instead of creating it
    replace: bool = False  # rewrite an existing file (the host's .sops.yaml template)


def examples() -> list[str]:
    root = resources.examples_dir()
    return sorted(p.name for p in root.iterdir() if (p / "cluster.yaml").is_file())


def example_dir(name: str) -> Path:
    known = examples()
    # Compare against the list, never join the raw name: it must not walk out of examples/.
    if name not in known:
        raise UsageError(f"unknown example {name!r}; choose one of: {', '.join(known)}")
    return resources.examples_dir() / name


def placeholder_secrets() -> bytes:
    return "".join(f"{k}: {v}\n" for k, v in secrets.PLACEHOLDERS.items()).encode("utf-8")


def gitignore_addition(existing: str | None) -> bytes:
    present = {line.strip() for line in (existing or "").splitlines()}
    missing = [entry for entry in GITIGNORE_ENTRIES if entry not in present]
    if not missing:
        return b""
    lead = "" if not existing or existing.endswith("\n") else "\n"
    block = "# clustergen: the age key and local tool state stay out of git\n"
    if existing:
        block = "\n" + block
    return (lead + block + "".join(f"{m}\n" for m in missing)).encode("utf-8")


def present(path: Path) -> bool:
    """Whether anything is at path. A regular file is kept as it is; a link (dangling or
    not), FIFO or directory is refused: init would otherwise read through it, or create a
    key next to a name it then cannot write (and encrypt for a key it throws away)."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return False
    if not stat.S_ISREG(info.st_mode):
        raise UsageError(
            f"{display_name(path)} is {kind(info.st_mode)}: clustergen never follows links "
            "and writes only regular files; replace it with the file itself or remove it"
        )
    return True
