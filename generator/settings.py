"""Render settings read from makejinja.toml, the one place they live."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from generator import resources


@dataclass(frozen=True)
class RenderSettings:
    templates: Path
    jinja_suffix: str
    exclude_patterns: tuple[str, ...]
    delimiters: tuple[tuple[str, str], ...]
    trim_blocks: bool
    lstrip_blocks: bool
    keep_trailing_newline: bool
    strict: bool

    def jinja_options(self) -> dict[str, Any]:
        return {
            **dict(self.delimiters),
            "trim_blocks": self.trim_blocks,
            "lstrip_blocks": self.lstrip_blocks,
            "keep_trailing_newline": self.keep_trailing_newline,
        }


def load(path: Path | None = None) -> RenderSettings:
    path = path or resources.makejinja_toml()
    config = tomllib.loads(path.read_text(encoding="utf-8"))["makejinja"]
    delimiter = config.get("delimiter", {})
    whitespace = config.get("whitespace", {})
    names = {
        "block_start": "block_start_string",
        "block_end": "block_end_string",
        "variable_start": "variable_start_string",
        "variable_end": "variable_end_string",
        "comment_start": "comment_start_string",
        "comment_end": "comment_end_string",
    }
    return RenderSettings(
        templates=path.parent / config["inputs"][0],
        jinja_suffix=config.get("jinja_suffix", ".j2"),
        exclude_patterns=tuple(config.get("exclude_patterns", ())),
        delimiters=tuple((names[k], v) for k, v in sorted(delimiter.items())),
        trim_blocks=whitespace.get("trim_blocks", True),
        lstrip_blocks=whitespace.get("lstrip_blocks", True),
        keep_trailing_newline=whitespace.get("keep_trailing_newline", True),
        strict=config.get("undefined", "strict") == "strict",
    )
