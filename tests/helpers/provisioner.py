"""What the tests of the Packer provisioner share: HCL string literals and the stand-ins that
let its script run on this machine.

The provisioner's inline script is run by bash with stand-ins for the network (curl) and the
partition table reader (sfdisk); xz and dd are the real ones, the disk is a file.
"""

from __future__ import annotations

import json


def hcl_string(value: str) -> str:
    """An HCL quoted string literal as python-hcl2 returns it, unquoted and unescaped."""
    assert value.startswith('"') and value.endswith('"'), value
    unescaped: str = json.loads(value)
    return unescaped


FAKE_CURL = """#!/bin/bash
# curl stand-in: --output FILE URL; FAKE_IMAGE is what the factory would send.
echo "$@" >> "$FAKE_LOG"
while [ $# -gt 1 ]; do [ "$1" = --output ] && out=$2; shift; done
if [ -z "${FAKE_IMAGE:-}" ]; then
  echo "curl: (22) The requested URL returned error: 404" >&2
  exit 22
fi
cp "$FAKE_IMAGE" "$out"
"""
FAKE_SFDISK = """#!/bin/bash
# sfdisk --dump stand-in: the GPT a Talos image has, when the disk starts with TALOS.
[ "$1" = --dump ] || exit 2
if [ "$(head -c 5 "$2")" = TALOS ]; then
  printf 'label: gpt\\nunit: sectors\\n\\n'
  esp=C12A7328-F81F-11D2-BA4B-00A0C93EC93B linux=0FC63DAF-8483-4772-8E79-3D69D8477DE4
  printf '%s1 : start=2048, size=204800, type=%s, name="EFI"\\n' "$2" "$esp"
  printf '%s2 : start=206848, size=2048, type=%s, name="META"\\n' "$2" "$linux"
else
  printf 'label: dos\\n'
fi
"""
