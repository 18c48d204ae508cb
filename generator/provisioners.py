"""The provisioners clustergen renders, each with every place it lives (a registry, the way
pre-commit lists its languages). Adding one is adding an entry here plus the files it names;
CONTRIBUTING.md ("Adding a provisioner") lists the rest.

Only plain values live here; a provisioner's model module is imported when the model is
built, not when this module is.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, NamedTuple

# The Proxmox credentials Secret of the capi manifests: the one output that carries a secret.
CAPI_CREDENTIALS = "infrastructure/capi/proxmox-credentials.sops.yaml"


class Provisioner(NamedTuple):
    """One provisioner's entry. A NamedTuple rather than a frozen dataclass: as immutable, and
    its class costs a tenth of the start-up time on the hook path (validate imports it)."""

    # The name in cluster.yaml's `provisioners` (the schema's enum lists the same names).
    name: str
    # Module with build(base) -> Mapping, the provisioner's derived values, available to the
    # templates as context[name] (e.g. #{ tofu.nodes }#).
    model: str
    # Directory under templates/ whose *.j2 render to the same path in the output root.
    templates: str
    # The Taskfile partial included (in registry order) when the provisioner is enabled.
    taskfile_partial: str
    # Outputs (paths in the output root) that may render empty while the provisioner is
    # enabled, and when. Any other empty output of an enabled provisioner is a clustergen
    # bug: render stops with exit 3 instead of silently writing no file.
    may_be_empty: Mapping[str, str] = MappingProxyType({})
    # Its VMs are clones of the Packer template (they keep the template's hardware).
    clones_template: bool = False
    # Outputs that hold a secret (sealed with sops; rendered only with secrets.sops.yaml).
    secret_outputs: tuple[str, ...] = ()

    def build(self, base: Mapping[str, Any]) -> Mapping[str, Any]:
        built: Mapping[str, Any] = importlib.import_module(self.model).build(base)
        return built


# Canonical order: the models are built in it (each sees the results of those before it),
# and the Taskfile includes the partials in it, whatever order cluster.yaml lists them in.
REGISTRY: tuple[Provisioner, ...] = (
    Provisioner(
        name="packer",
        model="generator.models.packer",
        templates="infrastructure/packer",
        taskfile_partial="_partials/taskfile/packer.partial.j2",
        may_be_empty={
            "infrastructure/packer/talos-schematic.yaml": (
                "the schematic is given (talos_schematic_id): its document is not clustergen's"
            ),
        },
    ),
    Provisioner(
        name="tofu",
        model="generator.models.tofu",
        templates="infrastructure/tofu",
        taskfile_partial="_partials/taskfile/tofu.partial.j2",
        may_be_empty={"infrastructure/tofu/moved.tf": "no tofu_migrate: nothing moves"},
    ),
    Provisioner(
        name="ansible",
        model="generator.models.ansible",
        templates="infrastructure/ansible",
        taskfile_partial="_partials/taskfile/ansible.partial.j2",
        clones_template=True,
    ),
    Provisioner(
        name="capi",
        model="generator.models.capi",
        templates="infrastructure/capi",
        taskfile_partial="_partials/taskfile/capi.partial.j2",
        may_be_empty={CAPI_CREDENTIALS: "no secrets.sops.yaml: there is no token to put in it"},
        clones_template=True,
        secret_outputs=(CAPI_CREDENTIALS,),
    ),
)
NAMES: tuple[str, ...] = tuple(p.name for p in REGISTRY)
BY_NAME: Mapping[str, Provisioner] = {p.name: p for p in REGISTRY}


def enabled(names: Any) -> list[Provisioner]:
    """The registry entries of the given names (cluster.yaml's list), in canonical order."""
    given = names if isinstance(names, (list, tuple)) else ()
    return [p for p in REGISTRY if p.name in given]


def owner(output: str) -> Provisioner | None:
    """The provisioner whose templates render this output path, if any."""
    return next((p for p in REGISTRY if output.startswith(f"{p.templates}/")), None)


def may_render_empty(output: str, context: Mapping[str, Any]) -> bool:
    """Whether an empty render of this output is expected (it then writes no file): its
    provisioner is disabled, or it is declared in may_be_empty. Everything else is a bug."""
    provisioner = owner(output)
    if provisioner is None:
        return False
    if not (context.get("enabled") or {}).get(provisioner.name):
        return True
    return output in provisioner.may_be_empty
