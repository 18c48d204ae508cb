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
