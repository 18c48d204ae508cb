"""Where the bundled templates, schemas, examples and makejinja.toml live.

In a wheel they sit in generator/_data; in a source checkout at the repository root.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path


@cache
def root() -> Path:
    package = Path(__file__).resolve().parent
    bundled = package / "_data"
    return bundled if bundled.is_dir() else package.parent


def schema_path(name: str) -> Path:
    return root() / "schemas" / f"{name}.schema.json"


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
