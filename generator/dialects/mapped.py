"""A document built by the normaliser whose positions and paths are those of the source.

Rules and the schema check run on clustergen's keys; their diagnostics must still point at
what the user wrote (proxmox_vm_advanced.bios in talos-cluster's cluster.yaml, not
vm_advanced.bios), so each normalised path maps back to the source path it came from.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from generator.load import Document, PathPart, format_path

SourcePaths = Mapping[tuple[PathPart, ...], tuple[PathPart, ...]]


@dataclass(frozen=True)
class Mapped(Document):
    source: Document | None = None
    paths: SourcePaths = field(default_factory=dict)

    def source_path(self, path: Sequence[PathPart]) -> list[PathPart]:
        """The source path of a normalised path: its longest mapped prefix, renamed."""
        parts = tuple(path)
        for end in range(len(parts), 0, -1):
            mapped = self.paths.get(parts[:end])
            if mapped is not None:
                return [*mapped, *parts[end:]]
        return list(parts)

    def locate(self, path: Sequence[PathPart], *, key: bool = False) -> tuple[int, int]:
        if self.source is None:
            return super().locate(path, key=key)
        return self.source.locate(self.source_path(path), key=key)

    def shown_path(self, path: Sequence[PathPart]) -> str:
        return format_path(self.source_path(path))


def mapped(source: Document, data: Any, paths: SourcePaths) -> Mapped:
    return Mapped(source.file, source.tree, data, source.positions, source, paths)
