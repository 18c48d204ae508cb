"""The Talos side of the Cluster API manifests: the strategicPatches of every TalosControlPlane
and TalosConfigTemplate.

1. Every patch document validates against the Talos machine config JSON Schema of the
   cluster's Talos version (../shared/reference/talos): a v1alpha1 patch against
   v1alpha1.Config, a `kind:` document against its kind. A patch is partial, so only
   `required` is dropped from the schema; unknown keys and wrong types still fail.
2. tests/tools/talospatch (Talos' own pkg/machinery) generates the machine config of that
   Talos version the way CABPT does and applies the patches exactly as CABPT v0.6.12 does,
   then validates the result as a node would; the result must keep every patched value.
Each check is shown to fail on a patch broken in the way it guards against.
"""

from __future__ import annotations

import copy
import io
import json
import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from ruamel.yaml import YAML

from helpers.capi import (
    CLUSTER_YAML,
    Doc,
    Docs,
    load_docs,
    of_kind,
    patch_documents,
    talos_spec,
    variant,
)
from helpers.tools import tool

__all__ = ["variant"]  # the fixture of helpers.capi

TALOS_KINDS = ("TalosControlPlane", "TalosConfigTemplate")


# --- the Talos JSON Schemas ----------------------------------------------------------------


def _without_required(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _without_required(v) for k, v in value.items() if k != "required"}
    if isinstance(value, list):
        return [_without_required(v) for v in value]
    return value


class TalosSchema:
    """One Talos version's machine config schema, as validators of partial documents."""

    def __init__(self, schema: Mapping[str, Any]) -> None:
        partial = _without_required(schema)
        partial.pop("oneOf", None)
        self._root = partial
        self._kinds: dict[str, str] = {}
        for name, definition in schema["$defs"].items():
            kind = ((definition.get("properties") or {}).get("kind") or {}).get("enum")
            if kind:
                self._kinds[kind[0]] = name

    def definition(self, document: Mapping[str, Any]) -> str:
        if "kind" not in document:
            return "v1alpha1.Config"
        if document["kind"] not in self._kinds:
            raise KeyError(f"no Talos document kind {document['kind']!r}")
        return self._kinds[document["kind"]]

    def errors(self, document: Mapping[str, Any]) -> list[str]:
        try:
            name = self.definition(document)
        except KeyError as err:
            return [str(err)]
        validator = Draft202012Validator({**self._root, "$ref": f"#/$defs/{name}"})
        return [
            f"{name}: {'/'.join(str(p) for p in e.absolute_path)}: {e.message}"
            for e in validator.iter_errors(dict(document))
        ]


@pytest.fixture(scope="module")
def talos_schemas(reference_dir: Path) -> dict[str, TalosSchema]:
    """Talos minor version (1.12) -> its schema, read from the reference."""
    out = {}
    for path in sorted((reference_dir / "talos").glob("talos-v*-config.schema.json")):
        version = path.name.removeprefix("talos-v").split("-")[0]
        minor = ".".join(version.split(".")[:2])
        out[minor] = TalosSchema(json.loads(path.read_text(encoding="utf-8")))
    return out


def schema_for(schemas: Mapping[str, TalosSchema], talos_version: str) -> TalosSchema:
    minor = ".".join(talos_version.lstrip("v").split(".")[:2])
    if minor not in schemas:
        pytest.skip(f"no Talos {minor} schema in the reference")
    return schemas[minor]


def talos_owners(docs: Docs) -> Docs:
    return [d for kind in TALOS_KINDS for d in of_kind(docs, kind)]


# --- 1. schema conformance --------------------------------------------------------------------


def test_talos_schema_versions_present(talos_schemas: Mapping[str, TalosSchema]) -> None:
    assert {"1.12", "1.13"} <= talos_schemas.keys()


def test_every_patch_document_meets_its_talos_schema(
    variant: tuple[str, Mapping[str, Any], dict[str, bytes]],
    talos_schemas: Mapping[str, TalosSchema],
) -> None:
    _, context, files = variant
    schema = schema_for(talos_schemas, context["talos_version"])
    owners = talos_owners(load_docs(files[CLUSTER_YAML]))
    assert owners
    checked = 0
    for owner in owners:
        for document in patch_documents(owner):
            assert schema.errors(document) == [], owner["metadata"]["name"]
            checked += 1
    # The control plane's three documents and one per worker group.
    assert checked == 3 + len(of_kind(load_docs(files[CLUSTER_YAML]), "TalosConfigTemplate"))


