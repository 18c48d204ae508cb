"""File-system access that never follows a link, reads only regular files, and caps sizes.

Everything below an output root is untrusted: a pull request can turn any directory into a
symbolic link, put a FIFO or a device node where a file belongs, or hard-link a private key
into a generated path. So every path is reached one component at a time from a directory
file descriptor (O_DIRECTORY | O_NOFOLLOW), every file is opened with O_NOFOLLOW |
O_NONBLOCK and checked with fstat before a byte is read, and every read has a cap. The root
itself is what the user named on the command line; that one is trusted.

Longer than ~300 lines on purpose: one job (reach, read and write paths without following a
link), and every guarantee above depends on the others (the descriptor walk, the checks
before open, the capped read, the temp-file write); split, they would be checked apart.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath

# The refusals are errors.py's; named here too, as callers that read through safefs catch them.
from generator.errors import NotRegular as NotRegular
from generator.errors import UnsafePath as UnsafePath
from generator.errors import UsageError

# Generated files are a few hundred kB for a thousand nodes; anything far larger is not ours.
MAX_FILE_BYTES = 32 * 1024 * 1024
HEAD_BYTES = 512

_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | _CLOEXEC
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | _CLOEXEC
_NEW_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | _CLOEXEC


def kind(mode: int) -> str:
    """What a non-regular directory entry is, in words."""
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a regular file" if stat.S_ISREG(mode) else "not a regular file"


def not_followed(what: str) -> str:
    return f"is {what}; clustergen never follows links and reads or writes only regular files"


def _read_fd(fd: int, shown: str, cap: int, want: Callable[[bytes], bool] | None) -> bytes | None:
    """Bytes of an open regular file, at most cap; None when want() rejects its head."""
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        raise NotRegular(shown, not_followed(kind(info.st_mode)))
    # O_NONBLOCK only mattered for opening; a regular file never blocks.
    chunks: list[bytes] = []
    size = 0
    first = True
    while True:
        chunk = os.read(fd, HEAD_BYTES if first else 1 << 20)
        # A file whose head is not wanted is never read further, however large it is (a
        # big terraform.tfstate next to the generated files is not a problem).
        if first and want is not None and not want(chunk):
            return None
        if first and info.st_size > cap:
            raise NotRegular(shown, f"is larger than {cap} bytes")
        first = False
        if not chunk:
            break
        size += len(chunk)
        if size > cap:  # it grew while being read
            raise NotRegular(shown, f"is larger than {cap} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def read_file(path: Path, *, shown: str | None = None, cap: int | None = None) -> bytes:
    """One input file (cluster.yaml, a key file): the last component must be a regular file,
    not a link; its directory is what the user named. FileNotFoundError when it is absent."""
    shown = shown or str(path)
    cap = MAX_FILE_BYTES if cap is None else cap
    info = os.lstat(path)
    if not stat.S_ISREG(info.st_mode):  # before open: opening a FIFO or device has effects
        raise NotRegular(shown, not_followed(kind(info.st_mode)))
    try:
        fd = os.open(path, _READ_FLAGS)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise NotRegular(shown, not_followed("a symbolic link")) from None
        raise
    try:
        data = _read_fd(fd, shown, cap, None)
    finally:
        os.close(fd)
    assert data is not None
    return data


def _parts(rel: str) -> list[str]:
    parts = PurePosixPath(rel).parts
    if not parts or any(p in ("", ".", "..", "/") for p in parts) or rel.startswith("/"):
        raise ValueError(f"not a relative path below the root: {rel!r}")
    return list(parts)


class Tree:
    """A directory tree reached only through directory file descriptors.

    root: the directory (followed if it is a link: the user named it). When it does not exist
    and create is False, the tree is empty: every read finds nothing.
    """

    def __init__(self, root: Path, *, create: bool = False) -> None:
        self.root = root
        self._dirs: dict[tuple[str, ...], int] = {}
        try:
            if create:
                root.mkdir(parents=True, exist_ok=True)
            fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | _CLOEXEC)
        except FileNotFoundError:
            if create:
                raise
            return
        except NotADirectoryError:
            raise UsageError(f"output root {root} exists and is not a directory") from None
        self._dirs[()] = fd

    def close(self) -> None:
        for fd in self._dirs.values():
            os.close(fd)
        self._dirs.clear()

    def __enter__(self) -> Tree:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def exists(self) -> bool:
        return () in self._dirs

    # --- directories ------------------------------------------------------------------

    def dir_fd(self, parts: tuple[str, ...] | list[str], *, create: bool = False) -> int | None:
        """The fd of the directory at parts; None when it (or a parent) does not exist.
        UnsafePath when a component is a link or not a directory."""
        key = tuple(parts)
        if key in self._dirs:
            return self._dirs[key]
        if not key:
            if create:
                raise UsageError(f"output root {self.root} does not exist")
            return None
        parent = self.dir_fd(key[:-1], create=create)
        if parent is None:
            return None
        name = key[-1]
        shown = "/".join(key)
        try:
            try:
                info = os.stat(name, dir_fd=parent, follow_symlinks=False)
            except FileNotFoundError:
                if not create:
                    return None
                with contextlib.suppress(FileExistsError):
                    os.mkdir(name, 0o755, dir_fd=parent)
                info = os.stat(name, dir_fd=parent, follow_symlinks=False)
        except OSError as exc:
            raise UsageError(
                f"cannot {'create' if create else 'open'} {shown}: {exc.strerror}"
            ) from None
        if not stat.S_ISDIR(info.st_mode):
            raise UnsafePath(
                shown,
                f"is {kind(info.st_mode)} where clustergen needs a directory (not a directory)",
            )
        try:
            fd = os.open(name, _DIR_FLAGS, dir_fd=parent)
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENOTDIR):  # swapped for a link meanwhile
                raise UnsafePath(shown, not_followed("not a directory")) from None
            raise
        self._dirs[key] = fd
        return fd

    def _parent(self, rel: str, *, create: bool = False) -> tuple[int | None, str]:
        parts = _parts(rel)
        return self.dir_fd(parts[:-1], create=create), parts[-1]

    # --- files ------------------------------------------------------------------------

    def lstat(self, rel: str) -> os.stat_result | None:
        """The entry itself (never its target); None when absent."""
        parent, name = self._parent(rel)
        if parent is None:
            return None
        try:
            return os.stat(name, dir_fd=parent, follow_symlinks=False)
        except FileNotFoundError:
            return None

    def read(
        self,
        rel: str,
        *,
        cap: int | None = None,
        want: Callable[[bytes], bool] | None = None,
    ) -> bytes | None:
        """A regular file's bytes; None when absent (or want() rejects its first bytes).
        NotRegular when the entry is a link, FIFO, device, directory, or larger than cap."""
        try:
            return self._read(rel, MAX_FILE_BYTES if cap is None else cap, want)
        except (UnsafePath, FileNotFoundError):
            raise
        except OSError as exc:  # named by its path below the root, not by its last part
            raise UsageError(f"cannot read {rel}: {exc.strerror or exc}") from None

    def _read(self, rel: str, cap: int, want: Callable[[bytes], bool] | None) -> bytes | None:
        parent, name = self._parent(rel)
        if parent is None:
            return None
        try:
            info = os.stat(name, dir_fd=parent, follow_symlinks=False)
        except FileNotFoundError:
            return None
        if not stat.S_ISREG(info.st_mode):
            # Checked before open: opening a device or FIFO can block or have effects.
            raise NotRegular(rel, not_followed(kind(info.st_mode)))
        try:
            fd = os.open(name, _READ_FLAGS, dir_fd=parent)
        except FileNotFoundError:
            return None
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise NotRegular(rel, not_followed("a symbolic link")) from None
            raise
        try:
            return _read_fd(fd, rel, cap, want)
        finally:
            os.close(fd)

    def write(self, rel: str, data: bytes, mode: int | None = None, *, tmp_prefix: str) -> None:
        """Replace rel with data: a new temp file beside it (O_EXCL, never a link), fsync,
        rename over the entry (which replaces the entry itself, never a link's target),
        fsync the directory. The mode is the existing file's own, else 0644.
        Errors name rel, never the temp file."""
        try:
            parent, name = self._parent(rel, create=True)
            assert parent is not None
            if mode is None:
                try:
                    info = os.stat(name, dir_fd=parent, follow_symlinks=False)
                except FileNotFoundError:
                    mode = 0o644
                else:
                    if not stat.S_ISREG(info.st_mode):
                        raise NotRegular(rel, not_followed(kind(info.st_mode)))
                    mode = info.st_mode & 0o7777
            tmp = f"{tmp_prefix}{secrets.token_hex(8)}"
            fd = os.open(tmp, _NEW_FLAGS, 0o600, dir_fd=parent)
            try:
                try:
                    view = memoryview(data)
                    while view:
                        written = os.write(fd, view)
                        view = view[written:]
                    os.fchmod(fd, mode)
                    os.fsync(fd)
                finally:
                    os.close(fd)
                os.replace(tmp, name, src_dir_fd=parent, dst_dir_fd=parent)
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp, dir_fd=parent)
                raise
            os.fsync(parent)
        except OSError as exc:
            raise UsageError(f"cannot write {rel}: {exc.strerror or exc}") from None

    def unlink(self, rel: str) -> None:
        """Remove the entry rel (a regular file); nothing when absent."""
        parent, name = self._parent(rel)
        if parent is None:
            return
        try:
            os.unlink(name, dir_fd=parent)
        except FileNotFoundError:
            return
        except OSError as exc:
            raise UsageError(f"cannot remove {rel}: {exc.strerror or exc}") from None

    def rmdir(self, rel: str) -> bool:
        """Remove the directory rel when it is empty; True when it was removed."""
        parts = _parts(rel)
        parent = self.dir_fd(parts[:-1])
        if parent is None:
            return False
        key = tuple(parts)
        if key in self._dirs:
            os.close(self._dirs.pop(key))
        try:
            os.rmdir(parts[-1], dir_fd=parent)
        except OSError:
            return False
        return True

    def entries(self, rel_dir: str) -> Iterator[tuple[str, os.stat_result]]:
        """(name, lstat) of every entry directly in rel_dir; nothing when it is absent."""
        fd = self.dir_fd(_parts(rel_dir) if rel_dir else [])
        if fd is None:
            return
        for name in sorted(os.listdir(fd)):
            try:
                info = os.stat(name, dir_fd=fd, follow_symlinks=False)
            except FileNotFoundError:
                continue
            except OSError as exc:  # named by its path below the root, not by its last part
                shown = f"{rel_dir}/{name}" if rel_dir else name
                raise UsageError(f"cannot read {shown}: {exc.strerror or exc}") from None
            yield name, info

    def open_lock(self, rel: str) -> int:
        """A file descriptor of the lock file rel, created if needed, never through a link."""
        parent, name = self._parent(rel, create=True)
        assert parent is not None
        with contextlib.suppress(FileNotFoundError):
            info = os.stat(name, dir_fd=parent, follow_symlinks=False)
            if not stat.S_ISREG(info.st_mode):  # checked before open: a FIFO or device
                raise NotRegular(rel, not_followed(kind(info.st_mode)))
        try:
            fd = os.open(
                name, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | _CLOEXEC, 0o644, dir_fd=parent
            )
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise NotRegular(rel, not_followed("a symbolic link")) from None
            raise UsageError(f"cannot open {rel}: {exc.strerror or exc}") from None
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            os.close(fd)
            raise NotRegular(rel, not_followed(kind(info.st_mode)))
        return fd
