"""The stages of DESIGN.md in order, for the commands and the Python API.

load -> validate -> model -> render -> verify -> secrets; sync is the caller's (render/check).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from generator import inputs, model
from generator.errors import Diagnostic


@dataclass(frozen=True)
class Rendered:
    files: dict[str, bytes]  # output path relative to the output root -> bytes to write
    warnings: tuple[Diagnostic, ...]
    context: Mapping[str, Any]
    # *.sops.* outputs whose plaintext could not be compared (no key to decrypt): check says so.
    unverified: tuple[str, ...] = ()


def render_tree(
    config_dir: Path, output_root: Path | None = None, *, check: bool = False
) -> Rendered:
    """Everything up to (not including) sync, in memory.

    output_root: where the generated tree lives (default config_dir); the secrets stage reads
    existing *.sops.* files there to keep their ciphertext when the plaintext is unchanged.
    check: True for `clustergen check` (never encrypts; compares what it can without a key).
    """
    from generator import render, settings, verify

    read = inputs.read(config_dir)
    context = model.build(
        read.cluster.data, read.nodes.data, has_secrets_file=read.secrets_file is not None
    )
    render_settings = settings.load()
    files = render.render(context, render_settings)
    verify.verify(files)
    return Rendered(files, read.warnings, context)
