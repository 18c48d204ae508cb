"""Stage 5: parse every rendered output with the parser of its format before anything is
written. A failure is a clustergen bug, reported against the template and rendered line.

HCL is checked by HashiCorp's own parser (hashicorp/hcl through pygohcl), the one OpenTofu
and Packer use, so its verdict is theirs: it rejects a repeated attribute and accepts
`"$${"`, where python-hcl2 differs. The Go parse runs without the GIL, on a thread beside
the YAML checks. python-hcl2 is imported only to word a rejection.
"""

from __future__ import annotations

import io
import json
import re
import threading
from collections.abc import Callable, Mapping
from functools import cache
from typing import Any

from generator.errors import Diagnostic, HCLRejected, InputError

HCL_SUFFIXES = (".tf", ".tfvars", ".hcl")
YAML_SUFFIXES = (".yaml", ".yml")

# hashicorp/hcl's diagnostics name the (unnamed) input "tmp.hcl" and a range line,col-col.
_GOHCL_POSITION = re.compile(r"tmp\.hcl:(\d+),(\d+)(?:-\d+(?:,\d+)?)?(: )?")


@cache
def _gohcl() -> Any:
    import pygohcl

    return pygohcl


def _gohcl_rejection(text: str, message: str) -> HCLRejected:
    """The reason for a rejection: python-hcl2's message and line when it refuses the text
    too (it words syntax errors closer to the template), HashiCorp's otherwise."""
    import hcl2

    try:
        hcl2.loads(text)
    except Exception as exc:  # python-hcl2 raises lark's and its own error types
        return HCLRejected(_problem(exc), _line_of(exc))
    message = message.removeprefix("invalid HCL: ")
    found = _GOHCL_POSITION.match(message)
    line = int(found.group(1)) if found else 1
    message = message[found.end() :] if found else message
    # Later references ("already set at tmp.hcl:1,1-2") read as positions in the output.
    message = _GOHCL_POSITION.sub(lambda m: f"line {m.group(1)}, column {m.group(2)}", message)
    return HCLRejected(message.strip(), line)


def _parse_hcl(text: str) -> None:
    """Raise HCLRejected unless HashiCorp's HCL parser accepts text."""
    if "\0" in text:
        # pygohcl hands the text over as a C string, which would end at the NUL.
        line = text[: text.index("\0")].count("\n") + 1
        raise HCLRejected("NUL character in HCL text", line)
    gohcl = _gohcl()
    try:
        gohcl.loadb(text.encode("utf-8"))
    except gohcl.HCLInternalError as exc:
        # pygohcl parses, then turns the body into JSON; "cannot convert" means the parse
        # succeeded and only that conversion (which HCL itself does not have) failed, as
        # for an attribute and a labelled block of one name. A panic is a rejection.
        if not str(exc).startswith("cannot convert"):
            raise _gohcl_rejection(text, str(exc)) from None
    except gohcl.HCLParseError as exc:
        raise _gohcl_rejection(text, str(exc)) from None


@cache
def _yaml() -> Any:
    from ruamel.yaml import YAML
    from ruamel.yaml.constructor import SafeConstructor

    class Constructor(SafeConstructor):
        """Safe loading plus Ansible's !unsafe tag (filters.ansible); other tags still fail."""

    # add_constructor copies the table into this subclass: SafeConstructor stays untouched.
    Constructor.add_constructor("!unsafe", lambda loader, node: loader.construct_scalar(node))
    # libyaml (ruamel.yaml.clib) when installed, the pure-Python parser otherwise.
    yaml = YAML(typ="safe")
    yaml.Constructor = Constructor
    return yaml


def _parse_yaml(text: str) -> None:
    """Raise unless ruamel's safe loader (with `!unsafe`) loads every document of text.

    libyaml's events decide the plain cases; anything else (and any error, so that the
    message is the loader's) goes through the full load."""
    from generator import yamlevents

    try:
        yamlevents.check(text)
    except Exception:  # Unusual, a libyaml error, or no libyaml: the full load decides
        pass
    else:
        return
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


def _check(path: str, data: bytes) -> Diagnostic | None:
    try:
        text = data.decode("utf-8")
        if path.endswith(HCL_SUFFIXES):
            _parse_hcl(text)
        elif path.endswith(YAML_SUFFIXES):
            _parse_yaml(text)
        elif path.endswith(".json"):
            json.loads(text)
    except Exception as exc:  # every parser has its own error types
        return Diagnostic(
            path,
            _line_of(exc),
            1,
            f"templates/{path}.j2",
            f"rendered output does not parse (a clustergen bug): {_problem(exc)}",
        )
    return None


def verify(files: Mapping[str, bytes], skip: Callable[[str, bytes], bool] | None = None) -> None:
    """Raise InputError listing every output that does not parse, in the order of files.

    skip(path, data): True for bytes known to have passed this check before (see
    outtree.Snapshot.known); those are not parsed again.
    """
    todo = [(p, d) for p, d in files.items() if skip is None or not skip(p, d)]
    hcl = [(p, d) for p, d in todo if p.endswith(HCL_SUFFIXES)]
    found: dict[str, Diagnostic | None] = {}

    def check_hcl() -> None:
        for path, data in hcl:
            found[path] = _check(path, data)

    # The Go parser releases the GIL: the HCL files are parsed while this thread checks the
    # rest. A thread only pays off when there is other work beside it.
    worker = threading.Thread(target=check_hcl, name="verify-hcl") if hcl != todo else None
    if worker is not None:
        worker.start()
    else:
        check_hcl()
    try:
        for path, data in todo:
            if not path.endswith(HCL_SUFFIXES):
                found[path] = _check(path, data)
    finally:
        if worker is not None:
            worker.join()
    problems = [diag for path, _ in todo if (diag := found.get(path)) is not None]
    if problems:
        raise InputError(problems)
