"""Which characters no input string may hold: the one definition, used by the schema check
(every string input) and by rules that must not look at such a value at all."""

from __future__ import annotations

import unicodedata

# Characters no string input may hold unless its key documents them in the schema
# (`"x-control-characters": "<the allowed ones>"`): C0/C1 controls and DEL (Cc), format
# characters such as zero-width spaces, bidi overrides and BOMs (Cf), lone surrogates (Cs),
# and the Unicode line and paragraph separators (Zl, Zp). Each would make two outputs
# disagree (HCL keeps a newline, YAML folds it) or read differently on screen than on disk.
_CONTROL_CATEGORIES = frozenset(("Cc", "Cf", "Cs", "Zl", "Zp"))


def control_character(value: str, allowed: str = "") -> tuple[int, str] | None:
    """(index, character) of the first control or format character not in allowed."""
    if value.isascii() and value.isprintable():  # the common case, without a loop
        return None
    for index, char in enumerate(value):
        if char not in allowed and unicodedata.category(char) in _CONTROL_CATEGORIES:
            return index, char
    return None


def describe_character(char: str) -> str:
    name = unicodedata.name(char, "")
    return f"U+{ord(char):04X}" + (f" {name}" if name else "")


def visible(text: str, keep: str = "") -> str:
    """text with every control or format character (except those in keep) written as an
    escape (\\n, \\x1b, \\u202e), so that a value from the repo printed in a message
    cannot move the cursor, recolour or reorder the terminal, or forge a line."""
    if control_character(text, keep) is None:
        return text
    out = []
    for char in text:
        if char not in keep and unicodedata.category(char) in _CONTROL_CATEGORIES:
            escaped = repr(char)[1:-1]
            out.append(escaped if escaped != char else f"\\u{ord(char):04x}")
        else:
            out.append(char)
    return "".join(out)
