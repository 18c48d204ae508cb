"""clustergen's version: one home, pyproject.toml's [project] version.

Imported only for `--version` and `generator.__version__`: importlib.metadata and tomllib
cost milliseconds that a pre-commit hook must not pay on every run.
"""

from __future__ import annotations

from pathlib import Path

DISTRIBUTION = "clustergen"
UNKNOWN = "0+unknown"  # PEP 440 "local" form: sorts below every release, says it plainly


def version() -> str:
    """The checkout's pyproject.toml when this package runs from one (an editable install or
    PYTHONPATH: the metadata recorded at install time may be older), else the installed
    distribution's metadata (a wheel carries no pyproject.toml), else UNKNOWN."""
    from_checkout = _checkout_version(Path(__file__).resolve().parent.parent / "pyproject.toml")
    if from_checkout:
        return from_checkout
    from importlib import metadata

    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return UNKNOWN


def _checkout_version(pyproject: Path) -> str | None:
    import tomllib

    try:
        project = tomllib.loads(pyproject.read_text(encoding="utf-8")).get("project", {})
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return None
    # A pyproject.toml beside site-packages/generator would be another project's.
    if not isinstance(project, dict) or project.get("name") != DISTRIBUTION:
        return None
    found = project.get("version")
    return found if isinstance(found, str) and found else None
