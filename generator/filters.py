"""Filters that quote values for their target format. Templates emit user values only
through these, so no input can inject HCL, YAML or Ansible syntax.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

_HCL_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*\Z")
# A plain YAML scalar that reads back as the same string in YAML 1.1 and 1.2.
_YAML_PLAIN = re.compile(r"^[A-Za-z0-9_./][A-Za-z0-9_./@+=,~-]*\Z")
_YAML_NOT_STRING = re.compile(
    r"^(~|null|true|false|yes|no|on|off|y|n|[-+]?(\.inf|\.nan|\.?[0-9][0-9_.:eE+-]*|0x[0-9a-fA-F_]+|0o[0-7_]+|0b[01_]+))\Z",
    re.IGNORECASE,
)


# Characters YAML does not allow unescaped inside double quotes, or reads as line breaks.
_YAML_NON_PRINTABLE = re.compile("[\x7f-\x9f\u2028\u2029\ufffe\uffff]")


def _yaml_double_quoted(text: str) -> str:
    # A JSON string is a valid YAML double-quoted scalar once non-printables are escaped.
    quoted = json.dumps(text, ensure_ascii=False)
    return _YAML_NON_PRINTABLE.sub(lambda m: f"\\u{ord(m.group()):04x}", quoted)


# Anything _hcl_escape changes: most values (names, addresses, paths) contain none of it.
_HCL_SPECIAL = re.compile(r'[\x00-\x1f\x7f"\\$%]')


def _hcl_escape(text: str) -> str:
    if not _HCL_SPECIAL.search(text):
        return text
    out = []
    for ch in text:
        if ch == "\\":
            out.append("\\\\")
        elif ch == '"':
            out.append('\\"')
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    # Template sequences: "\u0024{" and "\u0025{" are the literal "${" and "%{" for HCL and
    # for python-hcl2, which rejects the documented "$${" when no "}" follows.
    return "".join(out).replace("${", "\\u0024{").replace("%{", "\\u0025{")


def hcl_string(value: Any) -> str:
    """A double-quoted HCL string literal."""
    return f'"{_hcl_escape(str(value))}"'


def _scalar(value: Any, language: str) -> str | None:
    """null, a bool or a number, written alike in HCL and YAML; None for anything else."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"cannot write {value} to {language}")
        return repr(value)
    return None


def hcl(value: Any) -> str:
    """Any model value as an HCL literal: string, number, bool, null, list or object."""
    scalar = _scalar(value, "HCL")
    if scalar is not None:
        return scalar
    if isinstance(value, str):
        return hcl_string(value)
    if isinstance(value, Mapping):
        items = ", ".join(
            f"{k if _HCL_IDENT.match(str(k)) else hcl_string(k)} = {hcl(v)}"
            for k, v in value.items()
        )
        return "{ " + items + " }" if items else "{}"
    if isinstance(value, (list, tuple)):
        return hcl_list(value)
    raise TypeError(f"cannot write {type(value).__name__} to HCL")


def hcl_list(values: Any) -> str:
    return "[" + ", ".join(hcl(v) for v in values) + "]"


def yaml(value: Any) -> str:
    """Any model value as a YAML flow value (plain when that reads back the same)."""
    scalar = _scalar(value, "YAML")
    if scalar is not None:
        return scalar
    if isinstance(value, str):
        if _YAML_PLAIN.match(value) and not _YAML_NOT_STRING.match(value):
            return value
        return _yaml_double_quoted(value)
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{yaml(str(k))}: {yaml(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(yaml(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} to YAML")


def ansible(value: Any) -> str:
    """Like yaml, but strings are tagged !unsafe so Ansible never templates them."""
    if isinstance(value, str):
        return "!unsafe " + _yaml_double_quoted(value)
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{yaml(str(k))}: {ansible(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(ansible(v) for v in value) + "]"
    return yaml(value)


def _go_string(text: str) -> str:
    """A Go interpreted string literal (what go-task's templates parse inside {{ }})."""
    out = ['"']
    for ch in text:
        code = ord(ch)
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif ch.isprintable() and ch not in "\u2028\u2029":
            out.append(ch)
        elif code <= 0xFFFF:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    out.append('"')
    return "".join(out)


# go-task runs every string of a task through Go's text/template, but only one holding "{{".
_GO_TEMPLATE = "{{"


def task_var(value: Any) -> str:
    """A go-task vars/env value that go-task resolves to exactly `value`: the plain YAML
    value when it holds no "{{" (go-task templates only strings that do), else a `ref` to a
    Go string constant (a ref is resolved, never rendered, so nothing in it is syntax).
    Commands read such values from the environment ("$VAR"), never pasted into their text."""
    if not isinstance(value, str) or _GO_TEMPLATE not in value:
        return yaml(value)
    return "{ref: " + yaml(_go_string(value)) + "}"


def task_text(value: Any) -> str:
    """A go-task text field (prompt, desc, msg) that displays `value` literally."""
    text = str(value)
    if _GO_TEMPLATE not in text:
        return yaml(text)
    return yaml("{{" + _go_string(text) + "}}")


FILTERS = (hcl, hcl_string, hcl_list, yaml, ansible, task_var, task_text)
