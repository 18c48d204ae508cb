"""The stages of DESIGN.md in order, for the commands and the Python API.

load -> validate -> model -> render -> verify -> secrets; sync is the caller's (render/check).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from types import MappingProxyType
from typing import Any

from generator import derive, inputs, model, output
from generator.errors import Diagnostic
from generator.load import load_yaml
from generator.provisioners import CAPI_CREDENTIALS

CREDENTIALS_OUTPUT = CAPI_CREDENTIALS


@dataclass(frozen=True)
class Rendered:
    files: dict[str, bytes]  # output path relative to the output root -> bytes to write
    warnings: tuple[Diagnostic, ...]
    context: Mapping[str, Any]
    # Every directory a template writes into: where sync looks for stale generated files.
    output_dirs: tuple[str, ...] = ()
    # *.sops.* outputs whose plaintext could not be compared (no key to decrypt): check says so.
    unverified: tuple[str, ...] = ()


def _is_sops_output(path: str) -> bool:
    """secrets.is_sops_output, without importing that module for a render that has none."""
    return ".sops." in PurePosixPath(path).name


def needs_secrets(cluster: Mapping[str, Any]) -> bool:
    """Only the capi templates put a secret into an output (the credentials Secret)."""
    provisioners = cluster.get("provisioners", derive.CLUSTER_DEFAULTS["provisioners"])
    return "capi" in (provisioners or ())


def render_tree(
    config_dir: Path,
    output_root: Path | None = None,
    *,
    check: bool = False,
    dialect: str = "auto",
) -> Rendered:
    """Everything up to (not including) sync, in memory.

    output_root: where the generated tree lives (default config_dir); the secrets stage reads
    existing *.sops.* files there to keep their ciphertext when the plaintext is unchanged.
    check: True for `clustergen check`: never encrypts; without a key to decrypt it compares
    what it can see (keys, structure) and lists those paths in `unverified`.
    """
    output_root = output_root if output_root is not None else config_dir
    read = inputs.read(config_dir, dialect)
    warnings = list(read.warnings)

    # Decrypt only when an output needs a secret: a render without capi runs without sops.
    values: Mapping[str, str] | None = None
    key_available = True
    prefetch: Any = None  # secrets.Prefetch, when secrets.sops.yaml is decrypted
    if read.inline_secrets:
        # talos-cluster keeps the token in its git-ignored cluster.yaml: the same secrets,
        # guarded the same way (no output outside *.sops.* may contain them).
        values = dict(read.inline_secrets)
    elif needs_secrets(read.cluster.data):
        from generator import secrets

        if read.secrets_file is None:
            # The fast loader keeps no positions; this rare warning reloads cluster.yaml for them.
            positioned = load_yaml(config_dir / inputs.CLUSTER_FILE, shown=read.cluster.file)
            warnings.append(secrets.missing_warning(CREDENTIALS_OUTPUT, positioned))
        else:
            # The existing encrypted output is decrypted beside secrets.sops.yaml (seal
            # needs its plaintext to keep the ciphertext): two sops calls at once.
            prefetch = secrets.Prefetch(output_root / CREDENTIALS_OUTPUT, key_dir=config_dir)
            try:
                values = secrets.load_secrets(read.secrets_file, shown=inputs.SECRETS_FILE)
                # From here on no printed text (a diff, a message) shows these values.
                output.protect(values)
            except secrets.KeyUnavailable:
                prefetch.join()
                if not check:
                    raise
                # CI without the key: render with placeholders to compare the structure.
                values, key_available = secrets.PLACEHOLDERS, False
            except BaseException:
                prefetch.join()  # never a sops call left running behind an error
                raise

    try:
        return _model_to_sealed(
            read, warnings, values, key_available, prefetch, config_dir, output_root, check
        )
    finally:
        if prefetch is not None:
            prefetch.join()  # never a sops call left running, whatever happened


def _model_to_sealed(
    read: inputs.Inputs,
    warnings: list[Diagnostic],
    values: Mapping[str, str] | None,
    key_available: bool,
    prefetch: Any,
    config_dir: Path,
    output_root: Path,
    check: bool,
) -> Rendered:
    """model -> render -> verify -> secrets of render_tree."""
    context = model.build(
        read.cluster.data,
        read.nodes.data,
        secrets=values,
        has_secrets_file=read.secrets_file is not None,
    )
    from generator import render, settings, sync, verify

    render_settings = settings.load()
    files = render.render(context, render_settings)
    managed = render.output_dirs(render_settings)
    # Bytes identical to what this clustergen wrote and recorded were verified then; only new
    # or changed outputs are parsed (an unchanged tree never imports hcl2 or lark).
    verify.verify(files, skip=sync.verified(output_root))
    if values is None and not any(_is_sops_output(path) for path in files):
        # No secret to guard, nothing to seal (no capi): the secrets module stays unimported.
        return Rendered(files, tuple(warnings), _without_secret_values(context), managed)
    from generator import secrets

    if values is not None and key_available:
        secrets.guard(files, values)
    sealed = secrets.seal(
        files,
        values or {},
        config_dir=config_dir,
        output_root=output_root,
        check=check,
        key_available=key_available,
        prefetched={CREDENTIALS_OUTPUT: prefetch} if prefetch is not None else None,
    )
    return Rendered(
        sealed.files,
        tuple(warnings + sealed.warnings),
        _without_secret_values(context),
        managed,
        tuple(sealed.unverified),
    )


def _without_secret_values(context: Mapping[str, Any]) -> Mapping[str, Any]:
    """The context callers get back: secret values masked, so printing it leaks nothing."""
    if not context.get("secrets"):
        return context
    from generator import secrets

    masked = {key: secrets.MASK for key in context["secrets"]}
    return MappingProxyType({**context, "secrets": MappingProxyType(masked)})
