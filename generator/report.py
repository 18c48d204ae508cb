"""Turn diagnostics into text, JSON or GitHub workflow annotations."""

from __future__ import annotations

import json
from collections.abc import Iterable

from generator.controls import visible
from generator.errors import Diagnostic

FORMATS = ("text", "json", "github")


def _text(d: Diagnostic) -> str:
    message = f"{d.message} ({d.hint})" if d.hint else d.message
    return visible(f"{d.file}:{d.line}:{d.col}: {d.severity}: {d.path}: {message}")


def _github_escape(value: str, *, prop: bool = False) -> str:
    value = visible(value, keep="\r\n")
    value = value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    if prop:
        value = value.replace(":", "%3A").replace(",", "%2C")
    return value


def _github(d: Diagnostic) -> str:
    level = "error" if d.is_error else "notice" if d.severity == "note" else "warning"
    message = f"{d.path}: {d.message}" + (f" ({d.hint})" if d.hint else "")
    where = f"file={_github_escape(d.file, prop=True)},line={d.line},col={d.col}," if d.file else ""
    return (
        f"::{level} {where}"
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
            "path": visible(d.path),
            "message": visible(d.message),
            "hint": visible(d.hint),
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


def error_records(message: str, kind: str, files: Iterable[str] = ()) -> list[Diagnostic]:
    """A usage, conflict, file-system or internal error as diagnostics, so --format json
    and github carry it like every other problem: one per file it names (else one).
    The first line is the message, the rest (listing, advice) the hint."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    headline = lines[0].rstrip(":") if lines else kind
    hint = " ".join(line for line in lines[1:] if not any(f == line.split(":")[0] for f in files))
    named = list(files) or [""]
    return [Diagnostic(f, 1 if f else 0, 1 if f else 0, f"({kind})", headline, hint) for f in named]
