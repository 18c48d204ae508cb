"""Load and validate the input files of a config directory (stages load + validate)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from generator import dialects
from generator.dialects import stage
from generator.errors import Diagnostic, InputError, UsageError
from generator.load import Document, display_name, load_yaml
from generator.validate import has_errors

CLUSTER_FILE = "cluster.yaml"
NODES_FILE = "nodes.yaml"
SECRETS_FILE = "secrets.sops.yaml"


@dataclass(frozen=True)
class Inputs:
    config_dir: Path
    cluster: Document
    nodes: Document
    warnings: tuple[Diagnostic, ...]
    dialect: str = "clustergen"
    # Secrets the dialect keeps in cluster.yaml (talos-cluster's API token), else empty.
    inline_secrets: Mapping[str, str] = field(default_factory=dict)

    @property
    def secrets_file(self) -> Path | None:
        path = self.config_dir / SECRETS_FILE
        # Any entry counts (a link too): loading it then says why it is refused, instead
        # of rendering as if there were no secrets.
        return path if os.path.lexists(path) else None


def _load_and_validate(
    config_dir: Path, *, fast: bool, requested: str = dialects.AUTO
) -> tuple[dict[str, Document], list[Diagnostic], dict[str, str], str]:
    docs: dict[str, Document] = {}
    problems: list[Diagnostic] = []
    for name in (CLUSTER_FILE, NODES_FILE):
        try:
            docs[name] = load_yaml(config_dir / name, fast=fast)
        except InputError as exc:
            problems += _explain_missing(config_dir / name, exc.diagnostics)
    cluster = docs.get(CLUSTER_FILE)
    dialect = dialects.resolve(config_dir, requested, cluster.data if cluster else None)
    if problems:
        # Still check the file that did load, so one run reports everything it can.
        for name, doc in docs.items():
            kind = "cluster" if name == CLUSTER_FILE else "nodes"
            problems += stage.schema_only(dialect, doc, kind)
        return docs, problems, {}, dialect
    checked = stage.check(dialect, docs[CLUSTER_FILE], docs[NODES_FILE], config_dir)
    docs = {CLUSTER_FILE: checked.cluster, NODES_FILE: checked.nodes}
    return docs, checked.diagnostics, checked.secrets, dialect


def _explain_missing(path: Path, found: tuple[Diagnostic, ...]) -> list[Diagnostic]:
    """A missing input that git ignores says so (see generator/gitignore.py)."""
    if not any(d.message == "file not found" for d in found):
        return list(found)
    from generator import gitignore

    why = gitignore.missing_input_hint(path)
    if why is None:
        return list(found)
    message, hint = why
    return [
        replace(d, message=message, hint=hint) if d.message == "file not found" else d
        for d in found
    ]


def read(config_dir: Path, dialect: str = dialects.AUTO) -> Inputs:
    """Load cluster.yaml and nodes.yaml and validate them; raise InputError on any error.

    dialect: auto (detected from the repo), clustergen, cluster-template or talos-cluster.
    """
    if not config_dir.is_dir():
        raise UsageError(f"config directory {display_name(config_dir)} does not exist")
    requested = dialect
    # The C safe loader first. Whenever anything is to be reported (an error or a warning)
    # everything is redone with the round-trip loader, whose positions every message uses:
    # diagnostics read exactly as without the fast path.
    docs, found, inline, dialect = _load_and_validate(config_dir, fast=True, requested=requested)
    if found:
        docs, found, inline, dialect = _load_and_validate(
            config_dir, fast=False, requested=requested
        )
    if inline and (config_dir / SECRETS_FILE).is_file():
        found = [*found, _two_token_places(docs[CLUSTER_FILE])]
    if has_errors(found) or len(docs) < 2:
        raise InputError(found)
    return Inputs(config_dir, docs[CLUSTER_FILE], docs[NODES_FILE], tuple(found), dialect, inline)


def _two_token_places(cluster: Document) -> Diagnostic:
    return cluster.diag(
        [],
        f"the Proxmox API token is in cluster.yaml and in {SECRETS_FILE}; cluster.yaml's is used",
        f"keep it in one place (remove {SECRETS_FILE} or the two proxmox_api_token_* keys)",
        severity="warning",
    )
