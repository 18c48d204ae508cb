from __future__ import annotations

from generator import collisions, pipeline, sync, writer
from generator.errors import ConflictError
from generator.options import Options
from generator.output import emit_diagnostics, info, write_out

VERBS = {"create": "created", "update": "updated", "remove": "removed"}


def run(options: Options) -> int:
    root = options.output_root
    sync.require_output_root(root)
    # A dry run writes nothing, so it needs no encryption: like check it compares decrypted
    # content when the key is there and the structure when it is not.
    result = pipeline.render_tree(options, check=options.dry_run)
    managed = result.output_dirs
    collisions.check(result.snapshot, result.files, managed)
    if options.dry_run:
        plan = sync.plan(result.snapshot, result.files)
        emit_diagnostics([*result.warnings, *sync.kept_warnings(plan)])
        write_out(sync.unified_diff(plan))
        info(options.fmt, _summary(plan, dry_run=True))
        # Exactly what a real render would refuse (sync.apply): say so and fail like it would.
        # Raised, not printed: the conflict is then reported in --format like any other.
        if plan.refused:
            refused = [path for path, _ in plan.refused]
            raise ConflictError(f"a render would refuse: {sync.refused_message(plan)}", refused)
        if plan.conflicts and not options.force:
            raise ConflictError(
                f"a render would refuse: {sync.conflict_message(plan)}", list(plan.conflicts)
            )
        return 1 if options.exit_code and plan.changes else 0
    root.mkdir(parents=True, exist_ok=True)
    with writer.locked(root):
        plan = sync.plan(result.snapshot.current(), result.files)
        emit_diagnostics([*result.warnings, *sync.kept_warnings(plan)])
        writer.apply(root, plan, force=options.force)
    for change in plan.changes:
        info(options.fmt, f"{VERBS[change.action]} {change.path}")
    info(options.fmt, _summary(plan, dry_run=False))
    return 1 if options.exit_code and plan.changes else 0


def _summary(plan: sync.Plan, *, dry_run: bool) -> str:
    if not plan.changes:
        return f"clustergen: up to date ({len(plan.unchanged)} files)"
    would = "would be " if dry_run else ""
    counts = ", ".join(f"{plan.count(action)} {would}{verb}" for action, verb in VERBS.items())
    return f"clustergen: {counts}, {len(plan.unchanged)} unchanged"
