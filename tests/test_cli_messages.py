"""What the commands say: validate never claims to write, a dry run fails where a render would."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from helpers.cli import run_cli as run


@pytest.fixture
def broken(example_copy: Callable[[str], Path]) -> Path:
    cfg = example_copy("minimal")
    cluster = cfg / "cluster.yaml"
    cluster.write_text(cluster.read_text() + "talos_verison: 1.12.0\n")
    return cfg


@pytest.mark.parametrize("command", [["validate"], ["check"], ["render", "--dry-run"]])
def test_a_command_that_never_writes_does_not_say_nothing_was_written(
    broken: Path, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    code, _, err = run(capsys, "-C", str(broken), *command)
    assert code == 1
    assert err.splitlines()[-1] == "clustergen: 1 error(s)"
    assert "written" not in err


def test_render_still_says_nothing_was_written(
    broken: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "-C", str(broken), "render")
    assert code == 1
    assert err.splitlines()[-1] == "clustergen: 1 error(s); nothing was written"


def test_dry_run_fails_where_render_would_refuse(
    example_copy: Callable[[str], Path], capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = example_copy("minimal")
    assert run(capsys, "-C", str(cfg), "render")[0] == 0
    edited = cfg / "infrastructure/tofu/nodes.tf"
    edited.write_text(edited.read_text() + "# my change\n")
    foreign = cfg / "infrastructure/tofu/outputs.tf"
    foreign.unlink()
    (cfg / ".clustergen/manifest.json").write_text(
        (cfg / ".clustergen/manifest.json").read_text().replace("outputs.tf", "outputs.tf.gone")
    )
    foreign.write_text("# not clustergen's\n")
    before = {p: p.read_bytes() for p in cfg.rglob("*") if p.is_file() and p.name != "lock"}

    code, out, err = run(capsys, "-C", str(cfg), "render", "--dry-run")
    assert code == 1, err
    assert "+# my change" not in out and "-# my change" in out  # the diff is still shown
    assert "a render would refuse" in err
    assert "infrastructure/tofu/nodes.tf" in err and "infrastructure/tofu/outputs.tf" in err
    after = {p: p.read_bytes() for p in cfg.rglob("*") if p.is_file() and p.name != "lock"}
    assert after == before
    # The real render agrees: it refuses the same files.
    code, _, real = run(capsys, "-C", str(cfg), "render")
    assert code == 1 and "infrastructure/tofu/nodes.tf" in real
    # With --force the dry run shows the overwrite and succeeds, like the render would.
    assert run(capsys, "-C", str(cfg), "render", "--dry-run", "--force")[0] == 0


def test_dry_run_exit_code_reports_pending_changes(
    example_copy: Callable[[str], Path], capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = example_copy("minimal")
    assert run(capsys, "-C", str(cfg), "render", "--dry-run", "--exit-code")[0] == 1
    assert run(capsys, "-C", str(cfg), "render")[0] == 0
    assert run(capsys, "-C", str(cfg), "render", "--dry-run", "--exit-code")[0] == 0


def test_check_with_github_format_annotates_each_drifted_file(
    example_copy: Callable[[str], Path],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cfg = example_copy("minimal")
    assert run(capsys, "-C", str(cfg), "render")[0] == 0
    # Changed below clustergen's header: still its file, so check shows the diff.
    nodes = cfg / "infrastructure/tofu/nodes.tf"
    nodes.write_text(nodes.read_text() + "# changed\n")
    (cfg / "infrastructure/tofu/outputs.tf").unlink()
    monkeypatch.chdir(cfg.parent)
    code, out, err = run(capsys, "--format", "github", "-C", cfg.name, "check")
    assert code == 1
    assert "+++ b/infrastructure/tofu/nodes.tf" in out  # the diff stays
    annotations = [line for line in (out + err).splitlines() if line.startswith("::")]
    assert annotations == [
        f"::error file={cfg.name}/infrastructure/tofu/nodes.tf,line=1,col=1,"
        "title=clustergen (drift)::(drift): out of date: differs from what clustergen renders "
        "(run `clustergen render` and commit the result)",
        f"::error file={cfg.name}/infrastructure/tofu/outputs.tf,line=1,col=1,"
        "title=clustergen (drift)::(drift): missing: clustergen would create it "
        "(run `clustergen render` and commit the result)",
    ]
