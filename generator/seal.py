"""Stage 6, output side: the *.sops.* outputs encrypted, and kept byte for byte when
unchanged.

An output whose existing file (as the snapshot of the output tree holds it) decrypts to the
same plaintext keeps its existing ciphertext, so a no-op render changes nothing; `check`
never encrypts. sops itself runs through generator/sops.py; .sops.yaml is read once.
"""

from __future__ import annotations

import io
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from generator import leaks, sops
from generator.errors import ClustergenError, Diagnostic, InputError, UsageError
from generator.load import display_name
from generator.outtree import Snapshot, is_sops


class Prefetch:
    """The decryption of an existing encrypted output, started on a thread, so that a check
    or no-op render waits for its two sops calls (secrets.sops.yaml, that output) side by side
    instead of one after the other. sops gets these bytes (the snapshot's) on stdin; seal uses
    the outcome only for the very same bytes, otherwise it calls sops again."""

    def __init__(self, data: bytes | None, key_dir: Path | None = None) -> None:
        self._data = data
        self._outcome: tuple[int, bytes, str] | None = None
        self._error: Exception | None = None
        self._thread: threading.Thread | None = None
        if data is not None:
            self._thread = threading.Thread(
                target=self._decrypt, args=(data, key_dir), name="sops-prefetch"
            )
            self._thread.start()

    def _decrypt(self, data: bytes, key_dir: Path | None) -> None:
        try:
            self._outcome = sops.run_decrypt(data, key_dir)
        except Exception as exc:  # raised where seal would have made the call
            self._error = exc

    def join(self) -> None:
        if self._thread is not None:
            self._thread.join()

    def outcome(self, existing: bytes) -> tuple[int, bytes, str] | None:
        """The sops result for these exact bytes, or None (then call sops again)."""
        self.join()
        if self._data is None or self._data != existing:
            return None
        if self._error is not None:
            raise self._error
        return self._outcome


def existing(snapshot: Snapshot, path: str) -> bytes | None:
    """The bytes of the existing encrypted output at path, or None: absent, or something
    other than a regular file of at most MAX_SOPS_BYTES (sync refuses that; never read)."""
    try:
        return snapshot.read(path, cap=sops.MAX_SOPS_BYTES)
    except ClustergenError:
        return None


def _load_all(text: bytes) -> list[Any]:
    from ruamel.yaml import YAML

    return list(YAML(typ="safe", pure=True).load_all(io.BytesIO(text)))


def _comments(text: bytes) -> list[str]:
    return [
        line.strip()
        for line in text.decode("utf-8", "replace").splitlines()
        if line.lstrip().startswith("#")
    ]


def same_plaintext(decrypted: bytes, rendered: bytes) -> bool:
    """sops re-serialises YAML (indent, `---`, quoting), so compare data and comments."""
    try:
        return _load_all(decrypted) == _load_all(rendered) and _comments(decrypted) == _comments(
            rendered
        )
    except Exception:  # ruamel has many error types; unparsable means "not the same"
        return False


def _mask(node: Any, regex: re.Pattern[str] | None, inside: bool = False) -> Any:
    if isinstance(node, dict):
        return {
            k: _mask(v, regex, inside or regex is None or bool(regex.search(str(k))))
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_mask(v, regex, inside) for v in node]
    return leaks.MASK if inside else node


def visible_structure(document: Any, regex: re.Pattern[str] | None) -> Any:
    """What an encrypted document shows without its key: every key, and the values sops
    left in plaintext (those outside keys matching encrypted_regex)."""
    if isinstance(document, dict):
        document = {k: v for k, v in document.items() if k != "sops"}
    return _mask(document, regex)


def _encrypted_regex(data: Any) -> re.Pattern[str] | None:
    meta = data.get("sops") if isinstance(data, dict) else None
    if not isinstance(meta, dict):
        return None
    pattern = meta.get("encrypted_regex")
    others = (
        "unencrypted_regex",
        "unencrypted_suffix",
        "encrypted_suffix",
        "encrypted_comment_regex",
    )
    if not isinstance(pattern, str) or any(meta.get(k) for k in others):
        return None  # unknown scheme: compare the keys only
    try:
        return re.compile(pattern)
    except re.error:
        return None


def _redacted(rendered: bytes, secrets: Mapping[str, str]) -> bytes:
    """The rendered plaintext with secret values masked: what `check` shows as expected."""
    return leaks.redact(rendered.decode("utf-8"), secrets).encode("utf-8")


@dataclass
class Sealed:
    files: dict[str, bytes]
    unverified: list[str] = field(default_factory=list)
    warnings: list[Diagnostic] = field(default_factory=list)


