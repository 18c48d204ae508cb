"""Hostile values through every filter must parse back to the same value in the target format."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import hcl2
import pytest
import yaml as pyyaml
from hypothesis import example, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from generator.filters import ansible, hcl, hcl_list, hcl_string, task_text, task_var, yaml
from helpers.tools import tool

HOSTILE = [
    "plain",
    "",
    " leading and trailing ",
    'double "quotes"',
    "single 'quotes'",
    "back\\slash\\",
    "new\nline",
    "carriage\rreturn",
    "tab\there",
    "null\x00byte",
    "bell\x07",
    "${var.injected}",
    "%{ if true }x%{ endif }",
    "$${already escaped}",
    "#{ jinja }#",
    "#% block %#",
    "{{ lookup('pipe', 'id') }}",
    "{{.TASK_VAR}}",
    "key: value",
    "- list item",
    "? complex",
    "&anchor",
    "*alias",
    "!tag",
    "|literal",
    ">folded",
    "@at",
    "`backtick`",
    "# comment",
    "trailing #",
    "yes",
    "no",
    "on",
    "off",
    "true",
    "null",
    "~",
    "1.0",
    "0x1F",
    "012",
    "1e3",
    ".inf",
    "2026-11-29",
    "12:30:00",
    "unicode ü ✓ 漢字 🚀",
    "\u2028line separator",
    "a,b[c]{d}",
    "--- document",
    "...",
]


def _hcl_unquote(literal: str) -> str:
    """Decode an HCL quoted string as HCL defines it (escapes, then template escapes)."""
    assert literal.startswith('"') and literal.endswith('"'), literal
    body = literal[1:-1]
    out = []
    i = 0
    while i < len(body):
        ch = body[i]
        if ch == "\\":
            nxt = body[i + 1]
            if nxt == "u":
                out.append(chr(int(body[i + 2 : i + 6], 16)))
                i += 6
                continue
            out.append({"n": "\n", "r": "\r", "t": "\t", '"': '"', "\\": "\\"}[nxt])
            i += 2
        elif body.startswith("$${", i):
            out.append("${")
            i += 3
        elif body.startswith("%%{", i):
            out.append("%{")
            i += 3
        else:
            assert not body.startswith("${", i) and not body.startswith("%{", i), literal
            out.append(ch)
            i += 1
    return "".join(out)


@pytest.mark.parametrize("value", HOSTILE)
def test_hcl_string_parses_back(value: str) -> None:
    parsed = hcl2.loads(f"x = {hcl_string(value)}\n")["x"]
    assert _hcl_unquote(parsed) == value


def test_hcl_values_and_lists_parse_back() -> None:
    doc = hcl2.loads(
        f"a = {hcl(True)}\nb = {hcl(42)}\nc = {hcl(None)}\nd = {hcl_list(['x', 'y${z}'])}\n"
        f"e = {hcl({'plain_key': 1, 'odd key': 'v'})}\n"
    )
    assert doc["a"] is True and doc["b"] == 42 and doc["c"] is None
    assert [_hcl_unquote(v) for v in doc["d"]] == ["x", "y${z}"]
    assert doc["e"]["plain_key"] == 1
    assert _hcl_unquote(doc["e"]['"odd key"']) == "v"


def test_hcl_refuses_what_it_cannot_write() -> None:
    with pytest.raises(TypeError):
        hcl(object())
    with pytest.raises(ValueError):
        hcl(float("nan"))


@pytest.mark.skipif(shutil.which("terraform") is None, reason="terraform is not installed")
def test_hcl_strings_evaluate_to_themselves_in_terraform(tmp_path: Path) -> None:
    """HashiCorp's own parser and evaluator as the oracle (terraform console)."""
    values = [v for v in HOSTILE if "\x00" not in v]
    expression = "jsonencode(" + hcl_list(values) + ")"
    result = subprocess.run(
        ["terraform", "console"],
        input=expression + "\n",
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={
            "PATH": "/usr/bin:/bin:/usr/local/bin",
            "TF_CLI_CONFIG_FILE": "/dev/null",
            "CHECKPOINT_DISABLE": "1",  # no version check over the network
        },
        timeout=60,
        check=True,
    )
    printed = result.stdout.strip().splitlines()[-1]
    assert json.loads(json.loads(printed)) == values


def _ruamel(text: str) -> Any:
    return YAML(typ="safe", pure=True).load(text)


@pytest.mark.parametrize("value", HOSTILE)
def test_yaml_scalar_parses_back_in_yaml_1_2_and_1_1(value: str) -> None:
    line = f"key: {yaml(value)}\n"
    assert _ruamel(line) == {"key": value}, line
    # PyYAML reads YAML 1.1, as Ansible does: "yes"/"on" must still be strings there.
    assert pyyaml.safe_load(line) == {"key": value}, line


def test_yaml_keeps_simple_values_plain() -> None:
    assert yaml("vmbr0") == "vmbr0"
    assert yaml("local-zfs") == "local-zfs"
    assert yaml("yes") == '"yes"'
    assert yaml(True) == "true"
    assert yaml(None) == "null"
    assert yaml(["a", 1]) == "[a, 1]"


def test_yaml_collections_parse_back() -> None:
    value = {"list": ["a: b", "#x", 3, None, True], "key with: colon": {"n": "${x}"}}
    assert _ruamel(f"v: {yaml(value)}\n") == {"v": value}


