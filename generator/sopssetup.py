"""Where `clustergen init` gets its age key and its sops creation rules in a host repo.

cluster-template renders `.sops.yaml` from `templates/config/.sops.yaml.j2` with its own
makejinja, so a `.sops.yaml` written by clustergen would be overwritten by the next
`task configure`, and a second age key would encrypt files the host's key cannot open. So:
the key is the one sops would use (SOPS_AGE_KEY_FILE, else age.key up to the repo root); the
rules go into the template the host renders `.sops.yaml` from; a plain `.sops.yaml` someone
else wrote is never edited: init prints the exact lines to add.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from generator import hostrepo, secrets, sops
from generator.load import display_name
from generator.provisioners import CAPI_CREDENTIALS

CAPI_SECRETS = CAPI_CREDENTIALS
_AGE_LINE = re.compile(r"^\s*(?:-\s+)?age:\s*(?P<value>.+?)\s*$", re.MULTILINE)
_RULES_LINE = re.compile(r"^creation_rules:\s*$", re.MULTILINE)


@dataclass(frozen=True)
class Rules:
    """clustergen's creation rules as seen from one .sops.yaml folder."""

    sops_dir: Path  # the folder of .sops.yaml: path_regex matches paths relative to it
    names: tuple[str, str]  # secrets.sops.yaml and the CAPI Secret, relative to sops_dir

    def text(self, age: str) -> str:
        """The rule lines, for a `creation_rules:` list indented by two spaces; first match
        wins, so they go first, before a host rule such as `infrastructure/.*\\.sops\\.ya?ml`."""
        secrets_name, capi_name = self.names
        capi_dir = re.escape(capi_name.rsplit("/", 1)[0])
        return (
            "  # clustergen (its secrets input whole, its Kubernetes Secret's data only)\n"
            f"  - path_regex: ^{re.escape(secrets_name)}$\n"
            f"    age: {age}\n"
            f"  - path_regex: ^{capi_dir}/.*\\.sops\\.ya?ml$\n"
            "    encrypted_regex: ^(data|stringData)$\n"
            f"    age: {age}\n"
        )


def rules_for(config_dir: Path, sops_dir: Path) -> Rules:
    base = config_dir.resolve().relative_to(sops_dir.resolve()).as_posix()
    prefix = "" if base == "." else f"{base}/"
    return Rules(sops_dir, (f"{prefix}{secrets.SECRETS_FILE}", f"{prefix}{CAPI_SECRETS}"))


def _first_rule(document: Any, name: str) -> dict[str, Any] | None:
    rules = document.get("creation_rules") if isinstance(document, dict) else None
    for rule in rules if isinstance(rules, list) else []:
        if not isinstance(rule, dict):
            continue
        pattern = rule.get("path_regex")
        try:
            if pattern is None or re.search(str(pattern), name):
                return rule
        except re.error:
            return None
    return None


def covered(text: str, rules: Rules) -> bool:
    """True when the first rule that matches each of clustergen's files is clustergen's kind:
    the secrets file whole, the Secret by data/stringData."""
    from ruamel.yaml import YAML

    if all(line in text for line in rules.text("").splitlines() if "path_regex" in line):
        # clustergen's own rules, as init writes them: found even in a template whose
        # block tags (#% if %#) keep it from parsing as YAML, so init never adds them twice.
        return True
    try:
        document = YAML(typ="safe", pure=True).load(io.StringIO(text))
    except Exception:  # unparsable: sops will say so; treat as not covered
        return False
    secrets_rule = _first_rule(document, rules.names[0])
    capi_rule = _first_rule(document, rules.names[1])
    return (
        secrets_rule is not None
        and not secrets_rule.get("encrypted_regex")
        and capi_rule is not None
        and capi_rule.get("encrypted_regex") == "^(data|stringData)$"
    )


@dataclass(frozen=True)
class Setup:
    key: Path | None  # the age key to reuse; None: init creates config_dir/age.key
    config: Path | None  # the .sops.yaml sops will use for config_dir (may not exist yet)
    template: Path | None  # the host file that renders config, when the host renders it


def discover(config_dir: Path) -> Setup:
    key = hostrepo.age_key(config_dir)
    config = sops.find_config(config_dir)
    if config is None:
        # Not rendered yet (a fresh clone before `task configure`): where would the host put it?
        root = hostrepo.repo_root(config_dir) or config_dir.resolve()
        for folder in (config_dir.resolve(), root):
            template = hostrepo.host_template(folder / sops.SOPS_CONFIG)
            if template is not None:
                return Setup(key, folder / sops.SOPS_CONFIG, template)
        return Setup(key, None, None)
    return Setup(key, config, hostrepo.host_template(config))


def add_to_template(template: Path, rules: Rules) -> bytes | None:
    """The template with clustergen's rules first in creation_rules, their `age:` value
    copied from the template's first rule (e.g. `"#{ age_key('public') }#"`); None when the
    template has no such list or no age value to copy."""
    text = template.read_text(encoding="utf-8")
    start = _RULES_LINE.search(text)
    age = _AGE_LINE.search(text, start.end()) if start else None
    if start is None or age is None:
        return None
    insert = start.end() + 1
    return (text[:insert] + rules.text(age.group("value")) + text[insert:]).encode("utf-8")


def lines_to_add(rules: Rules, config: Path, recipient: str | None) -> str:
    age = recipient or "<your age public key, age1...>"
    return (
        f"add clustergen's creation rules at the top of `creation_rules:` in "
        f"{display_name(config)}:\n{rules.text(age)}"
    )
