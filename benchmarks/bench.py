"""Benchmark clustergen against plain makejinja on synthetic clusters of several sizes.

Usage: python benchmarks/bench.py [--sizes 3,100,1000] [--runs N] [--quick] [--json FILE]

Every measurement is a whole process (start-up included), the way pre-commit and CI run the
tool: wall time from spawn to exit, and the child's peak RSS (ru_maxrss from os.wait4).
Per size it generates a valid config (all four provisioners, 3 controllers, per-node
overrides, a /20 node_cidr) and times, median of --runs (the commands interleaved, one run
of each per round):

  validate      clustergen validate
  render        clustergen render into an empty output directory
  render-noop   clustergen render when nothing changed
  check         clustergen check of an up-to-date tree
  makejinja     plain makejinja with the repo's makejinja.toml, the same templates and data
  floor         `python -c 'import jinja2, ruamel.yaml'`: the interpreter floor of issue 18

No secrets.sops.yaml exists in the generated configs, so the secrets stage never calls sops;
a `sops` stub placed first on PATH records any call, and the report shows the count.

Stdlib only; clustergen and makejinja are the executables next to this Python (the venv).
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
COMMANDS = ("validate", "render", "render-noop", "check", "makejinja", "floor")
CLUSTERGEN_COMMANDS = COMMANDS[:4]
FLOOR_ARGV = [sys.executable, "-c", "import jinja2, ruamel.yaml"]
NODE_CIDR = "10.40.0.0/20"  # 4094 hosts: room for the largest size
GATEWAY = "10.40.0.1"
API_VIP = "10.40.0.10"
CONTROLLERS = 3
PROXMOX_NODES = ("pve1", "pve2", "pve3")

# Issue 18's targets (ratios from one run, medians): 3-node commands against the floor.
TARGET_FLOOR = {"render": 2.0, "check": 2.0, "render-noop": 1.5}
TARGET_SPEEDUP = 1.5  # render(1000): at least this much faster than plain makejinja
TARGET_GROWTH = 4.0
TARGET_RSS_MB = 150.0


# --- synthetic inputs ----------------------------------------------------------------------


def cluster_yaml(size: int) -> str:
    return f"""\
# yaml-language-server: $schema=../../schemas/cluster.schema.json
# Synthetic benchmark cluster ({size} nodes), every provisioner on.
cluster_name: bench
talos_version: 1.12.0
kubernetes_version: 1.35.0
node_cidr: {NODE_CIDR}
node_default_gateway: {GATEWAY}
node_dns_servers:
  - 10.40.0.2
  - 10.40.0.3
node_vlan_tag: 40
node_mtu: 9000
cluster_api_addr: {API_VIP}
proxmox_endpoint: https://pve1.bench.example:8006
proxmox_node: pve1
proxmox_storage: ceph-vm
proxmox_storage_shared: true
proxmox_bridge: vmbr1
talos_extensions:
  - siderolabs/qemu-guest-agent
  - siderolabs/iscsi-tools
talos_extra_kernel_args:
  - net.ifnames=0
vm_defaults:
  controller:
    cores: 4
    sockets: 1
    memory: 8192
    disk_size: 100
    cpu_type: host
  worker:
    cores: 8
    sockets: 1
    memory: 16384
    disk_size: 200
    cpu_type: x86-64-v2-AES
vm_id_base: 1000
provisioners:
  - packer
  - tofu
  - ansible
  - capi
capi_namespace: bench
"""


def node_addresses(size: int) -> list[str]:
    reserved = {GATEWAY, API_VIP, "10.40.0.2", "10.40.0.3"}
    hosts = (str(a) for a in ipaddress.ip_network(NODE_CIDR).hosts())
    picked = [a for a in hosts if a not in reserved and not a.startswith("10.40.0.")]
    if size > len(picked):
        raise SystemExit(f"bench: {size} nodes do not fit in {NODE_CIDR}")
    return picked[:size]


def nodes_yaml(size: int) -> str:
    """Unique names, addresses, MACs and VM IDs; some nodes override their role's defaults."""
    lines = ["# yaml-language-server: $schema=../../schemas/nodes.schema.json", "nodes:"]
    for i, address in enumerate(node_addresses(size)):
        controller = i < CONTROLLERS
        name = f"bench-cp-{i}" if controller else f"bench-w-{i - CONTROLLERS:04d}"
        mac = f"bc:24:11:{(i >> 16) & 0xFF:02x}:{(i >> 8) & 0xFF:02x}:{i & 0xFF:02x}"
        lines += [
            f"  - name: {name}",
            f"    address: {address}",
            f"    controller: {'true' if controller else 'false'}",
            f"    mac_addr: {mac}",
            f"    proxmox_node: {PROXMOX_NODES[i % len(PROXMOX_NODES)]}",
        ]
        if controller:
            continue
        if i % 10 == 0:
            lines += ["    cores: 16", "    memory: 65536", "    disk_size: 500"]
            lines += ["    tags:", "      - database"]
        if i % 25 == 0:
            # Pinned VM IDs live far above the derived ones (vm_id_base + host number).
            lines += [f"    vm_id: {100000 + i}", "    disk: /dev/sdb", "    cpu_type: host"]
            lines += ["    tags:", "      - gpu"] if i % 10 else []
    return "\n".join(lines) + "\n"


