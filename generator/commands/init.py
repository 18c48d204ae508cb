"""`clustergen init`: a new config directory with the sops setup, never overwriting a file.

Creates, each only when absent: cluster.yaml and nodes.yaml (from an example), age.key (mode
0600), .sops.yaml, an encrypted secrets.sops.yaml with placeholder values, and the missing
.gitignore entries. Everything is prepared in memory first (including the encryption), so a
failure (no sops, no matching rule) leaves the directory as it was.
"""

from __future__ import annotations

import contextlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from generator import resources, secrets
from generator.errors import UsageError
from generator.load import display_name
from generator.options import Options
from generator.output import info
from generator.safefs import kind, read_file

AGE_KEY = "age.key"
GITIGNORE = ".gitignore"
GITIGNORE_ENTRIES = ("age.key", ".terraform/", "*.tfstate*", "tfplan", ".clustergen/lock")
INPUT_FILES = ("cluster.yaml", "nodes.yaml")
AGE_KEY_PREFIX = "AGE-SECRET-KEY-"


@dataclass(frozen=True)
class Planned:
    name: str
    data: bytes
    mode: int = 0o644
    append: bool = False  # add to an existing file instead of creating it


def _examples() -> list[str]:
    root = resources.examples_dir()
    return sorted(p.name for p in root.iterdir() if (p / "cluster.yaml").is_file())


def _example_dir(name: str) -> Path:
    known = _examples()
    # Compare against the list, never join the raw name: it must not walk out of examples/.
    if name not in known:
        raise UsageError(f"unknown example {name!r}; choose one of: {', '.join(known)}")
    return resources.examples_dir() / name


def sops_config(recipient: str) -> bytes:
    """Creation rules, first match wins: the secrets input whole, then Kubernetes Secrets
    (`*.sops.yaml` outputs) with only data/stringData encrypted so kubectl/kustomize and
    reviewers still see kind, name and namespace."""
    return (
        "# sops creation rules (first match wins), written by clustergen init.\n"
        "# Decrypting needs the age key: export SOPS_AGE_KEY_FILE=$PWD/age.key\n"
        "---\n"
        "creation_rules:\n"
        "  - path_regex: (^|/)secrets\\.sops\\.ya?ml$\n"
        f"    age: {recipient}\n"
        "  - path_regex: \\.sops\\.ya?ml$\n"
        "    encrypted_regex: ^(data|stringData)$\n"
        f"    age: {recipient}\n"
    ).encode()


def _placeholder_secrets() -> bytes:
    return "".join(f"{k}: {v}\n" for k, v in secrets.PLACEHOLDERS.items()).encode("utf-8")


def _read_identity(path: Path) -> str:
    """The public key (recipient) of an existing age key file."""
    from pyrage import x25519  # type: ignore[import-untyped,unused-ignore]

    try:
        text = read_file(path, shown=AGE_KEY, cap=1 << 16).decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {display_name(path)}: {exc}") from None
    for line in text.splitlines():
        if line.strip().startswith(AGE_KEY_PREFIX):
            try:
                return str(x25519.Identity.from_str(line.strip()).to_public())
            except Exception:  # pyrage raises its own error type; never echo the key
                break
    raise UsageError(f"{display_name(path)} holds no valid age key (AGE-SECRET-KEY-1...)")


def _new_identity() -> tuple[bytes, str]:
    """(age.key bytes in age-keygen's format, recipient). No `# created:` line: its
    timestamp would be the one non-deterministic byte in the directory."""
    from pyrage import x25519  # type: ignore[import-untyped,unused-ignore]

    identity = x25519.Identity.generate()
    recipient = str(identity.to_public())
    return f"# public key: {recipient}\n{identity}\n".encode(), recipient


def _gitignore_addition(existing: str | None) -> bytes:
    present = {line.strip() for line in (existing or "").splitlines()}
    missing = [entry for entry in GITIGNORE_ENTRIES if entry not in present]
    if not missing:
        return b""
    lead = "" if not existing or existing.endswith("\n") else "\n"
    block = "# clustergen: the age key and local tool state stay out of git\n"
    if existing:
        block = "\n" + block
    return (lead + block + "".join(f"{m}\n" for m in missing)).encode("utf-8")


