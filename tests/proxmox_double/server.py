"""An in-memory Proxmox VE cluster behind a threaded HTTPS server on 127.0.0.1.

It answers just the /api2/json endpoints that community.proxmox's proxmox_kvm,
proxmox_vm_info and proxmox_disk call, with the semantics the playbooks rely on (a clone
copies the template's config, a VM lives on one node and is only reachable under that node's
path, tasks finish at once with exit status OK), checks the API token on every request, and
records every call so tests can assert on what the modules really sent.
"""

from __future__ import annotations

import copy
import json
import re
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

API_PREFIX = "/api2/json"
PVE_VERSION = "8.4.1"


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


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class ProxmoxDouble:
    """State of the fake cluster; serve() starts it on 127.0.0.1 and returns the port."""

    token: str  # what proxmoxer sends: user@realm!name=secret
    nodes: tuple[str, ...] = ("pve",)
    vms: dict[int, VirtualMachine] = field(default_factory=dict)
    calls: list[ApiCall] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    port: int = 0
    certfile: Path | None = None  # the self-signed certificate clients must trust
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None
    _tasks: int = 0

    def add_template(self, vmid: int, node: str, name: str, disk_size: str = "10G") -> None:
        self.vms[vmid] = VirtualMachine(
            vmid=vmid,
            node=node,
            name=name,
            template=True,
            config={
                "name": name,
                "template": 1,
                "cores": 1,
                "sockets": 1,
                "memory": "2048",
                "scsi0": f"local-lvm:base-{vmid}-disk-0,size={disk_size}",
                "net0": "virtio=BC:24:11:FF:FF:FF,bridge=vmbr0",
                "ide2": "local-lvm:vm-9000-cloudinit,media=cdrom",
                "agent": "1",
            },
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

    # --- the API ----------------------------------------------------------------------------

    def handle(self, method: str, path: str, params: dict[str, str]) -> Any:
        with self._lock:
            self.calls.append(ApiCall(method, path, dict(params)))
            for pattern, verb, action in _ROUTES:
                match = pattern.fullmatch(path)
                if match and verb == method:
                    return action(self, params, *match.groups())
            raise ApiError(501, f"Method '{method} {path}' not implemented by the double")

    def _new_task(self, node: str, kind: str, vmid: int) -> str:
        self._tasks += 1
        return f"UPID:{node}:{self._tasks:08X}:00000000:00000000:{kind}:{vmid}:test@pve!double:"

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

    def version(self, params: dict[str, str]) -> Any:
        return {
            "version": PVE_VERSION,
            "release": PVE_VERSION.rsplit(".", 1)[0],
            "repoid": "double",
        }

    def list_nodes(self, params: dict[str, str]) -> Any:
        return [{"node": n, "status": "online", "type": "node"} for n in self.nodes]

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
            }
            for vm in sorted(self.vms.values(), key=lambda v: v.vmid)
        ]

    def nextid(self, params: dict[str, str]) -> Any:
        return str(max([99, *self.vms]) + 1)

    def node_vms(self, params: dict[str, str], node: str) -> Any:
        self._node(node)
        return [
            {"vmid": vm.vmid, "name": vm.name, "status": vm.status, "template": int(vm.template)}
            for vm in sorted(self.vms.values(), key=lambda v: v.vmid)
            if vm.node == node
        ]

    def clone(self, params: dict[str, str], node: str, vmid: str) -> Any:
        source = self._vm_on(node, vmid)
        newid = int(params["newid"])
        if newid in self.vms:
            raise ApiError(500, f"VM {newid} already exists")
        target = params.get("target") or node
        self._node(target)
        config = copy.deepcopy(source.config)
        config.pop("template", None)
        config["name"] = params.get("name", f"Copy-of-VM-{source.name}")
        for key, value in list(config.items()):
            if isinstance(value, str) and f"base-{source.vmid}-" in value:
                config[key] = value.replace(f"base-{source.vmid}-", f"vm-{newid}-")
        self.vms[newid] = VirtualMachine(newid, target, config["name"], config)
        return self._new_task(node, "qmclone", source.vmid)

    def get_config(self, params: dict[str, str], node: str, vmid: str) -> Any:
        return copy.deepcopy(self._vm_on(node, vmid).config)

    def set_config(self, params: dict[str, str], node: str, vmid: str) -> Any:
        vm = self._vm_on(node, vmid)
        for key, value in params.items():
            if key == "delete":
                for gone in value.split(","):
                    vm.config.pop(gone, None)
                continue
            if key == "tags":
                # PVE stores tags ';'-separated whatever separator it was given.
                value = ";".join(t for t in re.split(r"[,; ]+", value) if t)
            vm.config[key] = value
        vm.name = str(vm.config.get("name", vm.name))
        return None

    def resize(self, params: dict[str, str], node: str, vmid: str) -> Any:
        vm = self._vm_on(node, vmid)
        disk, size = params["disk"], params["size"]
        if disk not in vm.config:
            raise ApiError(500, f"disk '{disk}' does not exist")
        vm.config[disk] = re.sub(r"size=[^,]*", f"size={size}", vm.config[disk])
        return self._new_task(node, "resize", vm.vmid)

    def status_current(self, params: dict[str, str], node: str, vmid: str) -> Any:
        vm = self._vm_on(node, vmid)
        return {"vmid": vm.vmid, "name": vm.name, "status": vm.status}

    def status_change(self, params: dict[str, str], node: str, vmid: str, action: str) -> Any:
        vm = self._vm_on(node, vmid)
        if vm.template:
            raise ApiError(500, "you can't start a vm if it's a template")
        vm.status = "running" if action == "start" else "stopped"
        return self._new_task(node, f"qm{action}", vm.vmid)

    def destroy(self, params: dict[str, str], node: str, vmid: str) -> Any:
        vm = self._vm_on(node, vmid)
        if vm.status == "running":
            raise ApiError(500, f"VM {vmid} is running - destroy failed")
        del self.vms[vm.vmid]
        return self._new_task(node, "qmdestroy", vm.vmid)

    def task_status(self, params: dict[str, str], node: str, upid: str) -> Any:
        self._node(node)
        return {"upid": upid, "node": node, "status": "stopped", "exitstatus": "OK"}

    def task_log(self, params: dict[str, str], node: str, upid: str) -> Any:
        return [{"n": 1, "t": "TASK OK"}]


