"""Profile one clustergen command in process, on CPU time, and summarise where it goes.

Usage: python benchmarks/profile_cli.py [--stages] [--top N] [--out FILE.prof] -- <args>
e.g.   python benchmarks/profile_cli.py -- -C /tmp/cfg render -o /tmp/out

--stages: no cProfile (its overhead inflates call-heavy parsers 3-5x); instead the stage
functions are wrapped with timers, which costs next to nothing, and imports are timed as a
whole. Use it for the shares, cProfile for the hotspots inside a stage.

The profiler's clock is process CPU time, not wall time: on a shared CI runner the wall clock
mostly measures the neighbours. Besides the usual cumulative/own-time tables it prints the
share of each pipeline stage (a fixed list of clustergen functions) and of imports.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

# (label, file suffix, function name) of the stages worth attributing time to.
STAGES = (
    ("imports (all modules)", "<frozen importlib._bootstrap>", "_find_and_load"),
    ("load: read inputs", "generator/inputs.py", "read"),
    ("validate: schema + rules", "generator/validate.py", "validate"),
    ("model.build", "generator/model.py", "build"),
    ("render: templates", "generator/render.py", "render"),
    ("verify: parse outputs", "generator/verify.py", "verify"),
    ("verify: HCL", "generator/verify.py", "_parse_hcl"),
    ("verify: YAML", "generator/verify.py", "_parse_yaml"),
    ("outtree.take", "generator/outtree.py", "take"),
    ("seal.seal", "generator/seal.py", "seal"),
    ("sync.plan", "generator/sync.py", "plan"),
    ("writer.apply", "generator/writer.py", "apply"),
    ("unified diff", "generator/sync.py", "unified_diff"),
)


def stage_shares(stats: pstats.Stats, total: float) -> list[tuple[str, float, float]]:
    raw = stats.stats  # type: ignore[attr-defined]
    rows = []
    for label, suffix, func in STAGES:
        cum = sum(
            entry[3]
            for (filename, _line, name), entry in raw.items()
            if name == func and filename.endswith(suffix)
        )
        if cum:
            rows.append((label, cum, 100.0 * cum / total if total else 0.0))
    return rows


# Functions to wrap for --stages: (module, attribute); a module that imported a stage
# function by name gets the wrapper too (generator.inputs calls validate directly).
WRAP = (
    ("generator.inputs", "read"),
    ("generator.load", "load_yaml"),
    ("generator.validate", "validate"),
    ("generator.model", "build"),
    ("generator.render", "render"),
    ("generator.verify", "verify"),
    ("generator.verify", "_parse_hcl"),
    ("generator.verify", "_parse_yaml"),
    ("generator.outtree", "take"),
    ("generator.seal", "seal"),
    ("generator.sync", "plan"),
    ("generator.writer", "apply"),
    ("generator.sync", "unified_diff"),
)
ALIASES = (
    ("generator.inputs", "validate", "generator.validate"),
    ("generator.inputs", "load_yaml", "generator.load"),
)


def run_stages(args: list[str]) -> int:
    import importlib

    wall0, cpu0 = time.perf_counter(), time.process_time()
    from generator.cli import main as clustergen

    for module_name, _attr, _source in ALIASES:
        importlib.import_module(module_name)
    imported_wall, imported_cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    spent: dict[str, list[float]] = {}

    def wrap(label: str, fn: Any) -> Any:
        def timed(*a: Any, **kw: Any) -> Any:
            w, c = time.perf_counter(), time.process_time()
            try:
                return fn(*a, **kw)
            finally:
                entry = spent.setdefault(label, [0.0, 0.0, 0])
                entry[0] += time.perf_counter() - w
                entry[1] += time.process_time() - c
                entry[2] += 1

        return timed

    wrapped: dict[tuple[str, str], Any] = {}
    for module_name, attr in WRAP:
        module = importlib.import_module(module_name)
        wrapped[(module_name, attr)] = wrap(
            f"{module_name.split('.')[-1]}.{attr}", getattr(module, attr)
        )
        setattr(module, attr, wrapped[(module_name, attr)])
    for module_name, attr, source in ALIASES:
        setattr(importlib.import_module(module_name), attr, wrapped[(source, attr)])

    code = clustergen(args)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    print(f"\nexit {code}; wall {wall:.3f} s, CPU {cpu:.3f} s in process", file=sys.stderr)
    print(
        f"  {'stage (nested ones overlap)':<28} {'calls':>5} {'wall s':>8} {'CPU s':>8} "
        f"{'CPU %':>6}",
        file=sys.stderr,
    )
    print(
        f"  {'import generator.cli':<28} {1:>5} {imported_wall:8.3f} {imported_cpu:8.3f} "
        f"{100 * imported_cpu / cpu:6.1f}",
        file=sys.stderr,
    )
    for label, (w, c, n) in spent.items():
        print(f"  {label:<28} {n:>5} {w:8.3f} {c:8.3f} {100 * c / cpu:6.1f}", file=sys.stderr)
    print("  (imports done lazily inside a stage count towards that stage)", file=sys.stderr)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--stages", action="store_true", help="stage timers, no cProfile")
    parser.add_argument("--out", type=Path, help="also write the raw profile here")
    parser.add_argument("args", nargs=argparse.REMAINDER, help="clustergen arguments after --")
    ns = parser.parse_args(argv)
    args = ns.args[1:] if ns.args[:1] == ["--"] else ns.args
    if ns.stages:
        return run_stages(args)

    start = time.process_time()
    profiler = cProfile.Profile(time.process_time)
    profiler.enable()
    # Imported under the profiler so start-up cost shows up as well.
    from generator.cli import main as clustergen

    code = clustergen(args)
    profiler.disable()
    total = time.process_time() - start
    if ns.out:
        profiler.dump_stats(str(ns.out))

    buf = io.StringIO()
    stats = pstats.Stats(profiler, stream=buf)
    print(f"\nexit {code}; CPU time {total:.3f} s (profiled)", file=sys.stderr)
    print("\nstage shares of CPU time (cumulative, stages nest):", file=sys.stderr)
    for label, cum, share in stage_shares(stats, total):
        print(f"  {label:<28} {cum:8.3f} s  {share:5.1f} %", file=sys.stderr)
    stats.sort_stats("cumulative").print_stats(ns.top)
    stats.sort_stats("tottime").print_stats(ns.top)
    sys.stderr.write(buf.getvalue())
    return 0


if __name__ == "__main__":
    sys.exit(main())
