"""Semantic rules that JSON Schema cannot express, in the order they report: each rule
module holds the rules of one subject. Each rule is linear in the number of nodes.

Rules read values defensively: a value of the wrong type was already reported by the schema
and is skipped here.
"""

from __future__ import annotations

from generator import rules_capi, rules_capi_plane, rules_provisioning, rules_templates
from generator.errors import Diagnostic
from generator.load import Document
from generator.rulekit import Rule
from generator.rules_endpoint import endpoint
from generator.rules_lists import lists
from generator.rules_network import addresses, cidrs
from generator.rules_nodes import controllers, macs, talos_minimums, uniqueness
from generator.rules_vmids import MAX_VM_ID, migration, vm_id_range, vm_ids

__all__ = ["MAX_VM_ID", "RULES", "check", "endpoint"]

RULES: tuple[Rule, ...] = (
    cidrs,
    addresses,
    uniqueness,
    vm_ids,
    vm_id_range,
    controllers,
    macs,
    talos_minimums,
    endpoint,
    lists,
    *rules_provisioning.RULES,
    migration,
    rules_capi.check,
    *rules_capi_plane.RULES,
    *rules_templates.RULES,
)


def check(cluster: Document, nodes: Document) -> list[Diagnostic]:
    from generator import honoured

    return [d for rule in (*RULES, honoured.check) for d in rule(cluster, nodes)]
