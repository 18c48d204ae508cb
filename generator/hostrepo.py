"""The host repo clustergen sits in (cluster-template, talos-cluster): its root, its age key and
the files its own makejinja renders.

Both hosts keep one age key, `age.key` at the repo root (their Taskfile exports
SOPS_AGE_KEY_FILE={{.ROOT_DIR}}/age.key), and render files such as `.sops.yaml` and their
OpenTofu from `templates/config/**.j2` with `makejinja` (output `./`). clustergen must reuse
that key, and must not write a file that the host's next `task configure` overwrites.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Iterator
from pathlib import Path

AGE_KEY = "age.key"
MAKEJINJA_TOML = "makejinja.toml"
KEY_VARIABLES = ("SOPS_AGE_KEY_FILE", "SOPS_AGE_KEY", "SOPS_AGE_KEY_CMD")


def repo_root(start: Path) -> Path | None:
    """The git work tree that holds start (the nearest folder with a .git), or None."""
    here = start.resolve()
    for folder in (here, *here.parents):
        if (folder / ".git").exists():
            return folder
    return None


def _up_to_root(start: Path) -> Iterator[Path]:
    """start and its parents up to the repo root; only start when it is in no repo."""
    here = start.resolve()
    root = repo_root(here)
    yield here
    if root is None:
        return
    for folder in here.parents:
        if not folder.is_relative_to(root):
            return
        yield folder


def age_key(start: Path) -> Path | None:
    """The age key sops should use for start: $SOPS_AGE_KEY_FILE when set, else the nearest
    age.key from start up to the repo root (a symlink is never followed)."""
    configured = os.environ.get("SOPS_AGE_KEY_FILE")
    if configured:
        path = Path(configured)
        return path if path.is_file() else None
    for folder in _up_to_root(start):
        candidate = folder / AGE_KEY
        if candidate.is_file() and not candidate.is_symlink():
            return candidate
    return None


def sops_env(start: Path) -> dict[str, str] | None:
    """The environment for a sops call that decrypts a file below start: the host's age key
    when the user named none; None (inherit) when the user did or there is none."""
    if any(os.environ.get(name) for name in KEY_VARIABLES):
        return None
    key = age_key(start)
    return None if key is None else {**os.environ, "SOPS_AGE_KEY_FILE": str(key)}


def _makejinja(folder: Path) -> tuple[Path, list[Path], str] | None:
    """(output dir, input dirs, jinja suffix) of folder/makejinja.toml, None without one."""
    config = folder / MAKEJINJA_TOML
    if not config.is_file() or config.is_symlink():
        return None
    try:
        data = tomllib.loads(config.read_text(encoding="utf-8")).get("makejinja", {})
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return None
    inputs = data.get("inputs", [])
    output = data.get("output", ".")
    suffix = data.get("jinja_suffix", ".j2")
    if not isinstance(inputs, list) or not isinstance(output, str) or not isinstance(suffix, str):
        return None
    return folder / output, [folder / str(i) for i in inputs], suffix


def host_template(target: Path) -> Path | None:
    """The file of the host's makejinja that renders (or copies) to target, if any: e.g.
    templates/config/.sops.yaml.j2 for <root>/.sops.yaml. Only makejinja.toml files from
    target's folder up to the repo root count (the host runs makejinja at its root)."""
    target = target.resolve() if target.exists() else target.parent.resolve() / target.name
    for folder, source, relative, suffix in _sources(target.parent, target):
        for candidate in (source / f"{relative}{suffix}", source / relative):
            if candidate.is_file() and _confined(candidate, folder):
                return candidate
    return None


def _sources(start: Path, target: Path) -> Iterator[tuple[Path, Path, Path, str]]:
    """(folder, input dir, target relative to the output, jinja suffix) of every
    makejinja.toml from start up to the repo root whose output holds target."""
    for folder in _up_to_root(start):
        found = _makejinja(folder)
        if found is None:
            continue
        output, inputs, suffix = found
        try:
            relative = target.relative_to(output.resolve())
        except ValueError:
            continue
        for source in inputs:
            yield folder, source, relative, suffix


def _confined(path: Path, folder: Path) -> bool:
    """path lies below folder with no symlink on the way: init may edit a host template, and
    a makejinja.toml (repo content, untrusted) must not point it at a file elsewhere."""
    try:
        relative = path.absolute().relative_to(folder.absolute())
    except ValueError:
        return False
    current = folder.absolute()
    for part in relative.parts:
        if part == "..":
            return False
        current = current / part
        if current.is_symlink():
            return False
    return True


def host_templates_under(output_dir: Path) -> list[Path]:
    """Every file the host's makejinja renders into output_dir (a folder clustergen writes)."""
    output_dir = output_dir.resolve() if output_dir.exists() else output_dir
    found: list[Path] = []
    start = output_dir if output_dir.is_dir() else output_dir.parent
    for folder, source, relative, _suffix in _sources(start, output_dir):
        base = source / relative
        if base.is_dir() and _confined(base, folder):
            found += sorted(p for p in base.iterdir() if p.is_file() and not p.is_symlink())
    return found
