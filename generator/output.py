"""Where the commands print: results on stdout, diagnostics where diagnostics_stream() says.

Everything printed goes through write(): the leak guard masks every form of every secret
value known to this process (protect()), and text that the terminal's encoding cannot hold
(a file name that is not UTF-8) is escaped instead of raising.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
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


@dataclass
class _Route:
    """Where one run of a command sends its diagnostics, decided once by begin()."""

    fmt: str
    stream: TextIO
    pending: list[Diagnostic] = field(default_factory=list)


_ROUTE: list[_Route] = []


def diagnostics_stream(command: str, fmt: str) -> TextIO:
    """The one rule: text diagnostics go to stderr. In json and github format every
    diagnostic record of a run goes to one stream: stdout when the command prints nothing
    else there (validate), stderr when its stdout carries its result (options.COMMANDS)."""
    from generator.options import COMMANDS

    # No command yet (`clustergen --format json nosuch`): nothing else is printed, stdout.
    known = COMMANDS.get(command)
    if fmt == "text" or (known is not None and known.result_on_stdout):
        return sys.stderr
    return sys.stdout


def begin(command: str, fmt: str) -> None:
    """Start a run: from now on emit_diagnostics() follows the command's rule; json records
    are held and written by finish() as one array (warnings, then the error that ended it).
    A format that is not a diagnostics format (plan's markdown) reports diagnostics as text."""
    from generator.options import FORMATS

    fmt = fmt if fmt in FORMATS else "text"
    _ROUTE[:] = [_Route(fmt, diagnostics_stream(command, fmt))]


def finish(*, emit: bool = True) -> None:
    """End the run: in json format write its one array (also when it is empty)."""
    if not _ROUTE:
        return
    route = _ROUTE.pop()
    if emit and route.fmt == "json":
        write(format_diagnostics(route.pending, "json") + "\n", route.stream)


def emit_diagnostics(diagnostics: Iterable[Diagnostic], fmt: str | None = None) -> None:
    """Print diagnostics where the current run's rule says (begin). Outside a run (a test,
    a caller of a command module) in fmt: text on stderr, json and github on stdout."""
    items = list(diagnostics)
    if _ROUTE:
        route = _ROUTE[-1]
        if route.fmt == "json":
            route.pending.extend(items)
            return
        fmt, stream = route.fmt, route.stream
    else:
        fmt = fmt or "text"
        stream = sys.stderr if fmt == "text" else sys.stdout
    if not items and fmt != "json":
        return
    text = format_diagnostics(items, fmt)
    if text:
        write(text + "\n", stream)


def note(message: str, file: str = "") -> None:
    """A remark, neither warning nor error. In text one line on stderr, as always; in json
    and github a record of severity "note" among the run's diagnostics, so that stream
    holds nothing but them."""
    if _ROUTE and _ROUTE[-1].fmt != "text":
        where = (file, 1, 1) if file else ("", 0, 0)
        emit_diagnostics([Diagnostic(*where, "(note)", message, severity="note")])
    else:
        write_err(f"clustergen: note: {file + ': ' if file else ''}{message}")


def info(fmt: str, message: str) -> None:
    """A one-line result; silent in json format, where only structured output is printed."""
    if fmt != "json":
        write(visible(message) + "\n", sys.stdout)


def error(message: str) -> None:
    write(f"clustergen: error: {visible(message, keep=chr(10))}\n", sys.stderr)
