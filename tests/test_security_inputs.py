"""Untrusted inputs (issue 14, items 1, 5, 6): schema patterns cannot match a trailing newline,
no string input holds a control or format character, proxmox_endpoint takes no zone ID and is
never echoed with a secret in it, and an input that is not a regular file is refused at once."""

from __future__ import annotations

import copy
import json
import os
import random
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from generator import cli, inputs, load, resources, secrets
from generator.errors import Diagnostic, InputError
from generator.patterns import ecma_pattern
from generator.report import format_diagnostics
from generator.validate import validator_class
from helpers.data import CAPI_ON_MINIMAL
from helpers.tools import clustergen

CONTROLS = ("\n", "\r", "\t", "\x00", "\x1b[31m", "\x7f", "\x85", "\u200b", "\u202e", "\u2028")
# Values for string keys that no example sets and that have no default in the schema.
FILL = {
    "talos_extra_kernel_args": "net.ifnames=0",
    "talos_platform": "nocloud",
    "talos_arch": "amd64",
    "cpu_type": "host",
    "proxmox_node": "pve",
    "tags": "k8s",
    "packer_build_address": "10.20.3.250",
    "capi_spare_addresses": "10.20.3.251",
    # multi-host's own schematic: a node that names it stays on the cluster's template.
    "talos_schematic_id": "dc7b152cb3ea99b821fcb7340ce7168313ce393d663740b791c36f6e95fc8586",
    "vm_address": "proxmox_virtual_environment_vm.talos_node",
    "forget": "proxmox_virtual_environment_download_file.talos_iso",
}


