"""Rules about nodes whose image or MTU differs from the cluster's (one template per
(schematic, SecureBoot) pair, see talos_templates.py). Linear in the number of nodes.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Iterator
from typing import Any

from generator import constants, derive, patterns, resources, rules_provisioning, talos_templates
from generator.errors import Diagnostic
from generator.load import Document
from generator.rulekit import indexed_nodes as _nodes

GUEST_AGENT = constants.GUEST_AGENT


def _cluster(cluster: Document) -> dict[str, Any]:
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


def _plan(cluster: Document, nodes: Document) -> list[talos_templates.Template] | None:
    if not all(_well_formed(n) for _, n in _nodes(nodes)):
        return None
    try:
        templates, _ = talos_templates.plan(_cluster(cluster), [n for _, n in _nodes(nodes)])
    except (KeyError, TypeError, ValueError, AttributeError):
        return None  # the schema check reports what is malformed
    return templates


Rule = Callable[[Document, Document], Iterator[Diagnostic]]


def _tolerant(rule: Rule) -> Rule:
    """Values of the wrong type are the schema check's to report, not a crash here."""

    @functools.wraps(rule)
    def run(cluster: Document, nodes: Document) -> Iterator[Diagnostic]:
        try:
            found = list(rule(cluster, nodes))
        except (KeyError, TypeError, ValueError, AttributeError):
            return iter(())
        return iter(found)

    return run


def _groups(templates: list[talos_templates.Template]) -> str:
    return "; ".join(f"{t.name} (VM {t.vmid}): {', '.join(t.nodes)}" for t in templates)


def capi_one_template(cluster: Document, nodes: Document) -> Iterator[Diagnostic]:
    """Cluster API's machine templates clone one Talos template per cluster so far."""
    if not rules_provisioning._enabled(cluster, "capi"):
        return
    templates = _plan(cluster, nodes)
    if templates is not None and len(templates) > 1:
        yield cluster.diag(
            ["provisioners"],
            "capi supports one Talos template per cluster so far, and these nodes need "
            f"{len(templates)} (one per schematic and SecureBoot setting): {_groups(templates)}",
            "give every node the same schematic and SecureBoot setting, or leave capi out",
        )


def capi_one_mtu(cluster: Document, nodes: Document) -> Iterator[Diagnostic]:
    """clustergen's CAPI machines share node_mtu."""
    if not rules_provisioning._enabled(cluster, "capi"):
        return
    mtu = _cluster(cluster)["node_mtu"]
    for i, node in _nodes(nodes):
        if node.get("mtu") is not None and node["mtu"] != mtu:
            yield nodes.diag(
                ["nodes", i, "mtu"],
                f"MTU {node['mtu']} differs from the cluster's {mtu}: clustergen's CAPI "
                "machines all have node_mtu so far",
                f"give this node MTU {mtu}, or leave capi out",
            )


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
    data = _cluster(cluster)
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


def template_names(cluster: Document, nodes: Document) -> Iterator[Diagnostic]:
    """Another pair's template is <talos_template>-<schematic>[-sb]: it must fit a VM name."""
    name = cluster.data.get("talos_template") if isinstance(cluster.data, dict) else None
    limit = rules_provisioning.MAX_VM_NAME - talos_templates.NAME_SUFFIX_MAX
    if not isinstance(name, str) or len(name) <= limit:
        return
    templates = _plan(cluster, nodes)
    if templates is not None and any(not t.default for t in templates):
        yield cluster.diag(
            ["talos_template"],
            f"{name!r} is too long: the templates of other schematics add up to "
            f"{talos_templates.NAME_SUFFIX_MAX} characters, beyond the "
            f"{rules_provisioning.MAX_VM_NAME} of a Proxmox VE VM name",
            f"use at most {limit} characters",
        )


# Proxmox VE's highest VM ID (rules.MAX_VM_ID; rules imports this module).
MAX_VM_ID = 999_999_999


def template_vmid_range(cluster: Document, nodes: Document) -> Iterator[Diagnostic]:
    """Other pairs' templates sit above talos_template_vmid: they must stay valid VM IDs."""
    templates = _plan(cluster, nodes)
    beyond = [t for t in templates or [] if t.vmid > MAX_VM_ID]
    if beyond:
        yield cluster.diag(
            ["talos_template_vmid"],
            f"the templates of other schematics would get VM IDs up to "
            f"talos_template_vmid + {talos_templates.OFFSET + talos_templates.SLOTS - 1}, "
            f"beyond Proxmox VE's {MAX_VM_ID} ({', '.join(t.name for t in beyond)})",
            f"use at most {MAX_VM_ID - talos_templates.OFFSET - talos_templates.SLOTS + 1}",
        )


def node_secureboot(cluster: Document, nodes: Document) -> Iterator[Diagnostic]:
    """A node's talos_secureboot: true before Talos 1.14, as the cluster-wide warning says."""
    version = _cluster(cluster).get("talos_version")
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
    _tolerant(rule)
    for rule in (
        capi_one_template,
        capi_one_mtu,
        one_image_source,
        guest_agent,
        template_names,
        template_vmid_range,
        node_secureboot,
    )
)
