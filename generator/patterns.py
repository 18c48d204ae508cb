"""JSON Schema patterns with the meaning JSON Schema gives them (ECMA-262), in Python.

One home for the translation: the schema check, the generated validity gates and every rule
that matches a schema pattern itself use it, so none of them reads a pattern differently.
"""

from __future__ import annotations

import re
from functools import cache


def ecma_pattern(pattern: str) -> str:
    """A JSON Schema pattern (ECMA-262) as a Python regex that means the same.

    The difference that matters: without the multiline flag ECMA's `$` matches only at the
    very end, Python's also before a final newline, so "name\\n" passed `^[a-z]+$`. Every
    unescaped `$` outside a character class becomes `\\Z`. ECMA's \\d and \\w are ASCII;
    Python's match any Unicode digit or letter: they become explicit ASCII classes.
    """
    out: list[str] = []
    in_class = False
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\" and i + 1 < len(pattern):
            escape = pattern[i + 1]
            if escape in "dw":
                body = "0-9" if escape == "d" else "A-Za-z0-9_"
                out.append(body if in_class else f"[{body}]")
            elif escape in "DW" and not in_class:
                out.append("[^0-9]" if escape == "D" else "[^A-Za-z0-9_]")
            else:
                out.append(pattern[i : i + 2])
            i += 2
            continue
        if in_class:
            if char == "]":
                in_class = False
        elif char == "[":
            in_class = True
        elif char == "$":
            out.append("\\Z")
            i += 1
            continue
        out.append(char)
        i += 1
    return "".join(out)


@cache
def compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(ecma_pattern(pattern))
