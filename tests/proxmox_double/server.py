"""An in-memory Proxmox VE cluster behind a threaded HTTPS server on 127.0.0.1.

It answers the /api2/json endpoints that the real clients of the tests call at run time:
community.proxmox (proxmox_kvm, proxmox_vm_info, proxmox_disk), the bpg/proxmox OpenTofu
provider and packer-plugin-proxmox. The semantics are the ones those clients rely on, taken from
Proxmox VE's own behaviour: a clone copies the template's config and its disks to new volumes; a
VM lives on one node and is only reachable under that node's path; `storage:N` in a disk value
allocates a new N GiB volume and `storage:cloudinit` a cloud-init drive; a network device given
as `model=...,macaddr=...` is stored as `model=MAC,...`; GET config types integers and booleans
as numbers; a running VM with the guest agent enabled reports its cloud-init address; tasks
finish at once with exit status OK. Every request is checked against the API token and recorded
so tests can assert on what the clients really sent; requests the double does not know are
answered 501 and listed in `unknown`, so a test can fail on them instead of guessing.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from .config import (
    DISK_KEY,
    canonical_net,
    disk_size_bytes,
    disk_volume,
    net_mac,
    owns_volume,
    parse_size,
    split_options,
    typed_config,
)

API_PREFIX = "/api2/json"
PVE_VERSION = "8.4.1"
GIB = 1024**3


@dataclass(frozen=True)
class ApiCall:
    method: str
    path: str  # without /api2/json and without the query string
    params: dict[str, str]  # query string and form body together


@dataclass
class VirtualMachine:
    vmid: int
    node: str
    name: str
    config: dict[str, Any]
    status: str = "stopped"
    template: bool = False
    keys: list[str] = field(default_factory=list)  # what sendkey typed, in order


@dataclass
class Storage:
    """One storage as `pvesm status` sees it; volumes maps a volume name to its size."""

    name: str
    type: str  # dir, lvmthin, rbd, cephfs, ...
    shared: bool
    content: tuple[str, ...]
    volumes: dict[str, int] = field(default_factory=dict)
    total: int = 1024 * GIB


@dataclass(frozen=True)
class Task:
    upid: str
    node: str
    kind: str
    vmid: int


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _default_storages() -> dict[str, Storage]:
    # A fresh Proxmox VE install: `local` (a directory, ISOs) and `local-lvm` (thin LVM, disks).
    return {
        "local": Storage("local", "dir", False, ("iso", "vztmpl", "backup")),
        "local-lvm": Storage("local-lvm", "lvmthin", False, ("images", "rootdir")),
    }


@dataclass
class ProxmoxDouble:
    """State of the fake cluster; serve() starts it on 127.0.0.1 and returns the port."""

    token: str  # what the clients send after PVEAPIToken=: user@realm!name=secret
    nodes: tuple[str, ...] = ("pve",)
    vms: dict[int, VirtualMachine] = field(default_factory=dict)
    storages: dict[str, Storage] = field(default_factory=_default_storages)
    calls: list[ApiCall] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)  # "METHOD /path" the double cannot answer
    tasks: list[Task] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    port: int = 0
    certfile: Path | None = None  # the self-signed certificate clients must trust
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    def add_storage(
        self, name: str, type_: str, *, shared: bool, content: tuple[str, ...]
    ) -> Storage:
        self.storages[name] = Storage(name, type_, shared, content)
        return self.storages[name]

    def add_iso(self, storage: str, filename: str, size: int = 1_200_000_000) -> None:
        self.storages[storage].volumes[f"iso/{filename}"] = size

    def add_template(
        self,
        vmid: int,
        node: str,
        name: str,
        disk_size: str = "10G",
        storage: str = "local-lvm",
        *,
        efi: bool = False,
    ) -> None:
        """A template as Packer leaves it: one disk, a cloud-init drive, one NIC, the agent on.

        efi adds the q35/OVMF parts of clustergen's Talos template (an EFI disk).
        """
        self._storage(storage).volumes[f"base-{vmid}-disk-0"] = parse_size(disk_size)
        self._storage(storage).volumes[f"vm-{vmid}-cloudinit"] = 4 * 1024**2
        config: dict[str, Any] = {
            "name": name,
            "template": "1",
            "cores": "1",
            "sockets": "1",
            "memory": "2048",
            "scsi0": f"{storage}:base-{vmid}-disk-0,size={disk_size}",
            "net0": "virtio=BC:24:11:FF:FF:FF,bridge=vmbr0",
            "ide2": f"{storage}:vm-{vmid}-cloudinit,media=cdrom",
            "agent": "1",
        }
        if efi:
            self._storage(storage).volumes[f"base-{vmid}-disk-1"] = 528 * 1024
            config.update(
                bios="ovmf",
                machine="q35",
                ostype="l26",
                scsihw="virtio-scsi-single",
                efidisk0=f"{storage}:base-{vmid}-disk-1,efitype=4m,pre-enrolled-keys=0,size=528K",
            )
            config["ide1"] = config.pop("ide2")
        self.vms[vmid] = VirtualMachine(
            vmid=vmid, node=node, name=name, template=True, config=config
        )

    # --- server lifecycle -------------------------------------------------------------------

    def serve(self, certfile: Path, keyfile: Path) -> int:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(certfile, keyfile)
        double = self

        class Handler(_Handler):
            owner = double

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        server.socket = context.wrap_socket(server.socket, server_side=True)
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        self.port = int(server.server_address[1])
        self.certfile = certfile
        return self.port

    def shutdown(self, timeout: float = 5.0) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                raise RuntimeError("the Proxmox double did not stop in time")

    # --- queries for tests ------------------------------------------------------------------

    def writes(self) -> list[ApiCall]:
        """Every call that changes state (everything but GET)."""
        with self._lock:
            return [c for c in self.calls if c.method != "GET"]

    def volumes(self) -> set[str]:
        """Every allocated volume as storage:name."""
        with self._lock:
            return {f"{s.name}:{v}" for s in self.storages.values() for v in s.volumes}

    # --- the API ----------------------------------------------------------------------------

    def handle(self, method: str, path: str, params: dict[str, str]) -> Any:
        with self._lock:
            self.calls.append(ApiCall(method, path, dict(params)))
            for pattern, verb, action in _ROUTES:
                match = pattern.fullmatch(path)
                if match and verb == method:
                    return action(self, params, *match.groups())
            self.unknown.append(f"{method} {path}")
            raise ApiError(501, f"Method '{method} {path}' not implemented by the double")

    def _new_task(self, node: str, kind: str, vmid: int) -> str:
        upid = f"UPID:{node}:{len(self.tasks) + 1:08X}:00000000:00000000:{kind}:{vmid}:double@pve:"
        self.tasks.append(Task(upid, node, kind, vmid))
        return upid

    def _vm_on(self, node: str, vmid: str) -> VirtualMachine:
        self._node(node)
        vm = self.vms.get(int(vmid))
        if vm is None or vm.node != node:
            # Real PVE: the config file lives in the node's directory only.
            raise ApiError(
                500, f"Configuration file 'nodes/{node}/qemu-server/{vmid}.conf' does not exist"
            )
        return vm

    def _node(self, node: str) -> None:
        if node not in self.nodes:
            raise ApiError(595, f"no such node '{node}'")

    def _storage(self, name: str) -> Storage:
        storage = self.storages.get(name)
        if storage is None:
            raise ApiError(500, f"storage '{name}' does not exist")
        return storage

    # --- volumes ----------------------------------------------------------------------------

    def _allocate(self, storage: str, vmid: int, size: int) -> str:
        store = self._storage(storage)
        if "images" not in store.content:
            raise ApiError(500, f"storage '{storage}' does not support vm images")
        n = 0
        while any(v in store.volumes for v in (f"vm-{vmid}-disk-{n}", f"base-{vmid}-disk-{n}")):
            n += 1
        store.volumes[f"vm-{vmid}-disk-{n}"] = size
        return f"{storage}:vm-{vmid}-disk-{n}"

    def _free(self, volid: str) -> None:
        storage, _, name = volid.partition(":")
        if storage in self.storages:
            self.storages[storage].volumes.pop(name, None)

    def _disk_value(self, vm: VirtualMachine, key: str, value: str) -> str:
        """A disk value as PVE stores it: new volumes allocated, `file=` dropped."""
        first, options = split_options(value)
        volume = first.removeprefix("file=")
        rest = [o for o in options if not o.startswith(("size=", "import-from="))]
        cloudinit = re.fullmatch(r"([^:]+):cloudinit", volume)
        new = re.fullmatch(r"([^:]+):(\d+(?:\.\d+)?)", volume)
        if cloudinit:
            store = self._storage(cloudinit.group(1))
            store.volumes[f"vm-{vm.vmid}-cloudinit"] = 4 * 1024**2
            return f"{store.name}:vm-{vm.vmid}-cloudinit,media=cdrom"
        if new:
            if key == "efidisk0":
                size = "528K" if "efitype=4m" in rest else "128K"
            elif key == "tpmstate0":
                size = "4M"
            else:
                size = f"{new.group(2)}G"
            # Thin LVM and RBD hold raw images only: PVE drops the format option there.
            rest = [o for o in rest if not o.startswith("format=")]
            volid = self._allocate(new.group(1), vm.vmid, parse_size(size))
            return ",".join([volid, *rest, f"size={size}"])
        size_opts = [o for o in options if o.startswith("size=")]
        old = vm.config.get(key)
        if old is not None and disk_volume(old) == volume:
            # Same volume, new options: PVE keeps the size it knows.
            size_opts = [o for o in split_options(old)[1] if o.startswith("size=")]
        return ",".join([volume, *rest, *size_opts])

    def _apply_config(self, vm: VirtualMachine, params: dict[str, str]) -> None:
        for gone in [g for g in params.get("delete", "").split(",") if g]:
            old = vm.config.pop(gone, None)
            if old is not None and DISK_KEY.fullmatch(gone):
                if gone.startswith("unused"):
                    self._free(disk_volume(old))
                else:
                    self._detach(vm, old)
        for key, value in params.items():
            if key in ("delete", "digest", "vmid", "node", "skiplock", "background_delay"):
                continue
            if DISK_KEY.fullmatch(key):
                old = vm.config.get(key)
                value = self._disk_value(vm, key, value)
                if old is not None and disk_volume(old) != disk_volume(value):
                    self._detach(vm, old)
            elif re.fullmatch(r"net\d+", key):
                value = canonical_net(value, vm.vmid, int(key[3:]))
            elif key == "tags":
                # PVE stores tags ';'-separated whatever separator it was given.
                value = ";".join(t for t in re.split(r"[,; ]+", value) if t)
            vm.config[key] = value
        vm.name = str(vm.config.get("name", vm.name))

    def _detach(self, vm: VirtualMachine, value: str) -> None:
        """A drive taken off the VM, as PVE does it: a cloud-init drive is freed, a disk is
        kept as unusedN, an ISO or an empty drive just goes."""
        volume = disk_volume(value)
        if volume.endswith("-cloudinit"):
            self._free(volume)
        elif owns_volume(value) and volume.partition(":")[0] in self.storages:
            vm.config[self._free_key(vm, "unused")] = volume

    @staticmethod
    def _free_key(vm: VirtualMachine, prefix: str) -> str:
        n = 0
        while f"{prefix}{n}" in vm.config:
            n += 1
        return f"{prefix}{n}"

    # --- routes -----------------------------------------------------------------------------

    def version(self, params: dict[str, str]) -> Any:
        return {
            "version": PVE_VERSION,
            "release": PVE_VERSION.rsplit(".", 1)[0],
            "repoid": "double",
        }

    def list_nodes(self, params: dict[str, str]) -> Any:
        return [
            {"node": n, "status": "online", "type": "node", "maxcpu": 16, "maxmem": 128 * GIB}
            for n in self.nodes
        ]

    def resources(self, params: dict[str, str]) -> Any:
        if params.get("type") not in (None, "vm"):
            return []
        return [
            {
                "id": f"qemu/{vm.vmid}",
                "type": "qemu",
                "vmid": vm.vmid,
                "name": vm.name,
                "node": vm.node,
                "status": vm.status,
                "template": int(vm.template),
                "maxmem": self._memory_bytes(vm),
                "maxdisk": self._boot_disk_bytes(vm),
            }
            for vm in sorted(self.vms.values(), key=lambda v: v.vmid)
        ]

    def nextid(self, params: dict[str, str]) -> Any:
        if "vmid" in params:
            if int(params["vmid"]) in self.vms:
                raise ApiError(400, f"VM {params['vmid']} already exists")
            return params["vmid"]
        return str(max([99, *self.vms]) + 1)

    def node_status(self, params: dict[str, str], node: str) -> Any:
        self._node(node)
        return {"uptime": 1000, "cpu": 0.01, "memory": {"total": 128 * GIB, "used": GIB}}

    def node_vms(self, params: dict[str, str], node: str) -> Any:
        self._node(node)
        return [
            {"vmid": vm.vmid, "name": vm.name, "status": vm.status, "template": int(vm.template)}
            for vm in sorted(self.vms.values(), key=lambda v: v.vmid)
            if vm.node == node
        ]

    def create(self, params: dict[str, str], node: str) -> Any:
        self._node(node)
        vmid = int(params["vmid"])
        if vmid in self.vms:
            raise ApiError(500, f"unable to create VM {vmid} - VM {vmid} already exists on node")
        vm = VirtualMachine(vmid, node, params.get("name", f"VM {vmid}"), {})
        self._apply_config(vm, params)
        self.vms[vmid] = vm
        return self._new_task(node, "qmcreate", vmid)

    def clone(self, params: dict[str, str], node: str, vmid: str) -> Any:
        source = self._vm_on(node, vmid)
        newid = int(params["newid"])
        if newid in self.vms:
            raise ApiError(500, f"VM {newid} already exists")
        target = params.get("target") or node
        self._node(target)
        # PVE copies the drives in use; a source's unusedN volumes stay with the source.
        config = {
            k: v for k, v in copy.deepcopy(source.config).items() if not k.startswith("unused")
        }
        config.pop("template", None)
        config["name"] = params.get("name", f"Copy-of-VM-{source.name}")
        if "description" in params:
            config["description"] = params["description"]
        clone = VirtualMachine(newid, target, config["name"], config)
        for key, value in list(config.items()):
            if not DISK_KEY.fullmatch(key) or key.startswith("unused"):
                continue
            volume = disk_volume(value)
            storage, _, name = volume.partition(":")
            if volume.endswith("-cloudinit"):
                store = self._storage(params.get("storage") or storage)
                store.volumes[f"vm-{newid}-cloudinit"] = 4 * 1024**2
                config[key] = value.replace(volume, f"{store.name}:vm-{newid}-cloudinit")
                continue
            if "media=cdrom" in value or storage not in self.storages:
                continue
            if target != node and not self.storages[storage].shared:
                raise ApiError(500, f"can't clone to non-shared storage '{storage}'")
            into = params.get("storage") or storage
            size = self.storages[storage].volumes.get(name, 0)
            config[key] = value.replace(volume, self._allocate(into, newid, size))
        self.vms[newid] = clone
        return self._new_task(node, "qmclone", source.vmid)

    def migrate(self, params: dict[str, str], node: str, vmid: str) -> Any:
        vm = self._vm_on(node, vmid)
        target = params["target"]
        self._node(target)
        if target == node:
            raise ApiError(400, f"target is local node '{node}'")
        if vm.status == "running" and params.get("online") not in ("1", "true"):
            raise ApiError(500, "can't migrate running VM without --online")
        local = [
            k
            for k, v in vm.config.items()
            if DISK_KEY.fullmatch(k)
            and disk_volume(v).partition(":")[0] in self.storages
            and not self.storages[disk_volume(v).partition(":")[0]].shared
        ]
        if local and params.get("with-local-disks") not in ("1", "true"):
            raise ApiError(500, f"can't migrate local disk '{local[0]}' without with-local-disks")
        into = params.get("targetstorage")
        if into:
            for key in local:
                volume = disk_volume(vm.config[key])
                size = self._storage(volume.partition(":")[0]).volumes.get(
                    volume.partition(":")[2], 0
                )
                self._free(volume)
                if volume.endswith("-cloudinit"):
                    self._storage(into).volumes[f"vm-{vm.vmid}-cloudinit"] = size
                    moved = f"{into}:vm-{vm.vmid}-cloudinit"
                else:
                    moved = self._allocate(into, vm.vmid, size)
                vm.config[key] = vm.config[key].replace(volume, moved)
        vm.node = target
        return self._new_task(node, "qmigrate", vm.vmid)

    def move_disk(self, params: dict[str, str], node: str, vmid: str) -> Any:
        vm = self._vm_on(node, vmid)
        disk, into = params["disk"], params["storage"]
        if disk not in vm.config:
            raise ApiError(500, f"disk '{disk}' does not exist")
        volume = disk_volume(vm.config[disk])
        storage, _, name = volume.partition(":")
        if storage == into and params.get("format") in (None, "raw"):
            # PVE's own message; the bpg provider takes it as "already there".
            raise ApiError(500, "you can't move to the same storage with same format")
        size = self._storage(storage).volumes.get(name, 0)
        moved = self._allocate(into, vm.vmid, size)
        vm.config[disk] = vm.config[disk].replace(volume, moved)
        if params.get("delete") in ("1", "true"):
            self._free(volume)
        else:
            vm.config[self._free_key(vm, "unused")] = volume
        return self._new_task(node, "qmmove", vm.vmid)

    def get_config(self, params: dict[str, str], node: str, vmid: str) -> Any:
        config = copy.deepcopy(self._vm_on(node, vmid).config)
        digest = hashlib.sha1(json.dumps(config, sort_keys=True).encode()).hexdigest()
        return {**typed_config(config), "digest": digest}

    def set_config(self, params: dict[str, str], node: str, vmid: str) -> Any:
        vm = self._vm_on(node, vmid)
        self._apply_config(vm, params)
        return None

    def set_config_async(self, params: dict[str, str], node: str, vmid: str) -> Any:
        self.set_config(params, node, vmid)
        return self._new_task(node, "qmconfig", int(vmid))

    def resize(self, params: dict[str, str], node: str, vmid: str) -> Any:
        vm = self._vm_on(node, vmid)
        disk, size = params["disk"], params["size"]
        if disk not in vm.config:
            raise ApiError(500, f"disk '{disk}' does not exist")
        volume = disk_volume(vm.config[disk])
        current = disk_size_bytes(vm.config[disk])
        wanted = current + parse_size(size[1:]) if size.startswith("+") else parse_size(size)
        if wanted < current:
            raise ApiError(500, "shrinking disks is not supported")
        storage, _, name = volume.partition(":")
        if storage in self.storages:
            self.storages[storage].volumes[name] = wanted
        shown = f"{wanted // GIB}G" if wanted % GIB == 0 else f"{wanted // 1024**2}M"
        if "size=" in vm.config[disk]:
            vm.config[disk] = re.sub(r"size=[^,]*", f"size={shown}", vm.config[disk])
        else:
            vm.config[disk] = f"{vm.config[disk]},size={shown}"
        return self._new_task(node, "resize", vm.vmid)

    def status_current(self, params: dict[str, str], node: str, vmid: str) -> Any:
        vm = self._vm_on(node, vmid)
        status: dict[str, Any] = {
            "vmid": vm.vmid,
            "name": vm.name,
            "status": vm.status,
            "qmpstatus": vm.status,
            "cpus": int(vm.config.get("cores", 1)) * int(vm.config.get("sockets", 1)),
            "maxmem": self._memory_bytes(vm),
            "maxdisk": self._boot_disk_bytes(vm),
            "uptime": 100 if vm.status == "running" else 0,
        }
        if self._agent_enabled(vm):
            status["agent"] = 1
        if vm.template:
            status["template"] = 1
        if "tags" in vm.config:
            status["tags"] = vm.config["tags"]
        return status

    def status_change(self, params: dict[str, str], node: str, vmid: str, action: str) -> Any:
        vm = self._vm_on(node, vmid)
        if vm.template:
            raise ApiError(500, f"you can't {action} a vm if it's a template")
        vm.status = "running" if action in ("start", "reboot", "reset", "resume") else "stopped"
        return self._new_task(node, f"qm{action}", vm.vmid)

    def destroy(self, params: dict[str, str], node: str, vmid: str) -> Any:
        vm = self._vm_on(node, vmid)
        if vm.status == "running":
            raise ApiError(500, f"VM {vmid} is running - destroy failed")
        for key, value in vm.config.items():
            if DISK_KEY.fullmatch(key) and owns_volume(value):
                self._free(disk_volume(value))
        del self.vms[vm.vmid]
        return self._new_task(node, "qmdestroy", vm.vmid)

    def template(self, params: dict[str, str], node: str, vmid: str) -> Any:
        vm = self._vm_on(node, vmid)
        if vm.status == "running":
            raise ApiError(500, "you can't convert a running VM to a template")
        for key, value in list(vm.config.items()):
            volume = disk_volume(value) if DISK_KEY.fullmatch(key) else ""
            storage, _, name = volume.partition(":")
            if name.startswith(f"vm-{vm.vmid}-disk-") and storage in self.storages:
                base = name.replace("vm-", "base-", 1)
                store = self.storages[storage]
                store.volumes[base] = store.volumes.pop(name, 0)
                vm.config[key] = value.replace(volume, f"{storage}:{base}")
        vm.template = True
        vm.config["template"] = "1"
        return self._new_task(node, "qmtemplate", vm.vmid)

    def sendkey(self, params: dict[str, str], node: str, vmid: str) -> Any:
        vm = self._vm_on(node, vmid)
        if vm.status != "running":
            raise ApiError(500, f"VM {vmid} not running")
        vm.keys.append(params["key"])
        return None

    def agent_interfaces(self, params: dict[str, str], node: str, vmid: str) -> Any:
        vm = self._vm_on(node, vmid)
        if not self._agent_enabled(vm):
            raise ApiError(500, "No QEMU guest agent configured")
        if vm.status != "running":
            raise ApiError(500, f"VM {vmid} is not running")
        # What the guest agent of a Talos node reports: loopback plus the NIC with the address
        # that cloud-init gave it.
        result: list[dict[str, Any]] = [
            {
                "name": "lo",
                "hardware-address": "00:00:00:00:00:00",
                "ip-addresses": [
                    {"ip-address": "127.0.0.1", "ip-address-type": "ipv4", "prefix": 8}
                ],
            }
        ]
        for n in range(32):
            net = vm.config.get(f"net{n}")
            if net is None:
                continue
            addresses = []
            ip = re.search(r"(?:^|,)ip=([0-9.]+)/(\d+)", vm.config.get(f"ipconfig{n}", ""))
            if ip:
                addresses.append(
                    {
                        "ip-address": ip.group(1),
                        "ip-address-type": "ipv4",
                        "prefix": int(ip.group(2)),
                    }
                )
            result.append(
                {
                    "name": f"eth{n}",
                    "hardware-address": net_mac(net).lower(),
                    "ip-addresses": addresses,
                }
            )
        return {"result": result}

    def list_storage(self, params: dict[str, str], node: str) -> Any:
        self._node(node)
        wanted = params.get("content")
        return [
            self._storage_status(s)
            for s in self.storages.values()
            if wanted is None or wanted in s.content
        ]

    def storage_status(self, params: dict[str, str], node: str, storage: str) -> Any:
        self._node(node)
        return self._storage_status(self._storage(storage))

    def storage_content(self, params: dict[str, str], node: str, storage: str) -> Any:
        self._node(node)
        store = self._storage(storage)
        listed = []
        for name, size in sorted(store.volumes.items()):
            content = "iso" if name.startswith("iso/") else "images"
            if params.get("content") not in (None, content):
                continue
            entry: dict[str, Any] = {
                "volid": f"{storage}:{name}",
                "content": content,
                "size": size,
                "format": "iso" if content == "iso" else "raw",
            }
            owner = re.match(r"(?:vm|base)-(\d+)-", name)
            if owner:
                entry["vmid"] = int(owner.group(1))
            listed.append(entry)
        return listed

    def volume_attributes(self, params: dict[str, str], node: str, storage: str, volid: str) -> Any:
        self._node(node)
        store = self._storage(storage)
        name = unquote(volid).removeprefix(f"{storage}:")
        if name not in store.volumes:
            raise ApiError(500, f"volume '{storage}:{name}' does not exist")
        size = store.volumes[name]
        return {
            "path": f"/dev/{storage}/{name}",
            "format": "iso" if name.startswith("iso/") else "raw",
            "size": size,
            "used": size,
        }

    def task_status(self, params: dict[str, str], node: str, upid: str) -> Any:
        self._node(node)
        upid = unquote(upid)
        task = next((t for t in self.tasks if t.upid == upid), None)
        if task is None:
            raise ApiError(500, f"no such task '{upid}'")
        return {
            "upid": upid,
            "node": node,
            "status": "stopped",
            "exitstatus": "OK",
            "type": task.kind,
            "id": str(task.vmid),
            "pid": 1,
            "starttime": 0,
        }

    def task_log(self, params: dict[str, str], node: str, upid: str) -> Any:
        return [{"n": 1, "t": "TASK OK"}]

    # --- helpers ----------------------------------------------------------------------------

    def _storage_status(self, store: Storage) -> dict[str, Any]:
        used = sum(store.volumes.values())
        return {
            "storage": store.name,
            "type": store.type,
            "content": ",".join(store.content),
            "shared": int(store.shared),
            "active": 1,
            "enabled": 1,
            "total": store.total,
            "used": used,
            "avail": store.total - used,
        }

    @staticmethod
    def _agent_enabled(vm: VirtualMachine) -> bool:
        first, options = split_options(str(vm.config.get("agent", "0")))
        return first in ("1", "enabled=1") or "enabled=1" in options

    @staticmethod
    def _memory_bytes(vm: VirtualMachine) -> int:
        memory = str(vm.config.get("memory", "512")).removeprefix("current=")
        return int(memory.split(",")[0]) * 1024**2

    @staticmethod
    def _boot_disk_bytes(vm: VirtualMachine) -> int:
        for key in ("scsi0", "virtio0", "sata0", "ide0"):
            if key in vm.config and "media=cdrom" not in vm.config[key]:
                return disk_size_bytes(vm.config[key])
        return 0


_Action = Callable[..., Any]
_VM = r"/nodes/([^/]+)/qemu/(\d+)"
_ROUTE_TABLE: list[tuple[str, str, _Action]] = [
    (r"/version", "GET", ProxmoxDouble.version),
    (r"/nodes", "GET", ProxmoxDouble.list_nodes),
    (r"/cluster/resources", "GET", ProxmoxDouble.resources),
    (r"/cluster/nextid", "GET", ProxmoxDouble.nextid),
    (r"/nodes/([^/]+)/status", "GET", ProxmoxDouble.node_status),
    (r"/nodes/([^/]+)/qemu", "GET", ProxmoxDouble.node_vms),
    (r"/nodes/([^/]+)/qemu", "POST", ProxmoxDouble.create),
    (r"/nodes/([^/]+)/storage", "GET", ProxmoxDouble.list_storage),
    (r"/nodes/([^/]+)/storage/([^/]+)/status", "GET", ProxmoxDouble.storage_status),
    (r"/nodes/([^/]+)/storage/([^/]+)/content", "GET", ProxmoxDouble.storage_content),
    (
        r"/nodes/([^/]+)/storage/([^/]+)/content/([^/]+)",
        "GET",
        ProxmoxDouble.volume_attributes,
    ),
    (rf"{_VM}/clone", "POST", ProxmoxDouble.clone),
    (rf"{_VM}/migrate", "POST", ProxmoxDouble.migrate),
    (rf"{_VM}/move_disk", "POST", ProxmoxDouble.move_disk),
    (rf"{_VM}/config", "GET", ProxmoxDouble.get_config),
    (rf"{_VM}/config", "PUT", ProxmoxDouble.set_config),
    (rf"{_VM}/config", "POST", ProxmoxDouble.set_config_async),
    (rf"{_VM}/resize", "PUT", ProxmoxDouble.resize),
    (rf"{_VM}/template", "POST", ProxmoxDouble.template),
    (rf"{_VM}/sendkey", "PUT", ProxmoxDouble.sendkey),
    (rf"{_VM}/agent/network-get-interfaces", "GET", ProxmoxDouble.agent_interfaces),
    (rf"{_VM}/status/current", "GET", ProxmoxDouble.status_current),
    (
        rf"{_VM}/status/(start|stop|shutdown|reboot|reset|suspend|resume)",
        "POST",
        ProxmoxDouble.status_change,
    ),
    (_VM, "DELETE", ProxmoxDouble.destroy),
    (r"/nodes/([^/]+)/tasks/([^/]+)/status", "GET", ProxmoxDouble.task_status),
    (r"/nodes/([^/]+)/tasks/([^/]+)/log", "GET", ProxmoxDouble.task_log),
]


_ROUTES = tuple((re.compile(pattern), verb, action) for pattern, verb, action in _ROUTE_TABLE)


class _Handler(BaseHTTPRequestHandler):
    owner: ProxmoxDouble
    protocol_version = "HTTP/1.1"
    # A stuck client must not hold a server thread (and the test) forever.
    timeout = 10

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the recorded calls are the log

    def _reply(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json;charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _dispatch(self) -> None:
        url = urlsplit(self.path)
        params = dict(parse_qsl(url.query, keep_blank_values=True))
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            body = self.rfile.read(length).decode()
            if self.headers.get("Content-Type", "").startswith("application/json"):
                params.update({k: _form_value(v) for k, v in json.loads(body or "{}").items()})
            else:
                params.update(parse_qsl(body, keep_blank_values=True))
        expected = f"PVEAPIToken={self.owner.token}"
        if self.headers.get("Authorization") != expected:
            self.owner.rejected.append(str(self.headers.get("Authorization")))
            self._reply(401, {"data": None, "message": "authentication failure"})
            return
        if not url.path.startswith(API_PREFIX):
            self._reply(404, {"data": None})
            return
        path = url.path[len(API_PREFIX) :].rstrip("/") or "/"
        try:
            data = self.owner.handle(self.command, path, params)
        except ApiError as exc:
            self._reply(exc.status, {"data": None, "message": str(exc)})
            return
        self._reply(200, {"data": data})

    do_GET = do_POST = do_PUT = do_DELETE = _dispatch


def _form_value(value: Any) -> str:
    # A JSON body means the same as the form body PVE's API takes: every value a string.
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)
