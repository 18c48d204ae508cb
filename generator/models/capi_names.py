"""Kubernetes object names and CAPMOX address ranges for the capi templates: DNS-1123
labels that stay within 63 characters, immutable-template names `<owner>-<hash of spec>`,
and IPv4 address runs folded into CAPMOX's `first-last` form."""

from __future__ import annotations

import hashlib
import ipaddress
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

# Kubernetes object names here are also label values (cluster.x-k8s.io/deployment-name).
MAX_NAME = 63

_NOT_DNS = re.compile(r"[^a-z0-9-]+")


def digest(value: Any, length: int = 8) -> str:
    canonical = json.dumps(_plain(value), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:length]


def _plain(value: Any) -> Any:
    """The frozen model (MappingProxyType, tuples) as JSON-able dicts and lists."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def dns_label(text: str) -> str:
    """text as a DNS-1123 label; too long a label keeps its start and gets a hash suffix."""
    label = _NOT_DNS.sub("-", text.lower()).strip("-")
    label = re.sub(r"-{2,}", "-", label)
    if len(label) <= MAX_NAME and label:
        return label
    suffix = digest(text)
    return f"{label[: MAX_NAME - len(suffix) - 1].rstrip('-')}-{suffix}".lstrip("-")


def template_name(owner: str, spec: Any) -> str:
    """`<owner>-<hash of spec>`, at most 63 characters, the hash always kept whole."""
    suffix = digest(spec)
    return f"{owner[: MAX_NAME - len(suffix) - 1].rstrip('-')}-{suffix}"


def address_ranges(addresses: Iterable[str]) -> list[str]:
    """Sorted IPv4 addresses, consecutive runs folded into CAPMOX's `first-last` form."""
    ips = sorted({ipaddress.IPv4Address(a) for a in addresses})
    out: list[str] = []
    start = prev = None
    for ip in [*ips, None]:
        if ip is not None and prev is not None and int(ip) == int(prev) + 1:
            prev = ip
            continue
        if start is not None and prev is not None:
            out.append(str(start) if start == prev else f"{start}-{prev}")
        start = prev = ip
    return out
