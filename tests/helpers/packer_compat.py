"""A test-only copy of the rendered Packer template for packer-plugin-proxmox 1.1.1.

The rendered template targets plugin 1.2.x (`required_plugins` >= 1.2.3, the `boot_iso` block,
`tags`, `efi_format`, `disks.discard`/`ssd`). The Go module proxy reachable here serves 1.1.1 at
the newest, which has none of these. Users get the template as rendered; the tests run the real
1.1.1 on a copy in tmp that differs from it only where 1.1.1 itself says it must, driven by the
diagnostics of 1.1.1's own `packer validate`:

- the `required_plugins` constraint accepts the installed version;
- each argument 1.1.1 reports as unsupported is dropped (test_real_packer checks that every one
  of them is a field of the 1.2.4 spec, so it is 1.2.x's, not a typo);
- the `boot_iso` block becomes 1.1.1's top-level `iso_file`/`iso_url`/... and `unmount_iso`
  (what 1.2.x deprecates in its favour; 1.1.1 always attaches that ISO as ide2);
- a `disks` block gets the `storage_pool_type` that 1.1.1 requires (1.2.x detects it).

for_build() additionally drops the `<wait...>` pauses of boot_command and sets boot_wait to 1ms:
they pace a real VM; the double answers at once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_UNSUPPORTED = re.compile(
    r"Error: Unsupported (argument|block type)\s+on (\S+) line (\d+):.*?"
    r'(?:An argument named|Blocks of type) "([^"]+)" (?:is|are) not expected here',
    re.DOTALL,
)
_POOL_TYPE = re.compile(r"disks\[(\d+)\]\.storage_pool_type must be specified")
# boot_iso (1.2.x) argument -> the 1.1.1 top-level argument; None: 1.1.1 has no equivalent and
# the 1.1.1 behaviour (ide2) is what the test gets.
_BOOT_ISO = {
    "iso_file": "iso_file",
    "iso_url": "iso_url",
    "iso_urls": "iso_urls",
    "iso_checksum": "iso_checksum",
    "iso_storage_pool": "iso_storage_pool",
    "iso_download_pve": "iso_download_pve",
    "unmount": "unmount_iso",
    "type": None,
    "index": None,
}


@dataclass(frozen=True)
class Unsupported:
    kind: str  # "argument" or "block type"
    file: str
    line: int
    name: str


def unsupported(diagnostics: str) -> list[Unsupported]:
    return [
        Unsupported(m.group(1), m.group(2), int(m.group(3)), m.group(4))
        for m in _UNSUPPORTED.finditer(diagnostics)
    ]


def relax_constraint(text: str, version: str) -> str:
    """The proxmox entry of required_plugins asks for the installed version instead."""
    pattern = re.compile(
        r'(required_plugins\s*\{\s*proxmox\s*=\s*\{[^}]*?version\s*=\s*)"[^"]*"', re.DOTALL
    )
    relaxed, count = pattern.subn(rf'\g<1>"{version}"', text)
    assert count == 1, "no required_plugins proxmox version in the template"
    return relaxed


def drop_unsupported(text: str, problems: list[Unsupported]) -> str:
    lines = text.split("\n")
    replacement: dict[int, list[str]] = {}
    for problem in problems:
        index = problem.line - 1
        if problem.kind == "argument":
            line = lines[index]
            assert re.match(rf"\s*{re.escape(problem.name)}\s*=", line), (problem, line)
            assert _balanced(line), f"multi-line value of {problem.name}: {line}"
            replacement[index] = []
        elif problem.name == "boot_iso":
            end = _block_end(lines, index)
            indent = re.match(r"\s*", lines[index]).group(0)  # type: ignore[union-attr]
            mapped = []
            for inner in lines[index + 1 : end]:
                arg = re.match(r"\s*(\w+)\s*=\s*(.*)$", inner)
                if arg is None:
                    assert not inner.strip() or inner.strip().startswith("#"), inner
                    continue
                assert arg.group(1) in _BOOT_ISO, f"boot_iso.{arg.group(1)} has no 1.1.1 form"
                target = _BOOT_ISO[arg.group(1)]
                if target is not None:
                    mapped.append(f"{indent}{target} = {arg.group(2)}")
            replacement[index] = mapped
            for gone in range(index + 1, end + 1):
                replacement[gone] = []
        else:
            raise AssertionError(f"plugin 1.1.1 rejects block {problem.name}: no known 1.1.1 form")
    out: list[str] = []
    for index, line in enumerate(lines):
        out.extend(replacement.get(index, [line]))
    return "\n".join(out)


def add_pool_types(text: str, diagnostics: str, pool_type: str) -> str:
    """storage_pool_type into each disks block 1.1.1 asks it for; a diagnostic names the disk's
    index and the line of its source block (a template may have several sources)."""
    lines = text.split("\n")
    wanted: list[tuple[int, int]] = []  # (line of the source block, disk index)
    for chunk in diagnostics.split("Error: ")[1:]:
        where = re.search(r"on \S+ line (\d+):", chunk)
        for n in _POOL_TYPE.findall(chunk):
            assert where is not None, chunk
            wanted.append((int(where.group(1)), int(n)))
    assert wanted, diagnostics
    inserts = []
    for source_line, n in wanted:
        disks = [
            i
            for i, line in enumerate(lines)
            if i >= source_line - 1 and re.match(r"\s*disks\s*\{\s*$", line)
        ]
        inserts.append(disks[n])
    for start in sorted(set(inserts), reverse=True):
        indent = re.match(r"\s*", lines[start]).group(0)  # type: ignore[union-attr]
        lines.insert(start + 1, f'{indent}  storage_pool_type = "{pool_type}"')
    return "\n".join(lines)


def for_build(text: str) -> str:
    out = []
    for line in text.split("\n"):
        # `<wait...>` means something only in a boot command (wherever its strings are built).
        line = re.sub(r"<wait[^>]*>", "", line)
        # Not 0s: Packer reads a zero boot_wait as unset and waits its default 10s.
        line = re.sub(r"^(\s*boot_wait\s*=\s*).*$", r'\g<1>"1ms"', line)
        out.append(line)
    return "\n".join(out)


def loopback_ssh(text: str, port: int, timeout: str) -> str:
    """The communicator talks to 127.0.0.1:port (the test's stand-in for the build VM).

    The double is an API, not a VM: it runs no SSH server and reports no guest address.
    """
    kept = [
        line for line in text.split("\n") if not re.match(r"\s*ssh_(host|port|timeout)\s*=", line)
    ]
    out: list[str] = []
    for line in kept:
        out.append(line)
        communicator = re.match(r"(\s*)communicator\s*=", line)
        if communicator:
            indent = communicator.group(1)
            out += [
                f'{indent}ssh_host    = "127.0.0.1"',
                f"{indent}ssh_port    = {port}",
                f'{indent}ssh_timeout = "{timeout}"',
            ]
    assert len(out) > len(kept), "no communicator argument in the template"
    return "\n".join(out)


def _balanced(line: str) -> bool:
    code = re.sub(r'"(?:[^"\\]|\\.)*"', '""', line)
    return all(code.count(a) == code.count(b) for a, b in ("[]", "{}", "()"))


def _block_end(lines: list[str], start: int) -> int:
    depth = 0
    for index in range(start, len(lines)):
        code = re.sub(r'"(?:[^"\\]|\\.)*"', '""', lines[index])
        depth += code.count("{") - code.count("}")
        if depth == 0:
            return index
    raise AssertionError(f"unterminated block at line {start + 1}")
