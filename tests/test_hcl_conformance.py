"""Conformance of the rendered HCL (Packer and OpenTofu) with the real downstream schemas.

Every block and argument of every provider, resource and source block is checked against
../shared/reference: bpg/provider-schema.extracted.json (names, block vs attribute, types,
enums, ranges, required, min/max_items, computed-only, deprecated) and
packer/proxmox-iso.hcl2spec.json (names, nesting, types, single blocks, the top-level ISO
fields that boot_iso replaced), plus the plugin rules of reference/README.md. References
(`var.x`, `each.value.y`) are resolved through variables.tf / talos.pkr.hcl and the values
of terraform.tfvars / variables.pkrvars.hcl, so the check covers the values users get.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hcl2
import pytest

from helpers.paths import EXAMPLES

PACKER_DIR = "infrastructure/packer"
TOFU_DIR = "infrastructure/tofu"
BPG = "registry.terraform.io/bpg/proxmox"
VM = "proxmox_virtual_environment_vm"
# Resource arguments that Terraform itself defines, not the provider.
META_ARGUMENTS = {"for_each", "count", "depends_on", "provider", "lifecycle"}
Rendered = Callable[[str], dict[str, bytes]]


# --- HCL values as python-hcl2 returns them -------------------------------------------------

DYNAMIC = "dynamic"  # a value whose type cannot be known without evaluating HCL


def is_block(value: Any) -> bool:
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(v, dict) and v.get("__is_block__") for v in value)
    )


def body_items(body: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
    for key, value in body.items():
        if not key.startswith("__"):
            yield key, value


def unquote(label: str) -> str:
    return label[1:-1] if len(label) >= 2 and label[0] == label[-1] == '"' else label


def labelled(blocks: list[dict[str, Any]], depth: int) -> Iterator[tuple[tuple[str, ...], Any]]:
    """(labels, body) of blocks with `depth` labels, e.g. resource "type" "name"."""
    for block in blocks:
        stack: list[tuple[tuple[str, ...], Any]] = [((), block)]
        while stack:
            labels, node = stack.pop()
            if len(labels) == depth:
                yield labels, node
                continue
            for key, value in body_items(node):
                stack.append(((*labels, unquote(key)), value))


def parse(text: bytes | str) -> dict[str, Any]:
    """The parsed file, cached: python-hcl2 is slow and the checkers only read the result."""
    return _parse(text.decode() if isinstance(text, bytes) else text)


@functools.lru_cache(maxsize=64)
def _parse(text: str) -> dict[str, Any]:
    data: dict[str, Any] = hcl2.loads(text)
    return data


# --- HCL type expressions: string, number, bool, any, list(T), set(T), map(T), object({}) ---


def parse_type(expr: str) -> Any:
    """A type constraint as a nested tuple: "string", ("list", T), ("object", {k: T})."""
    text = expr.strip()
    if text.startswith("${") and text.endswith("}"):
        text = text[2:-1]
    tokens = re.findall(r"[A-Za-z_][A-Za-z0-9_]*|[(){}\[\],=]", text)
    pos = 0

    def take(expected: str | None = None) -> str:
        nonlocal pos
        token = tokens[pos]
        if expected is not None and token != expected:
            raise ValueError(f"type {expr!r}: expected {expected!r}, got {token!r}")
        pos += 1
        return token

    def one() -> Any:
        name = take()
        if name in ("string", "number", "bool", "any"):
            return name
        take("(")
        if name in ("list", "set", "map"):
            inner = one()
            take(")")
            return (name, inner)
        if name == "optional":
            inner = one()
            take(")")
            return inner
        if name == "object":
            take("{")
            attrs = {}
            while tokens[pos] != "}":
                key = take()
                take("=")
                attrs[key] = one()
                if tokens[pos] == ",":
                    take(",")
            take("}")
            take(")")
            return ("object", attrs)
        raise ValueError(f"type {expr!r}: unknown type {name!r}")

    result = one()
    if pos != len(tokens):
        raise ValueError(f"type {expr!r}: trailing {tokens[pos:]}")
    return result


def schema_type(value: Any) -> Any:
    """A terraform providers schema type ("string", ["list", "string"]) as a nested tuple."""
    if isinstance(value, str):
        return value
    return (value[0], schema_type(value[1]))


def value_type(value: Any) -> Any:
    """The type of a literal HCL value (None for null: it fits any type)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        if value.startswith('"'):
            return "string"
        return DYNAMIC
    if isinstance(value, list):
        kinds = {value_type(v) for v in value} - {None}
        return ("list", kinds.pop() if len(kinds) == 1 else (DYNAMIC if kinds else "any"))
    if isinstance(value, dict):
        return ("object", {k: value_type(v) for k, v in body_items(value)})
    raise TypeError(f"unexpected HCL value {value!r}")