def test_ansible_filter_values_load_back() -> None:
    for value in HOSTILE:
        assert pyyaml.safe_load(f"key: {ansible(value)}\n".replace("!unsafe ", "")) == {
            "key": value
        }


def _ansible_debug(tmp_path: Path, vars_text: str) -> str:
    """Run a real ansible-playbook that prints var `v` from a vars file; return its output."""
    playbook = tmp_path / "play.yaml"
    (tmp_path / "vars.yaml").write_text(vars_text)
    playbook.write_text(
        "- hosts: localhost\n  connection: local\n  gather_facts: false\n"
        "  vars_files: [vars.yaml]\n  tasks:\n    - ansible.builtin.debug:\n        var: v\n"
    )
    binary = Path(sys.executable).with_name("ansible-playbook")
    env = {
        "PATH": f"{binary.parent}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "ANSIBLE_HOME": str(tmp_path / ".ansible"),
        "ANSIBLE_LOCAL_TEMP": str(tmp_path / "tmp"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_LOCALHOST_WARNING": "0",
        "ANSIBLE_INVENTORY_UNPARSED_WARNING": "0",
    }
    result = subprocess.run(
        [str(binary), str(playbook)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@pytest.mark.skipif(
    not Path(sys.executable).with_name("ansible-playbook").exists(),
    reason="ansible-playbook is not installed (test extra)",
)
def test_ansible_never_templates_filtered_values(tmp_path: Path) -> None:
    hostile = "{{ 'TEMPLATED' + 'X' }}"
    assert "TEMPLATEDX" in _ansible_debug(tmp_path, f"v: {json.dumps(hostile)}\n")
    output = _ansible_debug(tmp_path, f"v: {ansible(hostile)}\n")
    assert "TEMPLATEDX" not in output
    assert "{{ 'TEMPLATED' + 'X' }}" in output


# Each filter regex once matched with `$`, which also matches before a final newline:
# "A\n" was written as a plain YAML scalar (read back as "A"), "a\n" as a bare HCL key.
TRAILING_BREAKS = ["A\n", "true\n", "a.b\n", "1\n", "x\n\n", "a\r\n"]


@pytest.mark.parametrize("value", TRAILING_BREAKS)
def test_a_trailing_line_break_survives_every_filter(value: str) -> None:
    assert _ruamel(f"key: {yaml(value)}\n") == {"key": value}
    assert _ruamel(f"key: {yaml({value: 1})}\n") == {"key": {value: 1}}
    parsed = hcl2.loads(f"x = {hcl({value: 1})}\n")["x"]
    assert {_hcl_unquote(k) if k.startswith('"') else k: v for k, v in parsed.items()} == {value: 1}


@settings(max_examples=200, deadline=None)
@given(st.text())
@example("A\n")  # found by Hypothesis: a plain scalar with a trailing newline
def test_random_strings_round_trip(value: str) -> None:
    assert _ruamel(f"key: {yaml(value)}\n") == {"key": value}
    parsed = hcl2.loads(f"x = {hcl_string(value)}\n")["x"]
    assert _hcl_unquote(parsed) == value


def test_no_filter_output_contains_raw_template_sequences() -> None:
    for value in HOSTILE:
        assert not re.search(r"(?<!\$)\$\{", hcl_string(value)), value
        assert not re.search(r"(?<!%)%\{", hcl_string(value)), value


# go-task: values through task_var (vars/env) and task_text (prompt, msg) come out literally.
TASK_VALUES = [
    *(v for v in HOSTILE if "\x00" not in v),  # an environment variable cannot hold NUL
    '{{env "HOME"}}',
    '{{printf "%s" "x"}}',
    "{{",
    "}}{{",
    "a <no value> {{.X}}",  # go-task drops "<no value>" from what it templates
    "🚀{{.ROOT_DIR}}",
    "\x1b[2J{{ }}\u202e",
]


def test_task_var_and_task_text_reach_go_task_literally(tmp_path: Path) -> None:
    task = tool("task")
    show = "import json, os, sys; json.dump(sorted(os.environ.items()), sys.stdout)"
    env_lines = "".join(f"      V{i}: {task_var(v)}\n" for i, v in enumerate(TASK_VALUES))
    prompts = "".join(
        f"  p{i}:\n    prompt: {task_text(v)}\n    cmds: []\n" for i, v in enumerate(TASK_VALUES)
    )
    (tmp_path / "Taskfile.yaml").write_text(
        'version: "3"\ntasks:\n  show:\n    env:\n'
        + env_lines
        + f"    cmds:\n      - {yaml(shlex.join([sys.executable, '-c', show]))}\n"
        + prompts,
        encoding="utf-8",
    )

    def run(*args: str) -> str:
        done = subprocess.run(
            [task, "--silent", "--yes", *args],
            cwd=tmp_path,
            env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path / "home")},
            capture_output=True,
            timeout=60,
            check=True,
        )
        return done.stdout.decode()  # bytes: text mode would turn "\r" into "\n"

    env = dict(json.loads(run("show")))
    for i, value in enumerate(TASK_VALUES):
        assert env[f"V{i}"] == value, value
    for i, value in enumerate(TASK_VALUES):
        if value and "<no value>" not in value:  # go-task shows no empty prompt
            assert f"{value} [assuming yes]" in run(f"p{i}"), value
