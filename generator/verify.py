"""Stage 5: parse every rendered output with the parser of its format before anything is
written. A failure is a clustergen bug, reported against the template and rendered line.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from functools import cache
from typing import Any

from generator.errors import Diagnostic, InputError

HCL_SUFFIXES = (".tf", ".tfvars", ".hcl")
YAML_SUFFIXES = (".yaml", ".yml")


def _parse_hcl(text: str) -> None:
    import hcl2

    hcl2.loads(text)


@cache
def _yaml() -> Any:
    from ruamel.yaml import YAML
    from ruamel.yaml.constructor import SafeConstructor

    class Constructor(SafeConstructor):  # type: ignore[misc]
        """Safe loading plus Ansible's !unsafe tag (filters.ansible); other tags still fail."""

    Constructor.add_constructor("!unsafe", lambda loader, node: loader.construct_scalar(node))
    yaml = YAML(typ="safe", pure=True)
    yaml.Constructor = Constructor
    return yaml


def _parse_yaml(text: str) -> None:
    for _ in _yaml().load_all(io.StringIO(text)):
        pass


def _line_of(exc: Exception) -> int:
    for attr in ("line", "lineno"):
        value = getattr(exc, attr, None)
        if isinstance(value, int) and value > 0:
            return value
    mark = getattr(exc, "problem_mark", None)
    return mark.line + 1 if mark is not None else 1


def _problem(exc: Exception) -> str:
    problem = getattr(exc, "problem", None)
    if isinstance(problem, str) and problem:
        context = getattr(exc, "context", None)
        return f"{context}: {problem}" if context else problem
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def verify(files: Mapping[str, bytes]) -> None:
    problems = []
    for path, data in files.items():
        try:
            text = data.decode("utf-8")
            if path.endswith(HCL_SUFFIXES):
                _parse_hcl(text)
            elif path.endswith(YAML_SUFFIXES):
                _parse_yaml(text)
            elif path.endswith(".json"):
                json.loads(text)
        except Exception as exc:  # every parser has its own error types
            problems.append(
                Diagnostic(
                    path,
                    _line_of(exc),
                    1,
                    f"templates/{path}.j2",
                    f"rendered output does not parse (a clustergen bug): {_problem(exc)}",
                )
            )
    if problems:
        raise InputError(problems)
