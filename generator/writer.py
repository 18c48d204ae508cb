"""Stage 7, writing: bring the output tree in line with a plan (sync.plan), under a lock.

Crash safety: every file is replaced through a temp file + fsync + rename, so it is always
fully old or fully new. Before writing, the manifest records the new hashes as "pending";
a render killed half-way therefore leaves files whose hashes are all known, and the next
render neither mistakes them for hand edits nor loses track of them.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import stat
import time
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from generator.errors import ConflictError, NotRegular, UnsafePath, UsageError
from generator.manifest import MANIFEST, STATE_DIR, digest, to_bytes
from generator.safefs import Tree
from generator.sync import Plan, conflict_message, refused_message

LOCK = f"{STATE_DIR}/lock"
STATE_GITIGNORE = f"{STATE_DIR}/.gitignore"
TMP_PREFIX = ".clustergen-tmp-"
LOCK_TIMEOUT_S = 30.0


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
            if name.startswith(TMP_PREFIX) and stat.S_ISREG(info.st_mode):
                tree.unlink(f"{directory}/{name}" if directory else name)


def _prune_empty_dirs(tree: Tree, directories: set[str]) -> None:
    for directory in sorted(directories, key=lambda p: len(PurePosixPath(p).parts), reverse=True):
        current = PurePosixPath(directory)
        while current.parts and tree.rmdir(current.as_posix()):
            current = current.parent
            if current.as_posix() == ".":
                break


def _changed_since_plan(tree: Tree, plan: Plan) -> list[str]:
    """Paths that are no longer what the plan decided on: a file created or edited, or one
    removed, after it was read. Never written over: the plan's decision would be stale."""
    moved = []
    for change in plan.changes:
        if change.action != "create" and change.old is None:
            continue  # not clustergen's (--force overwrites it) or refused: bytes never held
        try:
            if tree.read(change.path) == change.old:
                continue
        except UnsafePath:  # a link or a FIFO took its place meanwhile
            pass
        moved.append(change.path)
    return moved


def moved_message(paths: list[str]) -> str:
    listing = "\n".join(f"  {path}" for path in paths)
    return (
        f"these files changed while clustergen was rendering (nothing was written):\n{listing}\n"
        "render again"
    )


def apply(root: Path, plan: Plan, *, force: bool = False) -> None:
    """Write the plan. Refuses (before writing anything) when it has conflicts, unless force,
    when a generated path is taken by a link, FIFO, device or directory, always, and when a
    file it would replace or remove changed after the plan read it (compare and swap)."""
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
        moved = _changed_since_plan(tree, plan)
        if moved:
            raise ConflictError(moved_message(moved), moved)
        pending = {c.path: digest(c.new) for c in plan.changes if c.new is not None}

        def write(path: str, data: bytes, mode: int | None = None) -> None:
            tree.write(path, data, mode, tmp_prefix=TMP_PREFIX)

        if pending:
            write(MANIFEST, to_bytes(plan.old_manifest, pending), 0o644)
        for change in plan.changes:
            if change.new is not None:
                write(change.path, change.new)
            else:
                tree.unlink(change.path)
        removed = {PurePosixPath(c.path).parent.as_posix() for c in plan.changes if c.new is None}
        _prune_empty_dirs(tree, removed - {"."})
        write(MANIFEST, to_bytes(plan.manifest), 0o644)