def fits(actual: Any, expected: Any) -> bool:
    """Whether a value of type `actual` is accepted where `expected` is declared (strict:
    no implicit number/bool -> string conversion)."""
    if actual is None or actual == DYNAMIC or expected == "any" or actual == "any":
        return True
    if isinstance(expected, str) or isinstance(actual, str):
        return actual == expected
    if expected[0] in ("list", "set"):
        return actual[0] in ("list", "set") and fits(actual[1], expected[1])
    if expected[0] == "map":
        if actual[0] == "object":
            return all(fits(t, expected[1]) for t in actual[1].values())
        return actual[0] == "map" and fits(actual[1], expected[1])
    if expected[0] == "object":
        if actual[0] == "map":
            return all(fits(actual[1], t) for t in expected[1].values())
        return (
            actual[0] == "object"
            and set(actual[1]) == set(expected[1])
            and all(fits(actual[1][k], expected[1][k]) for k in expected[1])
        )
    return False


def literal(value: Any) -> Any:
    """A literal HCL value as plain Python (strings unquoted), or DYNAMIC."""
    if isinstance(value, str):
        if value.startswith('"') and "${" not in value.replace("$${", ""):
            return json.loads(value)
        return DYNAMIC
    if isinstance(value, list):
        return [literal(v) for v in value]
    if isinstance(value, dict):
        return {k: literal(v) for k, v in body_items(value)}
    return value


# --- resolving references through variable declarations and their values ------------------


@dataclass
class Scope:
    """Declared variable types, their values, and the objects each.value ranges over."""

    types: dict[str, Any] = field(default_factory=dict)
    values: dict[str, Any] = field(default_factory=dict)
    each: list[dict[str, Any]] = field(default_factory=list)
    each_type: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, declarations: Mapping[str, Any], values: Mapping[str, Any]) -> Scope:
        types = {}
        for labels, body in labelled(declarations.get("variable", []), 1):
            types[labels[0]] = parse_type(body["type"]) if "type" in body else "any"
        return cls(types, {k: literal(v) for k, v in body_items(values)})

    def resolve(self, value: Any) -> tuple[Any, list[Any]]:
        """(type, concrete values) of an argument value; values are [] when unknown."""
        if isinstance(value, str) and value.startswith("${") and value.endswith("}"):
            ref = value[2:-1]
            if m := re.fullmatch(r"var\.([A-Za-z0-9_]+)", ref):
                name = m.group(1)
                if name not in self.types:
                    return ("undeclared", name), []
                known = [self.values[name]] if name in self.values else []
                return self.types[name], known
            if ref.startswith("local.") and ref in self.types:
                return self.types[ref], []
            if ref == "each.key" and self.each:
                return "string", []
            if (m := re.fullmatch(r"each\.value\.([A-Za-z0-9_]+)", ref)) and self.each:
                key = m.group(1)
                if key not in self.each_type:
                    return ("undeclared", f"each.value.{key}"), []
                return self.each_type[key], [obj[key] for obj in self.each]
            return DYNAMIC, []
        lit = literal(value)
        return value_type(value), [] if lit == DYNAMIC else [lit]


# --- the checkers ----------------------------------------------------------------------------