class _Config:
    """.sops.yaml of the config directory (or a parent), found and read at most once."""

    def __init__(self, config_dir: Path) -> None:
        self.config_dir = config_dir
        self._found: list[Path | None] = []
        self._rules: list[list[Any] | None] = []

    @property
    def path(self) -> Path | None:
        if not self._found:
            self._found.append(sops.find_config(self.config_dir))
        return self._found[0]

    def current_recipients(self, document: Any, target: Path) -> bool:
        """Whether document is encrypted for the recipients .sops.yaml names for target."""
        config = self.path
        if config is None:
            return True  # nothing to compare with; encrypting would fail with a clear error
        if not self._rules:
            self._rules.append(sops.creation_rules(config))
        wanted = sops.rule_recipients(self._rules[0], sops.rule_name(target, config))
        return wanted is None or frozenset(sops.recipients(document)) == wanted


def seal(
    files: Mapping[str, bytes],
    secrets: Mapping[str, str],
    *,
    config_dir: Path,
    snapshot: Snapshot,
    check: bool = False,
    key_available: bool = True,
    prefetched: Mapping[str, Prefetch] | None = None,
) -> Sealed:
    """Replace each *.sops.* plaintext by what belongs on disk.

    render: the existing bytes when they decrypt to the same plaintext, else a new encryption.
    check: never encrypts; the existing bytes when they match (decrypted when the key is
    available, else by visible structure, and the path is reported unverified), else the
    plaintext with secret values masked, which differs from the file on disk (drift).
    snapshot: the output tree as the run found it. prefetched: output path -> its decryption
    already under way (Prefetch).
    """
    result = Sealed(dict(files))
    config = _Config(config_dir)
    for path, plain in files.items():
        if not is_sops(path):
            continue
        target = snapshot.root / path
        old = existing(snapshot, path)
        old_doc = _encrypted_document(path, old)
        if old_doc is not None and not config.current_recipients(old_doc, target):
            # .sops.yaml names other keys now (a teammate added, a key rotated): the file
            # must be encrypted for them even though its plaintext is unchanged.
            old_doc = None
        if check and not key_available:
            if old is not None and old_doc is not None:
                regex = _encrypted_regex(old_doc)
                rendered_docs = _load_all(plain)
                if len(rendered_docs) == 1 and visible_structure(
                    rendered_docs[0], regex
                ) == visible_structure(old_doc, regex):
                    result.files[path] = old
                    result.unverified.append(path)
                    continue
            result.files[path] = _redacted(plain, secrets)
            result.unverified.append(path)
            continue

        if old is not None and old_doc is not None:
            early = prefetched.get(path) if prefetched else None
            decrypted = _decrypt_existing(path, old, old_doc, config_dir, early, check, result)
            if decrypted is not None and same_plaintext(decrypted, plain):
                result.files[path] = old
                continue
        if check:
            result.files[path] = _redacted(plain, secrets)
            continue
        found = config.path
        if found is None:
            raise UsageError(
                f"no {sops.SOPS_CONFIG} in {display_name(config_dir)} or its parents, so sops "
                f"cannot encrypt {path}: run `clustergen init` or add a creation rule"
            )
        result.files[path] = sops.encrypt(
            plain, sops.rule_name(target, found), config=found, cwd=found.parent
        )
    return result


def _encrypted_document(path: str, old: bytes | None) -> Any:
    """The one sops document of the existing file, None when there is none; a file that is
    not sops' output is plaintext where ciphertext belongs (never shown)."""
    if old is None:
        return None
    try:
        docs = _load_all(old)
    except Exception:  # does not parse: not sops' output, so plaintext (never shown)
        raise sops.plaintext_error(path) from None
    doc = docs[0] if docs and len(docs) == 1 else None
    if docs and not sops.is_encrypted(doc):
        raise sops.plaintext_error(path)
    return doc


def _decrypt_existing(
    path: str,
    old: bytes,
    old_doc: Any,
    config_dir: Path,
    early: Prefetch | None,
    check: bool,
    result: Sealed,
) -> bytes | None:
    """The plaintext of the existing file; None (and a warning) when it does not decrypt."""
    try:
        return sops.decrypt_bytes(
            old,
            shown=path,
            encrypted=old_doc,
            key_dir=config_dir,
            ran=early.outcome(old) if early is not None else None,
        )
    except (UsageError, InputError):
        # Encrypted for other recipients or changed by hand: replacing it is the fix.
        result.warnings.append(
            Diagnostic(
                path,
                1,
                1,
                "(file)",
                "could not decrypt the existing file; "
                + ("it differs" if check else "it is encrypted anew"),
                severity="warning",
            )
        )
        return None
