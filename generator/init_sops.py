"""The sops creation rules `clustergen init` sets up: its own .sops.yaml, the rules added
to the host's .sops.yaml template, or the lines to add printed for a hand-written one."""

from __future__ import annotations

from pathlib import Path

from generator import secrets, sops, sopssetup
from generator.errors import UsageError
from generator.init_files import Planned
from generator.load import display_name


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


def sops_rules(
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