def write_config(directory: Path, size: int) -> Path:
    directory.mkdir(parents=True)
    (directory / "cluster.yaml").write_text(cluster_yaml(size), encoding="utf-8")
    (directory / "nodes.yaml").write_text(nodes_yaml(size), encoding="utf-8")
    return directory


# --- processes -----------------------------------------------------------------------------


@dataclass
class Sample:
    seconds: float  # wall time, spawn to exit
    cpu_s: float  # user + system CPU of the child: less sensitive to a busy machine
    rss_mb: float


@dataclass
class Result:
    command: str
    size: int
    samples: list[Sample] = field(default_factory=list)

    @property
    def median_s(self) -> float:
        return statistics.median(s.seconds for s in self.samples)

    @property
    def median_cpu_s(self) -> float:
        return statistics.median(s.cpu_s for s in self.samples)

    @property
    def peak_rss_mb(self) -> float:
        return max(s.rss_mb for s in self.samples)


def run_once(argv: Sequence[str], cwd: Path, env: dict[str, str], scratch: Path) -> Sample:
    """Spawn, wait with os.wait4 for the child's own resource usage, fail loudly on exit != 0.

    Output goes to files, not pipes: a child writing more than a pipe buffer while we sit in
    wait4 would deadlock.
    """
    out_path, err_path = scratch / "stdout", scratch / "stderr"
    with out_path.open("wb") as out, err_path.open("wb") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(list(argv), cwd=cwd, env=env, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)  # already reaped; keep Popen quiet
    if proc.returncode != 0:
        raise SystemExit(
            f"bench: {' '.join(argv)} (in {cwd}) exited {proc.returncode}\n"
            + out_path.read_text(errors="replace")[-2000:]
            + err_path.read_text(errors="replace")[-2000:]
        )
    # Linux reports ru_maxrss in KiB, macOS in bytes.
    rss = usage.ru_maxrss / (1024 * 1024 if sys.platform == "darwin" else 1024)
    return Sample(elapsed, usage.ru_utime + usage.ru_stime, rss)


def tree(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and ".clustergen" not in p.relative_to(root).parts
    }


def stat_tree(root: Path) -> dict[str, tuple[int, int, int]]:
    """path -> (inode, size, mtime_ns) of everything under root, the state directory too."""
    return {
        p.relative_to(root).as_posix(): (st.st_ino, st.st_size, st.st_mtime_ns)
        for p in sorted(root.rglob("*"))
        if p.is_file() and (st := p.stat())
    }


def executable(name: str) -> list[str]:
    found = BIN / name
    if found.exists():
        return [str(found)]
    if name == "clustergen":
        return [sys.executable, "-m", "generator"]
    on_path = shutil.which(name)
    if on_path is None:
        raise SystemExit(f"bench: {name} is not installed next to {sys.executable} or on PATH")
    return [on_path]


def sops_stub(directory: Path) -> Path:
    """A `sops` that logs each call and fails: the benchmark must measure no sops work."""
    directory.mkdir()
    log = directory / "calls.log"
    stub = directory / "sops"
    stub.write_text(f'#!/bin/sh\necho "$@" >> "{log}"\nexit 99\n', encoding="utf-8")
    stub.chmod(0o755)
    return log


def render_inputs() -> tuple[Path, Path]:
    """(makejinja.toml, templates) of the clustergen being measured: the installed package's
    bundled copies when it is a wheel, else this checkout's."""
    try:
        from generator import resources
    except ImportError:
        return REPO / "makejinja.toml", REPO / "templates"
    return resources.makejinja_toml(), resources.templates_dir()