def _range_problems(where: str, spec: Mapping[str, Any], values: list[Any]) -> list[str]:
    problems = []
    validate = str(spec.get("x_validate", ""))
    bounds = None
    if m := re.search(r"IntBetween\(\s*(-?\d+),\s*(-?\d+)\)", validate):
        bounds = (int(m.group(1)), int(m.group(2)))
    elif m := re.search(r"IntAtLeast\(\s*(-?\d+)\)", validate):
        bounds = (int(m.group(1)), None)
    for v in values:
        if bounds and isinstance(v, (int, float)) and not isinstance(v, bool):
            low, high = bounds
            if v < low or (high is not None and v > high):
                problems.append(f"{where}: {v} is outside {validate}")
    enum = spec.get("x_enum")
    # AnyDiag: the enum is one of several accepted forms (e.g. "none" or a file ID).
    if enum and "AnyDiag" not in validate:
        fold = spec.get("x_enum_ignore_case", False)
        allowed = {e.lower() for e in enum} if fold else set(enum)
        for v in values:
            if isinstance(v, str) and (v.lower() if fold else v) not in allowed:
                problems.append(f"{where}: {v!r} is not one of {enum}")
    return problems


def check_bpg_block(
    body: Mapping[str, Any], schema: Mapping[str, Any], where: str, scope: Scope
) -> list[str]:
    """Problems of one block body against a terraform-providers-schema block."""
    problems: list[str] = []
    attrs = schema.get("attributes", {})
    blocks = schema.get("block_types", {})
    for key, value in body_items(body):
        path = f"{where}.{key}"
        if is_block(value):
            if key not in blocks:
                kind = "an attribute, not a block" if key in attrs else "not in the schema"
                problems.append(f"{path}: {kind}")
                continue
            spec = blocks[key]
            if spec.get("deprecated"):
                problems.append(f"{path}: deprecated block")
            if "max_items" in spec and len(value) > spec["max_items"]:
                problems.append(f"{path}: {len(value)} blocks, at most {spec['max_items']}")
            for i, sub in enumerate(value):
                problems += check_bpg_block(sub, spec["block"], f"{path}[{i}]", scope)
            continue
        if key not in attrs:
            kind = "a block, not an attribute" if key in blocks else "not in the schema"
            problems.append(f"{path}: {kind}")
            continue
        spec = attrs[key]
        if spec.get("computed") and not (spec.get("optional") or spec.get("required")):
            problems.append(f"{path}: computed only, cannot be set")
        if spec.get("deprecated"):
            problems.append(f"{path}: deprecated ({spec.get('x_deprecation_message', '')})")
        actual, values = scope.resolve(value)
        if isinstance(actual, tuple) and actual[0] == "undeclared":
            problems.append(f"{path}: {actual[1]} is not declared")
            continue
        expected = schema_type(spec["type"])
        if not fits(actual, expected):
            problems.append(f"{path}: type {actual} where the schema wants {expected}")
        problems += _range_problems(path, spec, values)
    for key, spec in attrs.items():
        if spec.get("required") and key not in body:
            problems.append(f"{where}.{key}: required argument missing")
    for key, spec in blocks.items():
        if spec.get("min_items", 0) > 0 and key not in body:
            problems.append(f"{where}.{key}: required block missing")
    return problems


def check_packer_block(
    body: Mapping[str, Any],
    spec: Mapping[str, Any],
    where: str,
    scope: Scope,
    types: Mapping[str, Any],
    deprecated: frozenset[str] = frozenset(),
) -> list[str]:
    """Problems of one block body against an hcl2spec Flat* type."""
    problems: list[str] = []
    attrs = spec["attrs"]
    blocks = spec.get("blocks", {})
    for key, value in body_items(body):
        path = f"{where}.{key}"
        if is_block(value):
            if key not in blocks:
                kind = "an attribute, not a block" if key in attrs else "not in the spec"
                problems.append(f"{path}: {kind}")
                continue
            if blocks[key]["kind"] == "single" and len(value) > 1:
                problems.append(f"{path}: {len(value)} blocks, the spec allows one")
            for i, sub in enumerate(value):
                problems += check_packer_block(
                    sub, types[blocks[key]["type"]], f"{path}[{i}]", scope, types
                )
            continue
        if key not in attrs:
            kind = "a block, not an attribute" if key in blocks else "not in the spec"
            problems.append(f"{path}: {kind}")
            continue
        if key in deprecated:
            problems.append(f"{path}: deprecated (use the boot_iso block)")
        actual, _ = scope.resolve(value)
        if isinstance(actual, tuple) and actual[0] == "undeclared":
            problems.append(f"{path}: {actual[1]} is not declared")
            continue
        expected = schema_type(attrs[key]["type"])
        if not fits(actual, expected):
            problems.append(f"{path}: type {actual} where the spec wants {expected}")
    for key, attr in attrs.items():
        if attr.get("required") and key not in body:
            problems.append(f"{where}.{key}: required argument missing")
    return problems


