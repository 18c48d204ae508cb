"""The options are declared once (generator/options.py): argparse, --help, the README's
command reference and the Python API all follow the declaration."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import generator
from generator import cli, dialects, options
from generator.errors import UsageError
from generator.options import COMMANDS, Options
from helpers.paths import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")
SYNOPSIS = README.split("## Commands", 1)[1].split("```", 2)[1]


def _help(command: str) -> str:
    parser = cli._parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    return str(sub.choices[command].format_help())  # type: ignore[attr-defined]


def _value(option: options.Option, command: str) -> str:
    choices = option.choices(command)
    return choices[-1] if choices else "x"


def test_every_declared_option_is_in_its_commands_help_and_no_other() -> None:
    for name in COMMANDS:
        text = " ".join(_help(name).split())  # argparse wraps lines
        for option in options.declared():
            for flag in option.flag.flags:
                taken = f" {flag} " in text or f"[{flag}" in text
                assert taken == (name in option.flag.commands), (name, flag)
            if name in option.flag.commands:
                assert " ".join(option.help(name).split()) in text, (name, option.field)
    top = " ".join(cli._parser().format_help().split())
    for option in options.declared():
        assert (option.help(None) in top) == option.flag.before_command, option.field


def _synopsis(command: str) -> str:
    """The README's `clustergen <command> ...` line and its continuation lines."""
    lines = SYNOPSIS.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"clustergen {command} "))
    block = [lines[start]]
    block += [line for line in lines[start + 1 :] if line.startswith(" ")][:1]
    return "\n".join(block)


def test_every_declared_option_is_in_the_readme_command_reference() -> None:
    (global_line,) = [line for line in SYNOPSIS.splitlines() if line.startswith("global:")]
    for option in options.declared():
        for name in option.flag.commands:
            # An option also taken before the command may be listed once, as global.
            shown = _synopsis(name) + ("\n" + global_line if option.flag.before_command else "")
            for flag in option.flag.flags:
                assert flag in shown, (name, flag)
            if option.flag.choices and option.flag.before_command:
                assert "|".join(option.flag.choices) in global_line, option.field
            if name in option.flag.choices_for:
                assert "|".join(option.choices(name)) in _synopsis(name), (name, option.field)
            if option.flag.metavar:
                assert f"{option.flag.flags[0]} {option.flag.metavar}" in shown, option.field
    assert "--version" in global_line
    assert all(f"clustergen {name} " in SYNOPSIS for name in COMMANDS)


def test_defaults_come_from_options_alone() -> None:
    for name in COMMANDS:
        assert cli._options([name]) == (name, Options())


@pytest.mark.parametrize("command", list(COMMANDS))
def test_every_flag_sets_its_field(command: str) -> None:
    for option in options.for_command(command):
        flag = option.flag.flags[0]
        args = [flag] if option.is_switch else [flag, _value(option, command)]
        _, parsed = cli._options([command, *args])
        expected = True if option.is_switch else _value(option, command)
        if option.type in (Path, Path | None):
            expected = Path(str(expected))
        assert getattr(parsed, option.field) == expected, (command, flag)
        # Every other field keeps its declared default.
        others = [o for o in options.declared() if o.field != option.field]
        assert all(getattr(parsed, o.field) == o.default for o in others)


def test_options_given_before_the_command_count_too() -> None:
    _, parsed = cli._options(["-C", "d", "--format", "json", "--dialect", "clustergen", "check"])
    assert parsed == Options(config_dir=Path("d"), fmt="json", dialect="clustergen")
    # after the command wins, as argparse resolves a sub-parser's value
    assert cli._options(["-C", "a", "validate", "-C", "b"])[1].config_dir == Path("b")


def test_the_declared_choices_are_the_real_ones() -> None:
    assert options.DIALECTS == dialects.CHOICES
    from generator import report

    assert report.FORMATS == options.FORMATS
    assert set(options.FORMATS) < set(options.PLAN_FORMATS)


def test_the_python_api_takes_the_same_options(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    config = ROOT / "examples" / "minimal"
    assert generator.run("validate", generator.Options(config_dir=config)) == 0
    via_api = capsys.readouterr()
    assert cli.main(["-C", str(config), "validate"]) == 0
    assert capsys.readouterr() == via_api
    assert generator.run("validate", Options(config_dir=config, fmt="json")) == 0
    assert capsys.readouterr().out == "[]\n"
    # What argparse refuses, the API refuses too, naming the field.
    for command, wrong in (
        ("validate", Options(config_dir=config, base="main")),
        ("render", Options(config_dir=config, fmt="markdown")),
        ("validate", Options(config_dir=config, dialect="nope")),
        ("nosuch", Options()),
    ):
        with pytest.raises(UsageError):
            generator.run(command, wrong)
    assert not (tmp_path / "out").exists()
    with pytest.raises(generator.InputError):
        generator.run("validate", Options(config_dir=tmp_path))


def test_importing_the_package_imports_nothing_of_the_api() -> None:
    code = (
        "import sys, generator; print(sorted(m for m in sys.modules if m.startswith('generator.')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert done.stdout.strip() == "[]"
    with pytest.raises(AttributeError):
        generator.no_such_name  # noqa: B018


def test_the_readme_api_example_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    section = README.split("### Python API", 1)[1]
    example = section.split("```python\n", 1)[1].split("```", 1)[0]
    import shutil

    shutil.copytree(ROOT / "examples" / "minimal", tmp_path / "provision")
    monkeypatch.chdir(tmp_path)
    scope: dict[str, object] = {}
    exec(compile(example, "README.md", "exec"), scope)  # our own README
    assert scope["code"] == 1  # a dry run of a first render: everything would be created
    assert "would be created" in capsys.readouterr().out
    assert not (tmp_path / "provision" / "infrastructure").exists()


def test_render_tree_is_the_render_in_memory(tmp_path: Path) -> None:
    """README: generator.render_tree(Options) returns what `render` then writes, and
    writes nothing itself."""
    import shutil

    config = tmp_path / "config"
    shutil.copytree(ROOT / "examples" / "minimal", config)
    before = sorted(p.relative_to(config) for p in config.rglob("*"))
    rendered = generator.render_tree(Options(config_dir=config))
    assert sorted(p.relative_to(config) for p in config.rglob("*")) == before
    assert cli.main(["-C", str(config), "render"]) == 0
    written = {
        p.relative_to(config).as_posix(): p.read_bytes()
        for p in config.rglob("*")
        if p.is_file() and p.relative_to(config) not in before
    }
    assert {k: v for k, v in written.items() if not k.startswith(".clustergen/")} == dict(
        rendered.files
    )