def makejinja_workdir(config: Path, work: Path) -> Path:
    """As tests/test_plugin.py does: the repo's makejinja.toml with another output,
    a `templates` symlink to the repo templates, and the two input files."""
    work.mkdir()
    toml_path, templates = render_inputs()
    toml = toml_path.read_text(encoding="utf-8")
    if '\noutput = "."\n' not in toml:
        raise SystemExit('bench: makejinja.toml has no `output = "."` line to redirect')
    (work / "makejinja.toml").write_text(toml.replace('\noutput = "."\n', '\noutput = "out"\n'))
    (work / "templates").symlink_to(templates)
    for name in ("cluster.yaml", "nodes.yaml"):
        shutil.copy(config / name, work / name)
    return work / "out"


# --- one size ------------------------------------------------------------------------------


@dataclass
class SizeReport:
    size: int
    results: dict[str, Result]
    outputs: int
    output_bytes: int
    same_as_makejinja: bool
    noop_untouched: bool  # render-noop and check left every file (inode, size, mtime) alone
    secrets_note: str


def bench_size(size: int, runs: int, warmup: bool, base: Path, env: dict[str, str]) -> SizeReport:
    root = base / f"n{size}"
    config = write_config(root / "config", size)
    scratch = root / "scratch"
    scratch.mkdir()
    cg = executable("clustergen")
    mj = executable("makejinja")
    results = {c: Result(c, size) for c in COMMANDS}
    noop_out = root / "noop-out"
    mj_out = makejinja_workdir(config, root / "makejinja")
    fresh = iter(range(10**6))

    def empty_out() -> Path:
        return root / f"render-out-{next(fresh)}"

    def clean_mj() -> None:
        shutil.rmtree(mj_out, ignore_errors=True)

    # (command, argv factory, cwd, set-up before each run outside the timing)
    plan: list[tuple[str, Callable[[], list[str]], Path, Callable[[], None]]] = [
        ("validate", lambda: [*cg, "-C", str(config), "validate"], root, lambda: None),
        (
            "render",
            lambda: [*cg, "-C", str(config), "render", "-o", str(empty_out())],
            root,
            lambda: None,
        ),
        (
            "render-noop",
            lambda: [*cg, "-C", str(config), "render", "-o", str(noop_out)],
            root,
            lambda: None,
        ),
        (
            "check",
            lambda: [*cg, "-C", str(config), "check", "-o", str(noop_out)],
            root,
            lambda: None,
        ),
        ("makejinja", lambda: [*mj], mj_out.parent, clean_mj),
        ("floor", lambda: list(FLOOR_ARGV), root, lambda: None),
    ]
    # The no-op render and check need an up-to-date tree first.
    run_once([*cg, "-C", str(config), "render", "-o", str(noop_out)], root, env, scratch)
    before = stat_tree(noop_out)
    # Round-robin, one run of every command per round: on a machine shared with other work
    # the load drifts, and interleaving exposes every command to the same drift, so the
    # ratios of one run (against the floor, against makejinja) stay comparable.
    for i in range(runs + (1 if warmup else 0)):
        for command, argv, cwd, setup in plan:
            setup()
            sample = run_once(argv(), cwd, env, scratch)
            if warmup and i == 0:
                continue  # the first round warms the page cache and __pycache__
            results[command].samples.append(sample)

    untouched = stat_tree(noop_out) == before
    ours, theirs = tree(noop_out), tree(mj_out)
    secrets = config / "secrets.sops.yaml"
    note = (
        "secrets.sops.yaml present: the secrets stage WOULD call sops"
        if secrets.exists()
        else "no secrets.sops.yaml: the secrets stage runs without sops "
        "(capi credentials Secret not rendered)"
    )
    return SizeReport(
        size=size,
        results=results,
        outputs=len(ours),
        output_bytes=sum(len(b) for b in ours.values()),
        same_as_makejinja=ours == theirs,
        noop_untouched=untouched,
        secrets_note=note,
    )


# --- report --------------------------------------------------------------------------------


@dataclass
class Target:
    name: str
    limit: str
    measured: str
    ok: bool | None  # None: the sizes needed were not measured

    @property
    def verdict(self) -> str:
        return "n/a" if self.ok is None else ("PASS" if self.ok else "MISS")


