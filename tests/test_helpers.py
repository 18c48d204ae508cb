"""tests/helpers/ is the one home of what the tests share: each shared helper is defined once,
no test imports conftest, and tool() skips locally but fails in CI when a tool is missing."""

from __future__ import annotations

import ast
import os
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from helpers import tools
from helpers.data import plain
from helpers.paths import ROOT

TESTS = ROOT / "tests"
# The general-purpose helper modules: a name they define is defined nowhere else in tests/.
# (The harness modules, host_repos, realtools, taskfile_harness and packer_compat, serve a
# few tests each; their names, such as `run`, may stand for other things elsewhere.)
SHARED = ("ansible", "cli", "data", "paths", "session", "sops", "tools")


def defined(tree: ast.Module) -> Iterator[tuple[str, int]]:
    """The names a module defines at its top level: functions, classes, assigned names."""
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            yield node.name, node.lineno
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                for name in ast.walk(target):
                    if isinstance(name, ast.Name):
                        yield name.id, node.lineno


def problems(sources: Mapping[str, str]) -> list[str]:
    """What breaks the rules in {path relative to tests/: source}, one line per problem."""
    trees = {path: ast.parse(text, filename=path) for path, text in sorted(sources.items())}
    found: list[str] = []
    homes: dict[str, str] = {}
    for module in SHARED:
        path = f"helpers/{module}.py"
        for name, line in defined(trees.get(path, ast.Module(body=[], type_ignores=[]))):
            if name.startswith("_"):
                continue
            if name in homes:
                found.append(f"{path}:{line}: {name} is defined in {homes[name]} already")
            homes.setdefault(name, path)
    for path, tree in trees.items():
        for node in ast.walk(tree):
            modules: list[str] = []
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules = [node.module]
            for module in modules:
                if module.split(".")[0] == "conftest":
                    found.append(f"{path}:{node.lineno}: imports conftest (use helpers)")
                elif module.split(".")[:2] == ["tests", "helpers"]:
                    found.append(f"{path}:{node.lineno}: imports tests.helpers (use helpers)")
            if isinstance(node, ast.Name) and node.id == "__file__" and path != "helpers/paths.py":
                found.append(f"{path}:{node.lineno}: finds the checkout itself (helpers.paths)")
        if path in {f"helpers/{m}.py" for m in SHARED}:
            continue
        for name, line in defined(tree):
            if name in homes:
                found.append(f"{path}:{line}: defines {name} again ({homes[name]} has it)")
    return found


def test_the_checker_finds_each_kind_of_problem() -> None:
    sources = {
        "helpers/tools.py": "def tool(name):\n    return name\n",
        "helpers/data.py": "def plain(v):\n    return v\ndef tool(n):\n    return n\n",
        "helpers/paths.py": "ROOT = __file__\n",
        "test_a.py": "import conftest\n\n\ndef tool(name):\n    return name\n",
        "test_b.py": "from conftest import ROOT\nfrom tests.helpers.tools import tool\n",
        "test_c.py": "from pathlib import Path\n\nHERE = Path(__file__)\nplain = dict\n",
    }
    assert problems(sources) == [
        "helpers/tools.py:1: tool is defined in helpers/data.py already",
        "test_a.py:1: imports conftest (use helpers)",
        "test_a.py:4: defines tool again (helpers/data.py has it)",
        "test_b.py:1: imports conftest (use helpers)",
        "test_b.py:2: imports tests.helpers (use helpers)",
        "test_c.py:3: finds the checkout itself (helpers.paths)",
        "test_c.py:4: defines plain again (helpers/data.py has it)",
    ]


def test_every_shared_helper_is_defined_once_and_no_test_imports_conftest() -> None:
    sources = {
        p.relative_to(TESTS).as_posix(): p.read_text(encoding="utf-8")
        for p in TESTS.rglob("*.py")
        if "__snapshots__" not in p.parts
    }
    assert "helpers/tools.py" in sources and "conftest.py" in sources
    assert problems(sources) == []


def test_conftest_holds_only_fixtures_and_hooks() -> None:
    tree = ast.parse((TESTS / "conftest.py").read_text(encoding="utf-8"))
    loose = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            hook = node.name.startswith("pytest_")
            fixture = any("fixture" in ast.unparse(d) for d in node.decorator_list)
            if not (hook or fixture):
                loose.append(node.name)
        elif not isinstance(node, ast.Import | ast.ImportFrom | ast.Expr):
            loose.append(ast.unparse(node).splitlines()[0])
    assert loose == []


# --- tool(): skip on a developer's machine, fail in CI ---------------------------------------


def test_a_missing_tool_skips_locally(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tools, "IN_CI", False)
    with pytest.raises(pytest.skip.Exception, match="no-such-tool-x is not installed"):
        tools.tool("no-such-tool-x")


def test_a_missing_tool_fails_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tools, "IN_CI", True)
    with pytest.raises(pytest.fail.Exception, match="no-such-tool-x is not installed"):
        tools.tool("no-such-tool-x")


def test_path_wins_unless_the_venv_is_preferred(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    on_path = tools.stand_in(tmp_path / "path/x-tool", "#!/bin/sh\n")
    in_venv = tools.stand_in(tmp_path / "venv/x-tool", "#!/bin/sh\n")
    only_venv = tools.stand_in(tmp_path / "venv/y-tool", "#!/bin/sh\n")
    monkeypatch.setenv("PATH", str(on_path.parent))
    monkeypatch.setattr(tools, "VENV_BIN", in_venv.parent)
    assert tools.tool("x-tool") == str(on_path)
    assert tools.tool("x-tool", prefer_venv=True) == str(in_venv)
    assert tools.tool("y-tool") == str(only_venv)  # not on PATH: the venv's


def test_child_env_has_no_sops_settings_and_a_fresh_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", "/home/someone/age.key")
    monkeypatch.setenv("TF_VAR_x", "1")
    env = tools.child_env(tmp_path / "home", drop=("SOPS_", "TF_VAR"), EXTRA="y")
    assert not [k for k in env if k.startswith(("SOPS_", "TF_VAR"))]
    assert env["HOME"] == str(tmp_path / "home") and (tmp_path / "home").is_dir()
    assert env["PYTHONPATH"] == str(ROOT) and env["EXTRA"] == "y"
    assert env["PATH"] == os.environ["PATH"]


def test_plain_turns_yaml_data_and_argument_specs_into_json_data() -> None:
    data = YAML().load("a: [1, {b: c}]\nd: '2'\n")
    assert type(data).__name__ == "CommentedMap"
    assert plain(data) == {"a": [1, {"b": "c"}], "d": "2"}
    assert type(plain(data)) is dict and type(plain(data)["a"]) is list
    assert plain({"type": str, "choices": ("x", "y")}) == {"type": "<str>", "choices": ["x", "y"]}
