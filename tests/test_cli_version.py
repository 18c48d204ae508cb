"""`clustergen --version`: one home, pyproject.toml's version; read only when asked."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import generator
from generator import _version
from helpers.paths import ROOT


def _pyproject_version() -> str:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return str(data["project"]["version"])


def _version_of(package_parent: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    """`python -m generator --version` with only package_parent on the path (-S: not the
    venv's site-packages, where an install of clustergen would answer instead)."""
    return subprocess.run(
        [sys.executable, *flags, "-m", "generator", "--version"],
        env={**os.environ, "PYTHONPATH": str(package_parent)},
        cwd=package_parent,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _checkout(tmp_path: Path, pyproject: str | None) -> Path:
    root = tmp_path / "checkout"
    shutil.copytree(
        ROOT / "generator", root / "generator", ignore=shutil.ignore_patterns("__pycache__")
    )
    if pyproject is not None:
        (root / "pyproject.toml").write_text(pyproject, encoding="utf-8")
    return root


def test_the_package_and_the_cli_report_the_pyproject_version() -> None:
    assert generator.__version__ == _version.version() == _pyproject_version()
    done = _version_of(ROOT)
    assert (done.returncode, done.stdout, done.stderr) == (
        0,
        f"clustergen {_pyproject_version()}\n",
        "",
    )


def test_a_checkout_reads_its_own_pyproject(tmp_path: Path) -> None:
    root = _checkout(tmp_path, '[project]\nname = "clustergen"\nversion = "7.7.7"\n')
    assert _version_of(root, "-S").stdout == "clustergen 7.7.7\n"


def test_without_pyproject_or_metadata_the_version_says_unknown(tmp_path: Path) -> None:
    # Another project's pyproject.toml beside the package is not clustergen's.
    root = _checkout(tmp_path, '[project]\nname = "other"\nversion = "1.0"\n')
    done = _version_of(root, "-S")
    assert (done.returncode, done.stdout) == (0, f"clustergen {_version.UNKNOWN}\n")
    (root / "pyproject.toml").write_text("not toml [", encoding="utf-8")
    assert _version_of(root, "-S").stdout == f"clustergen {_version.UNKNOWN}\n"


def test_a_normal_run_does_not_import_importlib_metadata(tmp_path: Path) -> None:
    code = (
        "import sys; from generator.cli import main; code = main(sys.argv[1:]); "
        "print(sorted(m for m in ('importlib.metadata', 'tomllib') if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, "-C", str(ROOT / "examples" / "minimal"), "validate"],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.stdout.splitlines()[-1] == "[]", done.stdout + done.stderr
