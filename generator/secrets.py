"""The secrets file, secrets.sops.yaml: loaded (decrypted in memory through generator/sops.py,
never to disk, only when a render needs a secret) and validated like any input; its
diagnostics name keys, never values.

The output side is elsewhere: generator/leaks.py guards outputs and printed text against the
values, generator/seal.py encrypts the *.sops.* outputs.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

from generator import constants, resources, sops
from generator.errors import Diagnostic, InputError
from generator.load import Document, display_name, load_yaml

SECRETS_FILE = constants.SECRETS_FILE
SECRET_KEYS = constants.SECRET_KEYS
# Values that pass the schema and are plainly not real; `init` writes them, and `check` renders
# with them when it cannot decrypt (it then compares structure only).
PLACEHOLDERS: Mapping[str, str] = {
    "proxmox_api_token_id": "root@pam!replace-me",
    "proxmox_api_token_secret": "00000000-0000-0000-0000-000000000000",
}


@cache
def _validator() -> Any:
    from generator.validate import validator_class

    schema = json.loads(resources.schema_path("secrets").read_text(encoding="utf-8"))
    return validator_class()(schema)


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
    if not sops.is_encrypted(doc.data):
        raise sops.plaintext_error(shown)
    data = sops.plain_yaml(sops.decrypt(path, shown=shown, encrypted=doc.data))
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
