"""The provisioner registry (generator/provisioners.py) and the empty-render rule of render."""

from __future__ import annotations

import dataclasses
import importlib
import json
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from generator import model, provisioners, render, resources, settings
from generator.cli import main
from generator.errors import InternalError
from generator.inputs import read


def _schema_names() -> list[str]:
    schema = json.loads(resources.schema_path("cluster").read_text(encoding="utf-8"))
    names: list[str] = schema["properties"]["provisioners"]["items"]["enum"]
    return names


def test_the_registry_and_the_schema_name_the_same_provisioners_in_one_order() -> None:
    assert list(provisioners.NAMES) == _schema_names()


@pytest.mark.parametrize("entry", provisioners.REGISTRY, ids=provisioners.NAMES)
def test_every_place_an_entry_names_exists(entry: provisioners.Provisioner) -> None:
    templates = resources.templates_dir()
    assert callable(importlib.import_module(entry.model).build)
    assert (templates / entry.templates).is_dir()
    assert (templates / entry.taskfile_partial).is_file()
    names = render.template_names(settings.load())
    outputs = {render.output_name(n, settings.load()) for n in names}
    for path in (*entry.may_be_empty, *entry.secret_outputs):
        assert path in outputs and provisioners.owner(path) == entry, path


def test_every_output_template_belongs_to_a_provisioner_or_is_the_taskfile() -> None:
    for name in render.template_names(settings.load()):
        if name.startswith("infrastructure/"):
            assert provisioners.owner(name) is not None, name
        else:
            assert name == ".taskfiles/infrastructure/Taskfile.yaml.j2", name


def test_models_and_partials_follow_the_registry_order_not_the_inputs() -> None:
    config = resources.examples_dir() / "homelab"
    given = read(config)
    cluster = dict(given.cluster.data)
    cluster["provisioners"] = list(reversed(provisioners.NAMES))
    context = model.build(cluster, given.nodes.data)
    assert list(context["provisioners"]) == list(provisioners.NAMES)
    partials = [p.taskfile_partial for p in provisioners.REGISTRY]
    assert list(context["taskfile"]["partials"]) == partials
    assert all(name in context for name in provisioners.NAMES)


def _templates(tmp_path: Path, files: dict[str, str]) -> settings.RenderSettings:
    for name, text in files.items():
        path = tmp_path / "t" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return dataclasses.replace(settings.load(), templates=tmp_path / "t")


EMPTY = "#% if false %#never#% endif %#\n"


def test_an_empty_output_of_an_enabled_provisioner_is_a_bug(tmp_path: Path) -> None:
    custom = _templates(tmp_path, {"infrastructure/tofu/extra.tf.j2": EMPTY})
    with pytest.raises(InternalError, match=r"templates/infrastructure/tofu/extra\.tf\.j2:1: "):
        render.render({"enabled": {"tofu": True}}, custom)
    assert InternalError.exit_code == 3


def test_an_empty_output_of_a_disabled_provisioner_writes_no_file(tmp_path: Path) -> None:
    custom = _templates(
        tmp_path, {"infrastructure/tofu/extra.tf.j2": EMPTY, "infrastructure/tofu/a.tf.j2": "a\n"}
    )
    assert render.render({"enabled": {"tofu": False}}, custom) == {
        "infrastructure/tofu/a.tf": b"a\n"
    }


def test_an_output_declared_as_maybe_empty_writes_no_file(tmp_path: Path) -> None:
    custom = _templates(tmp_path, {"infrastructure/tofu/moved.tf.j2": EMPTY})
    assert "infrastructure/tofu/moved.tf" in provisioners.BY_NAME["tofu"].may_be_empty
    assert render.render({"enabled": {"tofu": True}}, custom) == {}


def test_an_empty_output_outside_any_provisioner_is_a_bug(tmp_path: Path) -> None:
    custom = _templates(tmp_path, {".taskfiles/infrastructure/Taskfile.yaml.j2": "  \n"})
    with pytest.raises(InternalError, match="rendered empty"):
        render.render({"enabled": {}}, custom)


def test_the_cli_exits_3_and_writes_nothing_on_an_empty_render(
    tmp_path: Path,
    example_copy: Callable[[str], Path],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = example_copy("minimal")
    enabled = yaml.safe_load((config / "cluster.yaml").read_text()).get("provisioners")
    assert "tofu" in (enabled or provisioners.NAMES[:2])
    real = settings.load()
    custom = _templates(tmp_path, {"infrastructure/tofu/extra.tf.j2": EMPTY})
    monkeypatch.setattr(settings, "load", lambda path=None: custom if path is None else real)
    out = tmp_path / "out"
    assert main(["-C", str(config), "render", "-o", str(out)]) == 3
    assert "rendered empty" in capsys.readouterr().err
    assert not out.exists() or not any(out.iterdir())
