"""Host repos (cluster-template, talos-cluster) built in temp dirs from the reference files.

Their files come from ../shared/reference/hosts/ at test time (never copied into this
project). Stand-ins, each only for what the reference lacks or this machine cannot run:
- STAND-IN `templates/scripts/plugin.py`: the hosts' makejinja plugin is not in the
  reference; this one provides only what the reference templates call: `age_key()`,
  `talos_patches()` (no patches) and the filter `basename`.
- STAND-IN `talhelper` (tests that run `task configure`): a shell script that checks its
  talconfig.yaml argument exists (talhelper is not installable here).
- STAND-IN `cloudflare-tunnel.json`: `{}`; the hosts' `:configure` only tests that it exists.
- STAND-IN `.taskfiles/template/resources/kubeconform.sh`: runs the real kubeconform on the
  (here empty) kubernetes/ directory; the hosts' script is not in the reference.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

CLUSTER_TEMPLATE = "cluster-template-77cc9f5"
TALOS_CLUSTER = "talos-cluster-c999e05"

PLUGIN = '''\
"""STAND-IN for the host's templates/scripts/plugin.py (not in the reference)."""
from pathlib import Path


def age_key(key_type, file_path="age.key"):
    for line in Path(file_path).read_text().splitlines():
        if key_type == "public" and line.startswith("# public key: "):
            return line.split(": ", 1)[1].strip()
        if key_type == "private" and line.startswith("AGE-SECRET-KEY-"):
            return line.strip()
    raise ValueError(f"no {key_type} age key in {file_path}")


def talos_patches(kind):
    return []


def basename(path):
    return Path(path).name


class Plugin:
    def __init__(self, env=None, data=None, config=None):
        pass

    def functions(self):
        return [age_key, talos_patches]

    def filters(self):
        return [basename]
'''


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        [
            "git",
            "-C",
            str(repo),
            "-c",
            "user.email=ci@example.invalid",
            "-c",
            "user.name=CI",
            *args,
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout


def age_identity(path: Path) -> str:
    """A new age key at path in age-keygen's format; returns its public key."""
    from pyrage import x25519

    identity = x25519.Identity.generate()
    public = str(identity.to_public())
    path.write_text(f"# public key: {public}\n{identity}\n")
    path.chmod(0o600)
    return public


def build(reference: Path, host: str, dest: Path, *, samples: bool = True) -> Path:
    """dest becomes a git repo with the host's files, an age.key at its root (the host's
    `task init`), and its CI test inputs as cluster.yaml + nodes.yaml (git-ignored, as there)."""
    shutil.copytree(reference / "hosts" / host, dest)
    (dest / "templates/scripts").mkdir(parents=True, exist_ok=True)
    (dest / "templates/overrides").mkdir(
        exist_ok=True
    )  # makejinja.toml names it; git keeps no empty dir
    (dest / "templates/scripts/plugin.py").write_text(PLUGIN)
    age_identity(dest / "age.key")
    if samples:
        shutil.copy(dest / ".github/tests/public.yaml", dest / "cluster.yaml")
        shutil.copy(dest / ".github/tests/nodes.yaml", dest / "nodes.yaml")
    git(dest, "init", "-q", "-b", "main")
    git(dest, "add", "-A")
    git(dest, "commit", "-qm", "host repo")
    return dest
