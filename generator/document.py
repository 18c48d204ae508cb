"""A loaded YAML file: plain data for the stages, the round-trip tree for positions, and
the diagnostics that point into it (`file:line:col: error: path: message`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from generator.errors import Diagnostic

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
        return Diagnostic(self.file, line, col, self.shown_path(path), message, hint, severity)

    def shown_path(self, path: Sequence[PathPart]) -> str:
        """path as a diagnostic names it (a normalised document names its source's)."""
        return format_path(path)


def format_path(path: Sequence[PathPart]) -> str:
    """nodes[2].address style."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(root)"
