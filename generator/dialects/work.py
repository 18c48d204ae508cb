"""What the normaliser's steps share: the host inputs they read (Work) and the
normalised cluster data they build (Out), each value with its source path."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from generator.errors import Diagnostic
from generator.load import Document, PathPart

P = tuple[PathPart, ...]


@dataclass
class Out:
    """The normalised data being built, with the source path of each value."""

    data: dict[str, Any] = field(default_factory=dict)
    paths: dict[P, P] = field(default_factory=dict)

    def put(self, key: str, value: Any, source: P) -> None:
        self.data[key] = value
        self.paths[(key,)] = source


@dataclass
class Work:
    """One normalisation: the host's documents, which keys are the host's, and what the
    steps found (problems in order, secrets the host keeps in cluster.yaml)."""

    dialect: str
    cluster_doc: Document
    nodes_doc: Document
    config_dir: Path
    host_cluster: set[str]
    host_node: set[str]
    capi: bool
    problems: list[Diagnostic] = field(default_factory=list)
    secrets: dict[str, str] = field(default_factory=dict)

    @property
    def c(self) -> dict[str, Any]:
        data: dict[str, Any] = self.cluster_doc.data
        return data

    def error(self, doc: Document, path: Iterable[PathPart], message: str, hint: str = "") -> None:
        self.problems.append(doc.diag(list(path), message, hint))

    def warn(self, doc: Document, path: Iterable[PathPart], message: str, hint: str = "") -> None:
        self.problems.append(doc.diag(list(path), message, hint, severity="warning"))


def start(dialect: str, cluster: Document, nodes: Document, config_dir: Path) -> Work:
    provisioners = cluster.data.get("provisioners")
    capi = isinstance(provisioners, list) and "capi" in provisioners
    return Work(
        dialect,
        cluster,
        nodes,
        config_dir,
        _host_keys(dialect, "cluster"),
        _host_keys(dialect, "nodes"),
        capi,
    )


def own_keys(schema: str) -> set[str]:
    """clustergen's own keys of cluster.yaml ("cluster") or of a node ("nodes")."""
    from generator import derive

    return set(derive._CLUSTER_PROPS) if schema == "cluster" else set(derive._NODE_PROPS)


def _host_keys(dialect: str, kind: str) -> set[str]:
    import json

    from generator import resources
    from generator.dialects import schema_name

    data = json.loads(resources.schema_path(schema_name(dialect, kind)).read_text("utf-8"))
    props = data["properties"] if kind == "cluster" else data["$defs"]["node"]["properties"]
    return {k for k, spec in props.items() if spec.get("x-dialect") == dialect}
