"""The stages of DESIGN.md in order, for the commands and the Python API."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from generator import inputs, model
from generator.errors import Diagnostic


@dataclass(frozen=True)
class Rendered:
    files: dict[str, bytes]
    warnings: tuple[Diagnostic, ...]
    context: Mapping[str, Any]


def render_tree(config_dir: Path) -> Rendered:
    """load -> validate -> model -> render -> verify, all in memory."""
    from generator import render, settings, verify

    read = inputs.read(config_dir)
    context = model.build(
        read.cluster.data, read.nodes.data, has_secrets_file=read.secrets_file is not None
    )
    render_settings = settings.load()
    files = render.render(context, render_settings)
    verify.verify(files)
    return Rendered(files, read.warnings, context)
