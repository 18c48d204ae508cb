"""`clustergen validate`: load and check the inputs, print warnings, exit 0 when valid."""

from __future__ import annotations

from generator import inputs
from generator.options import Options
from generator.output import emit_diagnostics, info


def run(options: Options) -> int:
    read = inputs.read(options.config_dir, options.dialect)
    emit_diagnostics(read.warnings)
    nodes = read.nodes.data["nodes"]
    controllers = sum(1 for n in nodes if n.get("controller") is True)
    info(
        options.fmt,
        f"valid: {len(nodes)} node(s), {controllers} controller(s), "
        f"{len(nodes) - controllers} worker(s) ({read.dialect} dialect)",
    )
    return 0
