"""Stage 2, validate: the JSON Schemas themselves and how their findings are reported."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from generator import derive, resources, validate
from generator.errors import Diagnostic
from generator.load import load_yaml
from helpers.data import write_and_load
from helpers.paths import EXAMPLE_DIRS as EXAMPLES
from helpers.paths import ROOT

SCHEMAS = {name: ROOT / "schemas" / f"{name}.schema.json" for name in ("cluster", "nodes")}

CLUSTER = """\
cluster_name: test
talos_version: 1.12.0
kubernetes_version: 1.35.0
node_cidr: 192.168.22.0/24
cluster_api_addr: 192.168.22.100
proxmox_endpoint: https://pve.example:8006
proxmox_node: pve
"""
NODES = """\
nodes:
  - name: cp-0
    address: 192.168.22.11
    controller: true
    mac_addr: bc:24:11:00:00:11
"""


def _schema(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(SCHEMAS[name].read_text(encoding="utf-8"))
    return data


def _properties(
    schema: dict[str, Any], where: str = ""
) -> Iterator[tuple[str, dict[str, Any], bool]]:
    """(path, property schema, required) of every key at every depth."""
    for key, spec in schema.get("properties", {}).items():
        path = f"{where}.{key}" if where else key
        yield path, spec, key in schema.get("required", [])
        yield from _properties(spec, path)
        if isinstance(spec.get("items"), dict):
            yield from _properties(spec["items"], f"{path}[]")
    for name, spec in schema.get("$defs", {}).items():
        yield from _properties(spec, f"$defs.{name}")


def _lines(found: list[Diagnostic]) -> list[str]:
    return [f"{d.file}:{d.line}:{d.col}: {d.path}: {d.message}" for d in found]


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_schema_is_valid_2020_12(name: str) -> None:
    schema = _schema(name)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(schema)


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_every_key_has_a_description_and_optional_keys_a_default(name: str) -> None:
    missing = []
    for path, spec, required in _properties(_schema(name)):
        if not spec.get("description"):
            missing.append(f"{path}: description")
        if not required and "default" not in spec:
            missing.append(f"{path}: default")
        if required and "default" in spec:
            missing.append(f"{path}: a required key has a default")
    assert not missing


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_objects_are_closed_and_formats_are_patterns(name: str) -> None:
    def walk(node: Any, path: str) -> Iterator[str]:
        if isinstance(node, dict):
            if node.get("type") == "object" and node.get("additionalProperties") is not False:
                yield f"{path}: open object"
            if "format" in node:
                # jsonschema checks `format` only with optional packages installed.
                yield f"{path}: format instead of pattern"
            for key, value in node.items():
                yield from walk(value, f"{path}/{key}")
        elif isinstance(node, list):
            for i, value in enumerate(node):
                yield from walk(value, f"{path}/{i}")

    assert not list(walk(_schema(name), "#"))


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_defaults_are_valid_against_their_own_schema(name: str) -> None:
    for path, spec, _ in _properties(resources.inline_refs(_schema(name))):
        if spec.get("default") is None:
            continue
        errors = list(Draft202012Validator(spec).iter_errors(spec["default"]))
        assert not errors, f"{path}: {errors[0].message}"


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_examples_validate_against_the_schemas_directly(example: Path) -> None:
    for name in SCHEMAS:
        data = load_yaml(example / f"{name}.yaml").data
        schema = json.loads((example / _named_schema(example, name)).read_text(encoding="utf-8"))
        errors = list(Draft202012Validator(schema).iter_errors(data))
        assert not errors, f"{example.name}/{name}.yaml: {errors[0].message}"


def _named_schema(example: Path, name: str) -> str:
    first = (example / f"{name}.yaml").read_text(encoding="utf-8").splitlines()[0]
    return first.removeprefix("# yaml-language-server: $schema=")


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_examples_name_their_schema(example: Path) -> None:
    # clustergen's own, or (examples of a host repo's files) that host dialect's.
    allowed = {
        "clustergen": "../../schemas/{}.schema.json",
        "cluster-template": "../../schemas/dialects/cluster-template.{}.schema.json",
        "talos-cluster": "../../schemas/dialects/talos-cluster.{}.schema.json",
    }
    wanted = allowed.get(example.name, allowed["clustergen"])
    for name in SCHEMAS:
        assert _named_schema(example, name) == wanted.format(name)


def test_schema_defaults_are_the_model_defaults() -> None:
    """One source of truth: derive reads its defaults from the schema; nothing is left out."""
    cluster = _schema("cluster")
    required = set(cluster["required"])
    for key, spec in cluster["properties"].items():
        if key in required or key in derive.COMPUTED_KEYS:
            assert key not in derive.CLUSTER_DEFAULTS
        else:
            assert derive.CLUSTER_DEFAULTS[key] == spec["default"], key
    assert set(derive.CLUSTER_DEFAULTS) | required | derive.COMPUTED_KEYS == set(
        cluster["properties"]
    )
    vm_defaults = resources.inline_refs(cluster)["properties"]["vm_defaults"]
    for role in derive.ROLES:
        block = vm_defaults["properties"][role]
        assert set(block["properties"]) == set(derive.RESOURCE_KEYS)
        defaults = {key: spec["default"] for key, spec in block["properties"].items()}
        assert defaults == derive.ROLE_DEFAULTS_BY_ROLE[role]
    node = _schema("nodes")["$defs"]["node"]
    for key in derive.RESOURCE_KEYS:
        # A node's resource key falls back to its role: null default, same bounds.
        assert node["properties"][key]["default"] is None
        role_spec = vm_defaults["properties"]["controller"]["properties"][key]
        for bound in ("type", "minimum", "maximum", "pattern"):
            assert node["properties"][key].get(bound) == role_spec.get(bound), (key, bound)
    for key, value in derive.NODE_DEFAULTS.items():
        assert node["properties"][key]["default"] == value


def test_talos_minimums_are_above_the_schema_minimums() -> None:
    # Otherwise the schema would report a value the Talos rule should explain.
    role_props = resources.inline_refs(_schema("cluster"))["properties"]["vm_defaults"]
    role_props = role_props["properties"]
    for role, minimums in derive.TALOS_MINIMUMS.items():
        for key, minimum in minimums.items():
            assert role_props[role]["properties"][key]["minimum"] <= minimum


def test_valid_inputs_have_no_diagnostics(tmp_path: Path) -> None:
    assert validate.validate(*write_and_load(tmp_path, CLUSTER, NODES)) == []


def test_unknown_key_did_you_mean(tmp_path: Path) -> None:
    (found,) = validate.validate(
        *write_and_load(tmp_path, CLUSTER + "talos_verison: 1.12.0\n", NODES)
    )
    assert (found.line, found.col, found.path) == (8, 1, "talos_verison")
    assert found.message == "unknown key 'talos_verison'"
    assert found.hint == "did you mean 'talos_version'?"


def test_missing_required_names_the_key_and_points_at_its_mapping(tmp_path: Path) -> None:
    nodes = NODES.replace("    controller: true\n", "")
    (found,) = validate.validate(*write_and_load(tmp_path, CLUSTER, nodes))
    assert _lines([found]) == ["nodes.yaml:2:5: nodes[0].controller: required key is missing"]
    assert found.hint == "add controller: true"


def test_every_missing_key_is_reported(tmp_path: Path) -> None:
    found = validate.validate(*write_and_load(tmp_path, "cluster_name: test\n", NODES))
    required = ["talos_version", "kubernetes_version", "node_cidr", "cluster_api_addr"]
    required += ["proxmox_endpoint", "proxmox_node"]
    assert sorted(d.path for d in found) == sorted(required)


def test_integer_rejects_floats_and_booleans(tmp_path: Path) -> None:
    for value, got in (("4.0", "number 4.0"), ("true", "boolean true")):
        nodes = NODES + f"    cores: {value}\n"
        (found,) = validate.validate(*write_and_load(tmp_path, CLUSTER, nodes))
        assert found.message == f"expected integer, got {got}"


def test_top_level_of_the_wrong_kind(tmp_path: Path) -> None:
    found = validate.validate(*write_and_load(tmp_path, "just a string\n", NODES))
    assert _lines(found) == [
        "cluster.yaml:1:1: (root): the top level must be a mapping of keys "
        "(like cluster_name: home), got a string"
    ]


def test_pattern_hint_offers_the_lowercase_form(tmp_path: Path) -> None:
    nodes = NODES.replace("bc:24:11:00:00:11", "BC:24:11:00:00:11")
    (found,) = validate.validate(*write_and_load(tmp_path, CLUSTER, nodes))
    assert found.hint == "did you mean 'bc:24:11:00:00:11'?"


def test_schema_and_rules_findings_are_merged_and_sorted(tmp_path: Path) -> None:
    cluster = CLUSTER.replace("node_cidr: 192.168.22.0/24", "node_cidr: 192.168.22.9/24")
    nodes = NODES + "    colour: red\n"
    found = validate.validate(*write_and_load(tmp_path, cluster, nodes))
    assert [(d.file, d.line) for d in found] == [("cluster.yaml", 4), ("nodes.yaml", 6)]
    assert found == sorted(found)


def test_did_you_mean() -> None:
    assert validate.did_you_mean("proxmox_nod", ["proxmox_node", "node_cidr"]) == (
        "did you mean 'proxmox_node'?"
    )
    assert validate.did_you_mean("zzz", ["proxmox_node"]) == ""


def test_has_errors_ignores_warnings() -> None:
    warning = Diagnostic("f", 1, 1, "p", "m", severity="warning")
    assert not validate.has_errors([warning])
    assert validate.has_errors([warning, Diagnostic("f", 1, 1, "p", "m")])
