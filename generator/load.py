"""Stage 1: read YAML inputs with ruamel.yaml, keeping file, line and column of every value.

Every way a file can be unreadable becomes a Diagnostic, never a traceback.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from generator.errors import Diagnostic, InputError

# An alias bomb ("billion laughs") is small on disk and huge when expanded; counting the
# values a document expands to, with a budget, rejects one in bounded time and memory.
MAX_VALUES = 200_000
MAX_BYTES = 5 * 1024 * 1024

PathPart = str | int


@dataclass(frozen=True)
class Document:
    """A loaded YAML file: the round-trip tree (positions) and plain Python data."""

    file: str  # as shown to the user
    tree: Any
    data: Any

    def locate(self, path: Sequence[PathPart], *, key: bool = False) -> tuple[int, int]:
        """1-based (line, col) of the value at path; of the key itself when key=True.

        Falls back to the nearest existing ancestor, so a missing key points at its parent.
        """
        node = self.tree
        line, col = 1, 1
        if hasattr(node, "lc"):
            line, col = node.lc.line + 1, node.lc.col + 1
        for i, part in enumerate(path):
            last = i == len(path) - 1
            try:
                if isinstance(part, int) and isinstance(node, list):
                    if not 0 <= part < len(node):
                        break
                    ln, cl = node.lc.item(part)
                    node = node[part]
                elif isinstance(node, dict) and part in node:
                    ln, cl = node.lc.key(part) if (key and last) else node.lc.value(part)
                    node = node[part]
                else:
                    break
            except (AttributeError, KeyError, TypeError):
                break
            line, col = ln + 1, cl + 1
        return line, col

    def diag(
        self,
        path: Sequence[PathPart],
        message: str,
        hint: str = "",
        *,
        key: bool = False,
        severity: str = "error",
    ) -> Diagnostic:
        line, col = self.locate(path, key=key)
        return Diagnostic(self.file, line, col, format_path(path), message, hint, severity)


def format_path(path: Sequence[PathPart]) -> str:
    """nodes[2].address style."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(root)"


def display_name(path: Path) -> str:
    """Path as the user should see it: relative to the working directory when below it."""
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return str(path)
    return str(path) if rel.startswith("..") else rel


def _decode(raw: bytes, shown: str) -> str:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = raw[: exc.start]
        line = before.count(b"\n") + 1
        col = exc.start - (before.rfind(b"\n") + 1) + 1
        raise InputError(
            [Diagnostic(shown, line, col, "(file)", f"not valid UTF-8 (byte 0x{raw[exc.start]:02x})")]
        ) from None
    return text.removeprefix("\ufeff")


def _tab_indentation(text: str, shown: str) -> list[Diagnostic]:
    problems = []
    for number, line in enumerate(text.splitlines(), start=1):
        indent = line[: len(line) - len(line.lstrip(" \t"))]
        if "\t" in indent and line.strip() and not line.lstrip(" \t").startswith("#"):
            col = indent.index("\t") + 1
            problems.append(
                Diagnostic(shown, number, col, "(file)", "tab character in indentation; use spaces")
            )
    return problems


def _mark(exc: Exception) -> tuple[int, int]:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    if mark is None:
        return 1, 1
    return mark.line + 1, mark.column + 1


def _to_plain(node: Any, budget: list[int]) -> Any:
    """Deep copy into plain dict/list/str/int/float/bool/None, counting every value."""
    budget[0] -= 1
    if budget[0] < 0:
        raise OverflowError
    if isinstance(node, bool) or node is None:
        return node
    if isinstance(node, Mapping):
        return {str(k) if not isinstance(k, str) else str(k): _to_plain(v, budget) for k, v in node.items()}
    if isinstance(node, list):
        return [_to_plain(v, budget) for v in node]
    if isinstance(node, str):
        return str(node)
    if isinstance(node, int):
        # ruamel's ScalarBoolean is an int subclass; keep YAML booleans booleans.
        if type(node).__name__ == "ScalarBoolean":
            return bool(node)
        return int(node)
    if isinstance(node, float):
        return float(node)
    return str(node)


def load_yaml(path: Path, *, shown: str | None = None) -> Document:
    """Load one YAML file or raise InputError with every problem found in it."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    shown = shown or display_name(path)
    try:
        with path.open("rb") as fh:
            raw = fh.read(MAX_BYTES + 1)
    except FileNotFoundError:
        raise InputError([Diagnostic(shown, 1, 1, "(file)", "file not found")]) from None
    except OSError as exc:
        raise InputError([Diagnostic(shown, 1, 1, "(file)", f"cannot read: {exc.strerror}")]) from None
    if len(raw) > MAX_BYTES:
        raise InputError([Diagnostic(shown, 1, 1, "(file)", f"larger than {MAX_BYTES} bytes")])
    text = _decode(raw, shown)
    tabs = _tab_indentation(text, shown)
    if tabs:
        raise InputError(tabs)

    yaml = YAML(typ="rt", pure=True)
    yaml.allow_duplicate_keys = False
    try:
        tree = yaml.load(text)
    except MarkedYAMLError as exc:
        line, col = _mark(exc)
        problem = (exc.problem or exc.context or "YAML syntax error").strip()
        if "duplicate key" in str(exc).lower() or type(exc).__name__.startswith("Duplicate"):
            found = re.search(r'duplicate key "([^"]*)"', str(exc))
            first = exc.context_mark.line + 1 if exc.context_mark else None
            problem = f"duplicate key {found.group(1)!r}" if found else "duplicate key"
            if first:
                problem += f" (first defined on line {first})"
        raise InputError([Diagnostic(shown, line, col, "(file)", f"YAML syntax error: {problem}")]) from None
    except YAMLError as exc:
        raise InputError(
            [Diagnostic(shown, 1, 1, "(file)", f"YAML error: {str(exc).splitlines()[0]}")]
        ) from None
    except RecursionError:
        raise InputError([Diagnostic(shown, 1, 1, "(file)", "YAML nesting is too deep")]) from None

    if tree is None:
        raise InputError([Diagnostic(shown, 1, 1, "(file)", "file is empty")])
    try:
        data = _to_plain(tree, [MAX_VALUES])
    except OverflowError:
        raise InputError(
            [
                Diagnostic(
                    shown,
                    1,
                    1,
                    "(file)",
                    f"document expands to more than {MAX_VALUES} values (alias bomb?)",
                )
            ]
        ) from None
    except RecursionError:
        raise InputError(
            [Diagnostic(shown, 1, 1, "(file)", "YAML nesting is too deep or self-referencing")]
        ) from None
    return Document(shown, tree, data)
