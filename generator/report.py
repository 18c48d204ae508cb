"""Turn diagnostics into text, JSON or GitHub workflow annotations."""

from __future__ import annotations

import json
from collections.abc import Iterable

from generator.errors import Diagnostic

FORMATS = ("text", "json", "github")


def _text(d: Diagnostic) -> str:
    message = f"{d.message} ({d.hint})" if d.hint else d.message
    return f"{d.file}:{d.line}:{d.col}: {d.severity}: {d.path}: {message}"


def _github_escape(value: str, *, prop: bool = False) -> str:
    value = value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    if prop:
        value = value.replace(":", "%3A").replace(",", "%2C")
    return value


def _github(d: Diagnostic) -> str:
    level = "error" if d.is_error else "warning"
    message = f"{d.path}: {d.message}" + (f" ({d.hint})" if d.hint else "")
    return (
        f"::{level} file={_github_escape(d.file, prop=True)},line={d.line},col={d.col},"
        f"title={_github_escape('clustergen ' + d.path, prop=True)}::{_github_escape(message)}"
    )


def as_dicts(diagnostics: Iterable[Diagnostic]) -> list[dict[str, str | int]]:
    """JSON-ready records, sorted by file and line."""
    return [
        {
            "file": d.file,
            "line": d.line,
            "col": d.col,
            "severity": d.severity,
            "path": d.path,
            "message": d.message,
            "hint": d.hint,
        }
        for d in sorted(diagnostics)
    ]


def format_diagnostics(diagnostics: Iterable[Diagnostic], fmt: str) -> str:
    """All diagnostics in the chosen format, one per line (JSON: one array), sorted."""
    items = sorted(diagnostics)
    if fmt == "json":
        return json.dumps(as_dicts(items), indent=2)
    render = _github if fmt == "github" else _text
    return "\n".join(render(d) for d in items)
