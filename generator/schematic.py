"""Talos image factory schematic: its YAML, its ID and the image URLs derived from it.

The factory's ID is the SHA-256 of the schematic as Go's yaml.v3 marshals it: 4-space
indent, sequences indented under their key, keys in struct order, empty parts omitted.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass

from generator import derive

# The public image factory (talos_factory_url's default, written once in the schema);
# cluster.yaml may name a self-hosted one.
FACTORY_URL: str = derive.CLUSTER_DEFAULTS["talos_factory_url"]

# When Go's yaml.v3 writes a string with double quotes instead of plain: when the plain form
# would read back as another type (its resolver, plus YAML 1.1 booleans and base-60 floats it
# still avoids), or when the emitter's indicator rules forbid plain. Every byte counts: the
# quoting changes the hash, so this mirrors yaml.v3 rather than any YAML emitter.
_NULL_OR_BOOL = frozenset(
    [
        "~",
        "null",
        "Null",
        "NULL",
        "true",
        "True",
        "TRUE",
        "false",
        "False",
        "FALSE",
        "y",
        "Y",
        "yes",
        "Yes",
        "YES",
        "n",
        "N",
        "no",
        "No",
        "NO",
        "on",
        "On",
        "ON",
        "off",
        "Off",
        "OFF",
    ]
)
_SPECIAL_FLOAT = re.compile(r"^[-+]?\.(inf|Inf|INF)\Z|^\.(nan|NaN|NAN)\Z")
_GO_INT = re.compile(r"^[-+]?(0[xX][0-9a-fA-F]+|0[oO]?[0-7]+|0[bB][01]+|[1-9][0-9]*|0)\Z")
_YAML_FLOAT = re.compile(r"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?\Z")
_BASE60 = re.compile(r"^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?\Z")
_TIMESTAMP = re.compile(
    r"^[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}"
    r"([Tt ][0-9]{1,2}:[0-9]{1,2}:[0-9]{1,2}(\.[0-9]*)?(Z|[-+][0-9]{1,2}(:[0-9]{2})?)?)?\Z"
)
_ALWAYS_INDICATOR = set("#,[]{}&*!|>'\"%@`")


def _needs_quotes(value: str) -> bool:
    if value == "" or value in _NULL_OR_BOOL or _SPECIAL_FLOAT.match(value):
        return True
    if value[0] in "0123456789+-.":
        plain = value.replace("_", "")
        if _GO_INT.match(plain) or _YAML_FLOAT.match(plain) or _BASE60.match(value):
            return True
        if _TIMESTAMP.match(value):
            return True
    if value[0] in _ALWAYS_INDICATOR or value != value.strip():
        return True
    # '-', '?' and ':' are indicators only when a blank (or the end) follows them.
    if value[0] in "-?:" and (len(value) == 1 or value[1] in " \t"):
        return True
    return ": " in value or " #" in value or value.endswith(":") or "\t" in value


def _scalar(value: str) -> str:
    if _needs_quotes(value):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{escaped}"'
    return value


def schematic_yaml(
    extensions: Sequence[str], extra_kernel_args: Sequence[str], *, enroll_keys: bool = False
) -> str:
    lines = ["customization:"]
    if extra_kernel_args:
        lines.append("    extraKernelArgs:")
        lines += [f"        - {_scalar(arg)}" for arg in extra_kernel_args]
    if extensions:
        lines.append("    systemExtensions:")
        lines.append("        officialExtensions:")
        lines += [f"            - {_scalar(ext)}" for ext in extensions]
    if enroll_keys:
        # Talos >= 1.14: the disk image enrolls its SecureBoot keys (struct order: after
        # systemExtensions; a false bool is omitted, as yaml.v3 omitempty does).
        lines.append("    secureboot:")
        lines.append("        enrollKeys: true")
    if len(lines) == 1:
        return "customization: {}\n"
    return "\n".join(lines) + "\n"


def schematic_id(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Schematic:
    yaml: str
    id: str
    image_url: str
    iso_url: str
    installer_image: str


def build(
    *,
    extensions: Sequence[str],
    extra_kernel_args: Sequence[str],
    talos_version: str,
    platform: str,
    arch: str,
    secureboot: bool,
    given_id: str | None = None,
    enroll_keys: bool = False,
    factory_url: str = FACTORY_URL,
) -> Schematic:
    """enroll_keys asks the factory for a disk image that enrolls its SecureBoot keys
    (Talos >= 1.14 only); factory_url is https://host[:port] without a trailing slash."""
    # Sorted, so the ID does not depend on the order the user listed the extensions in.
    text = schematic_yaml(
        sorted(extensions), list(extra_kernel_args), enroll_keys=secureboot and enroll_keys
    )
    ident = schematic_id(text)
    if given_id is not None:
        # Made elsewhere (a host repo's per-node schematic_id): its document is unknown.
        ident = given_id
        text = f"# schematic {given_id} is given (talos_schematic_id); its document is unknown\n"
    suffix = "-secureboot" if secureboot else ""
    base = f"{factory_url}/image/{ident}/v{talos_version}/{platform}-{arch}{suffix}"
    # The factory serves the installer images from its own host as an OCI registry.
    registry = factory_url.removeprefix("https://")
    return Schematic(
        yaml=text,
        id=ident,
        image_url=f"{base}.raw.xz",
        iso_url=f"{base}.iso",
        installer_image=f"{registry}/{platform}-installer{suffix}/{ident}:v{talos_version}",
    )
