"""Stage 5: parse every rendered output with the parser of its format before anything is
written. A failure is a clustergen bug, reported against the template and rendered line.

HCL is checked with python-hcl2's own grammar and post-lexer, but through one cached lark
parser that keeps no positions and builds no Python values: on terraform.tfvars of 1000
nodes that is 4x faster and far smaller than `hcl2.loads`. Anything that parser rejects, or
that only hcl2's transform could reject, goes through `hcl2.loads`, whose verdict and message
are the ones reported.
"""

from __future__ import annotations

import importlib.util
import io
import json
import sys
from collections.abc import Callable, Mapping
from functools import cache
from pathlib import Path
from typing import Any

from generator import resources
from generator.errors import Diagnostic, InputError

HCL_SUFFIXES = (".tf", ".tfvars", ".hcl")
YAML_SUFFIXES = (".yaml", ".yml")

# hcl2's transform rejects unterminated template directives and malformed heredocs that the
# grammar lets through; such text is rare in our outputs, so it simply takes the slow path.
_TRANSFORM_CHECKED = ("%{", "<<")


def _hcl2_dir() -> Path:
    """python-hcl2's package directory, found without running its __init__ (which imports
    its whole transform/serialize machinery, unused here)."""
    spec = importlib.util.find_spec("hcl2")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("python-hcl2 is not installed")
    return Path(next(iter(spec.submodule_search_locations)))


def _post_lexer() -> Any:
    """hcl2's PostLexer class from hcl2/postlexer.py (it imports only lark and typing)."""
    if "hcl2" in sys.modules:
        from hcl2.postlexer import PostLexer

        return PostLexer
    location = _hcl2_dir() / "postlexer.py"
    spec = importlib.util.spec_from_file_location("_clustergen_hcl2_postlexer", location)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {location}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.PostLexer


@cache
def _hcl_parser() -> Callable[[str], Any]:
    from lark import Lark

    grammar = _hcl2_dir() / "hcl2.lark"
    # Building the LALR tables takes ~4 s, loading them ~0.1 s: lark keeps them in a file
    # and checks a hash of grammar and options on load. The grammar's own hash in the name
    # keeps two installs of python-hcl2 from overwriting each other's file.
    cache_file: str | bool = False
    directory = resources.user_cache_dir()
    if directory is not None:
        import hashlib

        import lark

        tag = hashlib.sha256(grammar.read_bytes()).hexdigest()[:16]
        cache_file = str(directory / f"hcl2-{tag}-lark-{lark.__version__}.lark-cache")
    parser = Lark.open(
        str(grammar),
        parser="lalr",
        propagate_positions=False,
        postlex=_post_lexer()(),
        cache=cache_file,
    )
    return parser.parse


def _attribute_before_block(tree: Any) -> bool:
    """hcl2's serializer refuses a block named like an attribute defined earlier in its body
    ("Attribute x is already defined."); the same check on the raw tree."""
    from lark import Token, Tree

    stack = [tree]
    while stack:
        node = stack.pop()
        if node.data == "body":
            seen: set[str] = set()
            for child in node.children:
                if not isinstance(child, Tree) or child.data not in ("attribute", "block"):
                    continue
                name_node = child.children[0]
                token = name_node.children[0] if isinstance(name_node, Tree) else name_node
                name = str(token) if isinstance(token, Token) else ""
                if child.data == "attribute":
                    seen.add(name)
                elif name in seen:
                    return True
        stack.extend(c for c in node.children if isinstance(c, Tree))
    return False


def _parse_hcl(text: str) -> None:
    if not any(mark in text for mark in _TRANSFORM_CHECKED):
        try:
            # hcl2.loads appends the same newline (lark has no end-of-file token).
            tree = _hcl_parser()(text + "\n")
        except Exception:  # hcl2.loads below words the error
            pass
        else:
            if not _attribute_before_block(tree):
                return
    import hcl2

    hcl2.loads(text)


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


def verify(files: Mapping[str, bytes], skip: Callable[[str, bytes], bool] | None = None) -> None:
    """Raise InputError listing every output that does not parse.

    skip(path, data): True for bytes known to have passed this check before (see
    sync.verified); those are not parsed again.
    """
    problems = []
    for path, data in files.items():
        if skip is not None and skip(path, data):
            continue
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