_Action = Callable[..., Any]
_ROUTE_TABLE: list[tuple[str, str, _Action]] = [
    (r"/version", "GET", ProxmoxDouble.version),
    (r"/nodes", "GET", ProxmoxDouble.list_nodes),
    (r"/cluster/resources", "GET", ProxmoxDouble.resources),
    (r"/cluster/nextid", "GET", ProxmoxDouble.nextid),
    (r"/nodes/([^/]+)/qemu", "GET", ProxmoxDouble.node_vms),
    (r"/nodes/([^/]+)/qemu/(\d+)/clone", "POST", ProxmoxDouble.clone),
    (r"/nodes/([^/]+)/qemu/(\d+)/config", "GET", ProxmoxDouble.get_config),
    (r"/nodes/([^/]+)/qemu/(\d+)/config", "PUT", ProxmoxDouble.set_config),
    (r"/nodes/([^/]+)/qemu/(\d+)/config", "POST", ProxmoxDouble.set_config),
    (r"/nodes/([^/]+)/qemu/(\d+)/resize", "PUT", ProxmoxDouble.resize),
    (r"/nodes/([^/]+)/qemu/(\d+)/status/current", "GET", ProxmoxDouble.status_current),
    (
        r"/nodes/([^/]+)/qemu/(\d+)/status/(start|stop|shutdown)",
        "POST",
        ProxmoxDouble.status_change,
    ),
    (r"/nodes/([^/]+)/qemu/(\d+)", "DELETE", ProxmoxDouble.destroy),
    (r"/nodes/([^/]+)/tasks/([^/]+)/status", "GET", ProxmoxDouble.task_status),
    (r"/nodes/([^/]+)/tasks/([^/]+)/log", "GET", ProxmoxDouble.task_log),
]


# --- migrate (added for the Ansible clone-then-migrate path) ---------------------------------
def _migrate(double: ProxmoxDouble, params: dict[str, str], node: str, vmid: str) -> Any:
    """POST .../qemu/{vmid}/migrate: Proxmox moves a stopped VM offline (local disks too);
    a running one only with online=1 (as proxmox_kvm sends it)."""
    vm = double._vm_on(node, vmid)
    target = params["target"]
    double._node(target)
    if target == node:
        raise ApiError(500, f"target is local node '{node}'")
    if vm.status == "running" and params.get("online") not in ("1", "true"):
        raise ApiError(500, "can't migrate running VM without --online")
    vm.node = target
    return double._new_task(node, "qmigrate", vm.vmid)


_ROUTE_TABLE.append((r"/nodes/([^/]+)/qemu/(\d+)/migrate", "POST", _migrate))
# ---------------------------------------------------------------------------------------------
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
            params.update(parse_qsl(body, keep_blank_values=True))
        expected = f"PVEAPIToken={self.owner.token}"
        if self.headers.get("Authorization") != expected:
            self.owner.rejected.append(str(self.headers.get("Authorization")))
            self._reply(401, {"data": None, "message": "authentication failure"})
            return
        if not url.path.startswith(API_PREFIX):
            self._reply(404, {"data": None})
            return
        try:
            data = self.owner.handle(self.command, url.path[len(API_PREFIX) :], params)
        except ApiError as exc:
            self._reply(exc.status, {"data": None, "message": str(exc)})
            return
        self._reply(200, {"data": data})

    do_GET = do_POST = do_PUT = do_DELETE = _dispatch
