"""Refuse to render into a folder that another renderer or another OpenTofu config also owns.

talos-cluster renders its own OpenTofu (templates/config/infrastructure/tofu/*.j2 ->
infrastructure/tofu/) with its makejinja. clustergen writing there too would leave two
configurations in one module (duplicate providers, a second set of VMs) and the host's next
`task configure` would overwrite clustergen's files. So render stops, naming the host's
templates and the module files that declare what clustergen's module declares, until the
user removes them. A file that only configures the state (backend.tf) or overrides
(*_override.tf) is the user's and stays.
"""

from __future__ import annotations

import re
import stat
from collections.abc import Mapping
from pathlib import Path, PurePosixPath

from generator import hostrepo
from generator.errors import ConflictError, NotRegular, UnsafePath
from generator.load import display_name
from generator.outtree import Snapshot
from generator.provisioners import BY_NAME

TOFU_DIR = BY_NAME["tofu"].templates
# Declarations of clustergen's tofu module that a second file in the same module must not make.
_CLASHES = re.compile(
    r'^\s*(?:resource\s+"proxmox_virtual_environment_(?:vm|download_file)"'
    r'|provider\s+"proxmox"|required_providers\b|variable\s+"(?P<var>[^"]+)")',
    re.MULTILINE,
)


def _clashing_module_files(snapshot: Snapshot, files: Mapping[str, bytes]) -> list[str]:
    """The *.tf files beside clustergen's in its tofu folder (as the snapshot of the output
    tree lists them; read through it, never through a link) that declare what clustergen's
    module declares."""
    ours = {name for name in files if name.startswith(f"{TOFU_DIR}/")}
    if not ours or TOFU_DIR not in snapshot.dirs:
        return []
    declared = set(re.findall(r'^variable\s+"([^"]+)"', _joined(files, ours), re.MULTILINE))
    found: list[str] = []
    try:
        listing = list(snapshot.listing(TOFU_DIR))
    except UnsafePath:
        return []  # sync refuses a linked folder with its own message
    for name, entry in listing:
        base = PurePosixPath(name).name
        if name in ours or not base.endswith(".tf") or not stat.S_ISREG(entry.mode):
            continue
        if base == "override.tf" or base.endswith("_override.tf"):
            continue
        try:
            data = snapshot.read(name)
        except (NotRegular, UnsafePath):
            continue
        text = (data or b"").decode("utf-8", errors="replace")
        for match in _CLASHES.finditer(text):
            if match.group("var") is None or match.group("var") in declared:
                found.append(name)
                break
    return found


def _joined(files: Mapping[str, bytes], names: set[str]) -> str:
    return "\n".join(files[n].decode("utf-8", "replace") for n in sorted(names))


def check(snapshot: Snapshot, files: Mapping[str, bytes], output_dirs: tuple[str, ...]) -> None:
    """ConflictError (exit 1, nothing written) naming every colliding file."""
    root = snapshot.root
    used = {str(Path(name).parent) for name in files} & set(output_dirs)
    templates = sorted(
        {display_name(t) for d in used for t in hostrepo.host_templates_under(root / d)}
    )
    module = [display_name(root / n) for n in _clashing_module_files(snapshot, files)]
    if not templates and not module:
        return
    parts = []
    if templates:
        listing = "\n".join(f"  {t}" for t in templates)
        parts.append(
            "the host repo's makejinja renders into the folders clustergen writes; its next "
            "`task configure` would overwrite clustergen's files. Remove these templates:\n"
            f"{listing}"
        )
    if module:
        listing = "\n".join(f"  {m}" for m in module)
        parts.append(
            f"these files in {TOFU_DIR}/ declare what clustergen's OpenTofu declares (the VMs, "
            "the proxmox provider, its variables); in one module they would clash or create a "
            f"second set of VMs. Remove them (keep backend.tf; see README, Moving from "
            f"talos-cluster's OpenTofu):\n{listing}"
        )
    raise ConflictError("\n".join(parts))
