"""Derived values for the Taskfile templates, available as context["taskfile"].

The rendered Taskfile finds everything from its own directory (go-task's TASKFILE_DIR), so it
works included from a parent Taskfile at any depth and its bytes do not depend on where the
tree lives. Its commands live in the templates; this module only supplies values.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# talos_factory_url comes from cluster.yaml (schema default); this is only the fallback of a
# context built without that key.
PUBLIC_FACTORY = "https://factory.talos.dev"


def build(base: Mapping[str, Any]) -> dict[str, Any]:
    return {"factory_url": base.get("talos_factory_url", PUBLIC_FACTORY)}
