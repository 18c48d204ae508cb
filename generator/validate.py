"""Stage 2: check the loaded inputs against the JSON Schemas, then the semantic rules.

Every problem is collected; nothing stops at the first one.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Sequence
from functools import cache
from typing import Any

from generator import gate, resources, rules
from generator.errors import Diagnostic
from generator.load import Document, format_path

_TYPE_NAMES = {
    bool: "boolean",
    int: "integer",
    float: "number",
    str: "string",
    list: "list",
    dict: "mapping",
    type(None): "null",
}


_SCHEMA_TYPES = {
    "object": "mapping",
    "array": "list",
    "integer": "integer",
    "number": "number",
    "string": "string",
    "boolean": "boolean",
    "null": "nothing",
}


def _strict_integer(checker: Any, instance: Any) -> bool:
    return isinstance(instance, int) and not isinstance(instance, bool)


@cache
def _validator(name: str) -> Any:
    from jsonschema import Draft202012Validator, validators

    # JSON Schema counts 4.0 as an integer; a YAML float would then reach HCL as "4.0".
    checker = Draft202012Validator.TYPE_CHECKER.redefine("integer", _strict_integer)
    strict = validators.extend(Draft202012Validator, type_checker=checker)  # type: ignore[no-untyped-call]
    schema = json.loads(resources.schema_path(name).read_text(encoding="utf-8"))
    return strict(schema)


def _kind(value: Any) -> str:
    return _TYPE_NAMES.get(type(value), type(value).__name__)


def _short(value: Any) -> str:
    if value is None:
        return "an empty value"
    text = json.dumps(value) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def did_you_mean(word: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}?" if close else ""


def check_schema(doc: Document, schema_name: str) -> list[Diagnostic]:
    """The JSON Schema findings of one document (schema_name: cluster or nodes)."""
    if not isinstance(doc.data, dict):
        # Every other check would only repeat this one.
        example = "cluster_name: home" if schema_name == "cluster" else "nodes:"
        return [
            doc.diag(
                [],
                f"the top level must be a mapping of keys (like {example}), "
                f"got a {_kind(doc.data)}",
            )
        ]
    if gate.is_valid(schema_name, doc.data):
        return []  # jsonschema (imported by _validator) would find nothing either
    out: list[Diagnostic] = []
    for error in _validator(schema_name).iter_errors(doc.data):
        path = list(error.absolute_path)
        kind, value, schema = error.validator, error.instance, error.schema
        if kind == "additionalProperties" and isinstance(value, dict):
            known = list(schema.get("properties", {}))
            for key in sorted(set(value) - set(known)):
                out.append(
                    doc.diag(
                        [*path, key],
                        f"unknown key {key!r}",
                        did_you_mean(key, known),
                        key=True,
                    )
                )
        elif kind == "required":
            if not isinstance(value, dict):
                continue
            for key in error.validator_value:
                if key not in value:
                    # Points at the mapping that lacks the key; the path names the key.
                    line, col = doc.locate(path)
                    out.append(
                        Diagnostic(
                            doc.file,
                            line,
                            col,
                            format_path([*path, key]),
                            "required key is missing",
                            _required_hint(schema, key),
                        )
                    )
        elif kind == "type":
            wanted = error.validator_value
            wanted_list = wanted if isinstance(wanted, list) else [wanted]
            names = [_SCHEMA_TYPES.get(str(w), str(w)) for w in wanted_list]
            got = "nothing (an empty value)" if value is None else f"{_kind(value)} {_short(value)}"
            out.append(doc.diag(path, f"expected {' or '.join(names)}, got {got}"))
        elif kind == "pattern":
            what = schema.get("x-format", f"matching {error.validator_value}")
            hint = ""
            if isinstance(value, str) and _validator(schema_name).evolve(schema=schema).is_valid(
                value.lower()
            ):
                hint = f"did you mean {value.lower()!r}?"
            out.append(doc.diag(path, f"{_short(value)} is not {what}", hint))
        elif kind == "enum":
            choices = [str(c) for c in error.validator_value]
            hint = did_you_mean(str(value), choices)
            out.append(doc.diag(path, f"{_short(value)} is not one of {', '.join(choices)}", hint))
        elif kind in ("minimum", "maximum"):
            bound = "at least" if kind == "minimum" else "at most"
            out.append(doc.diag(path, f"{_short(value)} must be {bound} {error.validator_value}"))
        elif kind in ("minItems", "maxItems"):
            bound = "at least" if kind == "minItems" else "at most"
            out.append(doc.diag(path, f"needs {bound} {error.validator_value} item(s)"))
        elif kind == "maxLength":
            out.append(doc.diag(path, f"longer than {error.validator_value} characters"))
        else:
            out.append(doc.diag(path, error.message))
    return out


def _required_hint(schema: dict[str, Any], key: str) -> str:
    spec = schema.get("properties", {}).get(key, {})
    examples = spec.get("examples")
    if examples:
        first = examples[0]
        return f"add {key}: {first if isinstance(first, str) else json.dumps(first)}"
    return f"add {key}"


def validate(cluster: Document, nodes: Document) -> list[Diagnostic]:
    """All problems (errors and warnings) of the two inputs, sorted by file and line."""
    found = check_schema(cluster, "cluster") + check_schema(nodes, "nodes")
    if isinstance(cluster.data, dict) and isinstance(nodes.data, dict):
        found += rules.check(cluster, nodes)
    # Two routes to the same finding (schema and a rule) are reported once.
    return sorted(set(found))


def has_errors(diagnostics: Sequence[Diagnostic]) -> bool:
    return any(d.is_error for d in diagnostics)
