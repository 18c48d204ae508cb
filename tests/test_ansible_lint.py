"""ansible-playbook --syntax-check and ansible-lint on every rendered playbook, offline, with
the community.proxmox that the PyPI ansible package ships (no Galaxy).

ansible-lint's args rule drops every finding of a task in which a templated value fails the
type check (each loop task here has "{{ item.vmid }}" for an int), unknown options included;
test_ansible.py therefore checks the options of every community.proxmox task against the
module's own argument spec as well."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from helpers.ansible import ansible_env
from helpers.data import write_tree
from helpers.paths import EXAMPLES_DIR
from helpers.tools import tool

ANSIBLE_DIR = "infrastructure/ansible"
BROKEN = "broken-control"


def ansible_examples() -> list[str]:
    return sorted(
        p.name
        for p in EXAMPLES_DIR.iterdir()
        if (p / "cluster.yaml").is_file()
        and "ansible" in (YAML(typ="safe").load(p / "cluster.yaml").get("provisioners") or [])
    )


def write_ansible_dir(files: dict[str, bytes], root: Path) -> Path:
    write_tree(root, {p: d for p, d in files.items() if p.startswith(f"{ANSIBLE_DIR}/")})
    return root / ANSIBLE_DIR


@pytest.fixture(scope="module")
def trees(
    rendered: Callable[[str], dict[str, bytes]], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Path]:
    """The ansible dir of each example."""
    base = tmp_path_factory.mktemp("ansible-lint")
    out = {name: write_ansible_dir(rendered(name), base / name) for name in ansible_examples()}
    assert out, "no example enables ansible"
    return out


def test_syntax_check(trees: dict[str, Path], tmp_path: Path) -> None:
    for name, tree in trees.items():
        if name == BROKEN:
            continue
        playbooks = sorted(str(p.relative_to(tree)) for p in (tree / "playbooks").glob("*.yaml"))
        assert len(playbooks) == 3
        done = subprocess.run(
            [
                tool("ansible-playbook", prefer_venv=True),
                "-i",
                "inventory.yaml",
                "--syntax-check",
                *playbooks,
            ],
            cwd=tree,
            env=ansible_env(tmp_path / "home"),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, f"{name}: {done.stdout}{done.stderr}"
        assert "[WARNING]" not in done.stderr, f"{name}: {done.stderr}"


def test_ansible_lint_reports_nothing_but_the_control(
    trees: dict[str, Path], tmp_path: Path
) -> None:
    """One ansible-lint run (it is slow to start) over every distinct rendered playbook, plus a
    control copy with one violation, so that a clean result means the files were checked."""
    distinct: dict[bytes, Path] = {}
    for tree in trees.values():
        for playbook in sorted((tree / "playbooks").glob("*.yaml")):
            # Byte-identical playbooks lint the same; the header is the same in every example.
            distinct.setdefault(playbook.read_bytes(), playbook)
    root = tmp_path / "lint"
    for i, (data, source) in enumerate(distinct.items()):
        (root / "playbooks" / f"{i}-{source.name}").parent.mkdir(parents=True, exist_ok=True)
        (root / "playbooks" / f"{i}-{source.name}").write_bytes(data)
    shutil.copytree(next(iter(trees.values())) / "vars", root / "vars")
    control = root / "playbooks" / f"{BROKEN}.yaml"
    text = next(iter(distinct))
    assert b"      ansible.builtin.assert:\n" in text
    control.write_bytes(text.replace(b"      ansible.builtin.assert:\n", b"      assert:\n", 1))
    done = subprocess.run(
        [
            tool("ansible-lint", prefer_venv=True),
            "--offline",
            "--strict",  # warnings fail too
            "--nocolor",
            "--format",
            "json",
            "--profile",
            "production",
            "playbooks",
        ],
        cwd=root,
        env=ansible_env(tmp_path / "home"),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    found: list[dict[str, Any]] = json.loads(done.stdout or "[]")
    where = {(Path(f["location"]["path"]).name, f["check_name"]) for f in found}
    assert where == {(control.name, "fqcn[action-core]")}, done.stdout + done.stderr
