"""Where the commands print: diagnostics on stderr, results on stdout."""

from __future__ import annotations

import sys
from collections.abc import Iterable

from generator.errors import Diagnostic
from generator.report import format_diagnostics


def emit_diagnostics(
    diagnostics: Iterable[Diagnostic], fmt: str, *, stdout_is_free: bool = True
) -> None:
    """Text goes to stderr. JSON and GitHub annotations go to stdout, unless the command
    prints something else there (render's and check's diff): then to stderr, so each stream
    holds one kind of output."""
    items = list(diagnostics)
    if not items and fmt != "json":
        return
    text = format_diagnostics(items, fmt)
    if text:
        to_stdout = fmt != "text" and stdout_is_free
        print(text, file=sys.stdout if to_stdout else sys.stderr)


def info(fmt: str, message: str) -> None:
    """A one-line result; silent in json format, where only structured output is printed."""
    if fmt != "json":
        print(message)


def error(message: str) -> None:
    print(f"clustergen: error: {message}", file=sys.stderr)
