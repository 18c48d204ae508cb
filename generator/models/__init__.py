"""Per-provisioner derived values, computed from the base model after it is complete
(generator/provisioners.py is the registry that names each provisioner's module).

Each module exposes build(base) -> Mapping; its result is available to templates as
context[<provisioner>] (e.g. #{ tofu.nodes }#). Data flows forward: base model first.
taskfile.py is not a provisioner: it supplies context["taskfile"] for the Taskfile templates.
"""

from generator.provisioners import NAMES as PROVISIONERS

__all__ = ["PROVISIONERS"]
