"""Stage 7, deciding: compare the rendered files with the output tree as the snapshot saw
it (generator/outtree.py) and describe the drift; generator/writer.py carries a plan out.

What clustergen generated is recorded in .clustergen/manifest.json (generator/manifest.py).
That record is what lets sync remove files an earlier render generated, recognise a
generated file that was edited by hand, and leave every other file alone.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from generator.controls import visible
from generator.errors import Diagnostic, NotRegular, UsageError
from generator.manifest import digest, looks_generated
from generator.outtree import Snapshot, is_sops, plain_name

NOT_OURS = "not a clustergen file"


@dataclass(frozen=True)
class Change:
    path: str
    action: str  # "create" | "update" | "remove"
    old: bytes | None
    new: bytes | None
    # Why the old bytes are not shown (and were not read): not a clustergen file.
    hidden: str = ""


@dataclass(frozen=True)
class Plan:
    changes: tuple[Change, ...]
    unchanged: tuple[str, ...]
    # Paths whose current content clustergen did not write: hand edits of generated files,
    # or a user's file where a generated one should go. --force overwrites them.
    conflicts: tuple[str, ...]
    manifest: Mapping[str, str]  # the manifest after this render
    old_manifest: Mapping[str, str]
    # (path, reason): where a generated file belongs there is a link, FIFO, device or
    # directory. Nothing overwrites those, --force neither.
    refused: tuple[tuple[str, str], ...] = ()
    # (path, reason): stale candidates that are left alone because they fail a condition
    # of removal (see removal()). Never drift, never deleted.
    kept: tuple[tuple[str, str], ...] = ()
    dirs: tuple[str, ...] = ()  # the directories clustergen renders into

    @property
    def manifest_changed(self) -> bool:
        return dict(self.manifest) != dict(self.old_manifest)

    def count(self, action: str) -> int:
        return sum(1 for c in self.changes if c.action == action)


def _scan_generated(snapshot: Snapshot, known: frozenset[str]) -> dict[str, bytes]:
    """Regular files directly in the directories clustergen writes to that carry its header,
    with their bytes. Links, FIFOs and devices were never opened.

    known: paths plan() already decides on; they are not looked at again.
    """
    found: dict[str, bytes] = {}
    for directory in snapshot.dirs:
        for path, entry in snapshot.listing(directory):
            if path in known or entry.error is not None:  # swapped, huge, not regular: not ours
                continue
            if entry.data is not None and looks_generated(entry.data):
                found[path] = entry.data
    return found


def removal(
    snapshot: Snapshot,
    path: str,
    accepted: Mapping[str, set[str]],
    data: bytes | None = None,
) -> tuple[bytes | None, str]:
    """The one place that decides whether a file clustergen no longer renders is removed.

    (bytes, "") when it is: it lies in a directory clustergen renders into, is a regular file
    reached without following a link, carries clustergen's header, and its bytes hash to the
    value the manifest records. Otherwise (None, why not); --force changes none of this.
    (None, "") when there is nothing at path.
    """
    if PurePosixPath(path).parent.as_posix() not in snapshot.dirs:
        return None, "not in a directory clustergen renders into"
    if not plain_name(PurePosixPath(path).name):
        return None, "not a name clustergen generates"
    if data is None:
        try:
            data = snapshot.read(path)
        except NotRegular as exc:
            return None, f"{NOT_OURS}: {exc.reason}"
        if data is None:
            return None, ""
    if not looks_generated(data):
        return None, f"{NOT_OURS}: it does not carry clustergen's header"
    if path not in accepted:
        return None, "not recorded in .clustergen/manifest.json; remove it yourself if it is stale"
    if digest(data) not in accepted[path]:
        return None, "changed since clustergen wrote it; remove it yourself if it is stale"
    return data, ""


def require_output_root(root: Path) -> None:
    """The output root is a directory, or does not exist yet; never clustergen's own files
    (a render there would change every later render) nor the file-system root."""
    if root.exists() and not root.is_dir():
        raise UsageError(f"output root {root} exists and is not a directory")
    from generator import resources

    resolved = root.resolve()
    if resolved == Path(resolved.anchor):
        raise UsageError(f"output root {root} is the file-system root; choose a directory")
    for own in (resources.templates_dir(), resources.schema_path("cluster").parent):
        own = own.resolve()
        # Inside (or equal to) them only: a repository that holds a virtualenv with
        # clustergen installed contains them, and rendering there is the normal case.
        if resolved.is_relative_to(own):
            raise UsageError(
                f"output root {root} is inside clustergen's own files ({own}); choose another"
            )


def plan(snapshot: Snapshot, files: Mapping[str, bytes]) -> Plan:
    """Compare the rendered files with the tree as the snapshot holds it. Never reads through
    a link, and never shows the bytes of a file that is not clustergen's."""
    recorded, pending = snapshot.manifest()
    accepted: dict[str, set[str]] = {}
    for source in (recorded, pending):
        for path, sha in source.items():
            accepted.setdefault(path, set()).add(sha)

    def ours(path: str, data: bytes) -> bool:
        if path in accepted:
            return digest(data) in accepted[path]
        return looks_generated(data)

    changes: list[Change] = []
    unchanged: list[str] = []
    conflicts: list[str] = []
    refused: list[tuple[str, str]] = []
    for path, new in sorted(files.items()):
        try:
            old = snapshot.read(path)
        except NotRegular as exc:
            refused.append((path, exc.reason))
            changes.append(Change(path, "update", None, new, hidden=f"{NOT_OURS}: {exc.reason}"))
            continue
        if old is None:
            changes.append(Change(path, "create", None, new))
        elif old == new:
            unchanged.append(path)
        elif not looks_generated(old):
            # A user's file (or a hard link to one) where a generated file belongs: its
            # bytes are never shown, it may be a private key.
            changes.append(Change(path, "update", None, new, hidden=NOT_OURS))
            conflicts.append(path)
        else:
            changes.append(Change(path, "update", old, new))
            if not ours(path, old):
                conflicts.append(path)

    known = frozenset(files) | frozenset(accepted)
    scanned = _scan_generated(snapshot, known)
    kept: list[tuple[str, str]] = []
    for path in sorted((set(accepted) | set(scanned)) - set(files)):
        data, why = removal(snapshot, path, accepted, scanned.get(path))
        if data is not None:
            changes.append(Change(path, "remove", data, None))
        elif why:
            kept.append((path, why))

    manifest = {path: digest(data) for path, data in files.items()}
    return Plan(
        tuple(changes),
        tuple(unchanged),
        tuple(sorted(conflicts)),
        manifest,
        recorded,
        tuple(refused),
        tuple(kept),
        snapshot.dirs,
    )


