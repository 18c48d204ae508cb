"""Load and validate the input files of a config directory (stages load + validate)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from generator.errors import Diagnostic, InputError, UsageError
from generator.load import Document, display_name, load_yaml
from generator.validate import check_schema, has_errors, validate

CLUSTER_FILE = "cluster.yaml"
NODES_FILE = "nodes.yaml"
SECRETS_FILE = "secrets.sops.yaml"


@dataclass(frozen=True)
class Inputs:
    config_dir: Path
    cluster: Document
    nodes: Document
    warnings: tuple[Diagnostic, ...]

    @property
    def secrets_file(self) -> Path | None:
        path = self.config_dir / SECRETS_FILE
        # Any entry counts (a link too): loading it then says why it is refused, instead
        # of rendering as if there were no secrets.
        return path if os.path.lexists(path) else None


def _load_and_validate(
    config_dir: Path, *, fast: bool
) -> tuple[dict[str, Document], list[Diagnostic]]:
    docs: dict[str, Document] = {}
    problems: list[Diagnostic] = []
    for name in (CLUSTER_FILE, NODES_FILE):
        try:
            docs[name] = load_yaml(config_dir / name, fast=fast)
        except InputError as exc:
            problems += exc.diagnostics
    if problems:
        # Still check the file that did load, so one run reports everything it can.
        for name, doc in docs.items():
            problems += check_schema(doc, "cluster" if name == CLUSTER_FILE else "nodes")
        return docs, problems
    return docs, validate(docs[CLUSTER_FILE], docs[NODES_FILE])


def read(config_dir: Path) -> Inputs:
    """Load cluster.yaml and nodes.yaml and validate them; raise InputError on any error."""
    if not config_dir.is_dir():
        raise UsageError(f"config directory {display_name(config_dir)} does not exist")
    # The C safe loader first. Whenever anything is to be reported (an error or a warning)
    # everything is redone with the round-trip loader, whose positions every message uses:
    # diagnostics read exactly as without the fast path.
    docs, found = _load_and_validate(config_dir, fast=True)
    if found:
        docs, found = _load_and_validate(config_dir, fast=False)
    if has_errors(found) or len(docs) < 2:
        raise InputError(found)
    return Inputs(config_dir, docs[CLUSTER_FILE], docs[NODES_FILE], tuple(found))
