"""Stage 2b: map a host dialect's (schema-valid) inputs onto clustergen's model inputs.

After this stage every key has clustergen's name and meaning; the host's defaults are
applied here (they differ from clustergen's, see hostdefaults.py), and every host value
clustergen cannot honour is an error or a warning, never silently dropped. The result is
checked once more against clustergen's own schemas and rules, with positions of the source
(see mapped.py). The steps: normal_nodes (nodes.yaml), then normal_cluster (cluster.yaml,
which takes the image and MTU most nodes use; normal_talos for talos-cluster's own keys).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from generator.dialects import TALOS_CLUSTER, mapped, normal_cluster, normal_nodes, work
from generator.dialects.hostdefaults import SECRET_KEYS
from generator.errors import Diagnostic
from generator.load import Document


@dataclass(frozen=True)
class Normalised:
    cluster: Document
    nodes: Document
    secrets: dict[str, str]
    diagnostics: list[Diagnostic]


def normalise(dialect: str, cluster: Document, nodes: Document, config_dir: Path) -> Normalised:
    """Schema-valid host inputs -> clustergen's inputs (documents with source positions)."""
    step = work.start(dialect, cluster, nodes, config_dir)
    node_list, node_paths = normal_nodes.nodes(step)
    out = normal_cluster.cluster(step, node_list)
    if dialect == TALOS_CLUSTER:
        normal_nodes.pick_vm_ids(out.data, node_list)
    for key in SECRET_KEYS:
        out.data.pop(key, None)
    return Normalised(
        mapped.mapped(cluster, out.data, out.paths),
        mapped.mapped(nodes, {"nodes": node_list}, node_paths),
        step.secrets,
        step.problems,
    )
