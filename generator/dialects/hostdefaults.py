"""What the host dialects mean where clustergen's keys are silent: the host keys that keep
clustergen's name and meaning, and the host's own defaults (its CUE defaults), which
differ from clustergen's."""

from __future__ import annotations

from generator import constants
from generator.dialects import CLUSTER_TEMPLATE, TALOS_CLUSTER

# Host keys with the same name and meaning as clustergen's.
SAME = (
    "node_cidr",
    "node_default_gateway",
    "node_dns_servers",
    "cluster_api_addr",
    "cluster_pod_cidr",
    "cluster_svc_cidr",
    "proxmox_node",
    "proxmox_iso_storage",
    "talos_version",
    "kubernetes_version",
    "cluster_name",
)
NODE_SAME = ("name", "address", "controller", "mac_addr", "vm_id")
# The host's defaults where a key is absent (its CUE defaults).
CLUSTER_NAME_DEFAULT = {CLUSTER_TEMPLATE: "kubernetes", TALOS_CLUSTER: "matherlynet"}
TC_VERSIONS = {"talos_version": "1.12.0", "kubernetes_version": "1.35.0"}
TC_DISK_STORAGE = "local-lvm"
TC_GLOBAL = {"cores": 4, "sockets": 1, "memory": 8192, "disk_size": 128}
TC_ROLE_BLOCKS = {
    "controller": "proxmox_vm_controller_defaults",
    "worker": "proxmox_vm_worker_defaults",
}
TC_ADVANCED = {
    "bios": "ovmf",
    "machine": "q35",
    "scsi_hw": "virtio-scsi-pci",
    "balloon": 0,
    "numa": True,
    "qemu_agent": True,
    "net_queues": 4,
    "disk_discard": True,
    "disk_ssd": True,
    "disk_backup": False,
    "disk_replicate": False,
    "ostype": "l26",
}
TC_CPU_TYPE = "host"
TC_BRIDGE = "vmbr0"
# talos-cluster per-node vm_* keys -> clustergen node keys.
TC_NODE = {
    "vm_cores": "cores",
    "vm_sockets": "sockets",
    "vm_memory": "memory",
    "vm_disk_size": "disk_size",
    "vm_startup_order": "startup_order",
    "vm_startup_delay": "startup_delay",
    "vm_shutdown_delay": "shutdown_delay",
}
HOST_SECUREBOOT_DEFAULT = False
HOST_MTU_DEFAULT = 1500
SECRET_KEYS = constants.SECRET_KEYS
API_PATH = "/api2/json"
