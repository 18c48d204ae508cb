"""Stage 7: bring the output tree in line with the rendered files, or describe the drift.

What clustergen generated is recorded in .clustergen/manifest.json (path -> SHA-256 of the
bytes written). That record is what lets sync remove files an earlier render generated,
recognise a generated file that was edited by hand, and leave every other file alone.

Crash safety: every file is replaced through a temp file + fsync + rename, so it is always
fully old or fully new. Before writing, the manifest records the new hashes as "pending";
a render killed half-way therefore leaves files whose hashes are all known, and the next
render neither mistakes them for hand edits nor loses track of them.
"""

from __future__ import annotations

import contextlib
import difflib
import errno
import fcntl
import hashlib
import json
import os
import stat
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from generator import constants
from generator.controls import visible
from generator.errors import ConflictError, Diagnostic, UsageError
from generator.safefs import NotRegular, Tree, UnsafePath

STATE_DIR = constants.STATE_DIR
MANIFEST = constants.MANIFEST
LOCK = f"{STATE_DIR}/lock"
STATE_GITIGNORE = f"{STATE_DIR}/.gitignore"
TMP_PREFIX = ".clustergen-tmp-"
HEADER_MARK = constants.HEADER_MARK.encode()
LOCK_TIMEOUT_S = 30.0
MAX_MANIFEST_BYTES = 8 * 1024 * 1024
NOT_OURS = "not a clustergen file"


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


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


def _read_manifest(tree: Tree) -> tuple[dict[str, str], dict[str, str]]:
    """(files, pending) of the manifest; empty when there is none or it is unreadable.
    A manifest that is a link or not a regular file is refused (UnsafePath)."""
    data = tree.read(MANIFEST, cap=MAX_MANIFEST_BYTES)
    if data is None:
        return {}, {}
    try:
        raw = json.loads(data.decode("utf-8"))
    except (ValueError, RecursionError):  # corrupt, or nested beyond the parser's stack
        return {}, {}
    if not isinstance(raw, dict):
        return {}, {}
    return _str_map(raw.get("files")), _str_map(raw.get("pending"))


def _confined(path: str) -> bool:
    """A manifest entry names a file below the output root, never outside it: the manifest
    is committed, and a bad merge or a hostile change must not make render delete elsewhere."""
    pure = PurePosixPath(path)
    return (
        bool(path)
        and "\\" not in path
        and not pure.is_absolute()
        and all(part not in ("", ".", "..") for part in path.split("/"))
        and pure.parts[0] != STATE_DIR
    )


def _str_map(value: object) -> dict[str, str]:
    if not isinstance(value, dict):
        return {}
    return {
        k: v for k, v in value.items() if isinstance(k, str) and isinstance(v, str) and _confined(k)
    }


def _manifest_bytes(files: Mapping[str, str], pending: Mapping[str, str] | None = None) -> bytes:
    doc: dict[str, object] = {
        "comment": "written by clustergen: the files it generated and their SHA-256",
        "files": dict(sorted(files.items())),
    }
    if pending:
        doc["pending"] = dict(sorted(pending.items()))
    return (json.dumps(doc, indent=2) + "\n").encode("utf-8")


def _looks_generated(data: bytes) -> bool:
    return HEADER_MARK in data[:512]


