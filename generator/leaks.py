"""The leak guard: every secret value, in every form an output or a message can hold it, is
looked for in the plaintext outputs before anything is written (guard), and masked in any
text clustergen prints (redact, through generator/output.py).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping

from generator.errors import Diagnostic, InputError
from generator.outtree import is_sops

MASK = "<encrypted>"


def _needles(secrets: Mapping[str, str]) -> list[tuple[str, str]]:
    """(secret key, text to look for): each value raw and in every form an output or a
    message can hold it: escaped as the templates' YAML, HCL and JSON strings escape it (a
    token id with `"` or `\\` is written escaped, and the raw value is then nowhere),
    single-quoted YAML, base64 (a Secret's `data:`) and percent-encoded (a URL)."""
    from urllib.parse import quote

    from generator import filters

    out = []
    for key, value in sorted(secrets.items()):
        if not value:
            continue
        forms = (
            value,
            filters.hcl_string(value)[1:-1],
            filters.yaml(value).removeprefix('"').removesuffix('"'),
            json.dumps(value)[1:-1],
            json.dumps(value, ensure_ascii=False)[1:-1],
            value.replace("'", "''"),
            base64.b64encode(value.encode("utf-8")).decode("ascii"),
            quote(value, safe=""),
        )
        out += [(key, form) for form in dict.fromkeys(forms) if form]
    return out


def redact(text: str, secrets: Mapping[str, str]) -> str:
    """text with every form of every secret value replaced by MASK."""
    # Longest first: an escaped form contains the raw prefix of the value.
    for _key, needle in sorted(_needles(secrets), key=lambda kn: -len(kn[1])):
        text = text.replace(needle, MASK)
    return text


def guard(files: Mapping[str, bytes], secrets: Mapping[str, str]) -> None:
    """Abort (before anything is written) when a non-sops output contains a secret value."""
    needles = _needles(secrets)
    problems = []
    for path, data in files.items():
        if is_sops(path):
            continue
        text = data.decode("utf-8", "replace")
        for key, needle in needles:
            if needle in path:
                problems.append(
                    Diagnostic(path, 1, 1, "(path)", f"output path contains the value of {key}")
                )
            at = text.find(needle)
            if at >= 0:
                line = text.count("\n", 0, at) + 1
                col = at - (text.rfind("\n", 0, at) + 1) + 1
                problems.append(
                    Diagnostic(
                        path,
                        line,
                        col,
                        "(output)",
                        f"output contains the value of {key} (a secret) outside a *.sops.* "
                        "file; nothing was written",
                        "a template prints a secret: a clustergen bug, please report it",
                    )
                )
    if problems:
        raise InputError(problems)
