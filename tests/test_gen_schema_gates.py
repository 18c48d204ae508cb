"""scripts/gen_schema_gates.py's rewrites keep each schema's verdict: shared subschemas and
shared property groups become $defs, a $ref with siblings becomes allOf, and the module
holds each shared check once (tests/test_schema_gate.py proves parity on the real schemas)."""

from __future__ import annotations

import json
import re
import runpy
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from generator import gate, validate
from helpers.paths import ROOT

DRAFT = "https://json-schema.org/draft/2020-12/schema"
PORT = {"type": "integer", "minimum": 1, "maximum": 65535, "description": "a port"}
NAME = {"type": "string", "pattern": "^[a-z]+$", "minLength": 1}


# The script's functions (runpy: it is no module of the package).
SCRIPT = runpy.run_path(str(ROOT / "scripts/gen_schema_gates.py"))


def _compile(tmp_path: Path, schemas: dict[str, Any]) -> tuple[str, ModuleType]:
    files = {}
    for name, schema in schemas.items():
        files[name] = tmp_path / f"{name}.schema.json"
        files[name].write_text(json.dumps({"$schema": DRAFT, **schema}), encoding="utf-8")
    text = SCRIPT["generate"](files)
    module = ModuleType("checks")
    exec(compile(text, "checks.py", "exec"), module.__dict__)
    return text, module


def _valid(checks: ModuleType, name: str, data: Any) -> bool:
    """The gate's verdict (generator.gate wraps each generated check alike)."""
    return gate._verdict(checks.CHECKS[name], data)


def _jsonschema(schema: Any, data: Any) -> bool:
    return validate.validator_class()({"$schema": DRAFT, **schema}).is_valid(data)


BASE = {"type": "object", "additionalProperties": False, "required": ["name"]}
CLUSTERGEN = {**BASE, "properties": {"name": NAME, "port": PORT}}
# A dialect: clustergen's keys (one with its own description) and the host's.
HOST = {
    **BASE,
    "properties": {
        "name": {**NAME, "description": "other words"},
        "port": PORT,
        "domain": NAME,
        "asn": {**PORT, "maximum": 4294967295},
    },
}
DOCS = [
    {"name": "a"},
    {"name": "a", "port": 22},
    {"name": "a", "port": 0},
    {"name": "a", "port": 22.0},
    {"name": "a", "port": True},
    {"name": "A"},
    {"name": "a", "domain": "b", "asn": 70000},
    {"name": "a", "domain": "B"},
    {"name": "a", "other": 1},
    {"name": "a", 1: "x"},  # YAML allows a key that is no string
    {"port": 22},
    {},
    [],
    "name",
]


@pytest.mark.parametrize("doc", DOCS, ids=[repr(d) for d in DOCS])
def test_split_schemas_keep_their_verdicts(tmp_path: Path, doc: Any) -> None:
    _, checks = _compile(tmp_path, {"clustergen": CLUSTERGEN, "host": HOST})
    for name, schema in (("clustergen", CLUSTERGEN), ("host", HOST)):
        assert _valid(checks, name, doc) == _jsonschema(schema, doc), (name, doc)


def test_shared_checks_are_written_once(tmp_path: Path) -> None:
    text, _ = _compile(tmp_path, {"clustergen": CLUSTERGEN, "host": HOST})
    # The port check of both schemas is one function; the host's wider asn is its own.
    assert text.count("must be smaller than or equal to 65535") == 1
    assert text.count("must be smaller than or equal to 4294967295") == 1
    assert text.count("must match pattern ^[a-z]+") == 1


def test_ref_with_validating_siblings_keeps_them(tmp_path: Path) -> None:
    """fastjsonschema ignores the siblings of a $ref; the script makes them an allOf."""
    schema = {
        "$defs": {"port": PORT},
        "type": "object",
        "properties": {"p": {"$ref": "#/$defs/port", "maximum": 1024}},
    }
    _, checks = _compile(tmp_path, {"s": schema})
    for doc in ({"p": 80}, {"p": 8080}, {"p": 0}):
        assert _valid(checks, "s", doc) == _jsonschema(schema, doc), doc


def test_refs_into_a_schemas_own_defs_survive_the_rewrites(tmp_path: Path) -> None:
    """Closed schemas that share keys are rewritten into allOf at their top level, where
    their own $defs stood: a $ref into those (cluster.schema.json's vm_resources) must still
    resolve, and two schemas' $defs of one name stay two checks."""
    small = {"type": "integer", "maximum": 10}
    wide = {"type": "integer", "maximum": 100}
    one = {**CLUSTERGEN, "$defs": {"res": small}}
    one["properties"] = {**CLUSTERGEN["properties"], "cores": {"$ref": "#/$defs/res"}}
    two = {**HOST, "$defs": {"res": wide}}
    two["properties"] = {**HOST["properties"], "cores": {"$ref": "#/$defs/res"}}
    _, checks = _compile(tmp_path, {"one": one, "two": two})
    for doc in ({"name": "a", "cores": 5}, {"name": "a", "cores": 50}, {"name": "a", "cores": 500}):
        for name, schema in (("one", one), ("two", two)):
            assert _valid(checks, name, doc) == _jsonschema(schema, doc), (name, doc)


def test_patterns_compile_on_first_use(tmp_path: Path) -> None:
    text, checks = _compile(tmp_path, {"clustergen": CLUSTERGEN})
    assert "re.compile(" not in text.split("REGEX_PATTERNS = ", 1)[1].split("\n", 1)[0]
    assert dict(checks.REGEX_PATTERNS) == {}
    assert _valid(checks, "clustergen", {"name": "a"})
    assert [re.compile(p) for p in checks.REGEX_PATTERNS] == list(checks.REGEX_PATTERNS.values())


def test_each_schema_records_its_hash(tmp_path: Path) -> None:
    _, checks = _compile(tmp_path, {"clustergen": CLUSTERGEN, "host": HOST})
    assert set(checks.SCHEMA_SHA256) == {"clustergen", "host"} == set(checks.CHECKS)


def test_unsupported_schema_is_left_out(tmp_path: Path) -> None:
    odd = {"type": "array", "uniqueItems": True}
    _, checks = _compile(tmp_path, {"clustergen": CLUSTERGEN, "odd": odd})
    assert "odd" not in checks.CHECKS and "odd" not in checks.SCHEMA_SHA256
