"""Derived values for the Taskfile templates, available as context["taskfile"].

The rendered Taskfile finds everything from its own directory (go-task's TASKFILE_DIR), so it
works included from a parent Taskfile at any depth and its bytes do not depend on where the
tree lives. Its commands live in the templates; this module only supplies values.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from generator import provisioners


def build(base: Mapping[str, Any]) -> dict[str, Any]:
    return {
        # talos_factory_url has its default in the schema, like every input.
        "factory_url": base["talos_factory_url"],
        "schematics": [_upload(index, s) for index, s in enumerate(base["schematics"])],
        # The partial of each enabled provisioner, in canonical order.
        "partials": [p.taskfile_partial for p in provisioners.enabled(base["provisioners"])],
    }


def _upload(index: int, schematic: Mapping[str, Any]) -> dict[str, Any]:
    """A schematic for schematic:upload with the env names its ID and document reach the
    command through (SCHEMATIC_ID / SCHEMATIC_YAML, then _2, _3, ... for more)."""
    suffix = "" if index == 0 else f"_{index + 1}"
    return {
        "id": schematic["id"],
        "yaml": schematic["yaml"],
        "known": schematic["known"],
        "id_env": f"SCHEMATIC_ID{suffix}",
        "yaml_env": f"SCHEMATIC_YAML{suffix}",
    }
