"""Stage 1: read YAML inputs with ruamel.yaml, keeping file, line and column of every value.

Every way a file can be unreadable becomes a Diagnostic, never a traceback. The file's text
comes from generator.inputtext, the plain copy from generator.plaincopy; the Document type
lives in generator.document (its names stay importable from here).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from generator.document import Document, PathPart, format_path
from generator.errors import Cycle, Diagnostic, InputError, Unusual
from generator.inputtext import (
    MAX_BYTES,
    MAX_DEPTH,
    decode,
    display_name,
    read_input,
    tab_indentation,
    too_deep,
)
from generator.plaincopy import MAX_VALUES, Budget, plain_only, to_plain

__all__ = [
    "MAX_BYTES",
    "MAX_DEPTH",
    "MAX_VALUES",
    "Document",
    "PathPart",
    "display_name",
    "format_path",
    "load_yaml",
    "read_input",
]


def _mark(mark: Any) -> tuple[int, int]:
    if mark is None:
        return 1, 1
    return int(mark.line) + 1, int(mark.column) + 1


def _first_definition(lines: list[str], key: str, start: Any, dup_line: int, col: int) -> str:
    """Where the first of two equal keys is: ruamel only marks the start of their mapping.

    Block mappings keep their keys in one column, so the earlier key is the line between
    the mapping start and the duplicate that has the same key at that column.
    """
    if start is None:
        return ""
    for number in range(int(start.line), dup_line):
        before, rest = lines[number][:col], lines[number][col:]
        if before.strip(" -") == "" and rest.startswith((f"{key}:", f'"{key}":', f"'{key}':")):
            return f" (first defined on line {number + 1})"
    return f" (in the mapping that starts on line {int(start.line) + 1})"


def _syntax_message(exc: Any) -> str:
    problem = (exc.problem or "").strip()
    context = (exc.context or "").strip()
    if not problem:
        return context or "YAML syntax error"
    if context and exc.context_mark is not None:
        line = exc.context_mark.line + 1
        if context.startswith("while "):
            return f"{problem} ({context} started on line {line})"
        return f"{context}, {problem}"
    return problem


def _load_fast(text: str) -> Any:
    """Plain data from libyaml's events and ruamel's resolver (generator.yamlevents) or,
    for what that leaves aside (anchors and aliases, tags, timestamps, ...), through
    ruamel's safe loader with duplicate keys refused; any surprise raises and the caller
    falls back to the round-trip loader."""
    from generator import yamlevents

    try:
        return yamlevents.plain(text, MAX_VALUES)
    except (Unusual, ImportError):
        pass
    from ruamel.yaml import YAML

    yaml = YAML(typ="safe")
    yaml.allow_duplicate_keys = False
    tree = yaml.load(text)
    if tree is None:
        raise ValueError("empty")
    return plain_only(tree, Budget())


def load_yaml(path: Path, *, shown: str | None = None, fast: bool = False) -> Document:
    """Load one YAML file or raise InputError with every problem found in it.

    fast: try the safe (C) loader first; its Document has no positions (tree is the plain
    data), so callers reload with fast=False before reporting anything. Whenever the fast
    path fails the round-trip loader runs and words the problem exactly as always.
    """
    from ruamel.yaml import YAML
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    shown = shown or display_name(path)
    text = decode(read_input(path, shown), shown)
    problems = tab_indentation(text, shown) or too_deep(text, shown)
    if problems:
        raise InputError(problems)

    if fast:
        try:
            data = _load_fast(text)
        except (Exception, RecursionError):  # the round-trip load below words every problem
            pass
        else:
            return Document(shown, data, data, positions=False)

    yaml = YAML(typ="rt", pure=True)
    yaml.allow_duplicate_keys = False
    try:
        tree = yaml.load(text)
    except MarkedYAMLError as exc:
        line, col = _mark(exc.problem_mark or exc.context_mark)
        lines = text.splitlines()
        if lines and line > len(lines):
            # "end of stream" sits past the last line; point at the end of the last one.
            line, col = len(lines), len(lines[-1]) + 1
        if type(exc).__name__.startswith("Duplicate"):
            found = re.search(r'duplicate key "([^"]*)"', str(exc))
            name = repr(found.group(1)) if found else "key"
            key = found.group(1) if found else ""
            first = _first_definition(lines, key, exc.context_mark, line - 1, col - 1)
            message = f"duplicate key {name}{first}"
            raise InputError(
                [Diagnostic(shown, line, col, "(file)", message, "remove one of them")]
            ) from None
        detail = _syntax_message(exc).replace("'<stream end>'", "the end of the file")
        message = f"YAML syntax error: {detail}"
        raise InputError([Diagnostic(shown, line, col, "(file)", message)]) from None
    except YAMLError as exc:
        message = f"YAML error: {str(exc).strip().splitlines()[0] if str(exc).strip() else exc!r}"
        raise InputError([Diagnostic(shown, 1, 1, "(file)", message)]) from None
    except RecursionError:
        raise InputError([Diagnostic(shown, 1, 1, "(file)", "YAML nesting is too deep")]) from None

    if tree is None:
        raise InputError([Diagnostic(shown, 1, 1, "(file)", "file is empty")])
    try:
        data = to_plain(tree, Budget())
    except OverflowError:
        message = "document expands to more than the allowed size through aliases (alias bomb?)"
        raise InputError(
            [Diagnostic(shown, 1, 1, "(file)", message, "avoid aliases of aliases")]
        ) from None
    except Cycle:
        message = "an alias refers to a value that contains it (endless recursion)"
        raise InputError([Diagnostic(shown, 1, 1, "(file)", message)]) from None
    except RecursionError:
        raise InputError([Diagnostic(shown, 1, 1, "(file)", "YAML nesting is too deep")]) from None
    return Document(shown, tree, data)