def unified_diff(plan: Plan) -> str:
    """A git-style unified diff of every change, paths relative to the output root.

    Never shows the old bytes of a file that is not clustergen's, nor any *.sops.* content
    (the rendered side is plaintext)."""
    chunks = []
    for change in plan.changes:
        shown = visible(change.path)  # a name from the tree may hold terminal controls
        before = "/dev/null" if change.action == "create" else f"a/{shown}"
        after = "/dev/null" if change.new is None else f"b/{shown}"
        if change.hidden or is_sops(change.path):
            why = change.hidden or "encrypted with sops"
            chunks.append(f"Files {before} and {after} differ ({why}; contents not shown)\n")
            continue
        old = (change.old or b"").decode("utf-8", "replace").splitlines(keepends=True)
        new = (change.new or b"").decode("utf-8", "replace").splitlines(keepends=True)
        lines = list(difflib.unified_diff(old, new, before, after))
        chunks.append("".join(line if line.endswith("\n") else line + "\n" for line in lines))
    return "".join(chunks)


def kept_warnings(plan: Plan) -> list[Diagnostic]:
    """One warning per stale candidate left alone: a tampered manifest shows up here."""
    return [
        Diagnostic(path, 1, 1, "(file)", f"left alone, not removed: {why}", severity="warning")
        for path, why in plan.kept
    ]


def conflict_message(plan: Plan) -> str:
    listing = "\n".join(f"  {path}" for path in plan.conflicts)
    return (
        "these files were not written by clustergen (edited by hand, or not generated):\n"
        f"{listing}\n"
        "move the change into cluster.yaml / nodes.yaml and render again, or run "
        "`clustergen render --force` to overwrite them"
    )


def refused_message(plan: Plan) -> str:
    listing = "\n".join(f"  {path}: {why}" for path, why in plan.refused)
    return (
        "clustergen writes these files, but something else is in their place "
        "(never replaced, not even with --force):\n"
        f"{listing}\n"
        "remove those entries and render again"
    )
