"""The record of what clustergen generated: .clustergen/manifest.json (path -> SHA-256 of the
bytes written, plus "pending" hashes of a render that was interrupted), its format only.

outtree reads it (once per run), sync decides with it, writer writes it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import PurePosixPath

from generator import constants

STATE_DIR = constants.STATE_DIR
MANIFEST = constants.MANIFEST
MAX_MANIFEST_BYTES = 8 * 1024 * 1024
HEADER_MARK = constants.HEADER_MARK.encode()


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def looks_generated(data: bytes) -> bool:
    """Carries clustergen's header near the top (the first bytes are enough)."""
    return HEADER_MARK in data[:512]


def parse(data: bytes | None) -> tuple[dict[str, str], dict[str, str]]:
    """(files, pending) of the manifest bytes; empty when there are none or they are corrupt."""
    if data is None:
        return {}, {}
    try:
        raw = json.loads(data.decode("utf-8"))
    except (ValueError, RecursionError):  # corrupt, or nested beyond the parser's stack
        return {}, {}
    if not isinstance(raw, dict):
        return {}, {}
    return _str_map(raw.get("files")), _str_map(raw.get("pending"))


def confined(path: str) -> bool:
    """A manifest entry names a file below the output root, never outside it: the manifest
    is committed, and a bad merge or a hostile change must not make render delete elsewhere."""
    pure = PurePosixPath(path)
    return (
        bool(path)
        and "\\" not in path
        and not pure.is_absolute()
        and all(part not in ("", ".", "..") for part in path.split("/"))
        and pure.parts[0] != STATE_DIR
    )


def _str_map(value: object) -> dict[str, str]:
    if not isinstance(value, dict):
        return {}
    return {
        k: v for k, v in value.items() if isinstance(k, str) and isinstance(v, str) and confined(k)
    }


def to_bytes(files: Mapping[str, str], pending: Mapping[str, str] | None = None) -> bytes:
    doc: dict[str, object] = {
        "comment": "written by clustergen: the files it generated and their SHA-256",
        "files": dict(sorted(files.items())),
    }
    if pending:
        doc["pending"] = dict(sorted(pending.items()))
    return (json.dumps(doc, indent=2) + "\n").encode("utf-8")
