"""Talos image factory schematic: the YAML the factory hashes, its ID, the image URLs."""

from __future__ import annotations

import hashlib

import pytest
from ruamel.yaml import YAML

from generator import schematic

# Facts from ../shared/reference/README.md ("Talos image factory"): the factory's IDs of an
# empty customization and of one official extension.
EMPTY_ID = "376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba"
QEMU_GUEST_AGENT_ID = "ce4c980550dd2ab1b17bbf2b08801c7eb59418eafe8f279833297925d67c7515"


def _build(**overrides: object) -> schematic.Schematic:
    args: dict[str, object] = {
        "extensions": ["siderolabs/qemu-guest-agent"],
        "extra_kernel_args": [],
        "talos_version": "1.12.0",
        "platform": "nocloud",
        "arch": "amd64",
        "secureboot": True,
    }
    args.update(overrides)
    return schematic.build(**args)  # type: ignore[arg-type]


def test_empty_schematic_id_matches_the_factory() -> None:
    assert _build(extensions=[]).id == EMPTY_ID


def test_qemu_guest_agent_schematic_id_matches_the_factory() -> None:
    assert _build().id == QEMU_GUEST_AGENT_ID


def test_id_is_sha256_of_the_yaml() -> None:
    image = _build(extensions=["siderolabs/iscsi-tools"], extra_kernel_args=["net.ifnames=0"])
    assert image.id == hashlib.sha256(image.yaml.encode()).hexdigest()


def test_yaml_v3_layout_four_space_indent_struct_order() -> None:
    image = _build(
        extensions=["siderolabs/qemu-guest-agent", "siderolabs/iscsi-tools"],
        extra_kernel_args=["net.ifnames=0", "console=ttyS0"],
    )
    # extraKernelArgs before systemExtensions: the order of the Go struct's fields.
    assert image.yaml == (
        "customization:\n"
        "    extraKernelArgs:\n"
        "        - net.ifnames=0\n"
        "        - console=ttyS0\n"
        "    systemExtensions:\n"
        "        officialExtensions:\n"
        "            - siderolabs/iscsi-tools\n"
        "            - siderolabs/qemu-guest-agent\n"
    )


def test_extension_order_does_not_change_the_id() -> None:
    a = _build(extensions=["siderolabs/iscsi-tools", "siderolabs/qemu-guest-agent"])
    b = _build(extensions=["siderolabs/qemu-guest-agent", "siderolabs/iscsi-tools"])
    assert a.id == b.id


def test_kernel_argument_order_is_kept_and_changes_the_id() -> None:
    # The kernel command line is ordered (a later argument overrides an earlier one).
    a = _build(extra_kernel_args=["console=tty0", "console=ttyS0"])
    b = _build(extra_kernel_args=["console=ttyS0", "console=tty0"])
    assert a.id != b.id
    assert a.yaml.index("console=tty0") < a.yaml.index("console=ttyS0")


@pytest.mark.parametrize(
    "arg",
    [
        "yes",
        "no",
        "true",
        "null",
        "1",
        "0x10",
        "1.5",
        "~",
        "on",
        "+1",
        "1e3",
        "1:30",
        "2024-01-01",
        ",x",
        "-",
        "x:",
        "0o17",
        "1_000",
    ],
)
def test_kernel_args_that_yaml_would_retype_are_quoted(arg: str) -> None:
    text = _build(extra_kernel_args=[arg]).yaml
    data = YAML(typ="safe", pure=True).load(text)
    assert data["customization"]["extraKernelArgs"] == [arg]
    line = next(ln for ln in text.splitlines() if ln.startswith("        - "))
    assert line.startswith('        - "'), f"{arg!r} must be quoted: {line!r}"


@pytest.mark.parametrize(
    "arg", ["talos.platform=metal", "init_on_alloc=1", "-quiet", "=x", "1-2", ":x", "a:b", "1.2.3"]
)
def test_kernel_args_that_yaml_v3_writes_plain_stay_plain(arg: str) -> None:
    # Quoting what yaml.v3 writes plain would hash to an ID the factory never made.
    assert f"        - {arg}\n" in _build(extra_kernel_args=[arg]).yaml


def test_urls_secureboot_nocloud_amd64() -> None:
    image = _build()
    base = f"https://factory.talos.dev/image/{QEMU_GUEST_AGENT_ID}/v1.12.0/nocloud-amd64-secureboot"
    assert image.image_url == f"{base}.raw.xz"
    assert image.iso_url == f"{base}.iso"
    assert image.installer_image == (
        f"factory.talos.dev/nocloud-installer-secureboot/{QEMU_GUEST_AGENT_ID}:v1.12.0"
    )


def test_urls_without_secureboot_metal_arm64() -> None:
    image = _build(platform="metal", arch="arm64", secureboot=False, talos_version="1.11.5")
    base = f"https://factory.talos.dev/image/{QEMU_GUEST_AGENT_ID}/v1.11.5/metal-arm64"
    assert image.image_url == f"{base}.raw.xz"
    assert image.iso_url == f"{base}.iso"
    assert image.installer_image == (
        f"factory.talos.dev/metal-installer/{QEMU_GUEST_AGENT_ID}:v1.11.5"
    )
    assert "secureboot" not in image.image_url + image.installer_image


def test_platform_and_version_do_not_change_the_id() -> None:
    # The ID names the customization only; version and platform are part of the URL.
    assert _build(platform="metal", talos_version="1.11.0").id == _build().id


def test_enroll_keys_adds_the_secureboot_customization_after_the_extensions() -> None:
    """Talos >= 1.14: the disk image enrolls its keys; struct order puts secureboot last."""
    image = _build(enroll_keys=True, extra_kernel_args=["net.ifnames=0"])
    assert image.yaml == (
        "customization:\n"
        "    extraKernelArgs:\n"
        "        - net.ifnames=0\n"
        "    systemExtensions:\n"
        "        officialExtensions:\n"
        "            - siderolabs/qemu-guest-agent\n"
        "    secureboot:\n"
        "        enrollKeys: true\n"
    )
    assert image.id == hashlib.sha256(image.yaml.encode()).hexdigest()
    # Without SecureBoot there is nothing to enroll: the schematic (and ID) stay as they were.
    assert _build(enroll_keys=True, secureboot=False).id == QEMU_GUEST_AGENT_ID
    assert _build(enroll_keys=True, extensions=[]).yaml == (
        "customization:\n    secureboot:\n        enrollKeys: true\n"
    )


def test_factory_url_moves_every_url_but_not_the_id() -> None:
    image = _build(factory_url="https://factory.lab.example:8443")
    assert image.id == QEMU_GUEST_AGENT_ID
    assert image.image_url == (
        f"https://factory.lab.example:8443/image/{QEMU_GUEST_AGENT_ID}/v1.12.0/"
        "nocloud-amd64-secureboot.raw.xz"
    )
    assert image.iso_url.startswith("https://factory.lab.example:8443/image/")
    assert image.installer_image == (
        f"factory.lab.example:8443/nocloud-installer-secureboot/{QEMU_GUEST_AGENT_ID}:v1.12.0"
    )
