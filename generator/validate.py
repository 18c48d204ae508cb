"""Stage 2: check the loaded inputs against the JSON Schemas, then the semantic rules.

Every problem is collected; nothing stops at the first one.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Sequence
from functools import cache
from typing import Any

from generator import resources, rules
from generator.errors import Diagnostic
from generator.load import Document

_TYPE_NAMES = {
    bool: "boolean",
    int: "integer",
    float: "number",
    str: "string",
    list: "list",
    dict: "mapping",
    type(None): "null",
}


@cache
def _validator(name: str) -> Any:
    from jsonschema import Draft202012Validator

    schema = json.loads(resources.schema_path(name).read_text(encoding="utf-8"))
    return Draft202012Validator(schema)


def _kind(value: Any) -> str:
    return _TYPE_NAMES.get(type(value), type(value).__name__)


def _short(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def did_you_mean(word: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}?" if close else ""


def _schema_diagnostics(doc: Document, schema_name: str) -> list[Diagnostic]:
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
            missing = [k for k in error.validator_value if isinstance(value, dict) and k not in value]
            for key in missing:
                out.append(doc.diag(path, f"missing required key {key!r}"))
        elif kind == "type":
            wanted = error.validator_value
            wanted_text = " or ".join(wanted) if isinstance(wanted, list) else wanted
            out.append(doc.diag(path, f"expected {wanted_text}, got {_kind(value)} {_short(value)}"))
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
            out.append(doc.diag(path, f"must have {bound} {error.validator_value} item(s)"))
        elif kind == "maxLength":
            out.append(doc.diag(path, f"longer than {error.validator_value} characters"))
        else:
            out.append(doc.diag(path, error.message))
    return out


def validate(cluster: Document, nodes: Document) -> list[Diagnostic]:
    """All problems (errors and warnings) of the two inputs, sorted by file and line."""
    found = _schema_diagnostics(cluster, "cluster") + _schema_diagnostics(nodes, "nodes")
    if isinstance(cluster.data, dict) and isinstance(nodes.data, dict):
        found += rules.check(cluster, nodes)
    # Two routes to the same finding (schema and a rule) are reported once.
    return sorted(set(found))


def has_errors(diagnostics: Sequence[Diagnostic]) -> bool:
    return any(d.is_error for d in diagnostics)
