from __future__ import annotations

from pathlib import Path

from generator import collisions, pipeline, sync
from generator.errors import Diagnostic
from generator.load import display_name
from generator.options import Options
from generator.output import emit_diagnostics, info, note, write_err, write_out


def run(options: Options) -> int:
    root = options.output_root
    sync.require_output_root(root)
    result = pipeline.render_tree(options, check=True)
    collisions.check(result.snapshot, result.files, result.output_dirs)
    plan = sync.plan(result.snapshot, result.files)
    emit_diagnostics([*result.warnings, *sync.kept_warnings(plan)])
    for path in result.unverified:
        note("no key to decrypt it; compared its keys and structure only", path)
    if plan.changes:
        write_out(sync.unified_diff(plan))
        if options.fmt == "github":
            emit_diagnostics(_drift(root, plan))
        if options.fmt != "json":  # stderr then holds only the diagnostics document
            if plan.refused:
                write_err(sync.refused_message(plan))
            write_err(
                f"clustergen: {len(plan.changes)} file(s) out of date "
                f"({plan.count('create')} missing, {plan.count('update')} changed, "
                f"{plan.count('remove')} stale); run `clustergen render`"
            )
        return 1
    info(options.fmt, f"clustergen: in sync ({len(plan.unchanged)} files)")
    return 0


DRIFT = {
    "create": "missing: clustergen would create it",
    "update": "out of date: differs from what clustergen renders",
    "remove": "stale: clustergen generated it and no longer would",
}


def _drift(root: Path, plan: sync.Plan) -> list[Diagnostic]:
    """One error per drifted file, for workflow annotations on the file itself."""
    return [
        Diagnostic(
            display_name(root / change.path),
            1,
            1,
            "(drift)",
            DRIFT[change.action],
            "run `clustergen render` and commit the result",
        )
        for change in plan.changes
    ]
