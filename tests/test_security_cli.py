"""Every way the CLI can end is an exit code and a few lines, never a traceback (issue 14,
items 8 and 9): a clustergen bug exits 3 asking for a report, Ctrl-C exits 130 with one line,
a closed stdout exits 141, and --format json/github carries usage, conflict, file-system and
internal errors like every other problem."""

from __future__ import annotations

import dataclasses
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from generator import cli, pipeline, render, settings
from generator.commands import validate as validate_command
from generator.errors import InternalError
from helpers.data import cluster_yaml, nodes_yaml

BUGS = [
    ValueError("boom"),
    KeyError("missing"),
    RecursionError("maximum recursion depth exceeded"),
    MemoryError(),
    AssertionError("invariant"),
    TypeError("NoneType"),
]


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = cli.main(list(args))
    captured = capsys.readouterr()
    assert "Traceback" not in captured.out + captured.err
    return code, captured.out, captured.err


@pytest.fixture
def config(example_copy: Callable[[str], Path]) -> Path:
    return example_copy("minimal")


@pytest.mark.parametrize("bug", BUGS, ids=[type(b).__name__ for b in BUGS])
def test_an_unexpected_exception_is_exit_3_with_please_report(
    config: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    bug: BaseException,
) -> None:
    def broken(options: object) -> int:
        raise bug

    monkeypatch.setattr(validate_command, "run", broken)
    code, out, err = run(capsys, "-C", str(config), "validate")
    assert code == 3 and out == ""
    assert err.startswith("clustergen: error: internal error: ") and "please report" in err
    assert type(bug).__name__ in err and len(err.splitlines()) == 2
    code, out, err = run(capsys, "--format", "json", "-C", str(config), "validate")
    (record,) = json.loads(out)
    assert code == 3 and record["path"] == "(bug)" and "please report" in record["hint"]


def test_a_failing_template_is_a_bug_not_bad_input(tmp_path: Path, config: Path) -> None:
    (tmp_path / "t").mkdir()
    (tmp_path / "t/broken.txt.j2").write_text("line 1\n#{ 1 // 0 }#\n")
    custom = dataclasses.replace(settings.load(), templates=tmp_path / "t")
    with pytest.raises(InternalError, match=r"templates/broken\.txt\.j2:2: .*ZeroDivisionError"):
        render.render({}, custom)
    assert InternalError.exit_code == 3


