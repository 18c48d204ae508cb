"""`pip install .` (not only -e) works: the wheel carries templates, schemas and examples."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from helpers.paths import ROOT

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("hatchling") is None, reason="hatchling is not installed (test extra)"
)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--quiet",
            "-w",
            str(out),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (built,) = out.glob("clustergen-*.whl")
    return built


def test_wheel_contains_data_files(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {
        "generator/_data/makejinja.toml",
        "generator/_data/schemas/cluster.schema.json",
        "generator/_data/schemas/nodes.schema.json",
        "generator/_data/templates/.taskfiles/infrastructure/Taskfile.yaml.j2",
        "generator/_data/examples/homelab/cluster.yaml",
    }
    assert expected <= names
    templates = {
        p.relative_to(ROOT).as_posix() for p in (ROOT / "templates").rglob("*") if p.is_file()
    }
    assert {f"generator/_data/{t}" for t in templates} <= names


def test_installed_wheel_renders_like_the_source_tree(wheel: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    out_wheel, out_source = tmp_path / "from-wheel", tmp_path / "from-source"
    config = ROOT / "examples" / "homelab"
    env = {**os.environ, "PYTHONPATH": str(site)}
    probe = subprocess.run(
        [sys.executable, "-c", "import generator.resources as r; print(r.root())"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    assert probe.stdout.strip() == str(site / "generator" / "_data")
    for target, environment in ((out_wheel, env), (out_source, None)):
        subprocess.run(
            [sys.executable, "-m", "generator", "-C", str(config), "render", "-o", str(target)],
            env=environment,
            cwd=tmp_path,
            capture_output=True,
            check=True,
            timeout=120,
        )
    listing = lambda root: {  # noqa: E731
        p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()
    }
    assert listing(out_wheel) == listing(out_source)


def test_installed_wheel_uses_its_schema_gates(wheel: Path, tmp_path: Path) -> None:
    """The generated gates ship in the wheel and match its bundled schemas (not stale)."""
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    names = [p.name.removesuffix(".schema.json") for p in (ROOT / "schemas").glob("*.schema.json")]
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, generator.gate as g; print(g.__file__); "
            "print(all(g.gate(n) is not None for n in sys.argv[1:]))",
            *names,
        ],
        env={**os.environ, "PYTHONPATH": str(site)},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    where, current = probe.stdout.split()
    assert where.startswith(str(site)) and current == "True"


def test_installed_wheel_reports_its_metadata_version(wheel: Path, tmp_path: Path) -> None:
    """No pyproject.toml in a wheel: --version reads the installed distribution's metadata
    (changed here, to see that it is that file which answers)."""
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    (metadata,) = site.glob("clustergen-*.dist-info/METADATA")
    text = metadata.read_text(encoding="utf-8")
    lines = [
        "Version: 9.8.7" if line.startswith("Version: ") else line for line in text.splitlines()
    ]
    metadata.write_text("\n".join(lines) + "\n", encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-S", "-m", "generator", "--version"],  # -S: not the venv's install
        env={**os.environ, "PYTHONPATH": str(site)},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert (done.returncode, done.stdout) == (0, "clustergen 9.8.7\n")
