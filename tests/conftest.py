"""Fixtures and pytest hooks only; what the tests share otherwise lives in tests/helpers/."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from generator.options import Options
from generator.pipeline import render_tree
from helpers import paths, session, tools


def pytest_configure(config: pytest.Config) -> None:
    session.prepare()


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    """../shared/reference, the ground truth of the downstream tools; skip when absent."""
    return paths.reference()


@pytest.fixture(scope="session")
def rendered() -> Callable[[str], dict[str, bytes]]:
    """rendered(example_name) -> {output path: bytes}, cached per session."""
    cache: dict[str, dict[str, bytes]] = {}

    def get(name: str) -> dict[str, bytes]:
        if name not in cache:
            cache[name] = render_tree(Options(paths.EXAMPLES_DIR / name)).files
        return cache[name]

    return get


@pytest.fixture
def example_copy(tmp_path: Path) -> Callable[[str], Path]:
    """example_copy(name) -> a fresh copy of examples/<name> in a temp dir."""

    def copy(name: str) -> Path:
        target = tmp_path / name
        shutil.copytree(paths.EXAMPLES_DIR / name, target)
        return target

    return copy


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """The environment of a child clustergen: no SOPS_* variables and a HOME without
    ~/.config/sops (only the test's own age key exists), PYTHONPATH at this checkout."""
    return tools.child_env(tmp_path / "home")
