"""The stages of DESIGN.md in order, for the commands and the Python API.

load -> validate -> model -> render -> verify -> secrets; sync is the caller's (render/check).
Data flows forward only: the output tree is read once (generator/outtree.py), right after the
inputs, and that snapshot is what verify, seal and sync's plan look at.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from generator import derive, inputs, model, output, outtree
from generator.errors import Diagnostic, KeyUnavailable
from generator.load import Document, load_yaml
from generator.options import Options
from generator.provisioners import CAPI_CREDENTIALS, enabled

CREDENTIALS_OUTPUT = CAPI_CREDENTIALS


@dataclass(frozen=True)
class Rendered:
    files: dict[str, bytes]  # output path relative to the output root -> bytes to write
    warnings: tuple[Diagnostic, ...]
    context: Mapping[str, Any]
    # The output tree as this run found it, for sync.plan (render asks it for current()
    # once it holds the lock).
    snapshot: outtree.Snapshot
    # Every directory a template writes into: where sync looks for stale generated files.
    output_dirs: tuple[str, ...] = ()
    # *.sops.* outputs whose plaintext could not be compared (no key to decrypt): check says so.
    unverified: tuple[str, ...] = ()


def needs_secrets(cluster: Mapping[str, Any]) -> bool:
    """An enabled provisioner puts a secret into an output (today capi's credentials Secret)."""
    provisioners = cluster.get("provisioners", derive.CLUSTER_DEFAULTS["provisioners"])
    return any(p.secret_outputs for p in enabled(provisioners))


def _missing_secrets_warning(read: inputs.Inputs) -> Diagnostic:
    """capi without secrets.sops.yaml, anchored at cluster.yaml's provisioners. inputs.read
    loads with positions whenever it reports anything else: those are used then. Only a
    clean fast load (no positions kept) makes this rare warning load cluster.yaml again."""
    from generator import secrets

    cluster = read.cluster
    if not cluster.positions or type(cluster) is not Document:  # a dialect maps its paths
        cluster = load_yaml(read.config_dir / inputs.CLUSTER_FILE, shown=cluster.file)
    return secrets.missing_warning(CREDENTIALS_OUTPUT, cluster)


def render_tree(options: Options, *, check: bool = False) -> Rendered:
    """Everything up to (not including) sync, in memory.

    options: config_dir, output_root (where the generated tree lives; the secrets stage keeps
    the ciphertext of an existing *.sops.* file there when the plaintext is unchanged) and
    dialect are used.
    check: True for `clustergen check` and a dry run: never encrypts; without a key to
    decrypt it compares what it can see (keys, structure) and lists those paths in
    `unverified`.
    """
    config_dir = options.config_dir
    read = inputs.read(config_dir, options.dialect)
    warnings = list(read.warnings)
    from generator import render, settings

    render_settings = settings.load()
    managed = render.output_dirs(render_settings)
    snapshot = outtree.take(options.output_root, managed)

    # Decrypt only when an output needs a secret: a render without capi runs without sops.
    values: Mapping[str, str] | None = None
    key_available = True
    prefetch: Any = None  # seal.Prefetch, when secrets.sops.yaml is decrypted
    secrets_file = read.secrets_file
    if read.inline_secrets:
        # talos-cluster keeps the token in its git-ignored cluster.yaml: the same secrets,
        # guarded the same way (no output outside *.sops.* may contain them).
        values = dict(read.inline_secrets)
    elif needs_secrets(read.cluster.data) and secrets_file is None:
        warnings.append(_missing_secrets_warning(read))
    elif needs_secrets(read.cluster.data) and secrets_file is not None:
        from generator import seal, secrets

        # The existing encrypted output is decrypted beside secrets.sops.yaml (seal needs
        # its plaintext to keep the ciphertext): two sops calls at once.
        prefetch = seal.Prefetch(seal.existing(snapshot, CREDENTIALS_OUTPUT), key_dir=config_dir)
        try:
            values = secrets.load_secrets(secrets_file, shown=inputs.SECRETS_FILE)
            # From here on no printed text (a diff, a message) shows these values.
            output.protect(values)
        except KeyUnavailable:
            prefetch.join()
            if not check:
                raise
            # CI without the key: render with placeholders to compare the structure.
            values, key_available = secrets.PLACEHOLDERS, False
        except BaseException:
            prefetch.join()  # never a sops call left running behind an error
            raise

    try:
        context = model.build(
            read.cluster.data,
            read.nodes.data,
            secrets=values,
            has_secrets_file=secrets_file is not None,
        )
        files = render.render(context, render_settings)
        return _verify_and_seal(
            files,
            warnings,
            context,
            managed,
            snapshot,
            values,
            key_available,
            prefetch,
            options,
            check,
        )
    finally:
        if prefetch is not None:
            prefetch.join()  # never a sops call left running, whatever happened


def _verify_and_seal(
    files: dict[str, bytes],
    warnings: list[Diagnostic],
    context: Mapping[str, Any],
    managed: tuple[str, ...],
    snapshot: outtree.Snapshot,
    values: Mapping[str, str] | None,
    key_available: bool,
    prefetch: Any,
    options: Options,
    check: bool,
) -> Rendered:
    """verify -> secrets of render_tree."""
    from generator import verify

    # Bytes identical to what this clustergen wrote and recorded were verified then; only new
    # or changed outputs are parsed (an unchanged tree never imports hcl2 or lark).
    verify.verify(files, skip=snapshot.known)
    if values is None and not any(outtree.is_sops(path) for path in files):
        # No secret to guard, nothing to seal (no capi): the secrets modules stay unimported.
        return Rendered(files, tuple(warnings), _masked(context), snapshot, managed)
    from generator import leaks, seal

    if values is not None and key_available:
        leaks.guard(files, values)
    sealed = seal.seal(
        files,
        values or {},
        config_dir=options.config_dir,
        snapshot=snapshot,
        check=check,
        key_available=key_available,
        prefetched={CREDENTIALS_OUTPUT: prefetch} if prefetch is not None else None,
    )
    return Rendered(
        sealed.files,
        tuple(warnings + sealed.warnings),
        _masked(context),
        snapshot,
        managed,
        tuple(sealed.unverified),
    )


def _masked(context: Mapping[str, Any]) -> Mapping[str, Any]:
    """The context callers get back: secret values masked, so printing it leaks nothing."""
    if not context.get("secrets"):
        return context
    from generator import leaks

    masked = {key: leaks.MASK for key in context["secrets"]}
    return MappingProxyType({**context, "secrets": MappingProxyType(masked)})
