"""The age key of a config directory: the recipient of an existing key file, or a new key
in age-keygen's format. A key is never echoed, not even in an error."""

from __future__ import annotations

from pathlib import Path

from generator.errors import UsageError
from generator.load import display_name
from generator.safefs import read_file

AGE_KEY = "age.key"
AGE_KEY_PREFIX = "AGE-SECRET-KEY-"


def read_identity(path: Path) -> str:
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


def new_identity() -> tuple[bytes, str]:
    """(age.key bytes in age-keygen's format, recipient). No `# created:` line: its
    timestamp would be the one non-deterministic byte in the directory."""
    from pyrage import x25519  # type: ignore[import-untyped,unused-ignore]

    identity = x25519.Identity.generate()
    recipient = str(identity.to_public())
    return f"# public key: {recipient}\n{identity}\n".encode(), recipient
