"""`clustergen validate` end to end on the fixture matrix, plus the output formats.

Each invalid case under tests/fixtures/invalid/ breaks one rule and holds the exact diagnostic
lines in expected.txt; valid cases must pass silently. The program runs as users run it:
`python -m generator validate` in the case directory, so FILE is relative to it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from helpers.paths import FIXTURES_DIR as FIXTURES
from helpers.paths import ROOT

VALID = sorted(p for p in (FIXTURES / "valid").iterdir() if p.is_dir())
INVALID = sorted(p for p in (FIXTURES / "invalid").iterdir() if p.is_dir())


def _run(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "generator", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture(scope="module")
def results() -> dict[Path, subprocess.CompletedProcess[str]]:
    """Every case run once, concurrently: one interpreter start each is the slow part."""
    cases = VALID + INVALID
    with ThreadPoolExecutor(max_workers=4) as pool:
        done = pool.map(lambda case: _run(case, "validate"), cases)
        return dict(zip(cases, done, strict=True))


def test_matrix_is_large_enough() -> None:
    assert len(INVALID) >= 30
    assert len(VALID) >= 3


@pytest.mark.parametrize("case", VALID, ids=[p.name for p in VALID])
def test_valid_case(case: Path, results: dict[Path, subprocess.CompletedProcess[str]]) -> None:
    result = results[case]
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert result.stdout.startswith("valid: ")


@pytest.mark.parametrize("case", INVALID, ids=[p.name for p in INVALID])
def test_invalid_case(case: Path, results: dict[Path, subprocess.CompletedProcess[str]]) -> None:
    result = results[case]
    expected = (case / "expected.txt").read_text(encoding="utf-8").splitlines()
    assert expected, f"{case.name}/expected.txt is empty"
    assert "Traceback" not in result.stderr + result.stdout
    errors = sum(1 for line in expected if ": error: " in line)
    lines = result.stderr.splitlines()
    if errors:
        assert result.returncode == 1
        assert lines == [*expected, f"clustergen: {errors} error(s)"]
    else:
        # Only warnings (an even controller count): valid, exit 0, warnings still shown.
        assert result.returncode == 0
        assert lines == expected
    for line in expected:
        file, line_no, col, rest = line.split(":", 3)
        assert file in ("cluster.yaml", "nodes.yaml")
        assert (case / file).exists() or "file not found" in rest
        assert int(line_no) >= 1 and int(col) >= 1
        assert rest.startswith((" error: ", " warning: "))


def test_several_problems_are_sorted_by_file_and_line(
    results: dict[Path, subprocess.CompletedProcess[str]],
) -> None:
    lines = [ln for ln in results[FIXTURES / "invalid" / "several_problems"].stderr.splitlines()]
    diagnostics = [ln for ln in lines if not ln.startswith("clustergen:")]
    assert len({ln.split(":")[0] for ln in diagnostics}) == 2, "problems of both files in one run"
    keys = [(f, int(line), int(col)) for f, line, col, _ in (d.split(":", 3) for d in diagnostics)]
    assert keys == sorted(keys)
    assert len(diagnostics) >= 4


def test_examples_validate() -> None:
    for example in sorted((ROOT / "examples").iterdir()):
        result = _run(ROOT, "validate", "-C", str(example.relative_to(ROOT)))
        assert result.returncode == 0, result.stderr
        assert result.stderr == ""


def test_json_format() -> None:
    case = FIXTURES / "invalid" / "several_problems"
    result = _run(case, "--format", "json", "validate")
    assert result.returncode == 1
    items = json.loads(result.stdout)
    expected = (case / "expected.txt").read_text(encoding="utf-8").splitlines()
    assert len(items) == len(expected)
    for item, line in zip(items, expected, strict=True):
        assert set(item) == {"file", "line", "col", "severity", "path", "message", "hint"}
        assert line.startswith(f"{item['file']}:{item['line']}:{item['col']}: {item['severity']}: ")
        assert f"{item['path']}: {item['message']}" in line
        if item["hint"]:
            assert line.endswith(f" ({item['hint']})")


def test_json_format_of_a_valid_config_is_an_empty_list() -> None:
    result = _run(FIXTURES / "valid" / "minimal", "--format", "json", "validate")
    assert result.returncode == 0
    assert json.loads(result.stdout) == []


def test_github_format() -> None:
    case = FIXTURES / "invalid" / "node_outside_node_cidr"
    result = _run(case, "--format", "github", "validate")
    assert result.returncode == 1
    (line,) = result.stdout.splitlines()
    expected = (case / "expected.txt").read_text(encoding="utf-8").strip()
    file, line_no, col, _ = expected.split(":", 3)
    assert line.startswith(f"::error file={file},line={line_no},col={col},title=")
    assert line.endswith("::nodes[1].address: 192.168.23.21 is outside node_cidr 192.168.22.0/24")


def test_github_format_warning_and_escaping() -> None:
    result = _run(FIXTURES / "invalid" / "even_controller_count", "--format", "github", "validate")
    assert result.returncode == 0
    warnings = [ln for ln in result.stdout.splitlines() if ln.startswith("::warning ")]
    assert len(warnings) == 1
    # Properties are comma-separated, so a ':' or ',' inside one is escaped.
    title = warnings[0].split("title=", 1)[1].split("::", 1)[0]
    assert "," not in title and ":" not in title


def test_validate_does_not_import_the_renderer() -> None:
    code = (
        "import sys\n"
        "from generator.cli import main\n"
        f"rc = main(['validate', '-C', {str(FIXTURES / 'valid' / 'minimal')!r}])\n"
        "assert rc == 0, rc\n"
        "bad = sorted(m for m in sys.modules if m == 'jinja2' or m.startswith('jinja2.')"
        " or m == 'generator.render')\n"
        "assert not bad, bad\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=60
    )
    assert result.returncode == 0, result.stderr


def test_missing_config_dir_is_a_usage_error(tmp_path: Path) -> None:
    result = _run(tmp_path, "validate", "-C", "nowhere")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "nowhere" in result.stderr


def test_schematic_command_prints_id_and_urls() -> None:
    result = _run(ROOT, "schematic", "-C", "examples/homelab")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    ident = lines[0].removeprefix("schematic id:").strip()
    assert len(ident) == 64 and all(c in "0123456789abcdef" for c in ident)
    urls = [ln.split(":", 1)[1].strip() for ln in lines[1:4]]
    assert urls[0].startswith(f"https://factory.talos.dev/image/{ident}/v")
    assert urls[0].endswith(".raw.xz")
    assert urls[1].endswith(".iso")
    assert urls[2].startswith("factory.talos.dev/nocloud-installer")
    assert urls[2].endswith(f"/{ident}:v1.12.0")
    assert "customization:" in result.stdout


def test_schematic_command_json() -> None:
    result = _run(ROOT, "--format", "json", "schematic", "-C", "examples/homelab")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert set(data) >= {"id", "image_url", "iso_url", "installer_image"}
    assert data["id"] in data["image_url"]
