"""The rule on proxmox_endpoint: https://host[:port][/] and nothing else, never echoing a
value that could hold a secret."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator
from urllib.parse import urlsplit

from generator import derive
from generator.controls import control_character
from generator.errors import Diagnostic
from generator.load import Document

_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)


def _valid_host(host: str) -> bool:
    """An RFC 1123 host name or an IP literal: nothing a shell or template could read as syntax.
    No IPv6 zone ID (fe80::1%eth0): after the % anything may follow, and no tool needs it."""
    if "%" in host:
        return False
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        pass
    # A dotted-numeric name that is not a valid IPv4 address (1.2.3.4.5) is a typo, not a host.
    return bool(_HOSTNAME.match(host)) and not re.fullmatch(r"[0-9.]+", host)


def endpoint(cluster: Document, nodes: Document) -> Iterator[Diagnostic]:
    """proxmox_endpoint is https://host[:port][/]; nothing else. A value with user info, a
    query or a fragment is never echoed: a password or token in it would land in CI logs;
    a suggestion built from the parts that passed is shown instead."""
    value = cluster.data.get("proxmox_endpoint")
    if not isinstance(value, str):
        return
    where = ["proxmox_endpoint"]
    if control_character(value) is not None or not re.fullmatch("[!-~]+", value):
        return  # the schema reports it (control characters; printable ASCII only)
    authority = value.split("//", 1)[-1].split("/", 1)[0].split("?", 1)[0].split("#", 1)[0]
    if "@" in authority:
        yield cluster.diag(
            where, "must not contain credentials", "put the API token in secrets.sops.yaml"
        )
        return
    # Echoed only when it cannot hold a secret: no user info, query or fragment.
    safe = not any(mark in value for mark in "@?#")
    shown = f"{value!r} " if safe else "the URL "
    if "://" not in value:
        hint = f"did you mean https://{value}?" if safe else "like https://pve.example:8006"
        yield cluster.diag(where, f"{shown}must use https", hint)
        return
    if "%" in authority:
        yield cluster.diag(
            where,
            f"{shown}must not have an IPv6 zone ID or percent-encoding in the host",
            "use a host name, or the address without %zone",
        )
        return
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        yield cluster.diag(where, f"{shown}is not a URL with a valid port (1-65535)")
        return
    host = parts.hostname or ""
    if not host or not _valid_host(host):
        yield cluster.diag(
            where,
            f"{shown}has no valid host name or IP address",
            "use https://pve.example:8006",
        )
        return
    if port is not None and not 1 <= port <= 65535:
        yield cluster.diag(where, f"{shown}has port {port}, outside 1-65535")
        return
    base = derive.endpoint(value).url
    if parts.scheme != "https":
        yield cluster.diag(where, f"{shown}must use https", f"did you mean {base}?")
    elif parts.path.rstrip("/") or parts.query or parts.fragment or value.endswith(("?", "#")):
        yield cluster.diag(
            where,
            f"{shown}must not have a path (the tools add /api2/json themselves)",
            f"did you mean {base}?",
        )
    elif not _CANONICAL_ENDPOINT.fullmatch(value):
        # Parsed fine but spelled oddly (an empty port, "https://http://", a path of "//"):
        # only the plain form reaches the outputs.
        yield cluster.diag(where, f"{shown}is not of the form https://host[:port]", f"use {base}")


_CANONICAL_ENDPOINT = re.compile(
    r"https://([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(:[1-9][0-9]{0,4})?/?", re.ASCII
)
