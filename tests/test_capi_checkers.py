"""The checkers of helpers.capi (CEL, admission webhooks, cross-object consistency) and the
reference CRD schemas each fail on a document broken in the way they guard against.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from typing import Any

import pytest

from helpers.capi import (
    CLUSTER_YAML,
    Doc,
    Docs,
    load_docs,
    multi_host,
    of_kind,
    schema_errors,
    schemas,
    violations,
)

__all__ = ["multi_host", "schemas"]  # the fixtures of helpers.capi

# --- checkers fail on broken documents -------------------------------------------------------


def _first(docs: Docs, kind: str) -> Doc:
    return of_kind(docs, kind)[0]


def _pmt(docs: Docs) -> dict[str, Any]:
    return dict(_first(docs, "ProxmoxMachineTemplate")["spec"]["template"]["spec"])


BROKEN: dict[str, tuple[Callable[[Docs], None], str]] = {
    "vip in pool": (
        lambda d: _first(d, "ProxmoxCluster")["spec"]["ipv4Config"]["addresses"].append(
            _first(d, "ProxmoxCluster")["spec"]["controlPlaneEndpoint"]["host"]
        ),
        "contain the endpoint IP",
    ),
    "vip in range": (
        lambda d: _first(d, "ProxmoxCluster")["spec"]["ipv4Config"].update(
            addresses=["10.20.0.1-10.20.0.200"]
        ),
        "contain the endpoint IP",
    ),
    "no ip config": (
        lambda d: _first(d, "ProxmoxCluster")["spec"].pop("ipv4Config"),
        "ipv4Config or ipv6Config",
    ),
    "no dns": (lambda d: _first(d, "ProxmoxCluster")["spec"].pop("dnsServers"), "dnsServers"),
    "small boot volume": (
        lambda d: _first(d, "ProxmoxMachineTemplate")["spec"]["template"]["spec"]["disks"][
            "bootVolume"
        ].update(sizeGb=4),
        "sizeGb",
    ),
    "sourceNode and templateSelector": (
        lambda d: _first(d, "ProxmoxMachineTemplate")["spec"]["template"]["spec"].update(
            templateSelector={"matchTags": ["talos"]}
        ),
        "exactly one of sourceNode/templateSelector",
    ),
    "neither templateID nor selector": (
        lambda d: _first(d, "ProxmoxMachineTemplate")["spec"]["template"]["spec"].pop("templateID"),
        "exactly one of templateID/templateSelector",
    ),
    "storage without full clone": (
        lambda d: _first(d, "ProxmoxMachineTemplate")["spec"]["template"]["spec"].update(
            full=False
        ),
        "storage needs full: true",
    ),
    "cloud-init check on": (
        lambda d: _first(d, "ProxmoxMachineTemplate")["spec"]["template"]["spec"].pop("checks"),
        "skipCloudInitStatus",
    ),
    "memory not multiple of 8": (
        lambda d: _first(d, "ProxmoxMachineTemplate")["spec"]["template"]["spec"].update(
            memoryMiB=4100
        ),
        "multiple of 8",
    ),
    "bad mtu": (
        lambda d: _first(d, "ProxmoxMachineTemplate")["spec"]["template"]["spec"]["network"][
            "default"
        ].update(mtu=100),
        "invalid MTU",
    ),
    "version without v": (
        lambda d: _first(d, "TalosControlPlane")["spec"].update(version="1.35.0"),
        "is not v1.35.0",
    ),
    "other kubernetes version": (
        lambda d: _first(d, "TalosControlPlane")["spec"].update(version="v1.34.0"),
        "is not v1.35.0",
    ),
    "name not DNS-1123": (
        lambda d: _first(d, "MachineDeployment")["metadata"].update(name="Workers_1"),
        "DNS-1123",
    ),
    "name too long": (
        lambda d: _first(d, "ProxmoxCluster")["metadata"].update(name="a" * 64),
        "DNS-1123",
    ),
    "wrong namespace": (
        lambda d: _first(d, "TalosConfigTemplate")["metadata"].update(namespace="default"),
        "namespace",
    ),
    "dangling ref": (
        lambda d: _first(d, "Cluster")["spec"]["infrastructureRef"].update(name="other"),
        "dangles",
    ),
    "dangling template": (
        lambda d: _first(d, "TalosControlPlane")["spec"]["infrastructureTemplate"].update(
            name="gone"
        ),
        "dangles",
    ),
    "selector mismatch": (
        lambda d: _first(d, "MachineDeployment")["spec"]["template"]["metadata"]["labels"].clear(),
        "selector does not match",
    ),
    "worker surge without spare address": (
        lambda d: _first(d, "MachineDeployment")["spec"].pop("strategy"),
        "IP pool",
    ),
    "control plane surge without spare address": (
        lambda d: _first(d, "TalosControlPlane")["spec"].pop("rolloutStrategy"),
        "IP pool",
    ),
    "guest agent check skipped with the agent": (
        lambda d: _first(d, "ProxmoxMachineTemplate")["spec"]["template"]["spec"]["checks"].update(
            skipQemuGuestAgent=True
        ),
        "skipQemuGuestAgent must be False",
    ),
    "clone of the cloud-init template": (
        lambda d: _first(d, "ProxmoxMachineTemplate")["spec"]["template"]["spec"].update(
            templateID=9100
        ),
        "templateID is not a Cluster API template",
    ),
    "md of other cluster": (
        lambda d: _first(d, "MachineDeployment")["spec"].update(clusterName="other"),
        "clusterName",
    ),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_rule_checker_catches(
    case: str, multi_host: tuple[Mapping[str, Any], dict[str, bytes]]
) -> None:
    context, files = multi_host
    docs = load_docs(files[CLUSTER_YAML])
    assert violations(docs, context) == []
    broken = copy.deepcopy(docs)
    mutate, expected = BROKEN[case]
    mutate(broken)
    found = violations(broken, context)
    assert any(expected in p for p in found), found


SCHEMA_BROKEN: dict[str, tuple[Callable[[Docs], None], str]] = {
    # The design notes' mistakes: the reference schemas must reject them.
    "serverRef": (
        lambda d: _first(d, "ProxmoxCluster")["spec"].update(
            serverRef={"endpoint": "https://pve:8006"}
        ),
        "serverRef",
    ),
    "disks as list": (
        lambda d: _first(d, "ProxmoxMachineTemplate")["spec"]["template"]["spec"].update(
            disks=[{"size": "100Gi", "storage": "local-zfs"}]
        ),
        "is not of type 'object'",
    ),
    "boot volume below 5": (
        lambda d: _first(d, "ProxmoxMachineTemplate")["spec"]["template"]["spec"]["disks"][
            "bootVolume"
        ].update(sizeGb=4),
        "less than the minimum of 5",
    ),
    "no dnsServers": (
        lambda d: _first(d, "ProxmoxCluster")["spec"].pop("dnsServers"),
        "'dnsServers' is a required property",
    ),
    "unknown kind": (lambda d: d.append({"apiVersion": "v1", "kind": "Foo"}), "no reference"),
    "tag syntax": (
        lambda d: _first(d, "ProxmoxMachineTemplate")["spec"]["template"]["spec"].update(
            tags=["bad tag"]
        ),
        "does not match",
    ),
}


@pytest.mark.parametrize("case", sorted(SCHEMA_BROKEN))
def test_schema_check_catches(
    case: str, multi_host: tuple[Mapping[str, Any], dict[str, bytes]], schemas: Any
) -> None:
    _, files = multi_host
    broken = load_docs(files[CLUSTER_YAML])
    mutate, expected = SCHEMA_BROKEN[case]
    mutate(broken)
    found = schema_errors(broken, schemas)
    assert any(expected in p for p in found), found


def test_capmox_schema_errors_name_both_versions(
    multi_host: tuple[Mapping[str, Any], dict[str, bytes]], schemas: Any
) -> None:
    _, files = multi_host
    broken = load_docs(files[CLUSTER_YAML])
    _first(broken, "ProxmoxMachineTemplate")["spec"]["template"]["spec"]["bogus"] = 1
    found = schema_errors(broken, schemas)
    assert any("v0.7.7" in p for p in found) and any("v0.9.0" in p for p in found), found
