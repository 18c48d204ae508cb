"""validate -> normalise for one dialect: what inputs.read runs on the two loaded documents."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from generator import validate
from generator.dialects import CLUSTERGEN, foreign_hint, schema_name
from generator.errors import Diagnostic
from generator.load import Document


@dataclass(frozen=True)
class Checked:
    cluster: Document
    nodes: Document
    diagnostics: list[Diagnostic]
    # talos-cluster keeps the API token in its (git-ignored) cluster.yaml.
    secrets: dict[str, str] = field(default_factory=dict)


def hints(dialect: str) -> tuple[Callable[[list[Any], str], str], Callable[[list[Any], str], str]]:
    """unknown_hint callables for cluster.yaml and nodes.yaml read as dialect."""

    def cluster(path: list[Any], key: str) -> str:
        return foreign_hint(dialect, "cluster", False, key) if not path else ""

    def nodes(path: list[Any], key: str) -> str:
        in_node = len(path) == 2 and path[0] == "nodes"
        return foreign_hint(dialect, "nodes", True, key) if in_node else ""

    return cluster, nodes


def schema_only(dialect: str, doc: Document, kind: str) -> list[Diagnostic]:
    hint = hints(dialect)[0 if kind == "cluster" else 1]
    return validate.check_schema(doc, schema_name(dialect, kind), hint)


def check(dialect: str, cluster: Document, nodes: Document, config_dir: Path) -> Checked:
    if dialect == CLUSTERGEN:
        return Checked(cluster, nodes, validate.validate(cluster, nodes, hints(dialect)))
    found = schema_only(dialect, cluster, "cluster") + schema_only(dialect, nodes, "nodes")
    both = isinstance(cluster.data, dict) and isinstance(nodes.data, dict)
    if not both or validate.has_errors(found):
        # The host's own types come first; mapping invalid values would only add noise.
        return Checked(cluster, nodes, sorted(set(found)))
    from generator.dialects.normalise import normalise

    result = normalise(dialect, cluster, nodes, config_dir)
    found += result.diagnostics
    if not validate.has_errors(result.diagnostics):
        # The mapped values meet clustergen's own schemas and rules, shown at their source.
        found += validate.validate(result.cluster, result.nodes)
    return Checked(result.cluster, result.nodes, sorted(set(found)), result.secrets)
