"""What `clustergen init` will write, decided before anything is written (including the
encryption of secrets.sops.yaml), so a failure leaves the directory as it was."""

from __future__ import annotations

from pathlib import Path

from generator import secrets, sops, sopssetup
from generator.agekey import AGE_KEY, new_identity, read_identity
from generator.errors import UsageError
from generator.init_files import (
    GITIGNORE,
    INPUT_FILES,
    Planned,
    example_dir,
    gitignore_addition,
    placeholder_secrets,
    present,
)
from generator.init_sops import sops_rules
from generator.load import display_name
from generator.safefs import read_file


def plan(
    config_dir: Path, example: str, *, token_in_cluster_yaml: bool = False
) -> tuple[list[Planned], list[str]]:
    """(files to write, notes on files left alone).

    token_in_cluster_yaml: the repo keeps the API token in its git-ignored cluster.yaml
    (talos-cluster), so no secrets.sops.yaml is made.
    """
    source = example_dir(example)
    todo: list[Planned] = []
    kept: list[str] = []
    for name in INPUT_FILES:
        if present(config_dir / name):
            kept.append(f"{name} (exists)")
        else:
            todo.append(Planned(name, (source / name).read_bytes()))

    # A link, FIFO or directory where init's key or sops config belong is refused before
    # anything reads through it.
    present(config_dir / AGE_KEY)
    present(config_dir / sops.SOPS_CONFIG)
    setup = sopssetup.discover(config_dir)
    recipient: str | None = None
    if setup.key is not None:
        # The key sops uses here already (SOPS_AGE_KEY_FILE, or the host repo's age.key):
        # a second key would encrypt what the host's key cannot open.
        recipient = read_identity(setup.key)
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
        key_bytes, recipient = new_identity()
        todo.append(Planned(AGE_KEY, key_bytes, mode=0o600))

    # A repo that keeps the token in cluster.yaml gets no secrets.sops.yaml now: init encrypts
    # nothing, so rules it cannot add are only printed.
    config, rule_items, rule_notes = sops_rules(
        config_dir, setup, recipient, encrypts=not token_in_cluster_yaml
    )
    todo += rule_items
    kept += rule_notes

    if present(config_dir / secrets.SECRETS_FILE):
        kept.append(f"{secrets.SECRETS_FILE} (exists)")
    elif token_in_cluster_yaml:
        kept.append(f"{secrets.SECRETS_FILE} (not created: the token stays in cluster.yaml)")
    else:
        if config is not None:  # its rules name the recipients (maybe a whole team's)
            encrypted = sops.encrypt(
                placeholder_secrets(),
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
                placeholder_secrets(),
                secrets.SECRETS_FILE,
                age_recipients=[recipient],
                cwd=config_dir,
            )
        todo.append(Planned(secrets.SECRETS_FILE, encrypted))

    gitignore = config_dir / GITIGNORE
    try:
        existing = (
            read_file(gitignore, shown=GITIGNORE, cap=1 << 20).decode("utf-8")
            if present(gitignore)
            else None
        )
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {display_name(gitignore)}: {exc}") from None
    addition = gitignore_addition(existing)
    if addition:
        todo.append(Planned(GITIGNORE, addition, append=existing is not None))
    else:
        kept.append(f"{GITIGNORE} (has every entry)")
    return todo, kept
