"""`clustergen plan`: the VMs a change adds, removes, resizes or moves, compared with the
inputs committed at a git revision (default HEAD; in a pull request e.g. origin/main)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path, PurePosixPath

from generator import dialects, hostrepo, inputs, model, vmplan
from generator.dialects import talenv
from generator.errors import InputError, UsageError
from generator.load import display_name
from generator.options import Options
from generator.output import emit_diagnostics, note

FORMATS = ("text", "markdown", "json", "github")
# Repo files a host dialect reads besides the two inputs (cluster-template's versions live in
# talos/talenv.yaml or its template; the CUE schema names the dialect), taken at rev too.
DIALECT_FILES = (talenv.TALENV, talenv.TALENV_SOURCE, dialects.CLUSTER_CUE)
GIT_TIMEOUT = 30


def _git(root: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    git = shutil.which("git")
    if git is None:
        raise UsageError("git is not installed: plan compares with a git revision")
    try:
        return subprocess.run(
            [git, "-C", str(root), *args], capture_output=True, timeout=GIT_TIMEOUT, check=False
        )
    except subprocess.TimeoutExpired:
        raise UsageError(f"git did not finish within {GIT_TIMEOUT} s") from None


def base_facts(
    config_dir: Path, rev: str, dialect: str = "auto"
) -> tuple[dict[str, dict[str, object]], str]:
    """(VM facts of the inputs committed at rev, a note when there are none)."""
    if not rev or rev.startswith("-"):
        raise UsageError(f"--base {rev!r} is not a git revision")
    root = hostrepo.repo_root(config_dir)
    if root is None:
        raise UsageError(
            f"{display_name(config_dir)} is not in a git repository: plan compares "
            "with the inputs of a git revision (--base)"
        )
    if _git(root, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}").returncode != 0:
        raise UsageError(f"--base {rev}: no such git revision")
    folder = PurePosixPath(config_dir.resolve().relative_to(root).as_posix())
    with tempfile.TemporaryDirectory(prefix="clustergen-plan-") as tmp:
        for name in (inputs.CLUSTER_FILE, inputs.NODES_FILE):
            path = (folder / name).as_posix().removeprefix("./")
            shown = _git(root, "show", f"{rev}:{path}")
            if shown.returncode != 0:
                return {}, f"{path} is not committed at {rev}: every VM counts as added"
            (Path(tmp) / name).write_bytes(shown.stdout)
        for extra in DIALECT_FILES:
            path = (folder / extra.as_posix()).as_posix().removeprefix("./")
            shown = _git(root, "show", f"{rev}:{path}")
            if shown.returncode == 0:  # absent at rev: the dialect does without it
                (Path(tmp) / extra).parent.mkdir(parents=True, exist_ok=True)
                (Path(tmp) / extra).write_bytes(shown.stdout)
        try:
            read = inputs.read(Path(tmp), dialect)
        except InputError as exc:
            emit_diagnostics(exc.diagnostics)
            raise UsageError(
                f"the inputs committed at {rev} are invalid (above, as of {rev})"
            ) from None
        context = model.build(read.cluster.data, read.nodes.data)
    return vmplan.facts(context), ""


def run(options: Options) -> int:
    read = inputs.read(options.config_dir, options.dialect)
    fmt = options.fmt
    emit_diagnostics(read.warnings)
    after = vmplan.facts(model.build(read.cluster.data, read.nodes.data))
    # The committed inputs are read in the dialect the current ones were read in.
    before, remark = base_facts(options.config_dir, options.base, read.dialect)
    if remark:
        note(remark)
    changes = vmplan.compare(before, after)
    base = f"{options.base} ({display_name(options.config_dir)})"
    if fmt == "json":
        sys.stdout.write(vmplan.as_json(changes, options.base))
    elif fmt in ("markdown", "github"):
        sys.stdout.write(vmplan.as_markdown(changes, base))
    else:
        sys.stdout.write(vmplan.as_text(changes, base))
    return 1 if options.exit_code and changes else 0