def _cp_patch(docs: Docs, kind: str | None) -> Doc:
    (control_plane,) = of_kind(docs, "TalosControlPlane")
    return next(d for d in patch_documents(control_plane) if d.get("kind") == kind)


BROKEN_PATCHES: dict[str, tuple[Callable[[Docs], Doc], str]] = {
    # The pre-1.12 VIP patch: machine.network.interfaces is gone from the 1.12 schema (1.13
    # drops machine.network altogether).
    "interfaces vip": (
        lambda d: {
            "machine": {"network": {"interfaces": [{"vip": {"ip": "10.20.0.10"}, "dhcp": False}]}}
        },
        "was unexpected",
    ),
    "install disk not a string": (
        lambda d: {**_cp_patch(d, None), "machine": {"install": {"disk": 5}}},
        "is not of type 'string'",
    ),
    "typo in a v1alpha1 key": (
        lambda d: {"cluster": {"externalCloudProvider": {"enable": True}}},
        "'enable' was unexpected",
    ),
    "api access roles not a list": (
        lambda d: {"machine": {"features": {"kubernetesTalosAPIAccess": {"allowedRoles": "x"}}}},
        "is not of type 'array'",
    ),
    "vip on interface instead of link": (
        lambda d: {**_cp_patch(d, "Layer2VIPConfig"), "interface": "net0"},
        "'interface' was unexpected",
    ),
    "selector field unknown": (
        lambda d: {**_cp_patch(d, "LinkAliasConfig"), "selector": {"driver": "virtio_net"}},
        "'driver' was unexpected",
    ),
    "unknown document kind": (
        lambda d: {"apiVersion": "v1alpha1", "kind": "VIPConfig", "name": "10.20.0.10"},
        "no Talos document kind",
    ),
    "wrong apiVersion": (
        lambda d: {**_cp_patch(d, "LinkAliasConfig"), "apiVersion": "v1alpha2"},
        "is not one of ['v1alpha1']",
    ),
}


@pytest.mark.parametrize("case", sorted(BROKEN_PATCHES))
def test_talos_schema_check_catches(
    case: str,
    variant: tuple[str, Mapping[str, Any], dict[str, bytes]],
    talos_schemas: Mapping[str, TalosSchema],
) -> None:
    _, context, files = variant
    schema = schema_for(talos_schemas, context["talos_version"])
    make, expected = BROKEN_PATCHES[case]
    found = schema.errors(make(load_docs(files[CLUSTER_YAML])))
    assert any(expected in p for p in found), found


def test_partial_schema_drops_only_required(talos_schemas: Mapping[str, TalosSchema]) -> None:
    """A document without its required name passes; the same document full of junk fails."""
    schema = talos_schemas["1.12"]
    assert schema.errors({"apiVersion": "v1alpha1", "kind": "Layer2VIPConfig"}) == []
    assert schema.errors({"apiVersion": "v1alpha1", "kind": "Layer2VIPConfig", "x": 1})


# --- 2. Talos' configpatcher, as CABPT runs it --------------------------------------------------


def _request(docs: Docs, owner: Doc, spec: Mapping[str, Any]) -> dict[str, Any]:
    """talospatch's input: what CABPT reads from the Cluster, the Machine and the spec."""
    (cluster,) = of_kind(docs, "Cluster")
    (proxmox_cluster,) = of_kind(docs, "ProxmoxCluster")
    endpoint = proxmox_cluster["spec"]["controlPlaneEndpoint"]
    version = (
        owner["spec"]["version"]
        if owner["kind"] == "TalosControlPlane"
        else next(
            md["spec"]["template"]["spec"]["version"]
            for md in of_kind(docs, "MachineDeployment")
            if md["spec"]["template"]["spec"]["bootstrap"]["configRef"]["name"]
            == owner["metadata"]["name"]
        )
    )
    network = cluster["spec"]["clusterNetwork"]
    return {
        "clusterName": cluster["metadata"]["name"],
        "endpoint": f"https://{endpoint['host']}:{endpoint['port']}",
        "kubernetesVersion": version,
        "podCIDRs": network["pods"]["cidrBlocks"],
        "serviceCIDRs": network["services"]["cidrBlocks"],
        "spec": dict(spec),
    }


