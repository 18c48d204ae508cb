"""The versions a cluster-template repo keeps in talos/talenv.yaml (renovate bumps them).

Before the first `task configure` only its source, templates/config/talos/talenv.yaml.j2,
exists; it is plain YAML (no template syntax) and is read the same way then.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from generator.dialects import read_repo_file
from generator.errors import Diagnostic, InputError

TALENV = Path("talos") / "talenv.yaml"
TALENV_SOURCE = Path("templates") / "config" / "talos" / "talenv.yaml.j2"
KEYS = {"talosVersion": "talos_version", "kubernetesVersion": "kubernetes_version"}
_VERSION = re.compile(r"^v?(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\Z")
_TEMPLATE_SYNTAX = ("#{", "#%", "{{", "{%")


@dataclass(frozen=True)
class Version:
    value: str  # without the leading v
    file: str
    line: int


@dataclass
class Found:
    versions: dict[str, Version] = field(default_factory=dict)
    diagnostics: list[Diagnostic] = field(default_factory=list)


def read(config_dir: Path) -> Found:
    found = Found()
    for relative in (TALENV, TALENV_SOURCE):
        text = read_repo_file(config_dir, relative)
        if text is None:
            continue
        if relative == TALENV_SOURCE and any(s in text for s in _TEMPLATE_SYNTAX):
            return found
        _parse(config_dir / relative, relative.as_posix(), found)
        return found
    return found


def _parse(path: Path, shown: str, found: Found) -> None:
    from generator.load import load_yaml

    try:
        doc = load_yaml(path, shown=shown)
    except InputError as exc:
        found.diagnostics.extend(exc.diagnostics)
        return
    if not isinstance(doc.data, dict):
        found.diagnostics.append(doc.diag([], "the top level must be a mapping"))
        return
    for host, key in KEYS.items():
        value = doc.data.get(host)
        if value is None:
            continue
        match = _VERSION.match(value) if isinstance(value, str) else None
        if match is None:
            found.diagnostics.append(doc.diag([host], f"{value!r} is not a version like v1.12.0"))
            continue
        line, _ = doc.locate([host])
        found.versions[key] = Version(value.removeprefix("v"), shown, line)
