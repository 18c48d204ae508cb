"""Where the commands print: diagnostics on stderr, results on stdout."""

from __future__ import annotations

import sys
from collections.abc import Iterable

from generator.errors import Diagnostic
from generator.report import format_diagnostics


def emit_diagnostics(diagnostics: Iterable[Diagnostic], fmt: str) -> None:
    items = list(diagnostics)
    if not items and fmt != "json":
        return
    text = format_diagnostics(items, fmt)
    if text:
        print(text, file=sys.stderr if fmt == "text" else sys.stdout)


def info(fmt: str, message: str) -> None:
    """A one-line result; silent in json format, where only structured output is printed."""
    if fmt != "json":
        print(message)


def error(message: str) -> None:
    print(f"clustergen: error: {message}", file=sys.stderr)
