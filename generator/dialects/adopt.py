"""`clustergen init` in a host repo: extend the host's CUE schemas with clustergen's keys.

The host's `task configure` vets cluster.yaml and nodes.yaml against closed #Config/#Node
definitions, so a clustergen key there would fail it. CUE unifies repeated declarations of a
definition, so one marked block re-declaring #Config (and #Node) with exactly the keys
clustergen adds (all optional, with clustergen's types) makes both tools accept the files.
Writing the block again replaces it: running init twice changes nothing.
"""

from __future__ import annotations

import contextlib
import difflib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from generator import resources
from generator.dialects import (
    CLUSTER_CUE,
    CLUSTERGEN,
    NODES_CUE,
    TALOS_CLUSTER,
    read_repo_file,
)

BEGIN = "// BEGIN clustergen: keys clustergen adds (written by `clustergen init`; do not edit)"
END = "// END clustergen"


def strip_block(text: str) -> str:
    """The text without clustergen's block (and the blank line before it)."""
    start = text.find(BEGIN)
    if start < 0:
        return text
    end = text.find(END, start)
    end = len(text) if end < 0 else end + len(END)
    head, tail = text[:start].rstrip("\n"), text[end:].lstrip("\n")
    return head + "\n" + (("\n" + tail) if tail else "")


def _cue_string(value: str) -> str:
    return json.dumps(value)


def cue_type(spec: dict[str, Any], indent: str) -> str:
    """clustergen's JSON Schema of one key as a CUE constraint (as strict as CUE says simply)."""
    kinds = spec.get("type")
    kinds = kinds if isinstance(kinds, list) else [kinds]
    nullable = "null" in kinds
    kind = next((k for k in kinds if k != "null"), None)
    if "enum" in spec:
        text = " | ".join(
            _cue_string(v) if isinstance(v, str) else json.dumps(v) for v in spec["enum"]
        )
    elif kind == "string":
        text = "string"
        if "pattern" in spec:
            text += f" & =~{_cue_string(spec['pattern'])}"
    elif kind == "integer":
        text = "int"
        if "minimum" in spec:
            text += f" & >={spec['minimum']}"
        if "maximum" in spec:
            text += f" & <={spec['maximum']}"
    elif kind == "boolean":
        text = "bool"
    elif kind == "array":
        text = f"[...{cue_type(spec.get('items', {}), indent)}]"
    elif kind == "object":
        inner = indent + "\t"
        fields = [
            f"{inner}{key}?: {cue_type(sub, inner)}"
            for key, sub in spec.get("properties", {}).items()
        ]
        sub_objects = "\n".join(fields)
        text = "{\n" + sub_objects + f"\n{indent}}}"
    else:
        text = "_"
    return f"{text} | null" if nullable else text


def _own(kind: str) -> dict[str, Any]:
    data = resources.inline_refs(json.loads(resources.schema_path(kind).read_text("utf-8")))
    props: dict[str, Any] = (
        data["properties"] if kind == "cluster" else data["$defs"]["node"]["properties"]
    )
    return props


def _defined(text: str) -> set[str]:
    import re

    return set(re.findall(r"^\t(\w+)\??\s*:", text, flags=re.M))


def block(definition: str, props: dict[str, Any], host_text: str) -> str:
    """The marked block: each clustergen key the host's definitions lack."""
    known = _defined(host_text)
    missing = [key for key in props if key not in known]
    if not missing:
        return ""
    lines = [BEGIN, f"{definition}: {{"]
    lines += [f"\t{key}?: {cue_type(props[key], chr(9))}" for key in missing]
    lines += ["}", END]
    return "\n".join(lines) + "\n"


def extended(text: str, definition: str, kind: str) -> str:
    host = strip_block(text)
    added = block(definition, _own(kind), host)
    if not added:
        return host
    return host.rstrip("\n") + "\n\n" + added


def plan(config_dir: Path, dialect: str) -> list[tuple[Path, str, str]]:
    """(relative path, old text, new text) of each CUE schema init changes."""
    del dialect  # both hosts keep the schemas in the same place with the same definitions
    out = []
    for relative, definition, kind in (
        (CLUSTER_CUE, "#Config", "cluster"),
        (NODES_CUE, "#Node", "nodes"),
    ):
        text = read_repo_file(config_dir, relative)
        if text is None:
            continue
        new = extended(text, definition, kind)
        if new != text:
            out.append((relative, text, new))
    return out


def diff(changes: list[tuple[Path, str, str]]) -> str:
    return "".join(
        "".join(
            difflib.unified_diff(
                old.splitlines(keepends=True),
                new.splitlines(keepends=True),
                f"a/{path.as_posix()}",
                f"b/{path.as_posix()}",
            )
        )
        for path, old, new in changes
    )


def _write(path: Path, text: str) -> None:
    """Replace path through a temp file + rename (the rename never follows a symlink)."""
    import os
    import tempfile

    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp, 0o644)
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


@dataclass(frozen=True)
class Prepared:
    """What `clustergen init` does to a host repo's CUE schemas, computed before anything
    is written (a failing init leaves the repo as it was)."""

    config_dir: Path
    dialect: str
    changes: list[tuple[Path, str, str]]
    dialect_example: bool  # start a missing cluster.yaml from the host's example
    token_in_cluster_yaml: bool

    def apply(self, fmt: str) -> None:
        import sys

        from generator.output import info

        if self.dialect == CLUSTERGEN:
            return
        if self.changes:
            sys.stdout.write(diff(self.changes))
        for relative, _old, new in self.changes:
            _write(self.config_dir / relative, new)
            info(fmt, f"updated {relative.as_posix()} (clustergen's keys, {self.dialect} dialect)")
        if not self.changes and (self.config_dir / CLUSTER_CUE).exists():
            info(fmt, f"kept {CLUSTER_CUE.as_posix()} (has clustergen's keys)")


def prepare(config_dir: Path, requested: str, example: str) -> Prepared:
    from generator import dialects

    dialect = dialects.resolve(config_dir, requested)
    host = dialect != CLUSTERGEN
    return Prepared(
        config_dir,
        dialect,
        plan(config_dir, dialect) if host else [],
        dialect_example=host and example == "minimal",
        token_in_cluster_yaml=dialect == TALOS_CLUSTER,
    )