# --- the reference data -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def bpg(reference_dir: Path) -> dict[str, Any]:
    data = json.loads((reference_dir / "bpg/provider-schema.extracted.json").read_text())
    schemas: dict[str, Any] = data["provider_schemas"][BPG]
    schemas["x_version"] = data["x_source"]["ref"].removeprefix("v")
    return schemas


@pytest.fixture(scope="module")
def packer_spec(reference_dir: Path) -> dict[str, Any]:
    spec: dict[str, Any] = json.loads(
        (reference_dir / "packer/proxmox-iso.hcl2spec.json").read_text()
    )
    return spec


def packer_deprecated(spec: Mapping[str, Any]) -> frozenset[str]:
    """Top-level fields proxmox-iso has beyond the common config: the ISO fields that moved
    into boot_iso {} in plugin 1.2 (README: top-level iso_file/unmount_iso are deprecated)."""
    common = next(v for k, v in spec.items() if k.startswith("FlatConfig@"))
    return frozenset(set(spec["FlatConfig"]["attrs"]) - set(common["attrs"]))


def tofu_scope(files: Mapping[str, bytes]) -> Scope:
    scope = Scope.of(
        parse(files[f"{TOFU_DIR}/variables.tf"]), parse(files[f"{TOFU_DIR}/terraform.tfvars"])
    )
    return scope


def check_tofu(files: Mapping[str, bytes], bpg: Mapping[str, Any]) -> list[str]:
    """Every problem of the rendered OpenTofu files against the bpg schema and README rules."""
    problems: list[str] = []
    scope = tofu_scope(files)
    providers = parse(files[f"{TOFU_DIR}/providers.tf"])
    required: dict[str, Any] = {}
    for terraform in providers.get("terraform", []):
        if "required_version" not in terraform:
            problems.append("terraform.required_version missing")
        for block in terraform.get("required_providers", []):
            required.update({k: literal(v) for k, v in body_items(block)})
    used_providers: set[str] = set()
    for labels, body in labelled(providers.get("provider", []), 1):
        used_providers.add(labels[0])
        if labels[0] != "proxmox":
            problems.append(f'provider "{labels[0]}": not a provider clustergen needs')
            continue
        problems += check_bpg_block(body, bpg["provider"]["block"], "provider.proxmox", scope)
        endpoint = scope.values.get("proxmox_endpoint", "")
        if "/api2/json" in str(endpoint):
            problems.append("proxmox_endpoint: bpg wants the endpoint without /api2/json")
    for name in sorted(set(required) - used_providers):
        problems.append(f"required_providers.{name}: no provider block uses it")
    proxmox = required.get("proxmox", {})
    if proxmox.get("source") != "bpg/proxmox":
        problems.append(f"required_providers.proxmox.source: {proxmox.get('source')!r}")
    if proxmox.get("version") != bpg["x_version"]:
        problems.append(
            f"required_providers.proxmox.version: {proxmox.get('version')!r}, "
            f"not pinned to the reference {bpg['x_version']}"
        )

    nodes_tf = parse(files[f"{TOFU_DIR}/nodes.tf"])
    resources = list(labelled(nodes_tf.get("resource", []), 2))
    if not resources:
        problems.append("nodes.tf: no resource")
    for (rtype, rname), body in resources:
        where = f"{rtype}.{rname}"
        if rtype not in bpg["resource_schemas"]:
            problems.append(f"{where}: resource type not in the reference")
            continue
        schema = bpg["resource_schemas"][rtype]["block"]
        for_each = body.get("for_each")
        resource_scope = scope
        if for_each is not None:
            each_type, each_values = scope.resolve(for_each)
            if not (isinstance(each_type, tuple) and each_type[0] == "map" and each_values):
                problems.append(f"{where}.for_each: not a map variable with known values")
            else:
                resource_scope = Scope(
                    scope.types, scope.values, list(each_values[0].values()), each_type[1][1]
                )
        checked = {k: v for k, v in body_items(body) if k not in META_ARGUMENTS}
        problems += check_bpg_block(checked, schema, where, resource_scope)
        for lifecycle in body.get("lifecycle", []):
            for name in lifecycle.get("ignore_changes", []):
                top = re.split(r"[.\[]", name.strip("${}"))[0]
                if top not in schema["attributes"] and top not in schema["block_types"]:
                    problems.append(f"{where}.lifecycle.ignore_changes: {name} is not an argument")
        problems += _bpg_rules(where, body, resource_scope)
    return problems


