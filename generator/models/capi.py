"""Derived values for the capi templates, available as context["capi"].

Cluster API describes machines per role, not per node: the control plane has one
ProxmoxMachineTemplate (TalosControlPlane takes exactly one), and workers get one
MachineDeployment per distinct shape and image. How nodes.yaml maps onto that:

- images: every Talos template (one per (schematic, SecureBoot) pair, talos_templates.py) has
  a Cluster API twin, the same image without a Proxmox cloud-init drive (CAPMOX attaches its
  own NoCloud ISO, and a second cidata drive races it: CAPMOX issue #221). A machine template
  clones the twin of its nodes' pair (templateID) and installs that pair's installer image.
  The cluster's pair (or the only one) has talos_capi_template_vmid; any other pair's twin is
  its template's VM ID + talos_templates.TWIN_STEP.
- controllers: one template, so validate demands one pair and one MTU of all controllers;
  where per-node overrides differ, the largest value of each resource wins (cores, sockets,
  memory, disk size), tags are the union, and the install disk is the one most controllers
  use (ties: alphabetical).
- workers: nodes with the same shape (cores, sockets, memory, disk size, install disk, tags),
  pair and MTU share one MachineDeployment whose replicas are their count. The group of nodes
  that match vm_defaults.worker, the cluster's pair and node_mtu exactly is
  `<cluster>-workers`; every other group is named after what differs from those (another
  pair as `<schematic ID prefix>[-sb]`, another MTU as `mtu<N>`), so its name survives adding
  or removing other groups.
- placement: a template's allowedNodes are the PVE nodes its nodes name (proxmox_node); CAPMOX
  spreads the machines over them. Addresses come from one pool of all planned addresses, in
  no particular order; node names, MACs and VM IDs are CAPI's, not nodes.yaml's.
- cpu_type has no CAPMOX field (v0.7.7 and v0.9.0): every VM keeps the CPU type of the
  template it is cloned from, a Cluster API twin, which Packer builds with the controllers'
  role type, `template_cpu_type` (validate warns when the worker role's differs; per-node
  cpu_type is ignored like vm_id and mac_addr).
- Talos config: strategicPatches only. From Talos 1.12 the generated config has several
  documents and CABPT's JSON6902 configPatches fail on it; a strategic merge patch works on
  every version, and validate refuses capi with Talos < 1.12, whose config has no
  LinkAliasConfig / Layer2VIPConfig documents for the VIP. The patches are written out in
  cluster.yaml.j2; this model holds their values.
- Machine templates and TalosConfigTemplates are named `<owner>-<hash of their spec>`: CAPI
  treats templates as immutable (CAPMOX rejects a changed bootVolume outright), so a changed
  spec is a new template and the owner rolls its machines over to it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from generator.models.capi_machines import control_plane, twins, worker_groups
from generator.models.capi_names import address_ranges, dns_label, template_name

# What other modules (and the tests) take from here.
__all__ = ["address_ranges", "build", "dns_label", "template_cpu_type", "template_name", "twins"]

# The alias Talos gives the VM's one virtio NIC; the API VIP's Layer2VIPConfig names it.
LINK_ALIAS = "net0"
LINK_SELECTOR = 'link.driver == "virtio_net"'
CCM_MANIFEST = (
    "https://raw.githubusercontent.com/siderolabs/talos-cloud-controller-manager/"
    "v{version}/docs/deploy/cloud-controller-manager.yml"
)


def _insecure(base: Mapping[str, Any]) -> str:
    """The credentials Secret's `insecure`: CAPMOX skips TLS verification when the key is
    missing or true-ish (pkg/scope/cluster.go), so it is always written, as true or false."""
    return "true" if base["proxmox_insecure"] else "false"


def template_cpu_type(base: Mapping[str, Any]) -> str:
    """The CPU type the Cluster API template is built with: the controller role's."""
    return str(base["vm_defaults"]["controller"]["cpu_type"])


def build(base: Mapping[str, Any]) -> dict[str, Any]:
    cluster = dns_label(base["cluster_name"])
    namespace = base["capi_namespace"]
    secret = dns_label(f"{base['cluster_name']}-proxmox-credentials")
    templates = twins(base)
    by_template = {t["template_vmid"]: t for t in templates}
    workers = worker_groups(base, cluster, by_template)
    control = control_plane(base, cluster, by_template)
    return {
        "namespace": namespace,
        "cluster_name": cluster,
        "proxmox_cluster_name": cluster,
        "credentials_secret": secret,
        "kubernetes_version": f"v{base['kubernetes_version']}",
        "talos_version": f"v{base['talos_version']}",
        # The in-cluster IPAM pool: the planned node addresses plus the spares for rollouts.
        "addresses": address_ranges(
            [*(n["address"] for n in base["nodes"]), *base["capi_spare_addresses"]]
        ),
        "credentials_insecure": _insecure(base),
        "template_cpu_type": template_cpu_type(base),
        "link_alias": LINK_ALIAS,
        "link_selector": LINK_SELECTOR,
        "ccm_manifest": CCM_MANIFEST.format(version=base["capi_talos_ccm_version"]),
        "control_plane": control,
        "worker_groups": workers,
        # Owners of a ProxmoxMachineTemplate: the control plane, then each worker group.
        "machine_owners": [control, *workers],
        "worker_replicas": sum(g["replicas"] for g in workers),
        # The Cluster API templates (cloud-init-free twins) the machine templates clone.
        "twins": templates,
    }
