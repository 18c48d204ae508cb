"""clustergen's CLI called in this process (its exit code and what it printed)."""

from __future__ import annotations

import pytest

from generator.cli import main


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """main(ARGS): (exit code, stdout, stderr)."""
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err
