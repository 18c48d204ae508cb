"""The existing output tree, read once when a run starts and passed forward.

Three stages decide by what is on disk: verify skips bytes the manifest records and that are
there, seal keeps the ciphertext of an existing *.sops.* file, sync's plan compares, finds
hand edits and stale files. They all read this one frozen Snapshot, not the disk.

What it holds, read through safefs (no link followed, nothing but a regular file opened,
every read capped): the manifest, and for each directory clustergen renders into every entry
directly in it with its st_mode, size and identity. A regular file's whole bytes are read
when it is clustergen's to decide on (it carries the header, the manifest names it, or it is
a *.sops.* file); of any other file only its first bytes (a user's terraform.tfstate beside
the outputs is never read whole). A path the snapshot does not hold whole (outside those
directories, or a user's file where a generated one belongs) is read at the point of
decision, as copier reads its destination.

The tree may change after the snapshot: render takes the lock and then asks current(),
which compares every entry's identity (a stat, no read) and reads the tree again when
anything differs, so a plan never decides on bytes older than the lock.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from types import MappingProxyType

from generator import manifest
from generator.errors import ClustergenError, NotRegular
from generator.safefs import MAX_FILE_BYTES, Tree, kind, not_followed

# (inode, st_mode, size, mtime_ns, ctime_ns): an entry that kept these was not replaced or
# written (an atomic rename makes a new inode; an in-place write moves mtime and ctime).
Stamp = tuple[int, int, int, int, int]


def _stamp(info: os.stat_result) -> Stamp:
    return (info.st_ino, info.st_mode, info.st_size, info.st_mtime_ns, info.st_ctime_ns)


def is_sops(path: str) -> bool:
    return ".sops." in PurePosixPath(path).name


def plain_name(name: str) -> bool:
    """A name clustergen could have generated: valid UTF-8, printable, not hidden, not a temp."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:  # undecodable bytes (surrogate escapes): never one of ours
        return False
    return name.isprintable() and not name.startswith(".")


@dataclass(frozen=True)
class Entry:
    """One directory entry as it was (lstat, never its target)."""

    mode: int
    size: int
    data: bytes | None = None  # the whole file; None when only its first bytes were read
    error: ClustergenError | None = None  # what reading it raised (not regular, too large)


@dataclass(frozen=True)
class Snapshot:
    root: Path
    dirs: tuple[str, ...]  # the directories clustergen renders into, sorted
    recorded: Mapping[str, str]  # the manifest's files: path -> SHA-256
    pending: Mapping[str, str]  # hashes of a render interrupted while writing
    manifest_error: ClustergenError | None  # the manifest is a link, a FIFO, ...
    entries: Mapping[str, Entry]  # path -> entry, for every plain name directly in dirs
    dir_errors: Mapping[str, ClustergenError]  # a directory of dirs that cannot be listed
    stamps: tuple[tuple[str, Stamp | None], ...]  # what current() compares

    def manifest(self) -> tuple[Mapping[str, str], Mapping[str, str]]:
        """(files, pending) of the manifest; UnsafePath when it is not a regular file."""
        if self.manifest_error is not None:
            raise self.manifest_error
        return self.recorded, self.pending

    def listing(self, directory: str) -> Iterator[tuple[str, Entry]]:
        """(path, entry) of everything directly in a directory of dirs, sorted by name.
        UnsafePath when the directory (or a parent) is a link or not a directory."""
        if directory in self.dir_errors:
            raise self.dir_errors[directory]
        prefix = f"{directory}/"
        for path, entry in self.entries.items():
            if path.startswith(prefix) and "/" not in path[len(prefix) :]:
                yield path, entry

    def read(self, path: str, *, cap: int = MAX_FILE_BYTES) -> bytes | None:
        """What safefs.Tree.read would answer for path (None when absent; NotRegular for a
        link, FIFO, device, directory or a file larger than cap), without a second read
        of anything the snapshot holds."""
        parent = PurePosixPath(path).parent.as_posix()
        if parent not in self.dirs or not plain_name(PurePosixPath(path).name):
            return self._read_now(path, cap)
        if parent in self.dir_errors:
            raise self.dir_errors[parent]
        entry = self.entries.get(path)
        if entry is None:
            return None
        if entry.error is not None:
            raise entry.error
        if entry.size > cap:
            raise NotRegular(path, f"is larger than {cap} bytes")
        return entry.data if entry.data is not None else self._read_now(path, cap)

    def whole(self, path: str) -> bytes | None:
        """The bytes the snapshot holds for path, or None (absent, not read whole)."""
        entry = self.entries.get(path)
        return entry.data if entry is not None else None

    def known(self, path: str, data: bytes) -> bool:
        """For verify: these exact bytes are on disk at path and the manifest records their
        SHA-256, i.e. they passed verify when this clustergen wrote them."""
        if self.manifest_error is not None:
            return False
        shas = {self.recorded.get(path), self.pending.get(path)} - {None}
        return bool(shas) and manifest.digest(data) in shas and self.whole(path) == data

    def current(self) -> Snapshot:
        """This snapshot when nothing in it changed since it was taken, else a new one."""
        return self if _stamps(self.root, self.dirs) == self.stamps else take(self.root, self.dirs)

    def _read_now(self, path: str, cap: int) -> bytes | None:
        with Tree(self.root) as tree:
            return tree.read(path, cap=cap)


