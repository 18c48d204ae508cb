"""What a change does to the VMs: added, removed, resized, moved (to another PVE node) or
otherwise changed, node by node, between two models (a git revision's inputs and the
working tree's). Reviewers of an infrastructure change read this, not a diff of HCL.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# (column title, key in a VM's facts)
COLUMNS = (
    ("VM", "name"),
    ("VM ID", "vm_id"),
    ("PVE node", "proxmox_node"),
    ("cores", "cores"),
    ("sockets", "sockets"),
    ("memory MiB", "memory"),
    ("disk GB", "disk_size"),
    ("address", "address"),
    ("template", "template"),
)
RESIZE_KEYS = ("cores", "sockets", "memory", "disk_size")
ACTIONS = ("add", "remove", "resize", "move", "change")


def facts(context: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """name -> the facts of its VM, from a model context."""
    template = context["talos_template"]
    return {
        str(node["name"]): {
            "name": node["name"],
            "vm_id": node["vm_id"],
            "proxmox_node": node["proxmox_node"],
            "cores": node["cores"],
            "sockets": node["sockets"],
            "memory": node["memory"],
            "disk_size": node["disk_size"],
            "address": node["address"],
            "template": template,
            "role": node["role"],
        }
        for node in context["nodes"]
    }


@dataclass(frozen=True)
class VmChange:
    name: str
    actions: tuple[str, ...]  # a subset of ACTIONS, in that order
    before: Mapping[str, Any] | None
    after: Mapping[str, Any] | None

    def changed(self) -> tuple[str, ...]:
        if self.before is None or self.after is None:
            return ()
        return tuple(k for _, k in COLUMNS if self.before[k] != self.after[k])


def compare(
    before: Mapping[str, Mapping[str, Any]], after: Mapping[str, Mapping[str, Any]]
) -> list[VmChange]:
    """Every VM that differs, sorted by name; unchanged VMs are left out."""
    out: list[VmChange] = []
    for name in sorted(set(before) | set(after)):
        old, new = before.get(name), after.get(name)
        if old is None:
            out.append(VmChange(name, ("add",), None, new))
            continue
        if new is None:
            out.append(VmChange(name, ("remove",), old, None))
            continue
        differs = {k for k in {*old, *new} if old.get(k) != new.get(k)}
        if not differs:
            continue
        actions = []
        if differs & set(RESIZE_KEYS):
            actions.append("resize")
        if "proxmox_node" in differs:
            actions.append("move")
        if differs - set(RESIZE_KEYS) - {"proxmox_node"}:
            actions.append("change")
        out.append(VmChange(name, tuple(actions), old, new))
    return out


def _cell(change: VmChange, key: str, arrow: str) -> str:
    old = change.before[key] if change.before is not None else None
    new = change.after[key] if change.after is not None else None
    if change.before is None:
        return str(new)
    if change.after is None:
        return str(old)
    return str(new) if old == new else f"{old}{arrow}{new}"


def _rows(changes: Sequence[VmChange], arrow: str) -> list[list[str]]:
    return [[", ".join(c.actions), *(_cell(c, key, arrow) for _, key in COLUMNS)] for c in changes]


def summary_line(changes: Sequence[VmChange], base: str) -> str:
    if not changes:
        return f"no VM changes compared with {base}"
    counts = {a: sum(1 for c in changes if a in c.actions) for a in ACTIONS}
    words = {"add": "added", "remove": "removed", "resize": "resized", "move": "moved"}
    parts = [f"{n} {words.get(a, 'changed')}" for a, n in counts.items() if n]
    return f"{len(changes)} VM(s) change compared with {base}: {', '.join(parts)}"


def as_text(changes: Sequence[VmChange], base: str) -> str:
    lines = [summary_line(changes, base)]
    if changes:
        header = ["change", *(title for title, _ in COLUMNS)]
        rows = [header, *_rows(changes, " -> ")]
        widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
        lines += [
            "  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in rows
        ]
    return "\n".join(lines) + "\n"


def _md(value: str) -> str:
    # Names and addresses come from the inputs: nothing in them may break the table.
    return value.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def as_markdown(changes: Sequence[VmChange], base: str) -> str:
    lines = ["### clustergen: VM changes", "", _md(summary_line(changes, base))]
    if changes:
        header = ["change", *(title for title, _ in COLUMNS)]
        lines += [
            "",
            "| " + " | ".join(header) + " |",
            "|" + "|".join("---" for _ in header) + "|",
        ]
        lines += ["| " + " | ".join(_md(v) for v in row) + " |" for row in _rows(changes, " → ")]
    return "\n".join(lines) + "\n"


def as_json(changes: Sequence[VmChange], base: str) -> str:
    doc = {
        "base": base,
        "changes": [
            {
                "name": c.name,
                "actions": list(c.actions),
                "changed": list(c.changed()),
                "before": dict(c.before) if c.before is not None else None,
                "after": dict(c.after) if c.after is not None else None,
            }
            for c in changes
        ],
    }
    return json.dumps(doc, indent=2) + "\n"
