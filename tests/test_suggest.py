"""'did you mean' suggests only close matches (generator/suggest.py)."""

from __future__ import annotations

import json

import pytest

from generator import suggest, validate
from helpers.paths import ROOT

CLUSTER_KEYS = sorted(
    json.loads((ROOT / "schemas/cluster.schema.json").read_text(encoding="utf-8"))["properties"]
)
NODE_KEYS = sorted(
    json.loads((ROOT / "schemas/nodes.schema.json").read_text(encoding="utf-8"))["$defs"]["node"][
        "properties"
    ]
)

# (typed, expected suggestion): one or two slips of a real key.
TYPOS = [
    ("proxmox_nod", "proxmox_node"),
    ("proxmox_nodee", "proxmox_node"),
    ("talos_verison", "talos_version"),
    ("talso_verison", "talos_version"),
    ("kubernetes_verion", "kubernetes_version"),
    ("cluster_nmae", "cluster_name"),
    ("node_cidrr", "node_cidr"),
    ("node_dns_server", "node_dns_servers"),
    ("proxmox_storag", "proxmox_storage"),
    ("proxmox_brigde", "proxmox_bridge"),
    ("cluster_api_adr", "cluster_api_addr"),
    ("Cluster_Name", "cluster_name"),
    ("vm_id_bas", "vm_id_base"),
    ("talos_extension", "talos_extensions"),
    ("provisioner", "provisioners"),
]
NODE_TYPOS = [
    ("memroy", "memory"),
    ("memory_", "memory"),
    ("coers", "cores"),
    ("adress", "address"),
    ("mac_adr", "mac_addr"),
    ("contoller", "controller"),
    ("vmid", "vm_id"),
    ("socket", "sockets"),
    ("disk_sise", "disk_size"),
]
# Real keys of other tools or of the host repos: close only in a shared prefix or suffix.
UNRELATED = [
    ("cluster_gateway_addr", CLUSTER_KEYS),
    ("proxmox_api_token_id", CLUSTER_KEYS),
    ("proxmox_api_token_secret", CLUSTER_KEYS),
    ("proxmox_api_url", CLUSTER_KEYS),
    ("proxmox_disk_storage", CLUSTER_KEYS),
    ("proxmox_vm_defaults", CLUSTER_KEYS),
    ("cluster_dns_gateway_addr", CLUSTER_KEYS),
    ("cloudflare_token", CLUSTER_KEYS),
    ("node_ns_servers_v6", CLUSTER_KEYS),
    ("zzz", CLUSTER_KEYS),
    ("schematic_id", NODE_KEYS),
    ("secureboot", NODE_KEYS),
    ("vm_cores", NODE_KEYS),
    ("vm_memory", NODE_KEYS),
    ("mtu", NODE_KEYS),
    ("encrypt_disk", NODE_KEYS),
]


@pytest.mark.parametrize(("typed", "expected"), TYPOS)
def test_a_typo_of_a_cluster_key_is_suggested(typed: str, expected: str) -> None:
    assert suggest.closest(typed, CLUSTER_KEYS) == expected


@pytest.mark.parametrize(("typed", "expected"), NODE_TYPOS)
def test_a_typo_of_a_node_key_is_suggested(typed: str, expected: str) -> None:
    assert suggest.closest(typed, NODE_KEYS) == expected


@pytest.mark.parametrize(("typed", "choices"), UNRELATED, ids=[t for t, _ in UNRELATED])
def test_an_unrelated_key_gets_no_suggestion(typed: str, choices: list[str]) -> None:
    assert suggest.closest(typed, choices) is None, suggest.did_you_mean(typed, choices)


def test_the_reported_cases() -> None:
    # The two suggestions of the issue: unrelated keys that difflib's ratio found "close".
    assert validate.did_you_mean("cluster_gateway_addr", CLUSTER_KEYS) == ""
    assert validate.did_you_mean("proxmox_api_token_id", CLUSTER_KEYS) == ""
    assert suggest.did_you_mean("cluster_gateway_addr", ["cluster_api_addr"]) == ""
    assert suggest.did_you_mean("proxmox_api_token_id", ["proxmox_iso_storage"]) == ""
    assert suggest.did_you_mean("proxmox_nod", ["proxmox_node"]) == "did you mean 'proxmox_node'?"


def test_distance_counts_edits() -> None:
    cases = {
        ("", ""): 0,
        ("abc", ""): 3,
        ("", "abc"): 3,
        ("kitten", "sitting"): 3,
        ("memroy", "memory"): 1,  # a swap of neighbours is one edit
        ("ca", "abc"): 3,  # optimal string alignment: a swapped pair is not edited again
        ("cluster_gateway_addr", "cluster_api_addr"): 6,
    }
    for (a, b), edits in cases.items():
        assert suggest.distance(a, b) == edits, (a, b)
        assert suggest.distance(b, a) == edits, (b, a)


def test_allowed_edits_grow_with_the_word_up_to_two() -> None:
    assert [suggest.allowed_edits("x" * n) for n in (1, 3, 4, 7, 8, 11, 40)] == [
        1,
        1,
        1,
        1,
        2,
        2,
        2,
    ]


def test_short_words_get_one_edit_only() -> None:
    assert suggest.closest("mtu", ["mac"]) is None  # 2 edits in 3 letters is another word
    assert suggest.closest("tag", ["tags"]) == "tags"


def test_ties_break_by_distance_then_alphabet() -> None:
    assert suggest.closest("node_b", ["node_c", "node_a"]) == "node_a"
    assert suggest.closest("node_ab", ["node_a", "node_abc", "xnode_ab"]) == "node_a"


def test_the_word_itself_is_not_a_suggestion() -> None:
    assert suggest.closest("cores", ["cores"]) is None
