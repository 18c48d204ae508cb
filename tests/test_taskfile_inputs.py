"""No input value reaches the rendered Taskfile where go-task or the shell could read it as
syntax. Every string input the schemas declare is set to values holding go-task templates,
shell metacharacters and Unicode controls (as far as validation lets them through; a second
test bypasses validation and puts them into every string of the model), then every task runs
with the real go-task against stand-in tools: only the intended tools run, with exactly the
intended argv and environment, and no injected command ran."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from ruamel.yaml import YAML

from generator import model, render, settings
from generator.options import Options
from generator.pipeline import render_tree
from helpers.data import plain, yaml_dump
from helpers.paths import ROOT, TASKFILE
from helpers.sops import encrypt_secrets
from helpers.taskfile_harness import (
    ENDPOINT_SHAPES,
    EXAMPLE,
    FRAGMENTS,
    HOSTILE_TOKEN_ID,
    PAYLOAD,
    TOKEN_SECRET,
    make_tree,
    run_all,
    token_env,
)


def string_inputs(schema_name: str) -> list[tuple[tuple[str | int, ...], dict[str, Any]]]:
    """(path, schema) of every string the schema lets a user write (`0`: the first list
    element, e.g. the first node)."""
    schema = json.loads((ROOT / "schemas" / f"{schema_name}.schema.json").read_text())
    defs = schema.get("$defs", schema.get("definitions", {}))
    found: dict[str, tuple[tuple[str | int, ...], dict[str, Any]]] = {}

    def walk(node: Mapping[str, Any], path: tuple[str | int, ...]) -> None:
        if "$ref" in node:
            node = {**defs[node["$ref"].split("/")[-1]], **node}
            node.pop("$ref")
        kinds = node.get("type")
        kinds = kinds if isinstance(kinds, list) else [kinds]
        if "string" in kinds and "enum" not in node:
            found[str(path)] = (path, {**node, "type": "string"})
        for key, sub in node.get("properties", {}).items():
            walk(sub, (*path, key))
        if isinstance(node.get("items"), Mapping):
            walk(node["items"], (*path, 0))
        for key in ("anyOf", "oneOf", "allOf"):
            for sub in node.get(key, []):
                walk(sub, path)

    walk(schema, ())
    return [found[k] for k in sorted(found)]


def get_in(doc: Any, path: tuple[str | int, ...]) -> Any:
    for part in path:
        if isinstance(part, int):
            if not isinstance(doc, list) or not doc:
                return None
        elif not isinstance(doc, Mapping) or part not in doc:
            return None
        doc = doc[part]
    return doc


def set_in(doc: Any, path: tuple[str | int, ...], value: Any) -> None:
    for i, part in enumerate(path[:-1]):
        nxt: Any = [] if isinstance(path[i + 1], int) else {}
        if isinstance(part, int):
            if not doc:
                doc.append(nxt)
        elif part not in doc or doc[part] is None:
            doc[part] = nxt
        doc = doc[part]
    last = path[-1]
    if isinstance(last, int):
        if doc:
            doc[last] = value
        else:
            doc.append(value)
    else:
        doc[last] = value


def shapes(path: tuple[str | int, ...], original: str) -> list[str]:
    """Ways to put fragments ("{f}") into a value that must keep its form."""
    generic = [original + "{f}", "{f}" + original, original[:1] + "{f}" + original[1:]]
    return (ENDPOINT_SHAPES if path == ("proxmox_endpoint",) else []) + generic


def valid(config: Path, cluster: Any, nodes: Any) -> bool:
    from generator import inputs
    from generator.errors import InputError

    yaml_dump(cluster, config / "cluster.yaml")
    yaml_dump(nodes, config / "nodes.yaml")
    try:
        inputs.read(config)
    except InputError:
        return False
    return True


def hostile_inputs(config: Path) -> tuple[dict[str, Any], dict[str, Any], dict[str, list[str]]]:
    """cluster.yaml and nodes.yaml with every string input holding as many hostile fragments
    as validation lets through; and per input the fragments that got through."""
    from jsonschema import Draft202012Validator

    cluster = plain(YAML(typ="safe").load((EXAMPLE / "cluster.yaml").read_text()))
    nodes = plain(YAML(typ="safe").load((EXAMPLE / "nodes.yaml").read_text()))
    accepted: dict[str, list[str]] = {}
    for name, doc in (("cluster", cluster), ("nodes", nodes)):
        for path, schema in string_inputs(name):
            checker = Draft202012Validator(schema)
            before = get_in(doc, path)
            original = before if isinstance(before, str) else "x"
            best: tuple[str, list[str]] | None = None
            for shape in shapes(path, original):
                # The schema of the key first (cheap), then the whole of validation, adding
                # one fragment at a time.
                kept: list[str] = []
                for fragment in FRAGMENTS:
                    value = shape.replace("{f}", "".join([*kept, fragment]))
                    if not checker.is_valid(value):
                        continue
                    set_in(doc, path, value)
                    if valid(config, cluster, nodes):
                        kept.append(fragment)
                if kept and (best is None or len(kept) > len(best[1])):
                    best = (shape.replace("{f}", "".join(kept)), kept)
            if best is not None:
                set_in(doc, path, best[0])
                accepted[f"{name}:{'.'.join(map(str, path))}"] = best[1]
            elif before is None:
                _drop(doc, path)
            else:
                set_in(doc, path, before)
    assert valid(config, cluster, nodes), "the hostile values together must still validate"
    return cluster, nodes, accepted


def _drop(doc: Any, path: tuple[str | int, ...]) -> None:
    parent = get_in(doc, path[:-1])
    if isinstance(parent, dict):
        parent.pop(path[-1], None)
    elif isinstance(parent, list) and parent:
        parent.pop()


# --- A: hostile values ------------------------------------------------------------------------


@pytest.mark.parametrize("with_sops", [False, True], ids=["env-token", "sops-token"])
def test_hostile_inputs_reach_no_tool_as_syntax(
    with_sops: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "repo"
    config.mkdir()
    _, _, accepted = hostile_inputs(config)
    # What validation let through (today the endpoint's zone ID takes go-task and shell
    # syntax); however little that is, the token ID always is hostile, and the unvalidated
    # test below puts the fragments into every string of the model.
    print(json.dumps(accepted, indent=1))
    secrets_schema = json.loads((ROOT / "schemas/secrets.schema.json").read_text())
    token = {"proxmox_api_token_id": HOSTILE_TOKEN_ID, "proxmox_api_token_secret": TOKEN_SECRET}
    jsonschema.validate(token, secrets_schema)
    extra: dict[str, str] = {}
    if with_sops:
        key = tmp_path / "age.key"
        encrypt_secrets(config, HOSTILE_TOKEN_ID, TOKEN_SECRET, key=key, rules=True)
        monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(key))
        extra["SOPS_AGE_KEY_FILE"] = str(key)
    else:
        extra = token_env(HOSTILE_TOKEN_ID, TOKEN_SECRET)
    rendered = render_tree(Options(config))
    tree = make_tree(
        tmp_path, rendered.files, rendered.context, config=config, out=config, root=config,
        extra_env=extra,
    )  # fmt: skip
    names = run_all(tree, (HOSTILE_TOKEN_ID, TOKEN_SECRET), with_sops)
    assert {"capi:apply", "tofu:provision", "ansible:destroy", "schematic:upload"} <= set(names)


def poison(value: Any, path: tuple[str | int, ...]) -> Iterator[tuple[tuple[str | int, ...], Any]]:
    """Every string leaf of value with its path."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, Mapping):
        for k, v in value.items():
            yield from poison(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from poison(v, (*path, i))


def hostile_strings(doc: Any, parent_key: Any) -> Iterator[tuple[Any, str]]:
    """(key it is the value of, string) of every string in doc that holds a PAYLOAD part."""
    if isinstance(doc, str):
        if "touch${IFS}PWNED" in doc:
            yield parent_key, doc
    elif isinstance(doc, Mapping):
        for k, v in doc.items():
            yield from hostile_strings(v, k)
    elif isinstance(doc, list):
        for v in doc:
            yield from hostile_strings(v, parent_key)


def unvalidated_context(tmp_path: Path, has_secrets_file: bool) -> tuple[Mapping[str, Any], int]:
    """The model of multi-host with PAYLOAD added to every string input the model tolerates
    (addresses, CIDRs and the like must still parse)."""
    cluster = plain(YAML(typ="safe").load((EXAMPLE / "cluster.yaml").read_text()))
    nodes = plain(YAML(typ="safe").load((EXAMPLE / "nodes.yaml").read_text()))

    def build() -> Mapping[str, Any]:
        return model.build(cluster, nodes, has_secrets_file=has_secrets_file)

    poisoned = 0
    for doc in (cluster, nodes):
        for path, value in list(poison(doc, ())):
            if path and path[0] == "provisioners":
                continue
            set_in(doc, path, value + PAYLOAD)
            try:
                build()
                poisoned += 1
            except Exception:  # the model cannot take it (an address, a version): keep it valid
                set_in(doc, path, value)
    return build(), poisoned


@pytest.mark.parametrize("with_sops", [False, True], ids=["env-token", "sops-token"])
def test_templates_keep_hostile_values_inert_without_validation(
    with_sops: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Defence in depth: even values that validation would reject stay data."""
    config = tmp_path / "repo"
    config.mkdir()
    context, poisoned = unvalidated_context(tmp_path, with_sops)
    assert poisoned >= 10
    # The hostile text really is in what the Taskfile uses.
    assert PAYLOAD in context["proxmox_endpoint"] or PAYLOAD in context["capi"]["namespace"]
    assert PAYLOAD in context["ansible"]["destroy_prompt"]
    files = render.render(context, settings.load())
    # Where the values are in the Taskfile: only as a `ref` to a Go string constant or as the
    # constant of a text field, never in text that go-task would template.
    places = list(hostile_strings(YAML(typ="safe").load(files[TASKFILE]), None))
    assert places
    for parent_key, text in places:
        assert parent_key == "ref" or (text.startswith('{{"') and text.endswith('"}}')), text
    extra: dict[str, str]
    if with_sops:
        key = tmp_path / "age.key"
        encrypt_secrets(config, HOSTILE_TOKEN_ID, TOKEN_SECRET, key=key, rules=True)
        extra = {"SOPS_AGE_KEY_FILE": str(key)}
    else:
        extra = token_env(HOSTILE_TOKEN_ID, TOKEN_SECRET)
    tree = make_tree(
        tmp_path, files, context, config=config, out=config, root=config, extra_env=extra
    )
    run_all(tree, (HOSTILE_TOKEN_ID, TOKEN_SECRET), with_sops)
    # Prompts show the values literally.
    result = tree.run("ansible:destroy")
    assert context["ansible"]["destroy_prompt"] in result.stdout + result.stderr