def targets(reports: dict[int, SizeReport], metric: str = "wall") -> list[Target]:
    """Issue 18's targets judged on median wall time (as the issue states them) or, with
    metric="cpu", on median CPU time, which a busy machine disturbs less."""

    def med(command: str, size: int) -> float:
        result = reports[size].results[command]
        return result.median_cpu_s if metric == "cpu" else result.median_s

    out: list[Target] = []
    for command, limit in TARGET_FLOOR.items():
        name, bound = f"{command}(3)/floor", f"<= {limit:.1f}"
        if 3 in reports:
            ratio = med(command, 3) / med("floor", 3)
            out.append(Target(name, bound, f"{ratio:.2f}", ratio <= limit))
        else:
            out.append(Target(name, bound, "-", None))
    # Only 1000 nodes is a target; the "ratio render/makejinja" row shows the other sizes.
    name, bound = "render(1000) vs makejinja", f">= {TARGET_SPEEDUP:.1f}x faster"
    if 1000 in reports:
        speedup = med("makejinja", 1000) / med("render", 1000)
        out.append(Target(name, bound, f"{speedup:.2f}x", speedup >= TARGET_SPEEDUP))
    else:
        out.append(Target(name, bound, "-", None))
    for command in CLUSTERGEN_COMMANDS:
        if 100 in reports and 1000 in reports:
            growth = med(command, 1000) / med(command, 100)
            out.append(
                Target(
                    f"t(1000)/t(100) {command}",
                    f"<= {TARGET_GROWTH:.0f}",
                    f"{growth:.2f}",
                    growth <= TARGET_GROWTH,
                )
            )
        else:
            out.append(Target(f"t(1000)/t(100) {command}", f"<= {TARGET_GROWTH:.0f}", "-", None))
    if 1000 in reports:
        worst = max(CLUSTERGEN_COMMANDS, key=lambda c: reports[1000].results[c].peak_rss_mb)
        rss = reports[1000].results[worst].peak_rss_mb
        out.append(
            Target(
                "peak RSS, 1000 nodes",
                f"<= {TARGET_RSS_MB:.0f} MB",
                f"{rss:.1f} MB ({worst})",
                rss <= TARGET_RSS_MB,
            )
        )
    else:
        out.append(Target("peak RSS, 1000 nodes", f"<= {TARGET_RSS_MB:.0f} MB", "-", None))
    return out


