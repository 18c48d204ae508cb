"""HCL as python-hcl2 parses it, made plain for comparisons: quoted strings unquoted, the
parser's own `__start_line__`-style keys dropped."""

from __future__ import annotations

from typing import Any

import hcl2

TFVARS = "infrastructure/tofu/terraform.tfvars"


def unquote(value: Any) -> Any:
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    if isinstance(value, list):
        return [unquote(v) for v in value]
    if isinstance(value, dict):
        return {unquote(k): unquote(v) for k, v in value.items() if not k.startswith("__")}
    return value


def tfvars(files: dict[str, bytes]) -> dict[str, Any]:
    """The values of the rendered terraform.tfvars."""
    parsed: dict[str, Any] = unquote(hcl2.loads(files[TFVARS].decode("utf-8")))
    return parsed
