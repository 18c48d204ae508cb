"""Acceptance of `clustergen render` and `clustergen check` on real files in temp dirs."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from generator import constants
from generator.manifest import MANIFEST
from helpers.cli import run_cli as run


def tree(root: Path) -> dict[str, str]:
    """Every file under root (but the lock) -> SHA-256."""
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != "lock"
    }


def mtimes(root: Path) -> dict[str, int]:
    return {p.as_posix(): p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}


def generated(root: Path) -> list[str]:
    return sorted(p for p in tree(root) if not p.endswith((".yaml", ".json")) or "/" in p)


@pytest.fixture
def cfg(example_copy: Callable[[str], Path]) -> Path:
    return example_copy("multi-host")


def test_render_then_render_again_writes_nothing(
    cfg: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "-C", str(cfg), "render")
    assert code == 0
    assert re.search(r"clustergen: \d+ created, 0 updated, 0 removed, 0 unchanged", out)
    assert "created .taskfiles/infrastructure/Taskfile.yaml" in out
    first, stamps = tree(cfg), mtimes(cfg)
    code, out, _ = run(capsys, "-C", str(cfg), "render")
    assert code == 0 and out.startswith("clustergen: up to date")
    assert tree(cfg) == first
    assert mtimes(cfg) == stamps


def test_same_bytes_from_another_directory_and_another_day(
    cfg: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, "-C", str(cfg), "render")[0] == 0
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    other = tmp_path / "other-out"
    # Another process, another cwd, a relative -C, a clock ten years ahead, another TZ/locale.
    shifted_clock = (
        "import time, datetime, sys\n"
        "time.time = lambda: 2000000000.0\n"
        "class D(datetime.datetime):\n"
        "    @classmethod\n"
        "    def now(cls, tz=None): return cls(2033, 5, 18, tzinfo=tz)\n"
        "datetime.datetime = D\n"
        "from generator.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    env = {**os.environ, "TZ": "Pacific/Kiritimati", "LC_ALL": "C", "PYTHONHASHSEED": "123"}
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            shifted_clock,
            "-C",
            os.path.relpath(cfg, elsewhere),
            "render",
            "-o",
            str(other),
        ],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    ours = {k: v for k, v in tree(cfg).items() if k not in ("cluster.yaml", "nodes.yaml")}
    assert tree(other) == ours


def test_check_in_sync_then_every_kind_of_drift(
    cfg: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, "-C", str(cfg), "render")[0] == 0
    code, out, _ = run(capsys, "-C", str(cfg), "check")
    assert code == 0 and out.startswith("clustergen: in sync")

    taskfile = cfg / ".taskfiles/infrastructure/Taskfile.yaml"
    original = taskfile.read_bytes()
    taskfile.write_bytes(original + b"# edited\n")
    code, out, err = run(capsys, "-C", str(cfg), "check")
    assert code == 1
    assert "--- a/.taskfiles/infrastructure/Taskfile.yaml" in out and "-# edited" in out
    assert "1 changed" in err
    taskfile.write_bytes(original)

    taskfile.unlink()
    code, out, err = run(capsys, "-C", str(cfg), "check")
    assert code == 1 and "--- /dev/null\n+++ b/.taskfiles/infrastructure/Taskfile.yaml" in out
    assert "1 missing" in err
    taskfile.write_bytes(original)

    stale = cfg / "infrastructure" / "tofu" / "stale.tf"
    stale.write_bytes(original)  # a generated file that no template produces
    code, out, err = run(capsys, "-C", str(cfg), "check")
    # Not recorded in the manifest, so never removed: reported, not drift render could fix.
    assert code == 0 and "stale.tf" in err and "left alone" in err and "manifest" in err
    stale.unlink()

    assert run(capsys, "-C", str(cfg), "check")[0] == 0
    nodes = cfg / "nodes.yaml"
    nodes.write_text(nodes.read_text().replace("10.20.1.21", "10.20.1.31"))
    code, out, _ = run(capsys, "-C", str(cfg), "check")
    assert code == 1 and "10.20.1.31" in out


def test_check_output_paths_are_relative(cfg: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "-C", str(cfg), "check")
    assert code == 1
    assert str(cfg) not in out
    assert "+++ b/.taskfiles/infrastructure/Taskfile.yaml" in out


def test_removing_a_node_or_provisioner_removes_only_what_it_produced(
    cfg: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, "-C", str(cfg), "render")[0] == 0
    mine = cfg / "infrastructure" / "README.md"
    mine.write_text("my notes\n")
    own_tf = cfg / "infrastructure" / "tofu" / "extra.tf"
    own_tf.parent.mkdir(parents=True, exist_ok=True)
    own_tf.write_text("# my own resources\nlocals {\n  x = 1\n}\n")
    before = set(tree(cfg))

    nodes = cfg / "nodes.yaml"
    text = nodes.read_text()
    start = text.index("  - name: prod-worker-0")
    end = text.index("  - name: prod-worker-1")
    nodes.write_text(text[:start] + text[end:])
    code, out, _ = run(capsys, "-C", str(cfg), "render")
    assert code == 0 and " 0 removed" in out
    assert not any(line.startswith("removed ") for line in out.splitlines())
    # No output belongs to one node only, so every file survives; the node is gone from them.
    assert set(tree(cfg)) == before
    assert not any(
        b"prod-worker-0" in (cfg / p).read_bytes() for p in tree(cfg) if p != "nodes.yaml"
    )

    cluster = cfg / "cluster.yaml"
    cluster.write_text(cluster.read_text().replace("  - ansible\n", ""))
    code, out, _ = run(capsys, "-C", str(cfg), "render")
    assert code == 0
    removed = {line.split(" ", 1)[1] for line in out.splitlines() if line.startswith("removed ")}
    assert removed == {p for p in before if p.startswith("infrastructure/ansible/")}
    assert removed  # multi-host renders ansible files
    assert mine.read_text() == "my notes\n"
    assert own_tf.exists()
    assert run(capsys, "-C", str(cfg), "check")[0] == 0


def test_invalid_input_leaves_the_tree_untouched(
    cfg: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, "-C", str(cfg), "render")[0] == 0
    before = tree(cfg)
    stamps = mtimes(cfg)
    cluster = cfg / "cluster.yaml"
    cluster.write_text(
        cluster.read_text().replace("node_cidr: 10.20.0.0/22", "node_cidr: 10.20.0.5/22")
    )
    after_edit = tree(cfg)
    code, _, err = run(capsys, "-C", str(cfg), "render")
    assert code == 1
    assert re.search(
        r"cluster\.yaml:\d+:\d+: error: node_cidr: 10\.20\.0\.5/22 has host bits set", err
    )
    assert "nothing was written" in err
    assert tree(cfg) == after_edit and set(after_edit) == set(before)
    assert {k: v for k, v in mtimes(cfg).items() if not k.endswith("cluster.yaml")} == {
        k: v for k, v in stamps.items() if not k.endswith("cluster.yaml")
    }


def test_dry_run_prints_diff_and_writes_nothing(
    cfg: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "-C", str(cfg), "render", "--dry-run")
    assert code == 0
    assert "+++ b/.taskfiles/infrastructure/Taskfile.yaml" in out
    assert "would be created" in out
    assert set(tree(cfg)) == {"cluster.yaml", "nodes.yaml"}


def test_hand_edit_stops_render_until_forced(cfg: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "-C", str(cfg), "render")[0] == 0
    taskfile = cfg / ".taskfiles/infrastructure/Taskfile.yaml"
    taskfile.write_bytes(taskfile.read_bytes() + b"# mine\n")
    nodes = cfg / "nodes.yaml"
    nodes.write_text(nodes.read_text().replace("10.20.1.21", "10.20.1.31"))
    before = tree(cfg)
    code, _, err = run(capsys, "-C", str(cfg), "render")
    assert code == 1
    assert ".taskfiles/infrastructure/Taskfile.yaml" in err and "--force" in err
    assert tree(cfg) == before
    code, out, _ = run(capsys, "-C", str(cfg), "render", "--force")
    assert code == 0 and "updated .taskfiles/infrastructure/Taskfile.yaml" in out
    assert b"# mine" not in taskfile.read_bytes()


def test_every_generated_file_with_comments_has_the_header(
    cfg: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, "-C", str(cfg), "render")[0] == 0
    header = f"# {constants.GENERATED_HEADER}\n".encode()
    paths = [p for p in tree(cfg) if p not in ("cluster.yaml", "nodes.yaml", MANIFEST)]
    paths = [p for p in paths if not p.startswith(".clustergen/")]
    assert paths
    for path in paths:
        data = (cfg / path).read_bytes()
        if ".sops." in path:
            continue  # encrypted by sops: its own structure
        assert data.startswith(header), path


def test_output_root_option(cfg: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_dir = tmp_path / "rendered"
    assert run(capsys, "-C", str(cfg), "render", "-o", str(out_dir))[0] == 0
    assert (out_dir / ".taskfiles/infrastructure/Taskfile.yaml").is_file()
    assert not (cfg / ".taskfiles").exists()
    assert run(capsys, "-C", str(cfg), "check", "-o", str(out_dir))[0] == 0
    assert run(capsys, "-C", str(cfg), "check")[0] == 1


def test_exit_code_flag_reports_changes(cfg: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "-C", str(cfg), "render", "--exit-code")[0] == 1
    assert run(capsys, "-C", str(cfg), "render", "--exit-code")[0] == 0


def test_file_system_refusals_are_one_line_exit_2(
    cfg: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def errors(err: str) -> list[str]:
        assert "Traceback" not in err
        return [line for line in err.splitlines() if " error" in line]

    assert run(capsys, "-C", str(cfg), "render")[0] == 0
    for args in (["render", "-o", str(cfg / "cluster.yaml")], ["check", "-o", "/dev/null"]):
        code, _, err = run(capsys, "-C", str(cfg), *args)
        assert code == 2 and len(errors(err)) == 1 and "not a directory" in err, err
    (cfg / "infrastructure/tofu").rename(tmp_path / "moved")
    (cfg / "infrastructure/tofu").write_text("a file where a directory belongs\n")
    before = tree(cfg)
    for command in ("check", "render"):
        code, _, err = run(capsys, "-C", str(cfg), command)
        (line,) = errors(err)
        assert code == 2 and line.startswith("clustergen: error: ") and "not a directory" in line
    assert tree(cfg) == before


def test_json_format_keeps_one_document_per_stream(
    cfg: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "--format", "json", "-C", str(cfg), "check")
    assert code == 1
    assert out.startswith("--- /dev/null")  # the diff, and nothing else
    warnings = json.loads(err)  # multi-host warns once: capi without secrets.sops.yaml
    assert [w["severity"] for w in warnings] == ["warning"]
    code, out, err = run(capsys, "--format", "json", "-C", str(cfg), "render", "--dry-run")
    assert code == 0 and out.startswith("--- /dev/null") and json.loads(err)
