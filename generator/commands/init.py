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
from typing import Any

from generator import resources, secrets, sops, sopssetup, writer
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
    replace: bool = False  # rewrite an existing file (the host's .sops.yaml template)


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


def _sops_rules(
    config_dir: Path, setup: sopssetup.Setup, recipient: str | None, *, encrypts: bool = True
) -> tuple[Path | None, list[Planned], list[str]]:
    """(the .sops.yaml to encrypt with, files to write, notes) for clustergen's creation rules.

    The .sops.yaml is returned only when it exists and already has the rules (it may name a
    whole team's keys); otherwise init encrypts for the one recipient it has.

    No .sops.yaml anywhere: clustergen writes its own. One the host renders: the rules go
    into the host's template (never into the rendered file, which the host overwrites). One
    someone wrote by hand: never edited; the exact lines to add are printed.
    """
    if setup.config is None:
        assert recipient is not None  # no .sops.yaml and no key: init created one
        return None, [Planned(sops.SOPS_CONFIG, sops_config(recipient))], []
    rules = sopssetup.rules_for(config_dir, setup.config.parent)
    source = setup.template or setup.config
    shown = display_name(source)
    text = source.read_text(encoding="utf-8")
    rendered = setup.config.is_file() and sopssetup.covered(
        setup.config.read_text(encoding="utf-8"), rules
    )
    usable = setup.config if rendered else None
    if sopssetup.covered(text, rules):
        has = "has clustergen's creation rules" if setup.template else "exists"
        return usable, [], [f"{shown} ({has})"]
    if setup.template is not None:
        updated = sopssetup.add_to_template(setup.template, rules)
        if updated is not None:
            note = f"{display_name(setup.config)} is rendered from it: run `task configure`"
            return usable, [Planned(str(setup.template), updated, replace=True)], [note]
    lines = sopssetup.lines_to_add(rules, source, recipient)
    if recipient is None and encrypts:
        raise UsageError(f"{shown} has no creation rule for {secrets.SECRETS_FILE}: {lines}")
    return usable, [], [f"{shown} (not edited): {lines}"]


