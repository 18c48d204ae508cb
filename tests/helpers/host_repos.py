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
- STAND-IN empty `bootstrap/` and `kubernetes/`: the host's full template set renders them (its
  `encrypt-secrets` runs `find` on them).
- talos-cluster only (more of its Taskfile is missing from the reference): STAND-IN empty
  `.taskfiles/{bootstrap,talos}/Taskfile.yaml` (its root Taskfile includes them);
  `.taskfiles/template/resources/generate_jsonschema.py` (its `schema` task runs it; the JSON
  Schemas it would write are in the reference already); its `.sops.yaml` names the host
  author's key (ours instead); `infrastructure/secrets.sops.yaml` (the tfstate credentials, empty:
  "not configured"; `task configure` encrypts it); and `templates/config/infrastructure/tofu/
  *.tf.j2`, its OpenTofu templates, made from the reference's rendered `infrastructure/tofu/*.tf`.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from .tools import git, stand_in

CLUSTER_TEMPLATE = "cluster-template-77cc9f5"
TALOS_CLUSTER = "talos-cluster-c999e05"

HOST_TOFU = ("backend.tf", "main.tf", "outputs.tf", "providers.tf", "variables.tf", "versions.tf")
TALHELPER = """#!/bin/sh
# STAND-IN for talhelper (not installable here): `talhelper validate talconfig FILE`.
[ "$1 $2" = "validate talconfig" ] && [ -f "$3" ] && echo "talhelper stand-in: $3 exists"
"""
KUBECONFORM_SH = """#!/usr/bin/env bash
# STAND-IN for the host's kubeconform.sh (not in the reference): the real kubeconform on $1.
set -euo pipefail
find "$1" -name '*.yaml' -print0 | xargs -0 -r kubeconform -strict -ignore-missing-schemas -summary
"""
EMPTY_TASKFILE = 'version: "3"\n'

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


def talhelper(bin_dir: Path) -> None:
    """The talhelper STAND-IN in bin_dir."""
    stand_in(bin_dir / "talhelper", TALHELPER)


def configure_stand_ins(repo: Path, host: str) -> None:
    """What the host's `task configure` needs and the reference lacks (module docstring)."""
    (repo / "cloudflare-tunnel.json").write_text("{}\n")
    resources = repo / ".taskfiles/template/resources"
    (resources / "kubeconform.sh").write_text(KUBECONFORM_SH)
    for folder in ("bootstrap", "kubernetes"):
        (repo / folder).mkdir(exist_ok=True)
    if host != TALOS_CLUSTER:
        return
    (resources / "generate_jsonschema.py").write_text("# STAND-IN: the schemas are in place\n")
    for name in ("bootstrap", "talos"):
        (repo / ".taskfiles" / name).mkdir(exist_ok=True)
        (repo / ".taskfiles" / name / "Taskfile.yaml").write_text(EMPTY_TASKFILE)
    public = (repo / "age.key").read_text().splitlines()[0].split(": ", 1)[1]
    sops_yaml = repo / ".sops.yaml"
    sops_yaml.write_text(re.sub(r"age1[0-9a-z]+", public, sops_yaml.read_text()))
    (repo / "infrastructure/secrets.sops.yaml").write_text(
        'tfstate_username: ""\ntfstate_password: ""\n'
    )


def tofu_templates(repo: Path) -> None:
    """talos-cluster's OpenTofu templates (STAND-IN: its rendered files as the templates)."""
    templates = repo / "templates/config/infrastructure/tofu"
    templates.mkdir(parents=True)
    for name in HOST_TOFU:
        shutil.copy(repo / "infrastructure/tofu" / name, templates / f"{name}.j2")


def add_to_configure(taskfile: Path, line: str) -> None:
    """The README's addition, at the end of `:configure`'s cmds (after validate-talos-config)."""
    text = taskfile.read_text()
    anchor = "      - task: validate-talos-config\n"
    start = text.index("  :configure:")
    at = text.index(anchor, start) + len(anchor)
    taskfile.write_text(text[:at] + line + "\n" + text[at:])