def _plain_name(name: str) -> bool:
    """A name clustergen could have generated: valid UTF-8, printable, not hidden, not a temp."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:  # undecodable bytes (surrogate escapes): never one of ours
        return False
    return name.isprintable() and not name.startswith(".")


def _scan_generated(
    tree: Tree, managed_dirs: tuple[str, ...], known: frozenset[str] = frozenset()
) -> dict[str, bytes]:
    """Regular files directly in the directories clustergen writes to that carry its header,
    with their bytes. Links, FIFOs and devices are never opened.

    known: paths plan() already decides on; they are not read again.
    """
    found: dict[str, bytes] = {}
    for directory in sorted(set(managed_dirs)):
        for name, info in tree.entries(directory):
            path = f"{directory}/{name}"
            if path in known or not _plain_name(name) or not _is_regular(info):
                continue
            try:
                data = tree.read(path, want=_looks_generated)
            except NotRegular:  # swapped meanwhile, or a huge file with the header: not ours
                continue
            if data is not None:
                found[path] = data
    return found


def _is_regular(info: os.stat_result) -> bool:
    return stat.S_ISREG(info.st_mode)


def removal(
    tree: Tree,
    path: str,
    accepted: Mapping[str, set[str]],
    managed: frozenset[str],
    data: bytes | None = None,
) -> tuple[bytes | None, str]:
    """The one place that decides whether a file clustergen no longer renders is removed.

    (bytes, "") when it is: it lies in a directory clustergen renders into, is a regular file
    reached without following a link, carries clustergen's header, and its bytes hash to the
    value the manifest records. Otherwise (None, why not); --force changes none of this.
    (None, "") when there is nothing at path.
    """
    if PurePosixPath(path).parent.as_posix() not in managed:
        return None, "not in a directory clustergen renders into"
    if not _plain_name(PurePosixPath(path).name):
        return None, "not a name clustergen generates"
    if data is None:
        try:
            data = tree.read(path)
        except NotRegular as exc:
            return None, f"{NOT_OURS}: {exc.reason}"
        if data is None:
            return None, ""
    if not _looks_generated(data):
        return None, f"{NOT_OURS}: it does not carry clustergen's header"
    if path not in accepted:
        return None, "not recorded in .clustergen/manifest.json; remove it yourself if it is stale"
    if digest(data) not in accepted[path]:
        return None, "changed since clustergen wrote it; remove it yourself if it is stale"
    return data, ""


def verified(root: Path) -> Callable[[str, bytes], bool]:
    """For verify: True when these exact bytes are already on disk at path and the manifest
    records their SHA-256, i.e. they passed verify when this clustergen wrote them."""
    tree = Tree(root)
    try:
        recorded, pending = _read_manifest(tree)
    except UnsafePath:
        recorded, pending = {}, {}

    def known(path: str, data: bytes) -> bool:
        shas = {recorded.get(path), pending.get(path)} - {None}
        if not shas or digest(data) not in shas:
            return False
        try:
            return tree.read(path) == data
        except (UnsafePath, OSError):
            return False

    return known


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


def plan(root: Path, files: Mapping[str, bytes], managed_dirs: tuple[str, ...] = ()) -> Plan:
    """Compare the rendered files with the tree under root. Reads only, never through a
    link, and never the bytes of a file that is not clustergen's."""
    with Tree(root) as tree:
        return _plan(tree, files, managed_dirs)


def _plan(tree: Tree, files: Mapping[str, bytes], managed_dirs: tuple[str, ...]) -> Plan:
    recorded, pending = _read_manifest(tree)
    accepted: dict[str, set[str]] = {}
    for source in (recorded, pending):
        for path, sha in source.items():
            accepted.setdefault(path, set()).add(sha)

    def ours(path: str, data: bytes) -> bool:
        if path in accepted:
            return digest(data) in accepted[path]
        return _looks_generated(data)

    changes: list[Change] = []
    unchanged: list[str] = []
    conflicts: list[str] = []
    refused: list[tuple[str, str]] = []
    for path, new in sorted(files.items()):
        try:
            old = tree.read(path)
        except NotRegular as exc:
            refused.append((path, exc.reason))
            changes.append(Change(path, "update", None, new, hidden=f"{NOT_OURS}: {exc.reason}"))
            continue
        if old is None:
            changes.append(Change(path, "create", None, new))
        elif old == new:
            unchanged.append(path)
        elif not _looks_generated(old):
            # A user's file (or a hard link to one) where a generated file belongs: its
            # bytes are never shown, it may be a private key.
            changes.append(Change(path, "update", None, new, hidden=NOT_OURS))
            conflicts.append(path)
        else:
            changes.append(Change(path, "update", old, new))
            if not ours(path, old):
                conflicts.append(path)

    managed = frozenset(managed_dirs)
    known = frozenset(files) | frozenset(accepted)
    scanned = _scan_generated(tree, managed_dirs, known)
    kept: list[tuple[str, str]] = []
    for path in sorted((set(accepted) | set(scanned)) - set(files)):
        data, why = removal(tree, path, accepted, managed, scanned.get(path))
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
        tuple(sorted(managed)),
    )


def _is_sops(path: str) -> bool:
    return ".sops." in PurePosixPath(path).name


