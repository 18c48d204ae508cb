"""Where the bundled templates, schemas, examples and makejinja.toml live.

In a wheel they sit in generator/_data; in a source checkout at the repository root.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path
from typing import Any


@cache
def root() -> Path:
    package = Path(__file__).resolve().parent
    bundled = package / "_data"
    return bundled if bundled.is_dir() else package.parent


def schema_path(name: str) -> Path:
    return root() / "schemas" / f"{name}.schema.json"


def inline_refs(schema: Any, root: Any = None) -> Any:
    """The schema with every local $ref ("#/$defs/...") replaced by what it names (its own
    keywords, a description say, win): for code that walks properties, where a definition
    written once in the schema (the VM resources of a role) reads like any other block."""
    root = schema if root is None else root
    if isinstance(schema, list):
        return [inline_refs(item, root) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: inline_refs(v, root) for k, v in schema.items() if k != "$ref"}
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        target: Any = root
        for part in ref[2:].split("/"):
            target = target[part]
        out = {**inline_refs(target, root), **out}
    return out


def examples_dir() -> Path:
    return root() / "examples"


def templates_dir() -> Path:
    return root() / "templates"


def makejinja_toml() -> Path:
    return root() / "makejinja.toml"


def user_cache_dir() -> Path | None:
    """clustergen's directory in the user's cache ($XDG_CACHE_HOME or ~/.cache), created on
    demand; None when there is none. Never the repository; and not a shared /tmp, where
    another user could plant a file that is loaded from there (Jinja's bytecode cache)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    if not os.path.isabs(base):
        return None
    directory = Path(base) / "clustergen"
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return directory
