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
MAX_BYTES = 2 * 1024 * 1024
MAX_CHARS = 2 * MAX_BYTES
MAX_DEPTH = 64

PathPart = str | int


@dataclass(frozen=True)
class Document:
    """A loaded YAML file: the round-trip tree (positions) and plain Python data."""

    file: str  # as shown to the user
    tree: Any
    data: Any
    # False for a fast load: tree is the plain data and locate() answers (1, 1).
    positions: bool = True

    def locate(self, path: Sequence[PathPart], *, key: bool = False) -> tuple[int, int]:
        """1-based (line, col) of the value at path; of the key itself when key=True.

        Falls back to the nearest existing ancestor, so a missing key points at its parent.
        """
        node: Any = self.tree
        line, col = 1, 1
        # A top-level tagged scalar (the file `!!`) has an lc without a position.
        if hasattr(node, "lc") and node.lc.line is not None and node.lc.col is not None:
            line, col = node.lc.line + 1, node.lc.col + 1
        for i, part in enumerate(path):
            last = i == len(path) - 1
            try:
                if isinstance(part, int) and isinstance(node, list):
                    if not 0 <= part < len(node):
                        break
                    ln, cl = getattr(node, "lc").item(part)  # noqa: B009
                    node = node[part]
                elif isinstance(node, dict) and part in node:
                    lc = getattr(node, "lc")  # noqa: B009
                    ln, cl = lc.key(part) if (key and last) else lc.value(part)
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


def read_input(path: Path, shown: str, cap: int = MAX_BYTES) -> bytes:
    """The bytes of an input file: a regular file (never a link, FIFO or device: opened
    without following, without blocking, and checked before reading), at most cap bytes."""
    from generator.safefs import NotRegular, read_file

    try:
        return read_file(path, shown=shown, cap=cap)
    except FileNotFoundError:
        raise InputError([Diagnostic(shown, 1, 1, "(file)", "file not found")]) from None
    except NotRegular as exc:
        raise InputError([Diagnostic(shown, 1, 1, "(file)", exc.reason)]) from None
    except OSError as exc:
        message = f"cannot read: {exc.strerror}"
        raise InputError([Diagnostic(shown, 1, 1, "(file)", message)]) from None


def _decode(raw: bytes, shown: str) -> str:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = raw[: exc.start]
        line = before.count(b"\n") + 1
        col = exc.start - (before.rfind(b"\n") + 1) + 1
        message = f"not valid UTF-8 (byte 0x{raw[exc.start]:02x})"
        raise InputError(
            [Diagnostic(shown, line, col, "(file)", message, "save the file as UTF-8")]
        ) from None
    return text.removeprefix("\ufeff")


def _tab_indentation(text: str, shown: str) -> list[Diagnostic]:
    problems = []
    for number, line in enumerate(text.splitlines(), start=1):
        indent = line[: len(line) - len(line.lstrip(" \t"))]
        # ruamel rejects a tab before a comment too, with a less helpful message.
        if "\t" in indent and line.strip():
            col = indent.index("\t") + 1
            problems.append(
                Diagnostic(
                    shown, number, col, "(file)", "tab character in indentation", "use spaces"
                )
            )
    return problems


def _too_deep(text: str, shown: str) -> list[Diagnostic]:
    """Flow nesting beyond MAX_DEPTH, found before the parser, whose cost grows with the square
    of the depth. Quotes are ignored: no sane string holds that many unbalanced brackets."""
    depth = 0
    for number, line in enumerate(text.splitlines(), start=1):
        for col, char in enumerate(line, start=1):
            if char in "[{":
                depth += 1
                if depth > MAX_DEPTH:
                    message = f"nested deeper than {MAX_DEPTH} levels"
                    return [Diagnostic(shown, number, col, "(file)", message)]
            elif char in "]}":
                depth = max(depth - 1, 0)
    return []


def _mark(mark: Any) -> tuple[int, int]:
    if mark is None:
        return 1, 1
    return int(mark.line) + 1, int(mark.column) + 1


