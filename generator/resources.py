"""Where the bundled templates, schemas, examples and makejinja.toml live.

In a wheel they sit in generator/_data; in a source checkout at the repository root.
"""

from __future__ import annotations

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