def unified_diff(plan: Plan) -> str:
    """A git-style unified diff of every change, paths relative to the output root.

    Never shows the old bytes of a file that is not clustergen's, nor any *.sops.* content
    (the rendered side is plaintext)."""
    chunks = []
    for change in plan.changes:
        shown = visible(change.path)  # a name from the tree may hold terminal controls
        before = "/dev/null" if change.action == "create" else f"a/{shown}"
        after = "/dev/null" if change.new is None else f"b/{shown}"
        if change.hidden or _is_sops(change.path):
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


def write_atomic(path: Path, data: bytes, mode: int | None = None) -> None:
    """Replace path with data (temp file, fsync, rename, fsync dir), never through a link
    in its last component. The directory is the caller's."""
    with Tree(path.parent, create=True) as tree:
        tree.write(path.name, data, mode, tmp_prefix=TMP_PREFIX)


@contextlib.contextmanager
def locked(root: Path, timeout: float = LOCK_TIMEOUT_S) -> Iterator[None]:
    """Hold an exclusive lock on the output tree (released when the process dies, too).
    Neither .clustergen/ nor the lock file may be a link: the lock is created, as root too."""
    with Tree(root, create=True) as tree:
        tree.dir_fd([STATE_DIR], create=True)
        try:
            current = tree.read(STATE_GITIGNORE)
        except NotRegular:
            current = None
        if current != b"lock\n":
            tree.write(STATE_GITIGNORE, b"lock\n", 0o644, tmp_prefix=TMP_PREFIX)
        fd = tree.open_lock(LOCK)
        try:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except OSError as exc:
                    if exc.errno not in (errno.EAGAIN, errno.EACCES):
                        raise
                    if time.monotonic() > deadline:
                        raise UsageError(
                            f"another clustergen render holds {root / LOCK} "
                            f"(waited {timeout:.0f} s)"
                        ) from None
                    time.sleep(0.05)
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)


def _remove_stale_temp_files(tree: Tree, directories: set[str]) -> None:
    """Temp files of an interrupted render (in the state directory too): regular files only."""
    for directory in sorted(directories):
        try:
            listing = list(tree.entries(directory))
        except UnsafePath:
            continue
        for name, info in listing:
            if name.startswith(TMP_PREFIX) and _is_regular(info):
                tree.unlink(f"{directory}/{name}" if directory else name)


def _prune_empty_dirs(tree: Tree, directories: set[str]) -> None:
    for directory in sorted(directories, key=lambda p: len(PurePosixPath(p).parts), reverse=True):
        current = PurePosixPath(directory)
        while current.parts and tree.rmdir(current.as_posix()):
            current = current.parent
            if current.as_posix() == ".":
                break


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


def apply(root: Path, plan: Plan, *, force: bool = False) -> None:
    """Write the plan. Refuses (before writing anything) when it has conflicts, unless force,
    and when a generated path is taken by a link, FIFO, device or directory, always."""
    if plan.refused:
        raise ConflictError(refused_message(plan), [p for p, _ in plan.refused])
    if plan.conflicts and not force:
        raise ConflictError(conflict_message(plan), list(plan.conflicts))
    with Tree(root, create=True) as tree:
        # Temp files an interrupted render left (in .clustergen/ too), even when nothing
        # else is to be done.
        touched = {PurePosixPath(c.path).parent.as_posix() for c in plan.changes}
        _remove_stale_temp_files(tree, (touched | set(plan.dirs) | {STATE_DIR}) - {"."})
        if not plan.changes and not plan.manifest_changed:
            return
        pending = {c.path: digest(c.new) for c in plan.changes if c.new is not None}

        def write(path: str, data: bytes, mode: int | None = None) -> None:
            tree.write(path, data, mode, tmp_prefix=TMP_PREFIX)

        if pending:
            write(MANIFEST, _manifest_bytes(plan.old_manifest, pending), 0o644)
        for change in plan.changes:
            if change.new is not None:
                write(change.path, change.new)
            else:
                tree.unlink(change.path)
        removed = {PurePosixPath(c.path).parent.as_posix() for c in plan.changes if c.new is None}
        _prune_empty_dirs(tree, removed - {"."})
        write(MANIFEST, _manifest_bytes(plan.manifest), 0o644)
