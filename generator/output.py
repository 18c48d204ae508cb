"""Where the commands print: diagnostics on stderr, results on stdout.

Everything printed goes through write(): the leak guard masks every form of every secret
value known to this process (protect()), and text that the terminal's encoding cannot hold
(a file name that is not UTF-8) is escaped instead of raising.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from typing import TextIO

from generator.controls import visible
from generator.errors import Diagnostic
from generator.report import format_diagnostics

_SECRETS: dict[str, str] = {}


def protect(values: Mapping[str, str]) -> None:
    """Secret values this process holds: from now on no printed text contains them."""
    _SECRETS.update({k: v for k, v in values.items() if v})


def forget() -> None:
    """For tests: drop the registered secret values."""
    _SECRETS.clear()


def redact(text: str) -> str:
    if not _SECRETS:
        return text
    from generator import leaks

    return leaks.redact(text, _SECRETS)


def write(text: str, stream: TextIO) -> None:
    text = redact(text)
    encoding = getattr(stream, "encoding", None) or "utf-8"
    try:
        text.encode(encoding)
    except (UnicodeEncodeError, LookupError):
        text = text.encode(encoding, "backslashreplace").decode(encoding, "replace")
    stream.write(text)


def write_out(text: str) -> None:
    write(text, sys.stdout)


def write_err(line: str) -> None:
    write(line + "\n", sys.stderr)


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
        write(text + "\n", sys.stdout if to_stdout else sys.stderr)


def info(fmt: str, message: str) -> None:
    """A one-line result; silent in json format, where only structured output is printed."""
    if fmt != "json":
        write(visible(message) + "\n", sys.stdout)


def error(message: str) -> None:
    write(f"clustergen: error: {visible(message, keep=chr(10))}\n", sys.stderr)
