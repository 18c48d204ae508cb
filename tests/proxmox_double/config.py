"""Proxmox VE VM config values: how PVE stores them and how its API returns them."""

from __future__ import annotations

import re
from typing import Any

# Keys whose value is a drive (a volume plus options).
DISK_KEY = re.compile(r"(?:ide|sata|scsi|virtio|unused)\d+|efidisk0|tpmstate0")
NIC_MODELS = ("virtio", "e1000", "e1000e", "rtl8139", "vmxnet3")

# GET /nodes/{node}/qemu/{vmid}/config returns integer and boolean options as JSON numbers
# (clients such as the bpg provider decode them into Go ints and fail on strings).
_INT_KEYS = frozenset(
    {
        "acpi",
        "autostart",
        "balloon",
        "bwlimit",
        "ciupgrade",
        "cores",
        "cpuunits",
        "freeze",
        "keephugepages",
        "kvm",
        "localtime",
        "migrate_speed",
        "numa",
        "onboot",
        "protection",
        "reboot",
        "shares",
        "sockets",
        "tablet",
        "tdf",
        "template",
        "vcpus",
    }
)
_FLOAT_KEYS = frozenset({"cpulimit", "migrate_downtime"})
_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}


def typed_config(config: dict[str, Any]) -> dict[str, Any]:
    typed: dict[str, Any] = {}
    for key, value in config.items():
        if key in _INT_KEYS and re.fullmatch(r"-?\d+", str(value)):
            typed[key] = int(value)
        elif key in _FLOAT_KEYS and re.fullmatch(r"-?\d+(?:\.\d+)?", str(value)):
            typed[key] = float(value)
        else:
            typed[key] = value
    return typed


def split_options(value: str) -> tuple[str, list[str]]:
    """'vol,a=1,b=2' -> ('vol', ['a=1', 'b=2']); empty options (a trailing comma) dropped."""
    first, *rest = str(value).split(",")
    return first, [o for o in rest if o]


def disk_volume(value: str) -> str:
    return split_options(value)[0].removeprefix("file=")


def owns_volume(value: str) -> bool:
    """A drive whose volume belongs to the VM: a disk or its cloud-init drive, not an ISO."""
    return "media=cdrom" not in value or disk_volume(value).endswith("-cloudinit")


def parse_size(size: str) -> int:
    """PVE size strings ('10G', '528K'; no unit: bytes) in bytes."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([KMGT]?)", size.strip())
    if match is None:
        raise ValueError(f"bad size '{size}'")
    return int(float(match.group(1)) * _UNITS[match.group(2)])


def disk_size_bytes(value: str) -> int:
    size = re.search(r"(?:^|,)size=([^,]+)", value)
    return parse_size(size.group(1)) if size else 0


def canonical_net(value: str, vmid: int, index: int) -> str:
    """A NIC as PVE stores it: 'model=virtio,macaddr=M,x=y' -> 'virtio=M,x=y'.

    A NIC without a MAC gets one (PVE makes it random; here it is derived from VM ID and index
    so that runs are deterministic).
    """
    first, options = split_options(value)
    parts = [first, *options]
    model = mac = None
    rest = []
    for part in parts:
        key, _, val = part.partition("=")
        if key == "model":
            model = val
        elif key == "macaddr":
            mac = val
        elif key in NIC_MODELS:
            model, mac = key, val or None
        else:
            rest.append(part)
    if model is None:
        raise ValueError(f"network device without a model: '{value}'")
    if mac is None:
        mac = f"BC:24:11:{vmid >> 8 & 0xFF:02X}:{vmid & 0xFF:02X}:{index:02X}"
    return ",".join([f"{model}={mac}", *rest])


def net_mac(value: str) -> str:
    return split_options(value)[0].partition("=")[2]
