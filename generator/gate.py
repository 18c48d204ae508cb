"""Fast validity gate: the check generated from a schema (scripts/gen_schema_gates.py)
decides valid / invalid, so the success path never imports jsonschema; jsonschema still
words every problem when the gate says no.

The gate is never more lenient than the jsonschema validator (tests/test_schema_gate.py
proves it on the fixtures and on fuzzed documents). A gate generated from other schema
bytes than the ones installed (stale) or missing (a new schema) is not used.
"""

from __future__ import annotations

import hashlib
import importlib
from collections.abc import Callable
from functools import cache, partial
from typing import Any

from generator import resources
from generator.controls import control_character


@cache
def gate(schema_name: str) -> Callable[[Any], bool] | None:
    """is_valid(data) of the schema's current generated gate, or None."""
    try:
        module = importlib.import_module("generator._gates.checks")
    except ImportError:
        return None
    check: Callable[[Any], object] | None = getattr(module, "CHECKS", {}).get(schema_name)
    if check is None:
        return None
    try:
        raw = resources.schema_path(schema_name).read_bytes()
    except OSError:
        return None
    if getattr(module, "SCHEMA_SHA256", {}).get(schema_name) != hashlib.sha256(raw).hexdigest():
        return None  # stale: generated from another version of the schema
    return partial(_verdict, check)


def _verdict(check: Callable[[Any], object], data: Any) -> bool:
    """True when the check accepts data; False otherwise (jsonschema then says why)."""
    try:
        check(data)
    except Exception:  # a value error, or data no JSON document could hold
        return False
    return True


def is_valid(schema_name: str, data: Any) -> bool:
    """True only when the gate exists, is current and accepts data; False means "ask
    jsonschema" (invalid, or no usable gate). A string with a control character anywhere
    always asks jsonschema: validate's own keyword refuses those, which the generated code
    does not know (a key that allows some is rare enough to take the slow path)."""
    check = gate(schema_name)
    return check is not None and check(data) and not _has_control(data, set())


def _has_control(data: Any, seen: set[int]) -> bool:
    """Whether any string value holds a control character. A container shared through a
    YAML alias is walked once (an invalid document may share one many times)."""
    if isinstance(data, str):
        return control_character(data) is not None
    if not isinstance(data, (dict, list)) or id(data) in seen:
        return False
    seen.add(id(data))
    values = data.values() if isinstance(data, dict) else data
    return any(_has_control(v, seen) for v in values)