def _bpg_rules(where: str, body: Mapping[str, Any], scope: Scope) -> list[str]:
    """reference/README.md facts about bpg that the schema alone does not show."""
    problems = []
    for disk in body.get("disk", []):
        _, sizes = scope.resolve(disk.get("size"))
        if "size" in disk and not sizes:
            problems.append(f"{where}.disk.size: value unknown")
    for init in body.get("initialization", []):
        for dns in init.get("dns", []):
            if "servers" not in dns:
                problems.append(f"{where}.initialization.dns: servers missing")
    if body.get("bios") != '"ovmf"' or "efi_disk" not in body:
        problems.append(f"{where}: Talos SecureBoot needs bios = ovmf and an efi_disk")
    os_types = [literal(o.get("type")) for o in body.get("operating_system", [])]
    if os_types != ["l26"]:
        problems.append(f"{where}.operating_system.type: {os_types}, Talos is l26")
    return problems


def check_packer(files: Mapping[str, bytes], spec: Mapping[str, Any]) -> list[str]:
    """Every problem of the rendered Packer files against the hcl2spec and README rules."""
    problems: list[str] = []
    template = parse(files[f"{PACKER_DIR}/talos.pkr.hcl"])
    scope = Scope.of(template, parse(files[f"{PACKER_DIR}/variables.pkrvars.hcl"]))
    allowed_top = {"packer", "variable", "locals", "local", "source", "build"}
    for key, _ in body_items(template):
        if key not in allowed_top:
            problems.append(f"{key}: not a Packer HCL2 top-level block")
    plugins: dict[str, Any] = {}
    for packer in template.get("packer", []):
        for block in packer.get("required_plugins", []):
            plugins.update({k: literal(v) for k, v in body_items(block)})
    proxmox = plugins.get("proxmox", {})
    if proxmox.get("source") != "github.com/hashicorp/proxmox":
        problems.append(f"required_plugins.proxmox.source: {proxmox.get('source')!r}")
    if not re.fullmatch(r">=\s*1\.2\.([3-9]|\d\d+)", str(proxmox.get("version", ""))):
        problems.append(
            f"required_plugins.proxmox.version: {proxmox.get('version')!r}, want >= 1.2.3"
        )
    for _, body in labelled(template.get("locals", []), 0):
        for name, value in body_items(body):
            # Locals here are string templates: their type is string.
            scope.types.setdefault(f"local.{name}", value_type(value))
    sources = list(labelled(template.get("source", []), 2))
    if not sources:
        problems.append("talos.pkr.hcl: no source block")
    deprecated = packer_deprecated(spec)
    for (stype, sname), body in sources:
        where = f"source.{stype}.{sname}"
        if stype != "proxmox-iso":
            problems.append(f"{where}: only proxmox-iso is in the reference")
            continue
        problems += check_packer_block(body, spec["FlatConfig"], where, scope, spec, deprecated)
        # The live ISO runs sshd: the build's result is checked over SSH (issue 16), never
        # with communicator "none", which converts whatever the disk holds.
        if literal(body.get("communicator")) != "ssh" or "ssh_username" not in body:
            problems.append(f'{where}.communicator: the build must check its result, want "ssh"')
        if "boot_iso" not in body:
            problems.append(f"{where}: no boot_iso block")
    names = {f"source.{t}.{n}" for (t, n), _ in sources}
    for build in template.get("build", []):
        for ref in literal(build.get("sources", [])):
            if ref not in names:
                problems.append(f"build.sources: {ref} is not a source")
        # A build-level source block overrides fields of a source under a new name.
        for (ref,), body in labelled(build.get("source", []), 1):
            if f"source.{ref}" not in names:
                problems.append(f"build.source.{ref}: is not a source")
            for key, _ in body_items(body):
                if key != "name" and key not in spec["FlatConfig"]["attrs"]:
                    problems.append(f"build.source.{ref}.{key}: not in the spec")
    return problems