def test_ctrl_c_inside_a_command_is_one_line_exit_130(
    config: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(*args: object, **kwargs: object) -> object:
        raise KeyboardInterrupt

    monkeypatch.setattr(pipeline, "render_tree", interrupted)
    for command in ("render", "check"):
        code, _, err = run(capsys, "-C", str(config), command)
        assert (code, err) == (130, "clustergen: interrupted\n")


def _startup_seconds() -> float:
    times = []
    for _ in range(3):
        started = time.monotonic()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        times.append(time.monotonic() - started)
    return min(times)


# Where clustergen's own code lives: no traceback may show a frame of it.
PACKAGE_DIR = Path(cli.__file__).resolve().parent
CONSOLE_SCRIPT = """\
import re
import sys
from generator.cli import entry
if __name__ == "__main__":
    sys.argv[0] = re.sub(r"(-script\\.pyw|\\.exe)?$", "", sys.argv[0])
    sys.exit(entry())
"""


@pytest.mark.parametrize("launcher", ["module", "console-script"])
def test_sigint_during_start_up_is_one_line_exit_130(
    config: Path, tmp_path: Path, launcher: str
) -> None:
    """Ctrl-C at any moment once Python runs clustergen's code: the import of the CLI, the
    import of the command (jsonschema, ruamel), the work. Never a traceback. Both ways in:
    `python -m generator` and the console script pip writes (the same wrapper, here)."""
    script = tmp_path / "bin" / "clustergen"
    script.parent.mkdir()
    script.write_text(CONSOLE_SCRIPT)
    start = [str(script)] if launcher == "console-script" else ["-m", "generator"]
    interpreter = _startup_seconds()
    rng = random.Random(14)
    outcomes: set[int | str] = set()
    for attempt in range(16):
        process = subprocess.Popen(
            [sys.executable, *start, "-C", str(config), "render", "--dry-run"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        time.sleep(interpreter + rng.uniform(0.0, 0.4) * (attempt % 4 + 1) / 4)
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=60)
        if "Traceback" in err:
            # Python itself was still starting (importing runpy or site, or finding and
            # compiling the package for the wrapper's import line): no clustergen code had
            # run, so no frame of it is in the traceback. Anything later must not get here.
            assert f"{PACKAGE_DIR}{os.sep}" not in err, err
            outcomes.add("before clustergen")
            continue
        if process.returncode == -signal.SIGINT:
            # Before Python installed any handler: killed silently, which is fine too.
            assert err == ""
        elif process.returncode == 130:
            assert err == "clustergen: interrupted\n"
        else:
            assert process.returncode == 0, (process.returncode, err)  # finished first
        outcomes.add(process.returncode)
    assert 130 in outcomes


def _many_invalid_nodes(config: Path, count: int = 3000) -> None:
    lines = ["nodes:"]
    for i in range(count):
        lines += [f"  - name: Bad_Name_{i}", f"    address: 300.0.0.{i % 250}"]
    (config / "nodes.yaml").write_text("\n".join(lines) + "\n")


def _many_valid_nodes(config: Path, count: int = 400) -> None:
    (config / "cluster.yaml").write_text(cluster_yaml("pipe"))
    (config / "nodes.yaml").write_text(nodes_yaml(count))


@pytest.mark.parametrize(
    ("fmt", "command", "valid", "expected"),
    [
        ("json", "validate", False, {1}),  # the outcome of the command wins over the pipe
        ("github", "validate", False, {1}),
        ("text", "check", True, {1}),
        # The summary line is written after the diff: the pipe is closed by then.
        ("text", "render --dry-run", True, {cli.EXIT_BROKEN_PIPE}),
        # One write: when the pipe buffer holds all of it, nothing ever fails.
        ("json", "render --dry-run", True, {0, cli.EXIT_BROKEN_PIPE}),
    ],
)
def test_a_closed_stdout_is_quiet(
    config: Path, tmp_path: Path, fmt: str, command: str, valid: bool, expected: set[int]
) -> None:
    if valid:
        _many_valid_nodes(config)
    else:
        _many_invalid_nodes(config)
    args = [sys.executable, "-m", "generator", "--format", fmt, "-C", str(config), *command.split()]
    for _ in range(3):
        with (tmp_path / "stderr").open("w+") as stderr:
            process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=stderr)
            assert process.stdout is not None
            assert len(process.stdout.read(100)) == 100
            process.stdout.close()
            process.wait(timeout=120)
            stderr.seek(0)
            err = stderr.read()
        assert "Traceback" not in err and "BrokenPipe" not in err, err
        assert process.returncode in expected, err


# --- item 9: every error in the chosen format ------------------------------------------------


def _records(out: str) -> list[dict[str, object]]:
    records = json.loads(out)
    assert isinstance(records, list) and records
    assert all(r["severity"] == "error" and r["message"] for r in records)
    return records


USAGE = [
    ["--bogus", "validate"],
    ["no-such-command"],
    ["render", "--exit-code", "--nope"],
    ["init", "--example"],
]


@pytest.mark.parametrize("args", USAGE, ids=["option", "command", "sub-option", "missing-value"])
def test_usage_errors_in_every_format(capsys: pytest.CaptureFixture[str], args: list[str]) -> None:
    code, out, err = run(capsys, *args)
    assert code == 2 and out == "" and err.startswith("clustergen: error: ")
    # validate and no command: on stdout; render and init print their results there, so
    # their diagnostics go to stderr (README: the one rule per command).
    stream = 0 if args[-1] in ("validate", "no-such-command") else 1
    code, *printed = run(capsys, "--format", "json", *args)
    assert code == 2 and _records(printed[stream])[0]["path"] == "(usage)"
    assert printed[1 - stream] == ""
    code, *printed = run(capsys, "--format=github", *args)
    assert code == 2 and printed[stream].startswith("::error title=clustergen (usage)::")
    assert printed[1 - stream] == ""


def test_conflicts_in_every_format(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "-C", str(config), "render")[0] == 0
    edited = ["infrastructure/tofu/nodes.tf", "infrastructure/tofu/outputs.tf"]
    for path in edited:
        (config / path).write_text((config / path).read_text() + "# mine\n")
    text = (config / "cluster.yaml").read_text().replace("1.12.0", "1.12.1")
    (config / "cluster.yaml").write_text(text)
    code, out, err = run(capsys, "-C", str(config), "render")
    assert code == 1 and all(p in err for p in edited)
    code, out, err = run(capsys, "--format", "json", "-C", str(config), "render")
    records = _records(err)
    assert code == 1 and out == "" and [r["file"] for r in records] == edited
    assert all(r["path"] == "(conflict)" and "--force" in str(r["hint"]) for r in records)
    code, out, err = run(capsys, "--format", "github", "-C", str(config), "render")
    assert (
        code == 1
        and out == ""
        and [line.split(",")[0] for line in err.splitlines()]
        == [f"::error file={p}" for p in edited]
    )


def test_file_system_errors_in_every_format(
    config: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A refusal clustergen words itself, and an OSError it did not expect.
    code, _, err = run(capsys, "--format", "json", "-C", str(config), "render", "-o", "/dev/null")
    assert code == 2 and "not a directory" in str(_records(err)[0]["message"])

    def denied(*args: object, **kwargs: object) -> object:
        raise PermissionError(13, "Permission denied", str(config / "x.yaml"))

    monkeypatch.setattr(pipeline, "render_tree", denied)
    code, _, err = run(capsys, "-C", str(config), "render")
    assert code == 2 and err == f"clustergen: error: {config / 'x.yaml'}: Permission denied\n"
    code, _, err = run(capsys, "--format", "json", "-C", str(config), "check")
    (record,) = _records(err)
    assert code == 2 and record["file"] == str(config / "x.yaml")
    code, _, err = run(capsys, "--format", "github", "-C", str(config), "check")
    assert code == 2 and err.startswith("::error file=")


def test_format_is_read_before_parsing() -> None:
    assert cli.requested_format(["--format", "json", "x"]) == "json"
    assert cli.requested_format(["--format=github", "validate", "--format", "json"]) == "json"
    assert cli.requested_format(["--format", "yaml"]) == "text"
    assert cli.requested_format(["--format"]) == "text"
