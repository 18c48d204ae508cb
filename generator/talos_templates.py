"""One Talos template VM per distinct (schematic, SecureBoot) pair the nodes use.

Every node boots the image of its own schematic: the cluster's (talos_extensions or
talos_schematic_id, talos_secureboot) unless the node gives talos_extensions,
talos_schematic_id or talos_secureboot of its own. Packer builds one template per pair, and
each node is cloned from its pair's template.

VM IDs are stable: the cluster's pair always has talos_template_vmid; any other pair has
talos_template_vmid + OFFSET + (a hash of the pair modulo SLOTS). A pair's ID depends only on
the pair itself, so templates never renumber when nodes (or other pairs) come and go. Only
when two pairs hash to one slot does the later one (in the order of schematic ID, SecureBoot)
take the next free slot; with SLOTS slots that is rare, and it is documented in the README.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from generator import derive, schematic

# Other pairs live in talos_template_vmid + OFFSET .. + OFFSET + SLOTS - 1, clear of
# talos_capi_template_vmid's default (talos_template_vmid + 1).
OFFSET = 100
SLOTS = 900
# Name of another pair's template: <talos_template>-<first NAME_ID_CHARS of the schematic ID>,
# plus SECUREBOOT_SUFFIX for the SecureBoot image.
NAME_ID_CHARS = 8
SECUREBOOT_SUFFIX = "-sb"
NAME_SUFFIX_MAX = 1 + NAME_ID_CHARS + len(SECUREBOOT_SUFFIX)


@dataclass(frozen=True)
class Template:
    vmid: int
    name: str
    secureboot: bool
    image: schematic.Schematic
    # Whether clustergen wrote the schematic (False for a given talos_schematic_id).
    known: bool
    # The cluster-wide pair (talos_template_vmid, talos_template).
    default: bool
    nodes: tuple[str, ...]


def _image(
    cluster: Mapping[str, Any], node: Mapping[str, Any]
) -> tuple[schematic.Schematic, bool, bool]:
    """The node's schematic, its SecureBoot choice and whether clustergen wrote the schematic;
    cluster must have its defaults applied."""
    secureboot = node.get("talos_secureboot")
    if not isinstance(secureboot, bool):
        secureboot = derive.secureboot(dict(cluster))
    extensions = node.get("talos_extensions")
    given = node.get("talos_schematic_id")
    if extensions is None and given is None:
        extensions = cluster["talos_extensions"]
        given = cluster.get("talos_schematic_id")
    image = schematic.build(
        extensions=extensions or [],
        extra_kernel_args=cluster["talos_extra_kernel_args"],
        talos_version=cluster["talos_version"],
        platform=cluster["talos_platform"],
        arch=cluster["talos_arch"],
        secureboot=secureboot,
        given_id=given,
        # From Talos 1.14 the factory's disk image enrolls its keys; before, it cannot.
        enroll_keys=derive.version(cluster["talos_version"])[:2]
        >= derive.SECUREBOOT_ENROLL_VERSION,
        factory_url=cluster["talos_factory_url"],
    )
    return image, secureboot, given is None


def _slot(schematic_id: str, secureboot: bool) -> int:
    digest = hashlib.sha256(f"{schematic_id}:{str(secureboot).lower()}".encode()).hexdigest()
    return int(digest[:8], 16) % SLOTS


def plan(
    cluster: Mapping[str, Any], nodes: Sequence[Mapping[str, Any]]
) -> tuple[list[Template], dict[str, Template]]:
    """The templates (the cluster's pair first, then by VM ID) and each node's template.

    cluster has every default applied (talos_template included); nodes are nodes.yaml's."""
    default_image, default_secureboot, _ = _image(cluster, {})
    default_key = (default_image.id, default_secureboot)
    images: dict[tuple[str, bool], tuple[schematic.Schematic, bool]] = {}
    members: dict[tuple[str, bool], list[str]] = {}
    for node in nodes:
        image, secureboot, known = _image(cluster, node)
        key = (image.id, secureboot)
        images.setdefault(key, (image, known))
        members.setdefault(key, []).append(str(node.get("name")))
    base = int(cluster["talos_template_vmid"])
    taken: set[int] = set()
    vmids: dict[tuple[str, bool], int] = {}
    if default_key in members:
        vmids[default_key] = base
    for key in sorted(k for k in members if k != default_key):
        slot = _slot(*key)
        while slot in taken:
            slot = (slot + 1) % SLOTS
        taken.add(slot)
        vmids[key] = base + OFFSET + slot
    templates: list[Template] = []
    for key in sorted(members, key=lambda k: (k != default_key, vmids[k])):
        schematic_id, secureboot = key
        name = cluster["talos_template"]
        if key != default_key:
            suffix = SECUREBOOT_SUFFIX if secureboot else ""
            name = f"{name}-{schematic_id[:NAME_ID_CHARS]}{suffix}"
        image, known = images[key]
        templates.append(
            Template(
                vmid=vmids[key],
                name=name,
                secureboot=secureboot,
                image=image,
                known=known,
                default=key == default_key,
                nodes=tuple(members[key]),
            )
        )
    by_node = {name: t for t in templates for name in t.nodes}
    return templates, by_node


def with_defaults(cluster: Mapping[str, Any]) -> dict[str, Any]:
    """Raw (schema-valid) cluster.yaml data with the defaults plan() needs."""
    out: dict[str, Any] = {**derive.CLUSTER_DEFAULTS, **dict(cluster)}
    if out.get("talos_template") is None:
        out["talos_template"] = f"talos-{out.get('talos_version')}"
    return out


def vmids(cluster: Mapping[str, Any], nodes: Sequence[Any]) -> dict[int, str]:
    """Raw inputs -> the VM ID and name of every template, for checks that run before the
    model; inputs the schema check has not passed yet give the cluster's template only."""
    data = with_defaults(cluster)
    try:
        templates, _ = plan(data, [n for n in nodes if isinstance(n, Mapping)])
    except (KeyError, TypeError, ValueError, AttributeError):
        vmid = data.get("talos_template_vmid")
        return {vmid: str(data.get("talos_template"))} if isinstance(vmid, int) else {}
    return {t.vmid: t.name for t in templates}


# Cluster API's twin of another pair's template sits this far above that template (see
# twin_vmid): above every other pair's template, so the two never meet.
TWIN_STEP = SLOTS


def twin_vmid(vmid: int, default: bool, only: bool, capi_vmid: int) -> int:
    """VM ID of the Cluster API twin (no cloud-init drive) of the template with VM ID vmid.

    The cluster's pair (or the only pair) keeps talos_capi_template_vmid; any other pair's
    twin is its template's VM ID + TWIN_STEP, so it is as stable as that template's."""
    return capi_vmid if default or only else vmid + TWIN_STEP


def twin_vmids(cluster: Mapping[str, Any], nodes: Sequence[Any]) -> set[int]:
    """Raw inputs -> the VM IDs of the Cluster API twins when capi is a provisioner (none
    otherwise); inputs the schema check has not passed yet give the cluster's twin only."""
    data = with_defaults(cluster)
    capi_vmid = data.get("talos_capi_template_vmid")
    if "capi" not in (data.get("provisioners") or ()) or not isinstance(capi_vmid, int):
        return set()
    try:
        templates, _ = plan(data, [n for n in nodes if isinstance(n, Mapping)])
    except (KeyError, TypeError, ValueError, AttributeError):
        return {capi_vmid}
    return {vmid for vmid, _ in twins(templates, capi_vmid)}


def twins(templates: Sequence[Template], capi_vmid: int) -> list[tuple[int, Template]]:
    """(VM ID of its Cluster API twin, template) of every template, in their order."""
    only = len(templates) == 1
    return [(twin_vmid(t.vmid, t.default, only, capi_vmid), t) for t in templates]