# --- tests -----------------------------------------------------------------------------------


@pytest.mark.parametrize("example", EXAMPLES)
def test_tofu_conforms_to_bpg_schema(example: str, rendered: Rendered, bpg: dict[str, Any]) -> None:
    assert check_tofu(rendered(example), bpg) == []


@pytest.mark.parametrize("example", EXAMPLES)
def test_packer_conforms_to_proxmox_iso_spec(
    example: str, rendered: Rendered, packer_spec: dict[str, Any]
) -> None:
    assert check_packer(rendered(example), packer_spec) == []


WRONG_NODES_TF = """
resource "proxmox_virtual_environment_vm" "node" {
  for_each = var.nodes
  name     = each.key
  bios     = "uefi"
  ssh      = true
  ipv4_addresses = []
  timeout_move_disk = 60
  cpu {
    cores = "four"
  }
  cpu {
    cores = 2
  }
  memory = { dedicated = 1024 }
  agent {
    enabled = var.nowhere
  }
  disk {
    size = "10G"
  }
  efi_disk {
    type = "8m"
  }
  initialization {
    dns {
      server = "1.1.1.1"
    }
  }
  network_device {
    queues = 65
  }
  lifecycle {
    ignore_changes = [initialization, bogus]
  }
}
"""


def test_bpg_checker_reports_every_kind_of_mistake(rendered: Rendered, bpg: dict[str, Any]) -> None:
    files = dict(rendered("minimal"))
    files[f"{TOFU_DIR}/nodes.tf"] = WRONG_NODES_TF.encode()
    problems = "\n".join(check_tofu(files, bpg))
    where = f"{VM}.node"
    for expected in (
        f"{where}.bios: 'uefi' is not one of",
        f"{where}.ssh: not in the schema",
        f"{where}.ipv4_addresses: computed only",
        f"{where}.timeout_move_disk: deprecated",
        f"{where}.cpu[0].cores: type string where the schema wants number",
        f"{where}.cpu: 2 blocks, at most 1",
        f"{where}.memory: a block, not an attribute",
        f"{where}.agent[0].enabled: nowhere is not declared",
        f"{where}.disk[0].size: type string",
        f"{where}.disk[0].interface: required argument missing",
        f"{where}.efi_disk[0].type: '8m' is not one of",
        f"{where}.initialization[0].dns[0].server: not in the schema",
        f"{where}.network_device[0].queues: 65 is outside",
        f"{where}.node_name: required argument missing",
        f"{where}.lifecycle.ignore_changes: bogus is not an argument",
        f"{where}.operating_system.type",
    ):
        assert expected in problems


