"""Input dialects: clustergen's own keys, and the keys of the two host repos clustergen drops
into (cluster-template @77cc9f5, talos-cluster @c999e05).

A host dialect's schema (schemas/dialects/) is the closed union of the host's keys and
clustergen's; generator.dialects.normalise maps it onto clustergen's model inputs, so nothing
after that stage knows which dialect the files were written in.
"""

from __future__ import annotations

import os
import re
import stat
from functools import cache
from pathlib import Path
from typing import Any

from generator.errors import UsageError
from generator.load import display_name

CLUSTERGEN = "clustergen"
CLUSTER_TEMPLATE = "cluster-template"
TALOS_CLUSTER = "talos-cluster"
DIALECTS = (CLUSTERGEN, CLUSTER_TEMPLATE, TALOS_CLUSTER)
AUTO = "auto"
CHOICES = (AUTO, *DIALECTS)

# Where both host repos keep the CUE schemas their `task configure` vets the inputs with.
SCHEMA_DIR = Path(".taskfiles") / "template" / "resources"
CLUSTER_CUE = SCHEMA_DIR / "cluster.schema.cue"
NODES_CUE = SCHEMA_DIR / "nodes.schema.cue"
MAX_CUE_BYTES = 1024 * 1024
# talos-cluster defines the Proxmox keys of its OpenTofu; cluster-template has none. The key
# must be a field of the host's own text, not of the block `clustergen init` adds.
_TALOS_CLUSTER_KEY = re.compile(r"^\s*proxmox_api_url\??\s*:", re.M)


def schema_name(dialect: str, kind: str) -> str:
    """The schemas/ name (resources.schema_path) of a dialect's cluster or nodes schema."""
    return kind if dialect == CLUSTERGEN else f"dialects/{dialect}.{kind}"


def read_repo_file(config_dir: Path, relative: Path, limit: int = MAX_CUE_BYTES) -> str | None:
    """A small text file of the repo, or None when absent. Never through a symlink."""
    path = config_dir
    for part in relative.parts:
        path = path / part
        try:
            info = os.lstat(path)
        except FileNotFoundError:
            return None
        if stat.S_ISLNK(info.st_mode):
            raise UsageError(f"{display_name(path)} is a symlink; clustergen does not follow it")
    if not stat.S_ISREG(info.st_mode):
        return None
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    with os.fdopen(fd, "rb") as handle:
        raw = handle.read(limit + 1)
    if len(raw) > limit:
        raise UsageError(f"{display_name(path)} is larger than {limit} bytes")
    return raw.decode("utf-8", "replace")


def _host_text(text: str) -> str:
    """The CUE text without the block clustergen init added (see generator.dialects.adopt)."""
    from generator.dialects.adopt import strip_block

    return strip_block(text)


def detect(config_dir: Path, cluster: Any = None) -> str:
    """The dialect of the repo at config_dir: from the host's CUE schema when there is one,
    else from cluster.yaml's keys (a host's own key, like cloudflare_domain, names the host)."""
    text = read_repo_file(config_dir, CLUSTER_CUE)
    if text is not None:
        return TALOS_CLUSTER if _TALOS_CLUSTER_KEY.search(_host_text(text)) else CLUSTER_TEMPLATE
    if not isinstance(cluster, dict):
        return CLUSTERGEN
    from generator import derive

    others = set(cluster) - set(derive._CLUSTER_PROPS)
    if not others:
        # Only clustergen's keys (the common case): no host schema is even loaded.
        return CLUSTERGEN
    owners = foreign_keys()[("cluster", "top")]
    found = {owners.get(key) for key in others}
    # A key only talos-cluster defines names it; cluster-template's keys are also its.
    if TALOS_CLUSTER in found:
        return TALOS_CLUSTER
    return CLUSTER_TEMPLATE if CLUSTER_TEMPLATE in found else CLUSTERGEN


def resolve(config_dir: Path, requested: str, cluster: Any = None) -> str:
    if requested == AUTO:
        return detect(config_dir, cluster)
    if requested not in DIALECTS:
        raise UsageError(f"unknown dialect {requested!r}; choose one of: {', '.join(CHOICES)}")
    return requested


@cache
def foreign_keys() -> dict[tuple[str, str], dict[str, str]]:
    """(schema kind, 'top' or 'node') -> {key: the dialect that defines it} for every dialect."""
    import json

    from generator import resources

    out: dict[tuple[str, str], dict[str, str]] = {}
    for dialect in DIALECTS:
        for kind in ("cluster", "nodes"):
            data = json.loads(resources.schema_path(schema_name(dialect, kind)).read_text("utf-8"))
            props = data["properties"] if kind == "cluster" else data["$defs"]["node"]["properties"]
            where = (kind, "top" if kind == "cluster" else "node")
            for key, spec in props.items():
                owner = spec.get("x-dialect", CLUSTERGEN)
                out.setdefault(where, {}).setdefault(key, owner)
    return out


def foreign_hint(dialect: str, kind: str, in_node: bool, key: str) -> str:
    """For an unknown key that another dialect defines: which one, and how to choose it."""
    owner = foreign_keys().get((kind, "node" if in_node else "top"), {}).get(key)
    if owner is None or owner == dialect:
        return ""
    return f"{key} is a {owner} key; this repo is read as {dialect} (--dialect {owner} to switch)"