def plan(config_dir: Path, example: str) -> tuple[list[Planned], list[str]]:
    """(files to write, notes on files left alone)."""
    source = _example_dir(example)
    todo: list[Planned] = []
    kept: list[str] = []
    for name in INPUT_FILES:
        if _present(config_dir / name):
            kept.append(f"{name} (exists)")
        else:
            todo.append(Planned(name, (source / name).read_bytes()))

    key_path = config_dir / secrets.SOPS_CONFIG
    has_config = _present(key_path)
    recipient: str | None = None
    if _present(config_dir / AGE_KEY):
        kept.append(f"{AGE_KEY} (exists)")
        recipient = _read_identity(config_dir / AGE_KEY)
    elif has_config:
        # .sops.yaml names the recipients already; a new key would not be one of them.
        kept.append(f"{AGE_KEY} (not created: {secrets.SOPS_CONFIG} exists and names the keys)")
    else:
        key_bytes, recipient = _new_identity()
        todo.append(Planned(AGE_KEY, key_bytes, mode=0o600))

    if has_config:
        kept.append(f"{secrets.SOPS_CONFIG} (exists)")
    else:
        assert recipient is not None  # no .sops.yaml: a key was read or created above
        todo.append(Planned(secrets.SOPS_CONFIG, sops_config(recipient)))

    if _present(config_dir / secrets.SECRETS_FILE):
        kept.append(f"{secrets.SECRETS_FILE} (exists)")
    else:
        if has_config:
            encrypted = secrets.encrypt(
                _placeholder_secrets(),
                secrets.SECRETS_FILE,
                config=key_path.resolve(),
                cwd=config_dir,
            )
        else:
            assert recipient is not None
            encrypted = secrets.encrypt(
                _placeholder_secrets(),
                secrets.SECRETS_FILE,
                age_recipients=[recipient],
                cwd=config_dir,
            )
        todo.append(Planned(secrets.SECRETS_FILE, encrypted))

    gitignore = config_dir / GITIGNORE
    try:
        existing = (
            read_file(gitignore, shown=GITIGNORE, cap=1 << 20).decode("utf-8")
            if _present(gitignore)
            else None
        )
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {display_name(gitignore)}: {exc}") from None
    addition = _gitignore_addition(existing)
    if addition:
        todo.append(Planned(GITIGNORE, addition, append=existing is not None))
    else:
        kept.append(f"{GITIGNORE} (has every entry)")
    return todo, kept


def _present(path: Path) -> bool:
    """Whether anything is at path. A regular file is kept as it is; a link (dangling or
    not), FIFO or directory is refused: init would otherwise read through it, or create a
    key next to a name it then cannot write (and encrypt for a key it throws away)."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return False
    if not stat.S_ISREG(info.st_mode):
        raise UsageError(
            f"{display_name(path)} is {kind(info.st_mode)}: clustergen never follows links "
            "and writes only regular files; replace it with the file itself or remove it"
        )
    return True


def _write_new(path: Path, data: bytes, mode: int) -> None:
    """Create path; O_EXCL makes "never overwrite" hold even against a racing writer, and
    the mode is set at creation, so age.key is never readable by others, not even briefly."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    try:
        os.fchmod(fd, mode)  # the umask may have removed bits; 0600 must be exact
        os.write(fd, data)
    finally:
        os.close(fd)


def run(options: Options) -> int:
    config_dir = options.config_dir
    if config_dir.exists() and not config_dir.is_dir():
        raise UsageError(f"{display_name(config_dir)} exists and is not a directory")
    _example_dir(options.example)  # an unknown example must not leave a new empty directory
    created = [p for p in (config_dir, *config_dir.parents) if not p.exists()]
    config_dir.mkdir(parents=True, exist_ok=True)
    try:
        todo, kept = plan(config_dir, options.example)
    except BaseException:
        # plan() writes nothing, but it runs sops inside the directory; a failed init leaves
        # none of the directories it made behind (rmdir: only while they are empty).
        for directory in created:
            with contextlib.suppress(OSError):
                directory.rmdir()
        raise
    for item in todo:
        path = config_dir / item.name
        try:
            if item.append:
                fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_NOFOLLOW)
                try:
                    os.write(fd, item.data)
                finally:
                    os.close(fd)
            else:
                _write_new(path, item.data, item.mode)
        except FileExistsError:
            if item.name == AGE_KEY:
                # secrets.sops.yaml was encrypted for the key that could not be written.
                raise UsageError(
                    f"{AGE_KEY} appeared while init ran; run `clustergen init` again"
                ) from None
            kept.append(f"{item.name} (appeared while init ran)")
            continue
        except OSError as exc:
            raise UsageError(f"cannot write {display_name(path)}: {exc.strerror}") from None
        info(options.fmt, f"{'updated' if item.append else 'created'} {item.name}")
    for note in kept:
        info(options.fmt, f"kept {note}")
    shown = display_name(config_dir)
    where = "" if shown == "." else f"cd {shown} && "
    info(
        options.fmt,
        f"next: {where}export SOPS_AGE_KEY_FILE=$PWD/{AGE_KEY}; put the real Proxmox API "
        f"token in {secrets.SECRETS_FILE} with `sops {secrets.SECRETS_FILE}`; "
        "then `clustergen render`",
    )
    return 0
