"""Stage 2: check the loaded inputs against the JSON Schemas, then the semantic rules.

Every problem is collected; nothing stops at the first one.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from functools import cache
from typing import Any

from generator import constants, gate, patterns, resources, rules, suggest
from generator.controls import control_character, describe_character
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


CONTROL_KEYWORD = "x-control-characters"
# Schema annotation of a key whose value is never quoted in a message (proxmox_endpoint: a
# URL pasted with a password in its query string must not land in CI logs).
NEVER_ECHO = "x-never-echo"


def _pattern_keyword(validator: Any, pattern: str, instance: Any, schema: Any) -> Any:
    from jsonschema.exceptions import ValidationError

    if isinstance(instance, str) and not patterns.compiled(pattern).search(instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


def _type_keyword(validator: Any, types: Any, instance: Any, schema: Any) -> Any:
    """The standard `type` check, and for every string: no control character unless the
    key documents it (CONTROL_KEYWORD). One rule for every string input there is."""
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import ValidationError

    yield from Draft202012Validator.VALIDATORS["type"](validator, types, instance, schema)
    if isinstance(instance, str):
        found = control_character(instance, str(schema.get(CONTROL_KEYWORD, "")))
        if found is not None:
            index, char = found
            yield ValidationError(
                f"contains the control character {describe_character(char)} "
                f"(at character {index + 1})",
                validator="control",
                validator_value=char,
            )


@cache
def validator_class() -> Any:
    """Draft 2020-12 with the meanings clustergen relies on: strict integers, ECMA-262
    patterns, and no control characters in strings."""
    from jsonschema import Draft202012Validator, validators

    # JSON Schema counts 4.0 as an integer; a YAML float would then reach HCL as "4.0".
    checker = Draft202012Validator.TYPE_CHECKER.redefine("integer", _strict_integer)
    return validators.extend(  # type: ignore[no-untyped-call]
        Draft202012Validator,
        validators={"pattern": _pattern_keyword, "type": _type_keyword},
        type_checker=checker,
    )


@cache
def _validator(name: str) -> Any:
    schema = json.loads(resources.schema_path(name).read_text(encoding="utf-8"))
    return validator_class()(schema)


def _kind(value: Any) -> str:
    return _TYPE_NAMES.get(type(value), type(value).__name__)


def _short(value: Any) -> str:
    if value is None:
        return "an empty value"
    text = json.dumps(value) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def did_you_mean(word: str, choices: Sequence[str]) -> str:
    return suggest.did_you_mean(word, choices)


def _unknown_key_hint(schema_name: str, key: str, known: Sequence[str]) -> str:
    """A secret in cluster.yaml (talos-cluster keeps its token there) is pointed at the sops
    file; any other key gets a "did you mean" when one is close."""
    if schema_name == "cluster":
        from generator import movesecrets

        if key in movesecrets.SECRET_KEYS_BY_NAME:
            return (
                "a secret: clustergen reads it from secrets.sops.yaml; "
                "`clustergen init --move-secrets` moves it there"
            )
    return did_you_mean(key, known)


# Values never shown in a message (talos-cluster keeps the API token in cluster.yaml).
SECRET_KEYS = frozenset(constants.SECRET_KEYS)


def check_schema(
    doc: Document,
    schema_name: str,
    unknown_hint: Callable[[list[Any], str], str] | None = None,
) -> list[Diagnostic]:
    """The JSON Schema findings of one document (schema_name: cluster, nodes or a dialect's).

    unknown_hint(path, key): a hint for an unknown key (e.g. the dialect that defines it).
    """
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
    errors = list(_validator(schema_name).iter_errors(doc.data))
    # A control character is the one finding for its value: its pattern and length
    # complaints would only say the same again, less precisely.
    controlled = {tuple(e.absolute_path) for e in errors if e.validator == "control"}
    for error in errors:
        path = list(error.absolute_path)
        kind, value, schema = error.validator, error.instance, error.schema
        if path and path[-1] in SECRET_KEYS and not isinstance(value, dict):
            # Say what is wrong without the value (no hint either: it would repeat it).
            out.append(doc.diag(path, f"is not valid ({kind}: see the schema); value not shown"))
            continue
        if tuple(path) in controlled and kind in ("pattern", "maxLength"):
            continue
        # A key that may carry a password or token when misused (a URL) is never echoed.
        secret_bearing = bool(schema.get(NEVER_ECHO)) if isinstance(schema, dict) else False
        if kind == "control":
            out.append(
                doc.diag(
                    path,
                    error.message,
                    "remove it: this key takes no control or invisible formatting characters",
                )
            )
            continue
        if kind == "additionalProperties" and isinstance(value, dict):
            known = list(schema.get("properties", {}))
            for key in sorted(set(value) - set(known)):
                hint = unknown_hint(path, key) if unknown_hint else ""
                out.append(
                    doc.diag(
                        [*path, key],
                        f"unknown key {key!r}",
                        hint or _unknown_key_hint(schema_name, key, known),
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
            if secret_bearing and value is not None:
                got = f"a {_kind(value)}"
            out.append(doc.diag(path, f"expected {' or '.join(names)}, got {got}"))
        elif kind == "pattern":
            what = schema.get("x-format", f"matching {error.validator_value}")
            hint = ""
            if secret_bearing:
                out.append(
                    doc.diag(path, f"the value is not {what}", "(not shown: it may hold a secret)")
                )
                continue
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


UnknownHint = Callable[[list[Any], str], str]


def validate(
    cluster: Document,
    nodes: Document,
    unknown_hints: tuple[UnknownHint | None, UnknownHint | None] = (None, None),
) -> list[Diagnostic]:
    """All problems (errors and warnings) of the two inputs, sorted by file and line."""
    found = check_schema(cluster, "cluster", unknown_hints[0])
    found += check_schema(nodes, "nodes", unknown_hints[1])
    if isinstance(cluster.data, dict) and isinstance(nodes.data, dict):
        found += rules.check(cluster, nodes)
    # Two routes to the same finding (schema and a rule) are reported once.
    return sorted(set(found))


def has_errors(diagnostics: Sequence[Diagnostic]) -> bool:
    return any(d.is_error for d in diagnostics)
