"""makejinja plugin: plain `makejinja` renders the same bytes as clustergen.

makejinja merges cluster.yaml and nodes.yaml into its data; this plugin turns that data into
the same model clustergen builds and gives makejinja the same filters.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from generator import filters, model
from generator.constants import CLUSTER_FILE, NODES_FILE, SECRETS_FILE


class Plugin:
    def __init__(self, *, data: Mapping[str, Any], config: Any = None) -> None:
        cluster: Mapping[str, Any] = {k: v for k, v in data.items() if k != "nodes"}
        nodes: Mapping[str, Any] = {"nodes": data.get("nodes", [])}
        cluster, nodes, secrets = _normalised(cluster, nodes)
        self._context = model.build(
            cluster,
            nodes,
            secrets=secrets or None,
            has_secrets_file=Path(SECRETS_FILE).is_file(),
        )

    def data(self) -> Mapping[str, Any]:
        return self._context

    def filters(self) -> Sequence[Callable[..., Any]]:
        return filters.FILTERS


def _normalised(
    cluster: Mapping[str, Any], nodes: Mapping[str, Any]
) -> tuple[Mapping[str, Any], Mapping[str, Any], dict[str, str]]:
    """A host repo's files (makejinja runs in the repo): mapped as clustergen maps them."""
    from generator import dialects
    from generator.dialects.normalise import normalise
    from generator.load import Document

    here = Path(".")
    dialect = dialects.resolve(here, dialects.AUTO, dict(cluster))
    if dialect == dialects.CLUSTERGEN:
        return cluster, nodes, {}
    result = normalise(
        dialect,
        Document(CLUSTER_FILE, dict(cluster), dict(cluster), positions=False),
        Document(NODES_FILE, dict(nodes), dict(nodes), positions=False),
        here,
    )
    errors = [d for d in result.diagnostics if d.is_error]
    if errors:
        raise ValueError("; ".join(f"{d.file}: {d.path}: {d.message}" for d in errors))
    return result.cluster.data, result.nodes.data, result.secrets
