"""benchmarks/bench.py runs end to end on the 3-node case; its synthetic configs are valid.

No timing is asserted anywhere: timings are noisy, the numbers belong in the benchmark report.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from generator import inputs, model
from helpers.paths import ROOT

BENCH = ROOT / "benchmarks" / "bench.py"
MAKEJINJA = Path(sys.executable).with_name("makejinja")


def _bench_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench"] = module  # dataclasses resolve their module by name
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    return _bench_module()


@pytest.mark.skipif(not MAKEJINJA.exists(), reason="makejinja is not installed (test extra)")
def test_quick_run_prints_every_command_and_target(tmp_path: Path, bench: ModuleType) -> None:
    raw = tmp_path / "bench.json"
    result = subprocess.run(
        [sys.executable, str(BENCH), "--sizes", "3", "--runs", "1", "--quick", "--json", str(raw)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    table_rows = {line.split("  ")[0].strip() for line in out.splitlines() if line.strip()}
    for command in bench.COMMANDS:
        assert command in table_rows, f"{command} missing from the table:\n{out}"
    for heading in ("ratio render/makejinja", "peak RSS", "median CPU time", "targets (issue 18)"):
        assert heading in out
    assert "sops calls during the benchmark: 0" in out
    # Every target has a verdict; the ones needing 100/1000 nodes say so instead of guessing.
    section = out.split("targets (issue 18)")[1].split("\n\n")[0].splitlines()[3:]
    verdicts = [line.split()[-1] for line in section]  # the CPU verdict is the last column
    assert len(verdicts) >= 8
    assert {"PASS", "MISS"} & set(verdicts)
    assert "n/a" in verdicts
    # The 3-node commands are judged against the interpreter floor, measured in the same run.
    assert "render-noop(3)/floor" in out and "floor" in table_rows

    data = json.loads(raw.read_text())
    assert data["sops_calls"] == 0
    size = data["sizes"]["3"]
    # Same templates, same data: the comparison with makejinja is like for like.
    assert size["same_as_makejinja"] is True
    assert size["noop_untouched"] is True
    assert set(size["commands"]) == set(bench.COMMANDS)
    for numbers in size["commands"].values():
        assert len(numbers["samples"]) == 1
        assert numbers["median_s"] > 0 and numbers["peak_rss_mb"] > 0


def test_synthetic_config_is_valid_and_varied(tmp_path: Path, bench: ModuleType) -> None:
    # 300 nodes: MACs and addresses cross a byte boundary, overrides of every kind occur.
    config = bench.write_config(tmp_path / "config", 300)
    read = inputs.read(config)  # raises InputError on any validation problem
    nodes = read.nodes.data["nodes"]
    assert len(nodes) == 300
    for key in ("name", "address", "mac_addr"):
        assert len({n[key] for n in nodes}) == 300, key
    assert sum(n["controller"] for n in nodes) == bench.CONTROLLERS
    for override in ("cores", "memory", "disk_size", "vm_id", "disk", "cpu_type", "tags"):
        assert any(override in n for n in nodes), override
    context = model.build(read.cluster.data, read.nodes.data)
    assert all(context["enabled"].values())
    assert len({n["vm_id"] for n in context["nodes"]}) == 300


def test_rejects_fewer_nodes_than_controllers(bench: ModuleType) -> None:
    with pytest.raises(SystemExit) as exc:
        bench.parse_args(["--sizes", "2"])
    assert exc.value.code == 2
