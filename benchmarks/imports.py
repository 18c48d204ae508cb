"""Which modules each clustergen command imports, and what they cost at start-up.

Usage: python benchmarks/imports.py -C DIR [--top N] [--runs N] [command ...]
(commands default to: validate, render -o DIR/out, check -o DIR/out)

Runs each command as `python -X importtime` in a fresh process and summarises stderr: the
top-level imports by cumulative time (median over --runs), the total, and which heavy
third-party packages got loaded. `validate` loading jinja2 (the renderer) is flagged.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

HEAVY = ("jinja2", "hcl2", "lark", "ruamel.yaml", "jsonschema", "referencing", "rpds", "yaml")
LINE = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \| ( *)(\S+)$")


def importtime(argv: Sequence[str]) -> tuple[dict[str, int], set[str], int]:
    """(top-level module -> cumulative us, every module imported, process exit code)."""
    code = "import sys; from generator.cli import main; sys.exit(main(sys.argv[1:]))"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code, *argv],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    top: dict[str, int] = {}
    every: set[str] = set()
    for line in proc.stderr.splitlines():
        match = LINE.match(line)
        if not match:
            continue
        _self, cumulative, indent, name = match.groups()
        every.add(name)
        if not indent:  # nested imports are already inside their parent's cumulative time
            top[name] = top.get(name, 0) + int(cumulative)
    return top, every, proc.returncode


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-C", dest="config", type=Path, required=True)
    parser.add_argument("--top", type=int, default=12)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("commands", nargs="*")
    ns = parser.parse_args(argv)
    out = ns.config / "imports-out"
    commands = ns.commands or ["validate", f"render -o {out}", f"check -o {out}"]
    status = 0
    for command in commands:
        args = ["-C", str(ns.config), *command.split()]
        samples: dict[str, list[int]] = defaultdict(list)
        totals: list[int] = []
        modules: set[str] = set()
        codes = set()
        for _ in range(ns.runs):
            top, every, code = importtime(args)
            codes.add(code)
            modules |= every
            totals.append(sum(top.values()))
            for name, us in top.items():
                samples[name].append(us)
        heavy = [h for h in HEAVY if h in modules]
        print(f"== clustergen {command}  (exit {sorted(codes)}, {len(modules)} modules)")
        print(
            f"   import time total (median of {ns.runs}): {statistics.median(totals) / 1e3:.1f} ms"
        )
        print(f"   heavy packages loaded: {', '.join(heavy) or '-'}")
        ranked = sorted(samples.items(), key=lambda kv: -statistics.median(kv[1]))
        for name, times in ranked[: ns.top]:
            print(f"   {statistics.median(times) / 1e3:8.1f} ms  {name}")
        if command.startswith("validate") and "jinja2" in modules:
            print("   PROBLEM: validate imports jinja2")
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
