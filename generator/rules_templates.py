"""Rules about nodes whose image or MTU differs from the cluster's (one template per
(schematic, SecureBoot) pair, see talos_templates.py). Linear in the number of nodes.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterator
from typing import Any

from generator import constants, derive, patterns, resources, rules_provisioning, talos_templates
from generator.errors import Diagnostic
from generator.load import Document
from generator.rulekit import Rule, tolerant
from generator.rulekit import indexed_nodes as _nodes

GUEST_AGENT = constants.GUEST_AGENT


def cluster_values(cluster: Document) -> dict[str, Any]:
    return talos_templates.with_defaults(cluster.data if isinstance(cluster.data, dict) else {})


@functools.cache
def _image_patterns() -> tuple[re.Pattern[str], re.Pattern[str]]:
    """The node schema's patterns of a schematic ID and of an extension (ECMA meaning)."""
    node = json.loads(resources.schema_path("nodes").read_text(encoding="utf-8"))["$defs"]["node"]
    props = node["properties"]
    return (
        patterns.compiled(props["talos_schematic_id"]["pattern"]),
        patterns.compiled(props["talos_extensions"]["items"]["pattern"]),
    )


def _well_formed(node: dict[str, Any]) -> bool:
    """A node's own schematic and extensions match their patterns. A malformed one is the
    schema check's finding: no template is planned from it (it would only add a second,
    misleading error about a template that nobody asked for)."""
    schematic_id, extension = _image_patterns()
    given = node.get("talos_schematic_id")
    if isinstance(given, str) and not schematic_id.search(given):
        return False
    listed = node.get("talos_extensions")
    return not isinstance(listed, list) or all(
        isinstance(e, str) and extension.search(e) for e in listed
    )


def plan(
    cluster: Document, nodes: Document
) -> tuple[list[talos_templates.Template], dict[str, talos_templates.Template]] | None:
    """talos_templates.plan of the raw inputs; None where the schema check has findings that
    would make the plan wrong."""
    if not all(_well_formed(n) for _, n in _nodes(nodes)):
        return None
    try:
        return talos_templates.plan(cluster_values(cluster), [n for _, n in _nodes(nodes)])
    except (KeyError, TypeError, ValueError, AttributeError):
        return None  # the schema check reports what is malformed


def _plan(cluster: Document, nodes: Document) -> list[talos_templates.Template] | None:
    planned = plan(cluster, nodes)
    return None if planned is None else planned[0]


def one_image_source(cluster: Document, nodes: Document) -> Iterator[Diagnostic]:
    """A node's image is its talos_extensions or a given schematic, never both."""
    for i, node in _nodes(nodes):
        if node.get("talos_extensions") is not None and node.get("talos_schematic_id") is not None:
            yield nodes.diag(
                ["nodes", i, "talos_extensions"],
                "talos_extensions has no effect here: this node's image is its given schematic "
                f"{node['talos_schematic_id']}",
                "keep one: the extensions (clustergen computes the schematic) or the schematic",
            )


def guest_agent(cluster: Document, nodes: Document) -> Iterator[Diagnostic]:
    """The QEMU guest agent is set once per cluster: every image has the extension or none."""
    data = cluster_values(cluster)
    if isinstance((data.get("vm_advanced") or {}).get("qemu_agent"), bool):
        return
    agent = derive.qemu_agent(data)
    for i, node in _nodes(nodes):
        extensions = node.get("talos_extensions")
        if not isinstance(extensions, list) or node.get("talos_schematic_id") is not None:
            continue
        if not _well_formed(node):
            continue  # the schema check reports the malformed extension
        if (GUEST_AGENT in extensions) != agent:
            has = "has" if agent else "lacks"
            yield nodes.diag(
                ["nodes", i, "talos_extensions"],
                f"the cluster's image {has} {GUEST_AGENT} and this node's does not: the QEMU "
                "guest agent is one setting for every VM",
                f"{'add' if agent else 'remove'} {GUEST_AGENT} here, or set vm_advanced.qemu_agent",
            )