def test_bpg_checker_reports_provider_mistakes(rendered: Rendered, bpg: dict[str, Any]) -> None:
    files = dict(rendered("minimal"))
    files[f"{TOFU_DIR}/providers.tf"] = b"""
terraform {
  required_providers {
    proxmox = { source = "bpg/proxmox", version = "~> 0.60" }
    talos   = { source = "siderolabs/talos", version = "0.10.0" }
  }
}
provider "proxmox" {
  endpoint = var.proxmox_endpoint
  otp      = "123456"
  ssh      = { agent = true }
}
"""
    problems = "\n".join(check_tofu(files, bpg))
    for expected in (
        "terraform.required_version missing",
        "required_providers.talos: no provider block uses it",
        "not pinned to the reference",
        "provider.proxmox.otp: deprecated",
        "provider.proxmox.ssh: a block, not an attribute",
    ):
        assert expected in problems


def test_packer_checker_reports_every_kind_of_mistake(
    rendered: Rendered, packer_spec: dict[str, Any]
) -> None:
    files = dict(rendered("minimal"))
    text = files[f"{PACKER_DIR}/talos.pkr.hcl"].decode()
    wrong = (
        text.replace(
            'communicator = "ssh"',
            'communicator = "none"\n  iso_file = "local:iso/arch.iso"\n  unmount_iso = true\n'
            '  tags = ["a", "b"]\n  bogus = 1\n  efi_config {\n    efi_type = "4m"\n  }\n'
            '  vga = { type = "std" }\n',
        )
        .replace("discard      = true", 'discard      = "on"')
        .replace("boot_iso {", "additional_iso_files {")
    )
    files[f"{PACKER_DIR}/talos.pkr.hcl"] = wrong.encode()
    problems = "\n".join(check_packer(files, packer_spec))
    where = "source.proxmox-iso.talos"
    for expected in (
        f"{where}.iso_file: deprecated",
        f"{where}.unmount_iso: deprecated",
        f"{where}.tags: type ('list', 'string') where the spec wants string",
        f"{where}.bogus: not in the spec",
        f"{where}.efi_config: 2 blocks, the spec allows one",
        f"{where}.vga: a block, not an attribute",
        f"{where}.disks[0].discard: type string where the spec wants bool",
        f"{where}.communicator: the build must check its result",
        f"{where}: no boot_iso block",
    ):
        assert expected in problems


@pytest.mark.parametrize("example", EXAMPLES)
def test_tfvars_sets_exactly_the_declared_variables_with_their_types(
    example: str, rendered: Rendered
) -> None:
    files = rendered(example)
    declarations = parse(files[f"{TOFU_DIR}/variables.tf"])
    tfvars = parse(files[f"{TOFU_DIR}/terraform.tfvars"])
    declared = dict(labelled(declarations["variable"], 1))
    secret = {name[0] for name, body in declared.items() if body.get("sensitive") is True}
    assert secret == {"proxmox_api_token"}
    assert set(dict(body_items(tfvars))) == {name[0] for name in declared} - secret
    for (name,), body in declared.items():
        assert isinstance(body.get("description"), str), f"{name} has no description"
        if name in secret:
            continue
        declared_type = parse_type(body["type"])
        value = tfvars[name]
        if value is None:
            assert "default" in body, f"{name} is null but has no default"
            continue
        assert fits(value_type(value), declared_type), (name, value_type(value), declared_type)


@pytest.mark.parametrize("example", EXAMPLES)
def test_pkrvars_sets_every_non_secret_variable_with_its_type(
    example: str, rendered: Rendered
) -> None:
    files = rendered(example)
    declared = dict(labelled(parse(files[f"{PACKER_DIR}/talos.pkr.hcl"])["variable"], 1))
    pkrvars = parse(files[f"{PACKER_DIR}/variables.pkrvars.hcl"])
    secret = {name[0] for name, body in declared.items() if body.get("sensitive") is True}
    token = {"proxmox_token_id"} | secret
    assert secret == {"proxmox_token_secret"}
    assert set(dict(body_items(pkrvars))) == {name[0] for name in declared} - token
    for (name,), body in declared.items():
        assert "type" in body and isinstance(body.get("description"), str), name
        if name not in token:
            assert fits(value_type(pkrvars[name]), parse_type(body["type"])), name


