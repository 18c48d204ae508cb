"""An input file's text: read without following links and within a size cap, decoded as
UTF-8, and refused before any parser runs for what would confuse one (tab indentation,
nesting deep enough to make parsing slow). Every problem is a Diagnostic."""

from __future__ import annotations

import os
from pathlib import Path

from generator.errors import Diagnostic, InputError

MAX_BYTES = 2 * 1024 * 1024
MAX_DEPTH = 64


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


def decode(raw: bytes, shown: str) -> str:
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


def tab_indentation(text: str, shown: str) -> list[Diagnostic]:
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


def too_deep(text: str, shown: str) -> list[Diagnostic]:
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
