"""Derived values for the Taskfile templates, available as context["taskfile"].

The rendered Taskfile finds everything from its own directory (go-task's TASKFILE_DIR), so it
works included from a parent Taskfile at any depth and its bytes do not depend on where the
tree lives. Its commands live in the templates; this module only supplies values.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def build(base: Mapping[str, Any]) -> dict[str, Any]:
    # talos_factory_url has its default in the schema, like every input.
    return {"factory_url": base["talos_factory_url"]}