@pytest.mark.parametrize("example", EXAMPLES)
def test_every_variable_reference_is_declared_and_every_declaration_used(
    example: str, rendered: Rendered
) -> None:
    files = rendered(example)
    for directory, suffixes in ((TOFU_DIR, (".tf",)), (PACKER_DIR, (".pkr.hcl",))):
        texts = [
            v.decode() for k, v in files.items() if k.startswith(directory) and k.endswith(suffixes)
        ]
        declared = set()
        for text in texts:
            declared |= {labels[0] for labels, _ in labelled(parse(text).get("variable", []), 1)}
        used = {m for text in texts for m in re.findall(r"\bvar\.([A-Za-z0-9_]+)", text)}
        assert used == declared, directory


def test_type_parser_reads_nested_object_types() -> None:
    parsed = parse_type("${map(object({a = number, b = list(string), c = optional(bool)}))}")
    assert parsed == ("map", ("object", {"a": "number", "b": ("list", "string"), "c": "bool"}))
    assert not fits("number", "string")
    assert not fits(("object", {"a": "string"}), ("object", {"a": "number"}))
    with pytest.raises(ValueError):
        parse_type("list(strin g)")


# --- canonical formatting with a real HashiCorp formatter -------------------------------------


def _formatters() -> list[tuple[str, list[str]]]:
    found = []
    if shutil.which("terraform"):
        found.append(("terraform", ["terraform", "fmt", "-check", "-list=true"]))
    if shutil.which("tofu"):
        found.append(("tofu", ["tofu", "fmt", "-check", "-list=true"]))
    return found


@pytest.mark.parametrize("example", EXAMPLES)
def test_hcl_is_canonically_formatted(example: str, rendered: Rendered, tmp_path: Path) -> None:
    formatters = _formatters()
    if not formatters:
        pytest.skip("no HashiCorp formatter (terraform or tofu) on PATH")
    files = {k: v for k, v in rendered(example).items() if k.endswith((".tf", ".tfvars", ".hcl"))}
    assert any(k.endswith(".pkr.hcl") for k in files) and any(k.endswith(".tf") for k in files)
    # One formatter run per example: .pkr.hcl is the same HCL syntax, so it is checked as .tf.
    for path, data in files.items():
        name = path.replace("/", "__")
        target = tmp_path / (name if name.endswith((".tf", ".tfvars")) else name + ".tf")
        target.write_bytes(data)
    env = {**os.environ, "TF_CLI_CONFIG_FILE": "/dev/null", "CHECKPOINT_DISABLE": "1"}
    for name, command in formatters:
        result = subprocess.run(
            [*command, str(tmp_path)], capture_output=True, env=env, check=False, text=True
        )
        assert result.returncode == 0, f"{name} fmt would change:\n{result.stdout}{result.stderr}"
        assert result.stdout == ""


@pytest.mark.parametrize("example", EXAMPLES)
def test_packer_fmt_accepts_the_packer_files(
    example: str, rendered: Rendered, tmp_path: Path
) -> None:
    if not shutil.which("packer"):
        pytest.skip("packer is not installed (Debian's packer package has `packer fmt`)")
    files = rendered(example)
    for name in ("talos.pkr.hcl", "variables.pkrvars.hcl"):
        (tmp_path / name).write_bytes(files[f"{PACKER_DIR}/{name}"])
    env = {**os.environ, "CHECKPOINT_DISABLE": "1"}
    result = subprocess.run(
        ["packer", "fmt", "-check", str(tmp_path)], capture_output=True, env=env, check=False
    )
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()


@pytest.mark.parametrize("example", EXAMPLES)
def test_outputs_read_only_declared_node_attributes(example: str, rendered: Rendered) -> None:
    files = rendered(example)
    node_type = tofu_scope(files).types["nodes"]
    outputs = files[f"{TOFU_DIR}/outputs.tf"].decode()
    used = set(re.findall(r"\bnode\.([A-Za-z0-9_]+)", outputs))
    assert used and used <= set(node_type[1][1])
    names = {labels[0] for labels, _ in labelled(parse(outputs)["output"], 1)}
    assert {"node_names", "node_addresses", "node_vm_ids"} <= names