def take(root: Path, dirs: tuple[str, ...] | list[str] = ()) -> Snapshot:
    """Read the output tree under root: the manifest and the directories clustergen renders
    into. Raises nothing about the tree's content: each stage meets a refusal (a link where
    a directory belongs, an unreadable file) where it would have read the path itself."""
    managed = tuple(sorted(set(dirs)))
    with Tree(root) as tree:
        manifest_error: ClustergenError | None = None
        try:
            recorded, pending = manifest.parse(
                tree.read(manifest.MANIFEST, cap=manifest.MAX_MANIFEST_BYTES)
            )
        except ClustergenError as exc:
            recorded, pending, manifest_error = {}, {}, exc
        named = set(recorded) | set(pending)
        entries: dict[str, Entry] = {}
        dir_errors: dict[str, ClustergenError] = {}
        stamps: list[tuple[str, Stamp | None]] = [(manifest.MANIFEST, _lstat(tree))]
        for directory in managed:
            try:
                listing = list(tree.entries(directory))
            except ClustergenError as exc:
                dir_errors[directory] = exc
                stamps.append((directory, None))
                continue
            for name, info in listing:
                path = f"{directory}/{name}"
                stamps.append((path, _stamp(info)))
                if not plain_name(name):  # hidden, a temp file, not UTF-8: never ours
                    continue
                entry = _entry(tree, path, info, path in named or is_sops(path))
                if entry is not None:
                    entries[path] = entry
    return Snapshot(
        root,
        managed,
        MappingProxyType(recorded),
        MappingProxyType(pending),
        manifest_error,
        MappingProxyType(entries),
        MappingProxyType(dir_errors),
        tuple(stamps),
    )


def _entry(tree: Tree, path: str, info: os.stat_result, whole: bool) -> Entry | None:
    """The entry at path; None when it was removed meanwhile."""
    mode, size = info.st_mode, info.st_size
    if not stat.S_ISREG(mode):  # never opened: opening a FIFO or device has effects
        return Entry(mode, size, error=NotRegular(path, not_followed(kind(mode))))
    seen: list[bool] = []

    def want(head: bytes) -> bool:
        seen.append(True)
        return whole or manifest.looks_generated(head)

    try:
        data = tree.read(path, want=want)
    except ClustergenError as exc:  # swapped meanwhile, larger than the cap, unreadable
        return Entry(mode, size, error=exc)
    if data is None and not seen:  # removed meanwhile
        return None
    return Entry(mode, size, data)


def _lstat(tree: Tree) -> Stamp | None:
    try:
        info = tree.lstat(manifest.MANIFEST)
    except ClustergenError:
        return None
    return _stamp(info) if info is not None else None


def _stamps(root: Path, dirs: tuple[str, ...]) -> tuple[tuple[str, Stamp | None], ...]:
    """What take() records of the tree, by stat alone."""
    with Tree(root) as tree:
        stamps: list[tuple[str, Stamp | None]] = [(manifest.MANIFEST, _lstat(tree))]
        for directory in dirs:
            try:
                listing = list(tree.entries(directory))
            except ClustergenError:
                stamps.append((directory, None))
                continue
            stamps += [(f"{directory}/{name}", _stamp(info)) for name, info in listing]
    return tuple(stamps)