def plan(
    config_dir: Path, example: str, *, token_in_cluster_yaml: bool = False
) -> tuple[list[Planned], list[str]]:
    """(files to write, notes on files left alone).

    token_in_cluster_yaml: the repo keeps the API token in its git-ignored cluster.yaml
    (talos-cluster), so no secrets.sops.yaml is made.
    """
    source = _example_dir(example)
    todo: list[Planned] = []
    kept: list[str] = []
    for name in INPUT_FILES:
        if _present(config_dir / name):
            kept.append(f"{name} (exists)")
        else:
            todo.append(Planned(name, (source / name).read_bytes()))

    # A link, FIFO or directory where init's key or sops config belong is refused before
    # anything reads through it.
    _present(config_dir / AGE_KEY)
    _present(config_dir / sops.SOPS_CONFIG)
    setup = sopssetup.discover(config_dir)
    recipient: str | None = None
    if setup.key is not None:
        # The key sops uses here already (SOPS_AGE_KEY_FILE, or the host repo's age.key):
        # a second key would encrypt what the host's key cannot open.
        recipient = _read_identity(setup.key)
        own = setup.key.resolve() == (config_dir / AGE_KEY).resolve()
        kept.append(
            f"{AGE_KEY} (exists)" if own else f"{AGE_KEY} (using {display_name(setup.key)})"
        )
    elif setup.config is not None and setup.config.exists():
        # .sops.yaml names the recipients already; a new key would not be one of them.
        kept.append(
            f"{AGE_KEY} (not created: {display_name(setup.config)} exists and names the keys)"
        )
    else:
        key_bytes, recipient = _new_identity()
        todo.append(Planned(AGE_KEY, key_bytes, mode=0o600))

    # A repo that keeps the token in cluster.yaml gets no secrets.sops.yaml now: init encrypts
    # nothing, so rules it cannot add are only printed.
    config, rule_items, rule_notes = _sops_rules(
        config_dir, setup, recipient, encrypts=not token_in_cluster_yaml
    )
    todo += rule_items
    kept += rule_notes

    if _present(config_dir / secrets.SECRETS_FILE):
        kept.append(f"{secrets.SECRETS_FILE} (exists)")
    elif token_in_cluster_yaml:
        kept.append(f"{secrets.SECRETS_FILE} (not created: the token stays in cluster.yaml)")
    else:
        if config is not None:  # its rules name the recipients (maybe a whole team's)
            encrypted = sops.encrypt(
                _placeholder_secrets(),
                secrets.SECRETS_FILE,
                config=config.resolve(),
                cwd=config_dir,
            )
        else:
            if recipient is None:
                raise UsageError(
                    f"no age key found (SOPS_AGE_KEY_FILE, age.key) and no {sops.SOPS_CONFIG} "
                    f"with clustergen's rules yet to encrypt {secrets.SECRETS_FILE} for: set "
                    "SOPS_AGE_KEY_FILE, or run the host's `task configure` first"
                )
            encrypted = sops.encrypt(
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


def _host_repo(options: Options) -> Any:
    """In a cluster-template or talos-cluster repo: the extension of its CUE schemas with
    clustergen's keys (generator.dialects.adopt), applied once the rest is prepared."""
    from generator.dialects import adopt

    return adopt.prepare(options.config_dir, options.dialect, options.example)


def _secrets_in_cluster_yaml(config_dir: Path, *, move: bool) -> list[str]:
    """--move-secrets moves the token out of a plaintext cluster.yaml; without it init only
    offers that (generator/movesecrets.py)."""
    from generator import hostrepo, movesecrets

    if not move:
        offer = movesecrets.offer(config_dir)
        return [offer] if offer else []
    key = hostrepo.age_key(config_dir)
    return movesecrets.move(config_dir, recipient=_read_identity(key) if key else None)


def run(options: Options) -> int:
    config_dir = options.config_dir
    if config_dir.exists() and not config_dir.is_dir():
        raise UsageError(f"{display_name(config_dir)} exists and is not a directory")
    _example_dir(options.example)  # an unknown example must not leave a new empty directory
    created = [p for p in (config_dir, *config_dir.parents) if not p.exists()]
    config_dir.mkdir(parents=True, exist_ok=True)
    schemas = _host_repo(options)
    example = schemas.dialect if schemas.dialect_example else options.example
    try:
        todo, kept = plan(config_dir, example, token_in_cluster_yaml=schemas.token_in_cluster_yaml)
    except BaseException:
        # plan() writes nothing, but it runs sops inside the directory; a failed init leaves
        # none of the directories it made behind (rmdir: only while they are empty).
        for directory in created:
            with contextlib.suppress(OSError):
                directory.rmdir()
        raise
    schemas.apply(options.fmt)
    for item in todo:
        path = config_dir / item.name
        try:
            if item.replace:
                writer.write_atomic(path, item.data)
            elif item.append:
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
        verb = "updated" if item.append or item.replace else "created"
        info(options.fmt, f"{verb} {display_name(path) if item.replace else item.name}")
    for note in kept:
        # A note may span lines (the creation rules to paste): one message per line, since a
        # message's own control characters are escaped when printed.
        for line in f"kept {note}".split("\n"):
            info(options.fmt, line)
    for line in _secrets_in_cluster_yaml(config_dir, move=options.move_secrets):
        info(options.fmt, line)
    shown = display_name(config_dir)
    where = "" if shown == "." else f"cd {shown} && "
    if schemas.token_in_cluster_yaml and not (config_dir / secrets.SECRETS_FILE).exists():
        # talos-cluster keeps the token in its git-ignored cluster.yaml: no secrets file to fill.
        token_step = (
            "the Proxmox API token stays in cluster.yaml (proxmox_api_token_id/_secret; "
            "`clustergen init --move-secrets` moves it into an encrypted "
            f"{secrets.SECRETS_FILE})"
        )
    else:
        token_step = (
            f"put the real Proxmox API token in {secrets.SECRETS_FILE} with "
            f"`sops {secrets.SECRETS_FILE}`"
        )
    info(
        options.fmt,
        f"next: {where}export SOPS_AGE_KEY_FILE=$PWD/{AGE_KEY}; {token_step}; "
        "then `clustergen render`",
    )
    return 0