def _schema(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(resources.schema_path(name).read_text())
    return data


def _string_locations(
    schema: dict[str, Any], node: dict[str, Any], path: list[str | int]
) -> Iterator[tuple[list[str | int], dict[str, Any]]]:
    """(document path, schema) of every string-typed value the schema describes."""
    if "$ref" in node:
        target: Any = schema
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
    types = node.get("type")
    if types == "string" or (isinstance(types, list) and "string" in types):
        yield path, node
    for key, sub in node.get("properties", {}).items():
        yield from _string_locations(schema, sub, [*path, key])
    if isinstance(node.get("items"), dict):
        yield from _string_locations(schema, node["items"], [*path, 0])


def _get(data: Any, path: list[str | int]) -> Any:
    for part in path:
        data = data[part]
    return data


def _set(data: Any, path: list[str | int], value: Any) -> None:
    for i, part in enumerate(path[:-1]):
        if isinstance(part, str) and part not in data:
            data[part] = [] if isinstance(path[i + 1], int) else {}
        data = data[part]
    last = path[-1]
    if isinstance(last, int) and len(data) <= last:
        data.append(value)
    else:
        data[last] = value


def _base_docs() -> tuple[dict[str, Any], dict[str, Any]]:
    yaml = YAML(typ="safe", pure=True)
    example = resources.examples_dir() / "multi-host"
    return (
        yaml.load((example / "cluster.yaml").read_text()),
        yaml.load((example / "nodes.yaml").read_text()),
    )


def _base_value(data: Any, path: list[str | int], spec: dict[str, Any]) -> str:
    try:
        value = _get(data, path)
        if isinstance(value, str):
            return value
    except (KeyError, IndexError, TypeError):
        pass
    key = next(str(p) for p in reversed(path) if isinstance(p, str))
    if key in FILL:
        return FILL[key]
    if isinstance(spec.get("default"), str):
        return str(spec["default"])
    return str(spec["examples"][0])


def _validate(directory: Path, cluster: Any, nodes: Any) -> list[Diagnostic]:
    # YAML is a superset of JSON, and JSON escapes every control character visibly.
    (directory / "cluster.yaml").write_text(json.dumps(cluster))
    (directory / "nodes.yaml").write_text(json.dumps(nodes))
    try:
        return list(inputs.read(directory).warnings)
    except InputError as exc:
        return list(exc.diagnostics)


def _locations() -> list[tuple[str, list[str | int], dict[str, Any]]]:
    found = []
    for name in ("cluster", "nodes"):
        schema = _schema(name)
        found += [(name, path, spec) for path, spec in _string_locations(schema, schema, [])]
    return found


LOCATIONS = _locations()


def _format(path: list[str | int]) -> str:
    return load.format_path(path)


def test_every_string_key_is_covered() -> None:
    keys = {_format(p) for _, p, _ in LOCATIONS}
    # The walk finds every string key the README documents (a regression guard for the walk).
    assert {"cluster_name", "proxmox_endpoint", "nodes[0].name", "nodes[0].tags[0]"} <= keys
    assert len(keys) == len(LOCATIONS) >= 30


@pytest.mark.parametrize(
    ("name", "path", "spec"), LOCATIONS, ids=[f"{n}:{_format(p)}" for n, p, _ in LOCATIONS]
)
def test_no_control_character_in_any_string_input(
    tmp_path: Path, name: str, path: list[str | int], spec: dict[str, Any]
) -> None:
    cluster, nodes = _base_docs()
    if path[:3] == ["nodes", 0, "talos_extensions"]:
        # The cluster's extensions keep the node on the cluster's template (with capi a
        # second template is an error of its own).
        nodes["nodes"][0]["talos_extensions"] = list(cluster["talos_extensions"])
    if path[0] == "tofu_migrate":
        cluster["tofu_migrate"] = {"vm_address": FILL["vm_address"]}  # its required key
    doc = cluster if name == "cluster" else nodes
    base = _base_value(doc, path, spec)
    _set(doc, path, base)
    assert [d for d in _validate(tmp_path, cluster, nodes) if d.is_error] == []
    shown = _format(path)
    for index, control in enumerate(CONTROLS):
        # At the end, at the start and inside: a pattern anchored at both ends sees all three.
        at = (len(base), 0, 1)[index % 3]
        bad = copy.deepcopy(cluster), copy.deepcopy(nodes)
        _set(bad[0] if name == "cluster" else bad[1], path, base[:at] + control + base[at:])
        errors = [d for d in _validate(tmp_path, *bad) if d.is_error]
        assert errors, (shown, control)
        assert {d.path for d in errors} == {shown}, errors
        codes = {f"U+{ord(control[0]):04X}" in d.message for d in errors}
        assert True in codes, errors
        # The value is never printed raw: a terminal would act on it.
        for fmt in ("text", "github"):
            lines = format_diagnostics(errors, fmt).split("\n")
            assert len(lines) == len(errors) and not any(control in line for line in lines)
        records = json.loads(format_diagnostics(errors, "json"))
        assert not any(control in r["message"] + r["hint"] for r in records)


def test_a_key_may_document_the_control_characters_it_takes() -> None:
    validator = validator_class()({"type": "string", "x-control-characters": "\n"})
    assert validator.is_valid("two\nlines")
    assert not validator.is_valid("a\ttab")
    assert not validator_class()({"type": "string"}).is_valid("two\nlines")


@pytest.mark.parametrize(
    "value",
    ["k8s-cp-0\n", "k8s-cp-0\r\n", "\nk8s-cp-0", "k8s-\u200bcp-0", "k8s-cp-0\u2028"],
)
def test_node_name_with_a_line_break_is_rejected_end_to_end(
    tmp_path: Path, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    cluster, nodes = _base_docs()
    nodes["nodes"][0]["name"] = value
    (tmp_path / "cluster.yaml").write_text(json.dumps(cluster))
    (tmp_path / "nodes.yaml").write_text(json.dumps(nodes, indent=1))
    assert cli.main(["-C", str(tmp_path), "validate"]) == 1
    err = capsys.readouterr().err
    assert "nodes[0].name" in err and "control character" in err
    assert cli.main(["-C", str(tmp_path), "render"]) == 1
    assert not (tmp_path / "infrastructure").exists()


@pytest.mark.parametrize("scalar", ["|\n  home\n", "|+\n  home\n\n", ">\n  home\n", '"home\\n"'])
def test_a_yaml_scalar_with_a_line_break_is_rejected(tmp_path: Path, scalar: str) -> None:
    cluster, nodes = _base_docs()
    rest = "".join(f"{k}: {json.dumps(v)}\n" for k, v in cluster.items() if k != "cluster_name")
    (tmp_path / "cluster.yaml").write_text(f"cluster_name: {scalar}" + "\n" + rest)
    (tmp_path / "nodes.yaml").write_text(json.dumps(nodes))
    with pytest.raises(InputError) as exc:
        inputs.read(tmp_path)
    assert [(d.path, "U+000A" in d.message) for d in exc.value.diagnostics] == [
        ("cluster_name", True)
    ]


# --- patterns mean what ECMA-262 says --------------------------------------------------------


def _patterns() -> list[tuple[str, str, list[str]]]:
    """(schema, pattern, valid samples) of every pattern in every schema."""
    samples: set[str] = set()
    yaml = YAML(typ="safe", pure=True)

    def strings(value: Any) -> Iterator[str]:
        if isinstance(value, str):
            yield value
        elif isinstance(value, dict):
            for v in value.values():
                yield from strings(v)
        elif isinstance(value, list):
            for v in value:
                yield from strings(v)

    for example in resources.examples_dir().iterdir():
        for file in ("cluster.yaml", "nodes.yaml"):
            if (example / file).is_file():
                samples |= set(strings(yaml.load((example / file).read_text())))
    samples |= set(secrets.PLACEHOLDERS.values()) | set(FILL.values())
    out = []
    # Every schema file, dialects' too: they are validated through the same validator class.
    files = sorted((resources.root() / "schemas").rglob("*.schema.json"))
    assert {f.name for f in files} >= {f"{n}.schema.json" for n in ("cluster", "nodes", "secrets")}
    for file in files:
        name = file.relative_to(resources.root() / "schemas").as_posix()
        schema = json.loads(file.read_text())
        samples |= {s for s in strings(schema) if len(s) < 80}
        stack: list[Any] = [schema]
        while stack:
            node = stack.pop()
            if isinstance(node, dict):
                if isinstance(node.get("pattern"), str):
                    pattern = node["pattern"]
                    matching = sorted(s for s in samples if re.search(ecma_pattern(pattern), s))
                    out.append((name, pattern, matching))
                stack += list(node.values())
            elif isinstance(node, list):
                stack += node
    return out


PATTERNS = _patterns()


def _python_dollars(regex: str) -> int:
    """Unescaped `$` outside character classes in a Python regex."""
    count, in_class, i = 0, False, 0
    while i < len(regex):
        char = regex[i]
        if char == "\\":
            i += 2
            continue
        if in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
        elif char == "$":
            count += 1
        i += 1
    return count


@pytest.mark.parametrize(
    ("name", "pattern", "valid"), PATTERNS, ids=[f"{n}:{p}" for n, p, _ in PATTERNS]
)
def test_no_pattern_accepts_a_trailing_newline(name: str, pattern: str, valid: list[str]) -> None:
    # Structurally: no `$` that Python would let match before a newline is left.
    assert not _python_dollars(ecma_pattern(pattern)), pattern
    if name in ("cluster.schema.json", "nodes.schema.json", "secrets.schema.json"):
        assert valid, f"no sample value matches {pattern}; add one to the examples or schema"
    validator = validator_class()({"type": "string", "pattern": pattern})
    # Anchored at the end, and no negated class that takes a newline itself (`[^@]+$`, where
    # only the control-character rule can refuse one): the pattern alone must refuse it.
    strict_end = pattern.endswith("$") and "[^" not in pattern
    for value in valid[:5]:
        assert validator.is_valid(value)
        # Python's own re.search lets "$" match before a final newline: the bug, at its cause.
        if strict_end:
            assert re.search(pattern, value + "\n")
        for bad in (value + "\n", "\n" + value, value + "\r\n", value + "\n\n"):
            errors = {e.validator for e in validator.iter_errors(bad)}
            assert errors, (pattern, bad)  # never valid: the control rule at least
            if strict_end:
                assert "pattern" in errors, (pattern, bad)


@pytest.mark.parametrize(
    ("pattern", "good", "bad"),
    [
        ("^a$", ["a"], ["a\n", "\na", "ab"]),
        ("^[$a]+$", ["$a$"], ["$\n"]),
        (r"^a\$$", ["a$"], ["a$\n", "a"]),
        (r"^\d+$", ["123"], ["\u0663", "12\n"]),  # ECMA \d is ASCII only
        (r"^\w+$", ["a_1"], ["\u00e9", "a\n"]),
        (r"^[\d.]+$", ["1.2"], ["\u0663"]),
        ("^(a|b$)", ["a", "b"], ["b\n", "c"]),
    ],
)
def test_ecma_pattern_translation(pattern: str, good: list[str], bad: list[str]) -> None:
    validator = validator_class()({"type": "string", "pattern": pattern})
    assert all(validator.is_valid(g) for g in good)
    for b in bad:
        assert any(e.validator == "pattern" for e in validator.iter_errors(b)), b


# --- proxmox_endpoint ---------------------------------------------------------------------


def _endpoint_errors(tmp_path: Path, value: str) -> list[Diagnostic]:
    cluster, nodes = _base_docs()
    cluster["proxmox_endpoint"] = value
    return [d for d in _validate(tmp_path, cluster, nodes) if d.is_error]


@pytest.mark.parametrize(
    "zone",
    [
        "eth0",
        "25eth0",
        "{{.ROOT_DIR}}",
        '{{env "HOME"}}',
        "';id;'",
        "$(id)",
        "`id`",
        "x|sh",
        '"',
    ],
)
def test_ipv6_zone_ids_are_rejected(tmp_path: Path, zone: str) -> None:
    for value in (f"https://[fe80::1%{zone}]:8006", f"https://[fe80::1%25{zone}]:8006"):
        errors = _endpoint_errors(tmp_path, value)
        assert [d.path for d in errors] == ["proxmox_endpoint"], (value, errors)
        assert "zone" in errors[0].message or "not a URL like" in errors[0].message


def test_ipv6_without_zone_is_accepted(tmp_path: Path) -> None:
    assert _endpoint_errors(tmp_path, "https://[fd00::10]:8006") == []


@pytest.mark.parametrize(
    "char", ["\u200b", "\u202e", "\u2066", "\ufeff", "\u00ad", "\x00", "\t", "\u00a0", "\uff1a"]
)
def test_endpoint_rejects_control_format_and_non_ascii_characters(
    tmp_path: Path, char: str
) -> None:
    for value in (f"https://pve{char}.example:8006", f"https://pve.example:8006{char}"):
        errors = _endpoint_errors(tmp_path, value)
        assert [d.path for d in errors] == ["proxmox_endpoint"], (repr(value), errors)


@pytest.mark.parametrize(
    "value",
    [
        "https://pve.example:8006/?password=hunter2-s3cr3t",
        "https://pve.example:8006?token=hunter2-s3cr3t",
        "https://pve.example:8006/#hunter2-s3cr3t",
        "https://root:hunter2-s3cr3t@pve.example:8006",
        "pve.example:8006?password=hunter2-s3cr3t",
        "http://pve.example:8006/?password=hunter2-s3cr3t",
        "https://pve.example:99999/?password=hunter2-s3cr3t",
        "https://pve_bad:8006/?password=hunter2-s3cr3t",
        "https://pve.example:8006/?password=hunter2-s3cr3t and more",
        "https://pve.example:8006/?password=hunter2-s3cr3t\u200b",
        "https://pve.example:8006/?password=hunter2-s3cr3t\u00e9",
        "HTTPS://PVE.EXAMPLE:8006/?password=hunter2-s3cr3t Z",
    ],
)
@pytest.mark.parametrize("fmt", ["text", "json", "github"])
def test_a_secret_in_the_endpoint_is_never_echoed(
    tmp_path: Path, value: str, fmt: str, capsys: pytest.CaptureFixture[str]
) -> None:
    cluster, nodes = _base_docs()
    cluster["proxmox_endpoint"] = value
    (tmp_path / "cluster.yaml").write_text(json.dumps(cluster))
    (tmp_path / "nodes.yaml").write_text(json.dumps(nodes))
    assert cli.main(["--format", fmt, "-C", str(tmp_path), "validate"]) == 1
    captured = capsys.readouterr()
    assert "proxmox_endpoint" in captured.out + captured.err
    assert "hunter2" not in captured.out + captured.err


# --- inputs that are not regular files ------------------------------------------------------


@pytest.fixture
def config(example_copy: Callable[[str], Path]) -> Path:
    return example_copy("minimal")


@pytest.mark.parametrize(
    ("make", "said"),
    [
        (lambda p: os.mkfifo(p), "FIFO"),
        (lambda p: p.symlink_to("/dev/zero"), "symbolic link"),
        (lambda p: p.symlink_to("/dev/stdin"), "symbolic link"),
        (lambda p: p.symlink_to(p.parent / "nodes.yaml"), "symbolic link"),
        (lambda p: p.symlink_to(p.parent / "missing"), "symbolic link"),
        (lambda p: p.mkdir(), "directory"),
        (lambda p: p.write_bytes(b"#" * (load.MAX_BYTES + 1)), "larger than"),
    ],
    ids=["fifo", "dev-zero", "dev-stdin", "link", "dangling", "directory", "huge"],
)
@pytest.mark.parametrize("command", ["validate", "check", "render"])
def test_an_input_that_is_not_a_regular_file_is_refused_at_once(
    config: Path, make: Callable[[Path], None], said: str, command: str
) -> None:
    target = config / "cluster.yaml"
    target.unlink()
    make(target)
    result = clustergen("-C", str(config), command, timeout=60)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr and said in result.stderr
    assert "cluster.yaml:1:1: error: (file): " in result.stderr.splitlines()[0]
    assert not (config / "infrastructure").exists()


def test_a_fifo_as_secrets_file_does_not_hang(config: Path) -> None:
    # One controller: a CAPI rollout needs a spare pool address (issue 15).
    text = (config / "cluster.yaml").read_text() + CAPI_ON_MINIMAL
    (config / "cluster.yaml").write_text(text)
    os.mkfifo(config / "secrets.sops.yaml")
    result = clustergen("-C", str(config), "check", timeout=60)
    assert result.returncode == 1 and "FIFO" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


STRICT_ENDPOINT = re.compile(
    r"https://([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?/?", re.ASCII
)


def test_every_accepted_endpoint_is_only_scheme_host_and_port() -> None:
    """Whatever passes the schema pattern and the rule is https://host[:port][/]: no byte a
    shell, go-task or a template could read as syntax survives, however it is spelled."""
    from generator.load import Document
    from generator.rules import endpoint

    pattern = validator_class()(_schema("cluster")["properties"]["proxmox_endpoint"])
    pieces = [
        "https://",
        "http://",
        "pve.example",
        "[fe80::1",
        "]",
        "%",
        "25",
        "eth0",
        ":",
        "8006",
        "/",
        "?",
        "#",
        "@",
        "{{",
        "}}",
        ".ENV",
        "'",
        '"',
        ";",
        "|",
        "$(",
        ")",
        "`",
        "\\",
        " ",
        "\u200b",
        "+",
        "-",
        "_",
        "&",
        "*",
        "~",
        "[",
        "::1",
        "0x1f",
        "\uff18",
        "\n",
    ]
    rng = random.Random(1406)
    accepted = 0
    for _ in range(4000):
        value = "https://" + "".join(rng.choice(pieces) for _ in range(rng.randint(1, 6)))
        if not pattern.is_valid(value):
            continue
        data = {"proxmox_endpoint": value}
        cluster = Document("cluster.yaml", data, data, positions=False)
        if list(endpoint(cluster, cluster)):
            continue
        accepted += 1
        assert STRICT_ENDPOINT.fullmatch(value), repr(value)
    assert accepted > 20  # the generator does reach valid endpoints
