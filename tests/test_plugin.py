"""generator/plugin.py: plain `makejinja`, configured by the repo's makejinja.toml, renders the
same bytes."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from generator import resources
from generator.options import Options
from generator.pipeline import render_tree
from helpers.paths import EXAMPLES, EXAMPLES_DIR

MAKEJINJA = Path(sys.executable).with_name("makejinja")


def makejinja_tree(config: Path, work: Path) -> dict[str, bytes]:
    """Run makejinja the way a cluster-template repo does: makejinja.toml in the cwd."""
    work.mkdir()
    toml = resources.makejinja_toml().read_text()
    assert '\noutput = "."\n' in toml
    (work / "makejinja.toml").write_text(toml.replace('\noutput = "."\n', '\noutput = "out"\n'))
    (work / "templates").symlink_to(resources.templates_dir())
    # The whole config directory: a host repo's keeps more than the two files (talenv.yaml).
    shutil.copytree(config, work, dirs_exist_ok=True)
    result = subprocess.run([str(MAKEJINJA)], cwd=work, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    out = work / "out"
    return {
        p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()
    }


@pytest.mark.skipif(not MAKEJINJA.exists(), reason="makejinja is not installed (test extra)")
@pytest.mark.parametrize("example", EXAMPLES)
def test_makejinja_renders_identical_bytes(example: str, tmp_path: Path) -> None:
    ours = render_tree(Options(EXAMPLES_DIR / example)).files
    theirs = makejinja_tree(EXAMPLES_DIR / example, tmp_path / "work")
    assert sorted(theirs) == sorted(ours)
    for path, data in ours.items():
        assert theirs[path] == data, path
