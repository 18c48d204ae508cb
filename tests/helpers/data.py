"""YAML data as plain Python; inputs written and loaded; output trees written out."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from generator.load import Document, load_yaml

# cluster.yaml lines that turn capi on for examples/minimal (one controller): a control-plane
# rollout needs a spare address in the IP pool (issue 15).
CAPI_ON_MINIMAL = "provisioners: [capi]\ncapi_spare_addresses: [192.168.22.11]\n"


def plain(value: Any) -> Any:
    """value with every mapping a dict and every sequence a list (ruamel's types, tuples), as
    JSON data; a callable (an Ansible argument spec's `type: str`) becomes "<str>", the way the
    reference's argspec files write it. YAML data holds no callables, so it only changes type."""
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return f"<{value.__name__}>" if callable(value) else value


def yaml_dump(data: Any, path: Path) -> None:
    with path.open("w", encoding="utf-8") as fh:
        YAML().dump(data, fh)


def write_and_load(directory: Path, cluster: str, nodes: str) -> tuple[Document, Document]:
    """Write cluster.yaml + nodes.yaml into directory and load them as the CLI would."""
    (directory / "cluster.yaml").write_text(cluster)
    (directory / "nodes.yaml").write_text(nodes)
    return (
        load_yaml(directory / "cluster.yaml", shown="cluster.yaml"),
        load_yaml(directory / "nodes.yaml", shown="nodes.yaml"),
    )


def write_tree(root: Path, files: Mapping[str, bytes]) -> None:
    """Each {relative path: bytes} under root, folders made as needed."""
    for name, data in files.items():
        target = root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)


def cluster_yaml(name: str, extra: str = "") -> str:
    """cluster.yaml whose network (10.30.0.0/20) holds nodes_yaml's nodes; extra: more lines."""
    return (
        f"cluster_name: {name}\n"
        "talos_version: 1.12.0\n"
        "kubernetes_version: 1.35.0\n"
        "node_cidr: 10.30.0.0/20\n"
        "cluster_api_addr: 10.30.0.2\n"
        "proxmox_endpoint: https://pve.example:8006\n"
        "proxmox_node: pve\n"
    ) + extra


def nodes_yaml(count: int) -> str:
    """nodes.yaml with count nodes in 10.30.0.0/20 from .10 on: three controllers, then
    workers; each MAC made from its address."""
    lines = ["nodes:"]
    for i in range(count):
        host = 10 + i
        lines += [
            f"  - name: node-{i}",
            f"    address: 10.30.{host // 256}.{host % 256}",
            f"    controller: {'true' if i < 3 else 'false'}",
            f"    mac_addr: bc:24:11:00:{host // 256:02x}:{host % 256:02x}",
        ]
    return "\n".join(lines) + "\n"


def input_errors(config: Path, dialect: str = "auto") -> list[str]:
    """The error lines inputs.read reports for config, as the CLI prints them but with file
    names relative to config and the hint in parentheses; [] when the inputs are valid."""
    from generator.errors import InputError
    from generator.inputs import read

    try:
        read(config, dialect)
    except InputError as exc:
        return [
            f"{d.file.removeprefix(str(config) + '/')}:{d.line}:{d.col}: {d.severity}: "
            f"{d.path}: {d.message} ({d.hint})"
            for d in exc.diagnostics
            if d.is_error
        ]
    return []


def edit(config: Path, name: str, change: Callable[[Any], None]) -> None:
    """Load config/name (YAML), let change() edit the data in place, write it back."""
    import yaml as pyyaml

    path = config / name
    data = pyyaml.safe_load(path.read_text())
    change(data)
    path.write_text(pyyaml.safe_dump(data, sort_keys=False))


def node(data: Any, name: str) -> dict[str, Any]:
    """The node called name in nodes.yaml's data."""
    found: dict[str, Any] = next(n for n in data["nodes"] if n["name"] == name)
    return found