def talospatch(request: Mapping[str, Any]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [tool("talospatch")],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def machine_config(stdout: str) -> tuple[Doc, dict[str, Doc]]:
    """(the v1alpha1 document, {kind: document}) of a multi-document machine config."""
    yaml = YAML(typ="safe", pure=True)
    documents = [d for d in yaml.load_all(io.StringIO(stdout)) if d is not None]
    (v1alpha1,) = [d for d in documents if "kind" not in d]
    return v1alpha1, {d["kind"]: d for d in documents if "kind" in d}


def assert_keeps(patch: Any, result: Any, where: str = "") -> None:
    """Every value of patch is in result: mappings key by key, lists item by item."""
    if isinstance(patch, Mapping):
        assert isinstance(result, Mapping), where
        for key, value in patch.items():
            assert key in result, f"{where}/{key} is missing"
            assert_keeps(value, result[key], f"{where}/{key}")
    elif isinstance(patch, list):
        assert isinstance(result, list), where
        for item in patch:
            assert item in result, f"{where}: {item!r} is missing from {result!r}"
    else:
        assert patch == result, f"{where}: {result!r} is not {patch!r}"


def test_talospatch_applies_every_patch_like_cabpt(
    variant: tuple[str, Mapping[str, Any], dict[str, bytes]],
) -> None:
    _, context, files = variant
    docs = load_docs(files[CLUSTER_YAML])
    for owner in talos_owners(docs):
        spec = talos_spec(owner)
        result = talospatch(_request(docs, owner, spec))
        assert result.returncode == 0, result.stderr
        v1alpha1, kinds = machine_config(result.stdout)
        for patch in patch_documents(owner):
            if "kind" in patch:
                assert_keeps(patch, kinds.get(patch["kind"]), patch["kind"])
            else:
                assert_keeps(patch, v1alpha1, "v1alpha1")
        # Merged into the generated config, not replacing it: its own documents stay.
        assert "HostnameConfig" in kinds
        assert v1alpha1["machine"]["type"] == spec["generateType"]
        assert v1alpha1["cluster"]["clusterName"] == context["capi"]["cluster_name"]
        assert v1alpha1["cluster"]["network"]["podSubnets"] == [context["cluster_pod_cidr"]]


def test_talospatch_reproduces_the_json6902_failure(
    variant: tuple[str, Mapping[str, Any], dict[str, bytes]],
) -> None:
    """The old configPatches: CABPT's JSON6902 refuses a Talos >= 1.12 config outright."""
    _, _, files = variant
    docs = load_docs(files[CLUSTER_YAML])
    (control_plane,) = of_kind(docs, "TalosControlPlane")
    spec = talos_spec(control_plane)
    spec.pop("strategicPatches")
    spec["configPatches"] = [{"op": "add", "path": "/machine/install/disk", "value": "/dev/sda"}]
    result = talospatch(_request(docs, control_plane, spec))
    assert result.returncode == 1
    assert "JSON6902 patches are not supported for multi-document" in result.stderr


BROKEN_STRATEGIC: dict[str, tuple[Callable[[list[str]], list[str]], str]] = {
    "vip not an address": (
        lambda p: [*p[:2], "apiVersion: v1alpha1\nkind: Layer2VIPConfig\nname: vip\nlink: net0\n"],
        "must be a valid IP address",
    ),
    "unknown v1alpha1 key": (
        lambda p: [*p, "machine:\n  instal:\n    disk: /dev/sda\n"],
        "instal",
    ),
    "not yaml": (lambda p: [*p, "machine: [\n"], "StrategicPatch"),
}


@pytest.mark.parametrize("case", sorted(BROKEN_STRATEGIC))
def test_talospatch_rejects_broken_patches(
    case: str, variant: tuple[str, Mapping[str, Any], dict[str, bytes]]
) -> None:
    _, _, files = variant
    docs = load_docs(files[CLUSTER_YAML])
    (control_plane,) = of_kind(docs, "TalosControlPlane")
    spec = copy.deepcopy(talos_spec(control_plane))
    mutate, expected = BROKEN_STRATEGIC[case]
    spec["strategicPatches"] = mutate(list(spec["strategicPatches"]))
    result = talospatch(_request(docs, control_plane, spec))
    assert result.returncode == 1
    assert expected in result.stderr, result.stderr


def test_assert_keeps_notices_a_lost_value() -> None:
    assert_keeps({"a": {"b": [1]}}, {"a": {"b": [1, 2], "c": 3}})
    for lost in ({"a": {"b": [5]}}, {"a": {"b": 1}}, {"a": {"x": 1}}, {"a": {"b": [1], "c": 4}}):
        with pytest.raises(AssertionError):
            assert_keeps(lost, {"a": {"b": [1, 2], "c": 3}})
