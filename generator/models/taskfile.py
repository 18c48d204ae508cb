"""Derived values for the Taskfile templates, available as context["taskfile"].

The rendered Taskfile finds everything from its own directory (go-task's TASKFILE_DIR), so it
works included from a parent Taskfile at any depth; only the way from there to the config
directory (cluster.yaml, secrets.sops.yaml, age.key) depends on where the tree was rendered.
The Taskfile's own commands live in the templates; this module only supplies values.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from typing import Any

# Where the rendered Taskfile sits below the output root.
TASKFILE_DIR = ".taskfiles/infrastructure"
# talos_factory_url comes from cluster.yaml (schema default); this is only the fallback of a
# context built without that key.
PUBLIC_FACTORY = "https://factory.talos.dev"


def config_path(config_dir_from_output: str) -> str:
    """The config directory as seen from the Taskfile's directory (POSIX, normalised)."""
    up = "/".join(".." for _ in TASKFILE_DIR.split("/"))
    return posixpath.normpath(posixpath.join(up, config_dir_from_output))


def build(base: Mapping[str, Any], config_dir_from_output: str = ".") -> dict[str, Any]:
    return {
        "config_path": config_path(config_dir_from_output),
        "factory_url": base.get("talos_factory_url", PUBLIC_FACTORY),
    }