def _twins(cluster: Document) -> bool:
    """Whether Packer also builds a Cluster API twin (<name>-capi) of every template."""
    return rules_provisioning._enabled(cluster, "capi") and rules_provisioning._enabled(
        cluster, "packer"
    )


def template_names(cluster: Document, nodes: Document) -> Iterator[Diagnostic]:
    """Another pair's template is <talos_template>-<schematic>[-sb] (and with capi its twin
    adds -capi): it must fit a VM name."""
    name = cluster.data.get("talos_template") if isinstance(cluster.data, dict) else None
    added = talos_templates.NAME_SUFFIX_MAX
    if _twins(cluster):
        added += len(rules_provisioning.CAPI_SUFFIX)
    limit = rules_provisioning.MAX_VM_NAME - added
    if not isinstance(name, str) or len(name) <= limit:
        return
    templates = _plan(cluster, nodes)
    if templates is not None and any(not t.default for t in templates):
        yield cluster.diag(
            ["talos_template"],
            f"{name!r} is too long: the templates of other schematics add up to "
            f"{added} characters, beyond the "
            f"{rules_provisioning.MAX_VM_NAME} of a Proxmox VE VM name",
            f"use at most {limit} characters",
        )


def template_vmid_range(cluster: Document, nodes: Document) -> Iterator[Diagnostic]:
    """Other pairs' templates (and with capi their twins) sit above talos_template_vmid: they
    must stay valid VM IDs."""
    templates = _plan(cluster, nodes)
    twins = rules_provisioning._enabled(cluster, "capi")
    reach = talos_templates.OFFSET + talos_templates.SLOTS * (2 if twins else 1) - 1
    beyond = [
        t.name
        for t in templates or []
        if t.vmid > constants.MAX_VM_ID
        or (twins and not t.default and t.vmid + talos_templates.TWIN_STEP > constants.MAX_VM_ID)
    ]
    if beyond:
        yield cluster.diag(
            ["talos_template_vmid"],
            f"the templates of other schematics would get VM IDs up to "
            f"talos_template_vmid + {reach}, beyond Proxmox VE's {constants.MAX_VM_ID} "
            f"({', '.join(beyond)})",
            f"use at most {constants.MAX_VM_ID - reach}",
        )


def twins(cluster: Document, nodes: Document) -> list[tuple[int, talos_templates.Template]] | None:
    """(twin VM ID, template) of every template the nodes need, for capi's rules."""
    templates = _plan(cluster, nodes)
    capi_vmid = cluster_values(cluster).get("talos_capi_template_vmid")
    if templates is None or not isinstance(capi_vmid, int):
        return None
    return talos_templates.twins(templates, capi_vmid)


def node_secureboot(cluster: Document, nodes: Document) -> Iterator[Diagnostic]:
    """A node's talos_secureboot: true before Talos 1.14, as the cluster-wide warning says."""
    version = cluster_values(cluster).get("talos_version")
    try:
        early = derive.version(str(version))[:2] < derive.SECUREBOOT_ENROLL_VERSION
    except ValueError:
        return
    # The cluster-wide warning already covers nodes that only repeat cluster.yaml's true.
    if not early or (
        rules_provisioning.given(cluster, "talos_secureboot") and _all_true(cluster, nodes)
    ):
        return
    for i, node in _nodes(nodes):
        if node.get("talos_secureboot") is True:
            yield nodes.diag(
                ["nodes", i, "talos_secureboot"],
                f"Talos {version} disk images carry no SecureBoot keys: this VM's firmware "
                "stays in setup mode and boots the signed image with Secure Boot off until you "
                "enroll the keys yourself",
                "enroll them, or boot this node without SecureBoot",
                severity="warning",
            )


def _all_true(cluster: Document, nodes: Document) -> bool:
    return cluster.data.get("talos_secureboot") is True and all(
        n.get("talos_secureboot") is not False for _, n in _nodes(nodes)
    )


RULES: tuple[Rule, ...] = tuple(
    tolerant(rule)
    for rule in (
        one_image_source,
        guest_agent,
        template_names,
        template_vmid_range,
        node_secureboot,
    )
)