def table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for n, row in enumerate(rows):
        cells = [
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def render_ratio(report: SizeReport) -> float:
    """clustergen render / makejinja, medians; the target (1.5x faster) is <= 0.67."""
    return report.results["render"].median_s / report.results["makejinja"].median_s


def report_text(reports: dict[int, SizeReport], runs: int, sops_calls: int) -> str:
    sizes = sorted(reports)
    heads = [f"{s} nodes" for s in sizes]
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    parts = [
        f"machine: {os.cpu_count()} CPUs, load average {load} at the end; Python "
        f"{sys.version.split()[0]}",
        "",
        f"median wall time of {runs} run(s), whole processes, seconds",
    ]
    rows = [["command", *heads]]
    for c in COMMANDS:
        rows.append([c, *(f"{reports[s].results[c].median_s:.3f}" for s in sizes)])
    rows.append(["ratio render/makejinja", *(f"{render_ratio(reports[s]):.2f}" for s in sizes)])
    parts += [table(rows), "", "median CPU time (user + system) of the same runs, seconds"]
    rows = [["command", *heads]]
    for c in COMMANDS:
        rows.append([c, *(f"{reports[s].results[c].median_cpu_s:.3f}" for s in sizes)])
    parts += [table(rows), "", "peak RSS (max over runs), MB"]
    rows = [["command", *heads]]
    for c in COMMANDS:
        rows.append([c, *(f"{reports[s].results[c].peak_rss_mb:.1f}" for s in sizes)])
    parts.append(table(rows))
    if 100 in reports and 1000 in reports:
        parts += ["", "growth t(1000)/t(100)"]
        rows = [["command", "ratio"]]
        for c in COMMANDS:
            ratio = reports[1000].results[c].median_s / reports[100].results[c].median_s
            rows.append([c, f"{ratio:.2f}"])
        parts.append(table(rows))
    parts += ["", "outputs"]
    rows = [["size", "files", "bytes", "same bytes as makejinja", "no-op/check wrote nothing"]]
    for s in sizes:
        r = reports[s]
        rows.append(
            [
                str(s),
                str(r.outputs),
                str(r.output_bytes),
                "yes" if r.same_as_makejinja else "NO",
                "yes" if r.noop_untouched else "NO",
            ]
        )
    parts.append(table(rows))
    parts += ["", "targets (issue 18): verdict on wall time; on CPU time for a busy machine"]
    rows = [["target", "limit", "wall", "verdict", "CPU", "verdict (CPU)"]]
    for wall, cpu in zip(targets(reports), targets(reports, "cpu"), strict=True):
        rows.append([wall.name, wall.limit, wall.measured, wall.verdict, cpu.measured, cpu.verdict])
    parts.append(table(rows))
    notes = sorted({r.secrets_note for r in reports.values()})
    parts += [
        "",
        *(f"note: {n}" for n in notes),
        f"note: sops calls during the benchmark: {sops_calls}",
    ]
    return "\n".join(parts) + "\n"


def report_json(reports: dict[int, SizeReport], runs: int, sops_calls: int) -> dict[str, Any]:
    return {
        "runs": runs,
        "python": sys.version.split()[0],
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
        "sops_calls": sops_calls,
        "sizes": {
            str(size): {
                "outputs": r.outputs,
                "output_bytes": r.output_bytes,
                "same_as_makejinja": r.same_as_makejinja,
                "noop_untouched": r.noop_untouched,
                "secrets_note": r.secrets_note,
                "commands": {
                    c: {
                        "median_s": res.median_s,
                        "median_cpu_s": res.median_cpu_s,
                        "peak_rss_mb": res.peak_rss_mb,
                        "samples": [asdict(s) for s in res.samples],
                    }
                    for c, res in r.results.items()
                },
            }
            for size, r in sorted(reports.items())
        },
        "targets": [
            {"name": t.name, "limit": t.limit, "measured": t.measured, "verdict": t.verdict}
            for t in targets(reports)
        ],
        "targets_cpu": [
            {"name": t.name, "limit": t.limit, "measured": t.measured, "verdict": t.verdict}
            for t in targets(reports, "cpu")
        ],
    }


# --- main ----------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", help="comma-separated node counts (default 3,100,1000)")
    parser.add_argument("--runs", type=int, help="runs per command; the median counts (default 5)")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke test: no warm-up run; default sizes 3 and runs 1",
    )
    parser.add_argument("--json", type=Path, metavar="FILE", help="write the raw numbers here")
    parser.add_argument(
        "--keep", type=Path, metavar="DIR", help="generate into DIR and keep it (for profiling)"
    )
    args = parser.parse_args(argv)
    default_sizes = "3" if args.quick else "3,100,1000"
    try:
        args.sizes = sorted({int(s) for s in (args.sizes or default_sizes).split(",") if s})
    except ValueError:
        parser.error("--sizes takes comma-separated integers, e.g. 3,100,1000")
    if not args.sizes or min(args.sizes) < 1:
        parser.error("--sizes needs positive node counts")
    if min(args.sizes) < CONTROLLERS:
        parser.error(f"--sizes: every config has {CONTROLLERS} controllers, so at least 3 nodes")
    args.runs = args.runs if args.runs is not None else (1 if args.quick else 5)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.keep is not None:
        if args.keep.exists():
            raise SystemExit(f"bench: --keep {args.keep} exists; give a new directory")
        args.keep.mkdir(parents=True)
        base_ctx: Any = None
        base = args.keep.resolve()
    else:
        base_ctx = tempfile.TemporaryDirectory(prefix="clustergen-bench-")
        base = Path(base_ctx.name)
    try:
        log = sops_stub(base / "stub-bin")
        # No SOPS_* settings leak in; bytecode caching on, as on a developer machine (a
        # PYTHONDONTWRITEBYTECODE from the caller would make every run compile stale modules).
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("SOPS_") and k != "PYTHONDONTWRITEBYTECODE"
        }
        env["PATH"] = os.pathsep.join([str(log.parent), str(BIN), env.get("PATH", "")])
        reports: dict[int, SizeReport] = {}
        for size in args.sizes:
            print(f"bench: {size} nodes, {args.runs} run(s) per command ...", file=sys.stderr)
            reports[size] = bench_size(size, args.runs, not args.quick, base, env)
        calls = len(log.read_text().splitlines()) if log.exists() else 0
        sys.stdout.write(report_text(reports, args.runs, calls))
        if args.json is not None:
            args.json.write_text(
                json.dumps(report_json(reports, args.runs, calls), indent=2) + "\n",
                encoding="utf-8",
            )
        if not all(r.same_as_makejinja for r in reports.values()):
            print("bench: clustergen and makejinja rendered different trees", file=sys.stderr)
            return 1
        return 0
    finally:
        if base_ctx is not None:
            base_ctx.cleanup()


if __name__ == "__main__":
    sys.exit(main())
