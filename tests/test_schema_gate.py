"""The generated schema gate (generator/gate.py, scripts/gen_schema_gates.py) never accepts
what the jsonschema validator of validate.py rejects, never fills in a default, and is not
used once its schema changed."""

from __future__ import annotations

import copy
import importlib.util
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from generator import gate, resources, validate
from helpers.paths import ROOT

# As resources.schema_path names them, subdirectories included ("dialects/x.nodes").
SCHEMA_NAMES = sorted(
    p.relative_to(ROOT / "schemas").as_posix().removesuffix(".schema.json")
    for p in (ROOT / "schemas").rglob("*.schema.json")
)
INPUT_SCHEMAS = {"cluster.yaml": "cluster", "nodes.yaml": "nodes"}
FUZZ = settings(
    max_examples=int(os.environ.get("CLUSTERGEN_PROPERTY_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _script() -> Any:
    spec = importlib.util.spec_from_file_location("gen_gates", ROOT / "scripts/gen_schema_gates.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _jsonschema_valid(schema_name: str, data: Any) -> bool:
    """The verdict of validate.py's strict-integer jsonschema validator (for secrets too:
    secrets.py's own validator is the plain one, more lenient still)."""
    return not any(True for _ in validate._validator(schema_name).iter_errors(data))


def _corpus() -> Iterator[tuple[str, str, Any]]:
    """(case, schema, data) of every fixture and example input that loads."""
    yaml = YAML(typ="safe", pure=True)
    dirs = [*sorted((ROOT / "tests/fixtures").glob("*/*")), *sorted((ROOT / "examples").iterdir())]
    for case in dirs:
        for file, schema in INPUT_SCHEMAS.items():
            path = case / file
            if not path.is_file():
                continue
            try:
                data = yaml.load(path.read_text(encoding="utf-8-sig"))
            except Exception:  # broken on purpose (syntax, duplicate keys, ...)
                continue
            yield f"{case.parent.name}/{case.name}/{file}", schema, data


CORPUS = list(_corpus())


def test_every_schema_has_a_current_gate() -> None:
    """Fails when a schema changed (or a new one came) without running the script."""
    script = _script()
    for name in SCHEMA_NAMES:
        assert not script.unsupported(json.loads(resources.schema_path(name).read_text())), name
        assert gate.gate(name) is not None, f"run: python scripts/gen_schema_gates.py ({name})"
    assert script.main(["--check"]) == 0, "generated gates are stale: run the script"


def test_stale_gate_is_not_used(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    changed = tmp_path / "nodes.schema.json"
    text = resources.schema_path("nodes").read_text(encoding="utf-8")
    changed.write_text(text.replace('"maxItems"', '"minItems"', 1), encoding="utf-8")
    monkeypatch.setattr(resources, "schema_path", lambda name: changed)
    gate.gate.cache_clear()
    try:
        assert gate.gate("nodes") is None
        assert gate.is_valid("nodes", {"nodes": []}) is False  # "ask jsonschema"
    finally:
        gate.gate.cache_clear()


def test_unknown_schema_has_no_gate() -> None:
    assert gate.gate("no-such-schema") is None


def test_unsupported_keyword_gets_no_gate() -> None:
    script = _script()
    assert script.unsupported({"properties": {"a": {"uniqueItems": True}}}) == [
        "#/properties/a/uniqueItems"
    ]
    assert script.unsupported({"$ref": "https://example.com/x.json"})
    assert script.unsupported({"properties": {"uniqueItems": {"type": "string"}}}) == []


@pytest.mark.parametrize(("case", "schema", "data"), CORPUS, ids=[c for c, _, _ in CORPUS])
def test_gate_agrees_with_jsonschema_on_the_fixtures(case: str, schema: str, data: Any) -> None:
    before = copy.deepcopy(data)
    verdict = gate.is_valid(schema, data)
    assert data == before, "the gate changed the data (a default filled in?)"
    assert verdict == _jsonschema_valid(schema, data), case


@pytest.mark.parametrize("schema", SCHEMA_NAMES)
def test_no_gate_accepts_a_fixture_its_schema_rejects(schema: str) -> None:
    """Every schema (a dialect's too) against every document of the corpus."""
    for case, _, data in CORPUS:
        if gate.is_valid(schema, data):
            assert _jsonschema_valid(schema, data), (schema, case)


def test_corpus_has_valid_and_invalid_documents() -> None:
    verdicts = {_jsonschema_valid(schema, data) for _, schema, data in CORPUS}
    assert verdicts == {True, False}


def test_strict_integers_and_lists() -> None:
    cluster = next(d for c, s, d in CORPUS if c == "examples/minimal/cluster.yaml")
    nodes = next(d for c, s, d in CORPUS if c == "examples/minimal/nodes.yaml")
    assert gate.is_valid("cluster", cluster) and gate.is_valid("nodes", nodes)
    assert not gate.is_valid("nodes", {**nodes, "nodes": tuple(nodes["nodes"])})
    first = {**nodes["nodes"][0], "cores": 4.0}
    assert not gate.is_valid("nodes", {"nodes": [first, *nodes["nodes"][1:]]})
    assert not gate.is_valid("nodes", {"nodes": [{**first, "cores": True}]})


# --- fuzzing: random damage to valid documents ------------------------------------------

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**40), 2**40),
    st.sampled_from([0, 1, 2, 3, 4, 8, 4094, 4095, 65535, 2**31]),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([1.0, 4.0, 0.5, -1.0]),
    st.text(max_size=12),
    st.sampled_from(["", "a", "A", "x\n", "10.0.0.1", "10.0.0.1\n", "bc:24:11:00:00:01", "1.2.3"]),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=8,
)


def _paths(data: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(data, dict):
        for key, value in data.items():
            yield from _paths(value, (*prefix, key))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            yield from _paths(value, (*prefix, i))


@st.composite
def damaged(draw: st.DrawFn) -> tuple[str, Any]:
    """A valid fixture with one to three random edits: a value replaced, a key added or
    removed, an item appended."""
    valid = [(s, d) for _, s, d in CORPUS if _jsonschema_valid(s, d)]
    schema, data = draw(st.sampled_from(valid))
    data = copy.deepcopy(data)
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(list(_paths(data))))
        parent: Any = data
        for part in path[:-1]:
            parent = parent[part]
        target = parent[path[-1]] if path else data
        action = draw(st.sampled_from(["replace", "add", "remove", "append"]))
        if action == "replace" and path:
            parent[path[-1]] = draw(json_values)
        elif action == "add" and isinstance(target, dict):
            known = list(target) or ["x"]
            key = draw(st.one_of(st.sampled_from(known), st.text(max_size=8)))
            target[key] = draw(json_values)
        elif action == "remove" and isinstance(target, dict) and target:
            del target[draw(st.sampled_from(sorted(target)))]
        elif action == "append" and isinstance(target, list):
            target.append(
                copy.deepcopy(target[0]) if target and draw(st.booleans()) else draw(json_values)
            )
    return schema, data


@FUZZ
@given(damaged())
def test_gate_never_accepts_what_jsonschema_rejects(case: tuple[str, Any]) -> None:
    schema, data = case
    if gate.is_valid(schema, data):
        assert _jsonschema_valid(schema, data), data


@FUZZ
@given(json_values)
def test_gate_never_accepts_random_documents_jsonschema_rejects(data: Any) -> None:
    for schema in SCHEMA_NAMES:
        if gate.is_valid(schema, data):
            assert _jsonschema_valid(schema, data), (schema, data)


def test_success_path_never_imports_jsonschema(tmp_path: Path) -> None:
    import subprocess
    import sys

    probe = (
        "import sys\nfrom generator.cli import main\n"
        f"code = main(['-C', {str(ROOT / 'examples/homelab')!r}, 'validate'])\n"
        "print(code, 'jsonschema' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=tmp_path
    )
    assert result.stdout.split()[-2:] == ["0", "False"]