class _Budget:
    """What the plain copy may still produce; an alias bomb exhausts it long before memory."""

    def __init__(self) -> None:
        self.values = MAX_VALUES
        self.chars = MAX_CHARS
        # Containers on the current path: an alias inside its own anchor is a cycle.
        self.active: set[int] = set()

    def spend(self, chars: int = 0) -> None:
        self.values -= 1
        self.chars -= chars
        if self.values < 0 or self.chars < 0:
            raise OverflowError


class _Cycle(Exception):
    pass


def _to_plain(node: Any, budget: _Budget) -> Any:
    """Deep copy into plain dict/list/str/int/float/bool/None, counting every value."""
    if isinstance(node, bool) or node is None:
        budget.spend()
        return node
    if isinstance(node, (Mapping, list)):
        budget.spend()
        if id(node) in budget.active:
            raise _Cycle
        budget.active.add(id(node))
        try:
            if isinstance(node, Mapping):
                return {str(k): _to_plain(v, budget) for k, v in node.items()}
            return [_to_plain(v, budget) for v in node]
        finally:
            budget.active.discard(id(node))
    if isinstance(node, str):
        budget.spend(len(node))
        return str(node)
    budget.spend()
    if isinstance(node, int):
        # ruamel's ScalarBoolean is an int subclass; keep YAML booleans booleans.
        if type(node).__name__ == "ScalarBoolean":
            return bool(node)
        return int(node)
    if isinstance(node, float):
        return float(node)
    return str(node)


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


_PLAIN_SCALARS = (str, int, float, bool, type(None))


def _plain_only(node: Any, budget: _Budget) -> Any:
    """_to_plain for the safe loader's output, refusing anything the round-trip path would
    turn into a different value (timestamps, sets, binary): those take the slow path."""
    data = _to_plain(node, budget)
    stack = [node]
    while stack:
        value = stack.pop()
        if type(value) is dict:
            stack.extend(value.values())
            if not all(type(k) in _PLAIN_SCALARS for k in value):
                raise TypeError("non-plain key")
        elif type(value) is list:
            stack.extend(value)
        elif type(value) not in _PLAIN_SCALARS:
            raise TypeError(f"{type(value).__name__} needs the round-trip loader")
    return data


def _load_fast(text: str) -> Any:
    """Plain data from libyaml's events and ruamel's resolver (generator.yamlevents) or,
    for what that leaves aside (anchors and aliases, tags, timestamps, ...), through
    ruamel's safe loader with duplicate keys refused; any surprise raises and the caller
    falls back to the round-trip loader."""
    from generator import yamlevents

    try:
        return yamlevents.plain(text, MAX_VALUES)
    except (yamlevents.Unusual, ImportError):
        pass
    from ruamel.yaml import YAML

    yaml = YAML(typ="safe")
    yaml.allow_duplicate_keys = False
    tree = yaml.load(text)
    if tree is None:
        raise ValueError("empty")
    return _plain_only(tree, _Budget())


def load_yaml(path: Path, *, shown: str | None = None, fast: bool = False) -> Document:
    """Load one YAML file or raise InputError with every problem found in it.

    fast: try the safe (C) loader first; its Document has no positions (tree is the plain
    data), so callers reload with fast=False before reporting anything. Whenever the fast
    path fails the round-trip loader runs and words the problem exactly as always.
    """
    from ruamel.yaml import YAML
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    shown = shown or display_name(path)
    text = _decode(read_input(path, shown), shown)
    problems = _tab_indentation(text, shown) or _too_deep(text, shown)
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
        data = _to_plain(tree, _Budget())
    except OverflowError:
        message = "document expands to more than the allowed size through aliases (alias bomb?)"
        raise InputError(
            [Diagnostic(shown, 1, 1, "(file)", message, "avoid aliases of aliases")]
        ) from None
    except _Cycle:
        message = "an alias refers to a value that contains it (endless recursion)"
        raise InputError([Diagnostic(shown, 1, 1, "(file)", message)]) from None
    except RecursionError:
        raise InputError([Diagnostic(shown, 1, 1, "(file)", "YAML nesting is too deep")]) from None
    return Document(shown, tree, data)
