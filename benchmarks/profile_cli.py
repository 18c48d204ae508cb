"""Profile one clustergen command in process, on CPU time, and summarise where it goes.

Usage: python benchmarks/profile_cli.py [--top N] [--out FILE.prof] -- <clustergen args>
e.g.   python benchmarks/profile_cli.py -- -C /tmp/cfg render -o /tmp/out

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
    ("secrets.seal", "generator/secrets.py", "seal"),
    ("sync.plan", "generator/sync.py", "plan"),
    ("sync.apply", "generator/sync.py", "apply"),
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


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--out", type=Path, help="also write the raw profile here")
    parser.add_argument("args", nargs=argparse.REMAINDER, help="clustergen arguments after --")
    ns = parser.parse_args(argv)
    args = ns.args[1:] if ns.args[:1] == ["--"] else ns.args

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
