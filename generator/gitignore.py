"""Why an input is missing: the host repos git-ignore /cluster.yaml and /nodes.yaml.

cluster-template and talos-cluster ignore them because they carry plaintext secrets
(cloudflare_token, proxmox_api_token_secret, ...). A fresh clone (CI) therefore has neither,
and "file not found" alone sends the user looking in the wrong place.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

GIT_TIMEOUT = 10


def ignore_rule(path: Path) -> str | None:
    """`<file>:<line> (<pattern>)` of the rule that git-ignores path; None when path is not
    ignored, not inside a git work tree, or git is not installed."""
    git = shutil.which("git")
    folder = path.parent
    if git is None or not folder.is_dir():
        return None
    try:
        proc = subprocess.run(
            [git, "-C", str(folder), "check-ignore", "--verbose", "--", path.name],
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    # `<source>:<line>:<pattern>\t<path>`; exit 1 = not ignored, 128 = not a work tree.
    if proc.returncode != 0 or "\t" not in proc.stdout:
        return None
    rule = proc.stdout.split("\t", 1)[0]
    source, line, pattern = [*rule.rsplit(":", 2), "", ""][:3]
    if pattern.startswith("!"):  # a negated match means git keeps the file
        return None
    return f"{source}:{line} ({pattern})"


def missing_input_hint(path: Path) -> tuple[str, str] | None:
    """(message, hint) for an input that is missing because git ignores it, else None."""
    rule = ignore_rule(path)
    if rule is None:
        return None
    return (
        f"file not found: it is git-ignored by {rule}, so a fresh clone (CI) has none; host "
        "repos ignore it because it holds plaintext secrets",
        "keep the secrets clustergen needs in secrets.sops.yaml (`clustergen init "
        "--move-secrets` moves proxmox_api_token_* there), delete that .gitignore line and "
        "commit the file; README: Inputs in git",
    )
