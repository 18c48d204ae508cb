"""libyaml's event stream (ruamel.yaml.clib's CParser), walked in Python.

Two uses, both far cheaper than composing a node graph and constructing it:

- check(text): does the text load with ruamel's safe loader (verify, on every YAML output)?
- plain(text): the plain data of a one-document input file (load's fast path).

Both decide only the plain cases: mappings with string keys, sequences, and scalars that
ruamel's resolver (YAML 1.2) resolves to str, null, bool, int or float (plus, for check,
Ansible's `!unsafe` and anchors with aliases to them as values). Anything unusual - other
tags, aliases in plain, %YAML/%TAG directives, non-string or repeated keys, timestamps,
merge keys, deep nesting - raises Unusual, and the caller does the full load, which
decides and words every problem as before. A syntax error from libyaml propagates (the
full load would raise the same one).
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from functools import cache
from typing import Any

from generator.errors import Unusual

STR = "tag:yaml.org,2002:str"
NULL = "tag:yaml.org,2002:null"
BOOL = "tag:yaml.org,2002:bool"
INT = "tag:yaml.org,2002:int"
FLOAT = "tag:yaml.org,2002:float"
PLAIN_TAGS = frozenset({STR, NULL, BOOL, INT, FLOAT})
UNSAFE = "!unsafe"  # Ansible's tag for text that must never be templated (filters.ansible)

# Block nesting this deep makes the full loaders recurse towards Python's limit; let them
# decide (and word it) rather than accept here what they would refuse.
MAX_DEPTH = 48

# Scalars whose value is obvious from the text; other ints and floats (0x1f, 1_000, 1e3,
# .inf) are left to the full load, which knows YAML's rules for them.
_DECIMAL_INT = re.compile(r"[-+]?(0|[1-9][0-9]*)")
_DECIMAL_FLOAT = re.compile(r"[-+]?(0|[1-9][0-9]*)\.[0-9]+")


@cache
def _table() -> dict[str | None, list[tuple[str, re.Pattern[str]]]]:
    """First character -> (tag, pattern) of ruamel's implicit resolvers for YAML 1.2."""
    from ruamel.yaml.resolver import VersionedResolver

    table: dict[str | None, list[tuple[str, re.Pattern[str]]]]
    table = VersionedResolver().versioned_resolver
    return table


def resolve(value: str) -> str:
    """The tag ruamel's resolver gives a plain (unquoted, untagged) scalar."""
    table = _table()
    for tag, pattern in [*table.get(value[:1] if value else "", []), *table.get(None, [])]:
        if pattern.match(value):
            return str(tag)
    return STR


def _events(text: str) -> Iterator[Any]:
    from _ruamel_yaml import CParser  # libyaml; ImportError -> the caller's full load

    parser = CParser(io.StringIO(text))
    try:
        while True:
            event = parser.get_event()
            yield event
            if type(event).__name__ == "StreamEndEvent":
                return
    finally:
        parser.dispose()


def _walk(text: str, *, build: bool, unsafe: bool) -> Any:
    """The engine of check (build=False) and plain (build=True)."""
    from ruamel.yaml import events as ev

    # containers on the current path: [value, keys seen (mapping) or None, expecting a key]
    stack: list[list[Any]] = []
    documents: list[Any] = []
    values = 0
    anchors: set[str] = set()  # check only: an alias must name an earlier anchor

    def anchor(name: str | None) -> None:
        if name is not None:
            if build:
                raise Unusual("anchor")  # the safe loader builds what aliases share
            if name in anchors:
                raise Unusual("reused anchor")  # the full load refuses it and words why
            anchors.add(name)

    def add(value: Any) -> None:
        if not stack:
            documents.append(value)
            return
        top = stack[-1]
        keys = top[1]
        if keys is None:
            if build:
                top[0].append(value)
        elif top[2]:
            if value in keys:
                raise Unusual("repeated key")  # the full load words the duplicate
            keys.add(value)
            top[3] = value
            top[2] = False
        else:
            if build:
                top[0][top[3]] = value
            top[2] = True

    for event in _events(text):
        kind = type(event)
        if kind is ev.ScalarEvent:
            anchor(event.anchor)
            values += 1
            value = event.value
            tag = event.tag
            if tag is None or tag == "!":
                # Quoted (or `!`) scalars are strings; plain ones go through the resolver.
                resolved = resolve(value) if event.implicit[0] else STR
            elif unsafe and tag == UNSAFE:
                resolved = STR
            else:
                raise Unusual(f"tag {tag}")
            if resolved not in PLAIN_TAGS:
                raise Unusual(resolved)
            in_key = bool(stack) and stack[-1][1] is not None and stack[-1][2]
            if in_key and resolved != STR:
                raise Unusual("key that is not a string")
            # Numbers are read here in check mode too: "0b_" looks like an int to the
            # resolver, and only its construction fails.
            if resolved == STR:
                add(value)
            elif resolved == NULL:
                add(None)
            elif resolved == BOOL:
                add(value.lower() == "true")
            elif resolved == INT and _DECIMAL_INT.fullmatch(value):
                add(int(value))
            elif resolved == FLOAT and _DECIMAL_FLOAT.fullmatch(value):
                add(float(value))
            else:
                raise Unusual(f"{resolved} {value!r}")
        elif kind is ev.MappingStartEvent or kind is ev.SequenceStartEvent:
            anchor(event.anchor)
            if event.tag not in (None, "!"):
                raise Unusual("tag on a collection")
            if stack and stack[-1][1] is not None and stack[-1][2]:
                raise Unusual("collection as a key")
            if len(stack) >= MAX_DEPTH:
                raise Unusual("deep nesting")
            values += 1
            mapping = kind is ev.MappingStartEvent
            stack.append([{} if mapping else [], set() if mapping else None, True, None])
        elif kind is ev.MappingEndEvent or kind is ev.SequenceEndEvent:
            done = stack.pop()[0]
            add(done if build else None)
        elif kind is ev.DocumentStartEvent:
            if event.version is not None or event.tags:
                raise Unusual("%YAML or %TAG directive")
            anchors.clear()  # an alias never reaches into an earlier document
        elif kind is ev.AliasEvent:
            in_key = bool(stack) and stack[-1][1] is not None and stack[-1][2]
            if build or in_key or event.anchor not in anchors:
                raise Unusual("alias")
            values += 1
            add(None)  # check only: a value the safe loader has already built once
        elif kind not in (ev.StreamStartEvent, ev.StreamEndEvent, ev.DocumentEndEvent):
            raise Unusual(kind.__name__)
    return documents, values


def check(text: str) -> None:
    """Return when the safe loader (with `!unsafe`) loads text; raise Unusual when that
    cannot be told from the events, or libyaml's error for broken YAML."""
    _walk(text, build=False, unsafe=True)


def plain(text: str, max_values: int) -> dict[str, Any]:
    """The data of a one-document file whose top level is a mapping, as the round-trip
    loader plus plaincopy.to_plain would give it; Unusual for anything else, including more
    than max_values values (load's budget words that)."""
    documents, values = _walk(text, build=True, unsafe=False)
    if len(documents) != 1 or type(documents[0]) is not dict:
        raise Unusual("not one mapping")
    if values > max_values:
        raise Unusual("over the value budget")
    data: dict[str, Any] = documents[0]
    return data
