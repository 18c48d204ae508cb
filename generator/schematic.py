"""Talos image factory schematic: its YAML, its ID and the image URLs derived from it.

The factory's ID is the SHA-256 of the schematic as Go's yaml.v3 marshals it: 4-space
indent, sequences indented under their key, keys in struct order, empty parts omitted.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass

FACTORY = "factory.talos.dev"

# Scalars that yaml.v3 would not emit plain (they would read back as another type, or
# start with an indicator); such a value is double-quoted.
_PLAIN_UNSAFE = re.compile(
    r"^(|~|null|true|false|yes|no|on|off|y|n|[-+]?(\.inf|\.nan|[0-9][0-9_.eE+-]*|0x[0-9a-fA-F_]+|0o[0-7_]+))$",
    re.IGNORECASE,
)


def _scalar(value: str) -> str:
    if _PLAIN_UNSAFE.match(value) or value[0] in "-?:,[]{}#&*!|>'\"%@`" or ": " in value or " #" in value:
        escaped = value.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{escaped}"'
    return value


def schematic_yaml(extensions: Sequence[str], extra_kernel_args: Sequence[str]) -> str:
    lines = ["customization:"]
    if extra_kernel_args:
        lines.append("    extraKernelArgs:")
        lines += [f"        - {_scalar(arg)}" for arg in extra_kernel_args]
    if extensions:
        lines.append("    systemExtensions:")
        lines.append("        officialExtensions:")
        lines += [f"            - {_scalar(ext)}" for ext in extensions]
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
) -> Schematic:
    # Sorted, so the ID does not depend on the order the user listed the extensions in.
    text = schematic_yaml(sorted(extensions), list(extra_kernel_args))
    ident = schematic_id(text)
    suffix = "-secureboot" if secureboot else ""
    base = f"https://{FACTORY}/image/{ident}/v{talos_version}/{platform}-{arch}{suffix}"
    return Schematic(
        yaml=text,
        id=ident,
        image_url=f"{base}.raw.xz",
        iso_url=f"{base}.iso",
        installer_image=f"{FACTORY}/{platform}-installer{suffix}/{ident}:v{talos_version}",
    )
