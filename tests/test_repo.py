"""The README stays true: its quickstart, its test command, every input key and command."""

from __future__ import annotations

import json
import re

from generator.cli import COMMANDS, _parser
from helpers.paths import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")


def quickstart_commands() -> list[str]:
    section = README.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.*?)\n```", section, flags=re.S)


def test_quickstart_has_exactly_two_one_line_commands() -> None:
    commands = quickstart_commands()
    assert len(commands) == 2
    assert all("\n" not in c for c in commands)
    assert "render" in commands[0] and "examples/" in commands[0]
    assert "[test]" in commands[1] and "pytest" in commands[1]


def test_ci_runs_the_readme_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert quickstart_commands()[1] in ci.splitlines()


def test_every_input_key_is_documented() -> None:
    cluster = json.loads((ROOT / "schemas" / "cluster.schema.json").read_text())
    nodes = json.loads((ROOT / "schemas" / "nodes.schema.json").read_text())
    secrets = json.loads((ROOT / "schemas" / "secrets.schema.json").read_text())
    keys = [
        *cluster["properties"],
        *nodes["$defs"]["node"]["properties"],
        *secrets["properties"],
    ]
    # ... and every key of every dialect (the host repos' keys too).
    for dialect in sorted((ROOT / "schemas" / "dialects").glob("*.cluster.schema.json")):
        keys += json.loads(dialect.read_text())["properties"]
    for dialect in sorted((ROOT / "schemas" / "dialects").glob("*.nodes.schema.json")):
        keys += json.loads(dialect.read_text())["$defs"]["node"]["properties"]
    missing = [k for k in dict.fromkeys(keys) if f"`{k}`" not in README]
    assert missing == []


def test_every_command_and_option_is_documented() -> None:
    assert all(f"clustergen {name}" in README for name in COMMANDS)
    parser = _parser()
    subparsers = next(a for a in parser._actions if a.dest == "command")
    for name, sub in subparsers.choices.items():  # type: ignore[attr-defined]
        for action in sub._actions:
            for flag in action.option_strings:
                if flag.startswith("--") and flag != "--help":
                    assert flag in README, f"{name} {flag}"
