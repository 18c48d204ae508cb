"""Where --format json and github diagnostics go: one stream per command (README "Exit codes
and diagnostics"), whatever ended the run: an input error, a warning, a usage error or a
conflict. json: that stream is exactly one JSON array; the other stream holds no record."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from generator import cli, output
from generator.errors import Diagnostic
from generator.options import COMMANDS
from helpers.paths import EXAMPLES_DIR
from helpers.tools import git

SECOND_CONTROLLER = (
    "  - name: talos-cp-1\n"
    "    address: 192.168.22.11\n"
    "    controller: true\n"
    "    mac_addr: bc:24:11:00:01:02\n"
)
# A second module file declaring what clustergen's tofu module declares: render, its dry
# run and check refuse (generator/collisions.py).
CLASHING = 'provider "proxmox" {}\n'


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """minimal, committed (plan compares with HEAD)."""
    config = tmp_path / "repo"
    shutil.copytree(EXAMPLES_DIR / "minimal", config)
    git(config, "init", "-q", "-b", "main")
    git(config, "add", ".")
    git(config, "commit", "-qm", "inputs")
    return config


def _input_error(config: Path) -> None:
    with (config / "cluster.yaml").open("a") as f:
        f.write("talos_verison: 1.12.0\n")


def _warning(config: Path) -> None:
    with (config / "nodes.yaml").open("a") as f:
        f.write(SECOND_CONTROLLER)  # two controllers: "an even count" warning


def _conflict(config: Path) -> None:
    (config / "infrastructure/tofu").mkdir(parents=True, exist_ok=True)
    (config / "infrastructure/tofu/mine.tf").write_text(CLASHING)


CASES: list[tuple[str, list[str], Callable[[Path], None], str, str]] = [
    # (situation, arguments after -C DIR, edit, record path, severity)
    *[
        ("input error", args, _input_error, "talos_verison", "error")
        for args in (["validate"], ["render"], ["check"], ["schematic"], ["plan"])
    ],
    *[
        ("warning", args, _warning, "nodes", "warning")
        for args in (["validate"], ["render"], ["check"], ["schematic"], ["plan"])
    ],
    *[("usage error", [name, "--nope"], lambda _: None, "(usage)", "error") for name in COMMANDS],
    ("usage error", ["init", "--example", "nosuch"], lambda _: None, "(usage)", "error"),
    ("usage error", ["plan", "--base", "no-such-rev"], lambda _: None, "(usage)", "error"),
    ("conflict", ["render"], _conflict, "(conflict)", "error"),
    ("conflict", ["render", "--dry-run"], _conflict, "(conflict)", "error"),
    ("conflict", ["check"], _conflict, "(conflict)", "error"),
]


def _designated(command: str) -> int:
    """0 stdout, 1 stderr: the rule, written out once more so that a change shows here."""
    return 0 if command == "validate" else 1


@pytest.mark.parametrize("fmt", ["json", "github"])
@pytest.mark.parametrize(
    ("situation", "args", "edit", "path", "severity"),
    CASES,
    ids=[f"{c[0]}-{' '.join(c[1])}" for c in CASES],
)
def test_every_diagnostic_of_a_run_goes_to_the_commands_stream(
    repo: Path,
    capsys: pytest.CaptureFixture[str],
    fmt: str,
    situation: str,
    args: list[str],
    edit: Callable[[Path], None],
    path: str,
    severity: str,
) -> None:
    edit(repo)
    code = cli.main(["--format", fmt, "-C", str(repo), *args])
    printed = capsys.readouterr()
    streams = (printed.out, printed.err)
    mine, other = streams[_designated(args[0])], streams[1 - _designated(args[0])]
    # A warning does not fail; check fails anyway (nothing was rendered: drift).
    assert (code == 0) == (severity == "warning" and args[0] != "check"), streams
    if fmt == "json":
        records = json.loads(mine)  # the whole stream is one document
        assert isinstance(records, list)
        assert [r["severity"] for r in records if r["path"] == path] == [severity], records
        assert '"severity"' not in other or args[0] == "schematic"
        if args[0] == "schematic" and severity == "warning":  # the document carries them too
            assert json.loads(other)["diagnostics"] == records
    else:
        level = "error" if severity == "error" else "warning"
        title = f"title=clustergen {path}::"
        assert any(
            line.startswith(f"::{level} ") and title in line for line in mine.splitlines()
        ), mine
        assert not [line for line in other.splitlines() if line.startswith("::")], other
        if args[0] == "validate":
            assert printed.err == ""


@pytest.mark.parametrize("fmt", ["json", "github"])
def test_a_run_without_a_command_reports_on_stdout(
    capsys: pytest.CaptureFixture[str], fmt: str
) -> None:
    assert cli.main(["--format", fmt, "no-such-command"]) == 2
    printed = capsys.readouterr()
    assert printed.err == "" and "(usage)" in printed.out


def test_text_diagnostics_stay_on_stderr(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _warning(repo)
    for args in (["validate"], ["schematic"], ["plan"]):
        assert cli.main(["-C", str(repo), *args]) == 0
        printed = capsys.readouterr()
        assert "warning: nodes: 2 controllers" in printed.err
        assert "controllers" not in printed.out


def test_json_prints_one_array_with_warnings_and_the_error_that_ended_the_run(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["-C", str(repo), "render"]) == 0
    edited = repo / "infrastructure/tofu/nodes.tf"
    edited.write_text(edited.read_text() + "# mine\n")  # a render refuses it, after warning
    _warning(repo)
    capsys.readouterr()
    assert cli.main(["--format", "json", "-C", str(repo), "render"]) == 1
    printed = capsys.readouterr()
    records = json.loads(printed.err)
    assert printed.out == ""
    assert sorted((r["file"], r["path"]) for r in records) == [
        (f"{repo}/nodes.yaml", "nodes"),
        ("infrastructure/tofu/nodes.tf", "(conflict)"),
    ]


def test_check_notes_are_records_in_json_and_notices_in_github(
    capsys: pytest.CaptureFixture[str],
) -> None:
    for fmt, expected in (("text", "clustergen: note: a.sops.yaml: no key\n"), ("github", "")):
        output.begin("check", fmt)
        output.note("no key", "a.sops.yaml")
        output.finish()
        err = capsys.readouterr().err
        if fmt == "text":
            assert err == expected
        else:
            assert err == (
                "::notice file=a.sops.yaml,line=1,col=1,title=clustergen (note)::(note): no key\n"
            )
    output.begin("check", "json")
    output.note("no key", "a.sops.yaml")
    output.emit_diagnostics([Diagnostic("b", 1, 1, "p", "m", severity="warning")])
    output.finish()
    records = json.loads(capsys.readouterr().err)
    assert [(r["file"], r["severity"]) for r in records] == [
        ("a.sops.yaml", "note"),
        ("b", "warning"),
    ]


def test_the_command_is_read_before_parsing() -> None:
    assert cli.requested(["-C", "render", "validate", "--format", "json"]) == ("validate", "json")
    assert cli.requested(["--dialect", "auto", "plan", "--base", "check"]) == ("plan", "text")
    assert cli.requested(["--format=github", "--bogus"]) == ("", "github")
