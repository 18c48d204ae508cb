"""The diagnostic record and the small error hierarchy that cli.py turns into exit codes."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Diagnostic:
    """One problem, pointing at the file, line and column (1-based) it comes from."""

    file: str
    line: int
    col: int
    path: str
    message: str
    hint: str = ""
    severity: str = "error"

    @property
    def is_error(self) -> bool:
        return self.severity == "error"


class ClustergenError(Exception):
    """Base of every error a user may see; exit_code is what the process returns."""

    exit_code = 2


class InputError(ClustergenError):
    """The inputs are invalid: one or more diagnostics, exit 1."""

    exit_code = 1

    def __init__(self, diagnostics: Iterable[Diagnostic]) -> None:
        self.diagnostics = tuple(sorted(diagnostics))
        super().__init__(f"{len(self.diagnostics)} problem(s)")


class UsageError(ClustergenError):
    """Wrong invocation or environment (missing tool, unreadable directory): exit 2."""

    exit_code = 2


class ConflictError(ClustergenError):
    """The output tree holds something clustergen must not overwrite: exit 1.

    paths: the files concerned, so --format json/github can give one record each."""

    exit_code = 1

    def __init__(self, message: str, paths: Iterable[str] = ()) -> None:
        self.paths = tuple(paths)
        super().__init__(message)


class InternalError(ClustergenError):
    """A clustergen bug (a template that fails, an unexpected exception): exit 3."""

    exit_code = 3


class UnsafePath(UsageError):
    """A path clustergen refuses to use: a link, a FIFO, a device, a file where a directory
    belongs, or too large. The message names the path as the user knows it."""

    def __init__(self, shown: str, reason: str) -> None:
        self.shown = shown
        self.reason = reason
        super().__init__(f"{shown}: {reason}")


class NotRegular(UnsafePath):
    """The last component exists but is not a regular file (or is too large)."""


class KeyUnavailable(UsageError):
    """sops could not get the data key: no key at all, or a key that is not a recipient.

    `check` catches it to fall back to comparing what it can see without decrypting.
    """


class HCLRejected(ValueError):
    """HashiCorp's parser refused the text; line is 1-based. Internal to verify, which turns
    it into a Diagnostic (a clustergen bug)."""

    def __init__(self, message: str, line: int) -> None:
        super().__init__(message)
        self.line = line


class Unusual(Exception):
    """yamlevents: not a plain case (an anchor reused, a tag, a merge key, ...); the caller
    does the full load, which decides and words it."""


class Cycle(Exception):
    """plaincopy: a YAML alias that contains itself; load turns it into a Diagnostic."""
