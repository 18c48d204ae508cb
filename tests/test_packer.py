"""The packer provisioner: infrastructure/packer/{talos.pkr.hcl, variables.pkrvars.hcl,
talos-schematic.yaml}. Schema conformance and formatting are in test_hcl_conformance.py."""

from __future__ import annotations

import functools
import hashlib
import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import hcl2
import pytest
from ruamel.yaml import YAML
from syrupy.assertion import SnapshotAssertion

from generator import constants, inputs
from generator.errors import InputError
from generator.options import Options
from generator.pipeline import render_tree
from helpers.packer import console, packer, packer_dir, pkrvars
from helpers.paths import EXAMPLES, EXAMPLES_DIR
from helpers.provisioner import FAKE_CURL, FAKE_SFDISK, hcl_string
from helpers.sops import encrypt_secrets

DIR = "infrastructure/packer"
FILES = ("talos.pkr.hcl", "variables.pkrvars.hcl", "talos-schematic.yaml")
Rendered = Callable[[str], dict[str, bytes]]


@functools.cache
def context(example: str) -> Any:
    """The template context of an example (rendering is slow, so once per module)."""
    return render_tree(Options(EXAMPLES_DIR / example)).context


def text(files: dict[str, bytes], name: str) -> str:
    return files[f"{DIR}/{name}"].decode()


def set_cluster(config: Path, **values: Any) -> None:
    """Change top-level keys of config/cluster.yaml, keeping everything else."""
    yaml = YAML()
    path = config / "cluster.yaml"
    data = yaml.load(path)
    for key, value in values.items():
        data[key] = value
    yaml.dump(data, path)


def schematic_document(files: dict[str, bytes]) -> str:
    """The YAML document of talos-schematic.yaml without the generated comment lines."""
    body = text(files, "talos-schematic.yaml").split("\n---\n", 1)[1]
    return "".join(line for line in body.splitlines(True) if not line.startswith("#"))


def image_url(files: dict[str, bytes]) -> str:
    """The image URL the build writes: the pkrvars value the shell provisioner's IMAGE_URL
    names (the model builds it once; the template never rebuilds it)."""
    env_vars = dict(hcl_string(v).split("=", 1) for v in provisioner(files)["environment_vars"])
    variable = re.fullmatch(r"\$\{var\.(\w+)\}", env_vars["IMAGE_URL"])
    assert variable, env_vars["IMAGE_URL"]
    url: str = pkrvars(files)[variable.group(1)]
    return url


def build_block(files: dict[str, bytes]) -> dict[str, Any]:
    (build,) = hcl2.loads(text(files, "talos.pkr.hcl"))["build"]
    return dict(build)


def provisioner(files: dict[str, bytes]) -> dict[str, Any]:
    (only,) = build_block(files)["provisioner"]
    return dict(only['"shell"'])


def source(files: dict[str, bytes]) -> dict[str, Any]:
    """The source of the template the clones come from (multi-host also has CAPI's)."""
    first = hcl2.loads(text(files, "talos.pkr.hcl"))["source"][0]
    return dict(first['"proxmox-iso"']['"talos"'])


@pytest.mark.parametrize("name", FILES)
@pytest.mark.parametrize("example", EXAMPLES)
def test_snapshot(example: str, name: str, rendered: Rendered, snapshot: SnapshotAssertion) -> None:
    if f"{DIR}/{name}" not in rendered(example):
        # Only the schematic document, and only for a given talos_schematic_id.
        assert name == "talos-schematic.yaml" and context(example)["talos_schematic_id"]
        return
    assert text(rendered(example), name) == snapshot


@pytest.mark.parametrize("example", EXAMPLES)
def test_outputs_start_with_the_generated_header(example: str, rendered: Rendered) -> None:
    files = rendered(example)
    # A given talos_schematic_id (a host repo's): no schematic document is written.
    given = context(example)["talos_schematic_id"] is not None
    for name in FILES:
        if given and name == "talos-schematic.yaml":
            assert f"{DIR}/{name}" not in files
            continue
        assert text(files, name).startswith(f"# {constants.HEADER_MARK} ")
    if not given:
        assert text(files, "talos-schematic.yaml").splitlines()[1] == "---"


@pytest.mark.parametrize("example", EXAMPLES)
def test_schematic_file_hashes_to_the_schematic_id_the_template_uses(
    example: str, rendered: Rendered
) -> None:
    files = rendered(example)
    if f"{DIR}/talos-schematic.yaml" not in files:
        # A given talos_schematic_id (a host repo's schematic_id): no document to hash.
        assert pkrvars(files)["talos_schematic_id"] == context(example)["talos_schematic_id"]
        return
    document = schematic_document(files)
    assert hashlib.sha256(document.encode()).hexdigest() == pkrvars(files)["talos_schematic_id"]
    assert "customization" in YAML(typ="safe").load(text(files, "talos-schematic.yaml"))


def test_schematic_id_matches_the_image_factory(reference_dir: Path, rendered: Rendered) -> None:
    readme = (reference_dir / "README.md").read_text()
    # "one extension `siderolabs/qemu-guest-agent` gives <id>": the minimal example's schematic.
    factory_id = re.search(r"siderolabs/qemu-guest-agent`\s+gives\s+([0-9a-f]{64})", readme)
    assert factory_id is not None
    files = rendered("minimal")
    assert "siderolabs/qemu-guest-agent" in schematic_document(files)
    assert pkrvars(files)["talos_schematic_id"] == factory_id.group(1)


@pytest.mark.parametrize("example", EXAMPLES)
def test_template_writes_the_factory_image_of_the_model(example: str, rendered: Rendered) -> None:
    files = rendered(example)
    assert image_url(files) == context(example)["schematic"]["image_url"]
    shell = provisioner(files)
    assert '"IMAGE_URL=${var.talos_image_url}"' in shell["environment_vars"]
    assert '"TARGET_DISK=/dev/sda"' in shell["environment_vars"]


def test_image_follows_secureboot_platform_and_arch(example_copy: Callable[[str], Path]) -> None:
    config = example_copy("minimal")
    set_cluster(config, talos_secureboot=False, talos_version="1.11.5")
    files = render_tree(Options(config)).files
    url = image_url(files)
    assert url.endswith("/v1.11.5/nocloud-amd64.raw.xz")
    assert url == render_tree(Options(config)).context["schematic"]["image_url"]


def test_vlan_tag_only_when_set(rendered: Rendered) -> None:
    with_vlan, without = rendered("homelab"), rendered("minimal")
    assert pkrvars(with_vlan)["node_vlan_tag"] == "22"
    assert "vlan_tag = var.node_vlan_tag" in text(with_vlan, "talos.pkr.hcl")
    assert "node_vlan_tag" not in pkrvars(without)
    assert "vlan_tag" not in text(without, "talos.pkr.hcl")


@pytest.mark.parametrize("example", EXAMPLES)
def test_template_carries_the_cloud_init_drive_clones_need(
    example: str, rendered: Rendered
) -> None:
    """Ansible's ipconfig0 and Talos' first network config live on the clone's cloud-init drive."""
    talos = source(rendered(example))
    assert talos["cloud_init"] is True
    assert talos["cloud_init_storage_pool"] == "${var.proxmox_storage}"


@pytest.mark.parametrize("example", EXAMPLES)
def test_template_takes_name_and_vmid_from_the_inputs(example: str, rendered: Rendered) -> None:
    files = rendered(example)
    values = pkrvars(files)
    model = context(example)
    assert values["talos_template"] == model["talos_template"]
    assert values["talos_template_vmid"] == model["talos_template_vmid"]
    assert values["proxmox_url"] == model["proxmox_endpoint"] + "/api2/json"
    assert values["bootstrap_iso"] == model["packer_bootstrap_iso"] == "archlinux-x86_64.iso"
    # Defaults live in the schema only: the template declares the variable without one.
    assert 'default     = "archlinux-x86_64.iso"' not in text(files, "talos.pkr.hcl")
    assert set(values["template_tags"].split(";")) == {"talos", "template", model["cluster_name"]}


def test_guest_agent_follows_the_extension(example_copy: Callable[[str], Path]) -> None:
    config = example_copy("minimal")
    set_cluster(
        config,
        talos_extensions=["siderolabs/iscsi-tools"],
        packer_build_address="192.168.22.250",
    )
    assert pkrvars(render_tree(Options(config)).files)["qemu_agent"] is False


def test_token_reaches_packer_only_from_the_environment(
    example_copy: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = example_copy("minimal")
    token = "root@pam!packer"
    secret = "0b6f1f0e-aaaa-bbbb-cccc-444455556666"
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(encrypt_secrets(config, token, secret)))
    files = render_tree(Options(config)).files
    for path, data in files.items():
        if not path.endswith(".sops.yaml"):
            assert secret.encode() not in data and token.encode() not in data, path
    assert "proxmox_token_secret" not in pkrvars(files)
    assert "proxmox_token_id" not in pkrvars(files)


def test_no_packer_files_when_packer_is_disabled(example_copy: Callable[[str], Path]) -> None:
    config = example_copy("minimal")
    set_cluster(config, provisioners=["tofu"])
    files = render_tree(Options(config)).files
    assert not [p for p in files if p.startswith(DIR)]
    assert b"packer:" not in files[".taskfiles/infrastructure/Taskfile.yaml"]


def test_output_does_not_depend_on_the_config_location(
    example_copy: Callable[[str], Path], rendered: Rendered
) -> None:
    copied = render_tree(Options(example_copy("homelab"))).files
    original = rendered("homelab")
    for name in FILES:
        assert copied[f"{DIR}/{name}"] == original[f"{DIR}/{name}"]


# --- issue 16: a build that fails loudly, every wait and value an input ----------------------


@pytest.mark.parametrize("example", EXAMPLES)
def test_real_packer_validates_the_template(
    example: str, rendered: Rendered, tmp_path: Path
) -> None:
    done = packer(packer_dir(rendered(example), tmp_path), "validate")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "The configuration is valid." in done.stdout


def test_real_packer_gets_the_models_image_url_and_computes_static_network(
    example_copy: Callable[[str], Path], tmp_path: Path
) -> None:
    config = example_copy("homelab")
    set_cluster(config, talos_factory_url="https://factory.lab.example:8443")
    tree = render_tree(Options(config))
    where = packer_dir(tree.files, tmp_path / "packer")
    assert console(where, "var.talos_image_url") == tree.context["schematic"]["image_url"]
    assert tree.context["schematic"]["image_url"].startswith(
        "https://factory.lab.example:8443/image/"
    )
    # DHCP by default: nothing typed but the password; a static address types a networkd file.
    assert console(where, "local.static_network") == []
    typed = console(where, "local.static_network", "-var", "build_address=192.168.22.250")
    assert typed[-1] == "systemctl restart systemd-networkd<enter>"
    # Run what would be typed (the file redirected into tmp_path): it is the networkd file.
    network_file = tmp_path / "10-packer-build.network"
    script = "\n".join(
        line.removesuffix("<enter>").replace(
            "/etc/systemd/network/10-packer-build.network", str(network_file)
        )
        for line in typed[:-1]
    )
    subprocess.run(["bash", "-euc", script], check=True, timeout=30)
    assert network_file.read_text() == (
        "[Match]\nName=en* eth*\n[Network]\nAddress=192.168.22.250/24\nGateway=192.168.22.1\n"
        "DNS=192.168.22.1\nDNS=1.1.1.1\n"
    )


@pytest.mark.parametrize("example", EXAMPLES)
def test_build_logs_in_over_ssh_with_a_throwaway_password(example: str, rendered: Rendered) -> None:
    files = rendered(example)
    parsed = hcl2.loads(text(files, "talos.pkr.hcl"))
    talos = source(files)
    assert hcl_string(talos["communicator"]) == "ssh"
    assert hcl_string(talos["ssh_username"]) == "root"
    assert talos["ssh_password"] == "${local.ssh_password}"
    assert talos["ssh_timeout"] == "${var.ssh_timeout}"
    (password,) = parsed["local"]
    assert password['"ssh_password"']["expression"] == "${uuidv4()}"
    assert password['"ssh_password"']["sensitive"] is True
    # boot_command only sets that password (and the static network); no work is typed.
    boot = talos["boot_command"]
    assert '["echo root:${local.ssh_password} | chpasswd<enter>"]' in boot
    assert "curl" not in boot and "dd " not in boot
    assert "password" not in text(files, "variables.pkrvars.hcl")


@pytest.mark.parametrize("example", EXAMPLES)
def test_every_wait_is_an_input(example: str, rendered: Rendered) -> None:
    template = text(rendered(example), "talos.pkr.hcl")
    assert not re.search(r"<wait\d", template), "a wait in boot_command is hard-coded"
    talos = source(rendered(example))
    assert talos["boot_wait"] == "${var.boot_wait}"
    assert "<wait${var.iso_boot_wait}>" in talos["boot_command"]
    model = context(example)
    values = pkrvars(rendered(example))
    for variable, key in (
        ("boot_wait", "packer_boot_wait"),
        ("iso_boot_wait", "packer_iso_boot_wait"),
        ("ssh_timeout", "packer_ssh_timeout"),
        ("download_retries", "packer_download_retries"),
        ("cpu_type", "packer_cpu_type"),
        ("bootstrap_iso", "packer_bootstrap_iso"),
    ):
        assert values[variable] == model[key], variable


def test_inputs_reach_the_build(example_copy: Callable[[str], Path]) -> None:
    config = example_copy("minimal")
    set_cluster(
        config,
        packer_boot_wait="3s",
        packer_iso_boot_wait="2m",
        packer_ssh_timeout="1h",
        packer_download_retries=12,
        packer_cpu_type="host",
        packer_bootstrap_iso="archlinux-2026.12.01-x86_64.iso",
        packer_build_address="192.168.22.250",
    )
    values = pkrvars(render_tree(Options(config)).files)
    assert (values["boot_wait"], values["iso_boot_wait"], values["ssh_timeout"]) == (
        "3s",
        "2m",
        "1h",
    )
    assert values["download_retries"] == 12
    assert values["cpu_type"] == "host"
    assert values["bootstrap_iso"] == "archlinux-2026.12.01-x86_64.iso"
    assert values["build_address"] == "192.168.22.250"
    assert (values["build_prefix"], values["build_gateway"]) == (24, "192.168.22.1")
    assert values["build_dns_servers"] == ['"1.1.1.1"', '"1.0.0.1"']


def _errors(config: Path) -> list[str]:
    with pytest.raises(InputError) as caught:
        inputs.read(config)
    return [f"{d.path}: {d.message}" for d in caught.value.diagnostics if d.severity == "error"]


def test_arm64_packer_build_is_refused(example_copy: Callable[[str], Path]) -> None:
    config = example_copy("minimal")
    set_cluster(config, talos_arch="arm64")
    (error,) = _errors(config)
    assert error.startswith("talos_arch: the Packer build cannot make the arm64 template")
    assert "x86_64 only" in error
    set_cluster(config, provisioners=["tofu"])
    assert inputs.read(config).cluster.data["talos_arch"] == "arm64"


def test_dhcp_build_needs_the_guest_agent(example_copy: Callable[[str], Path]) -> None:
    config = example_copy("minimal")
    set_cluster(config, talos_extensions=["siderolabs/iscsi-tools"])
    (error,) = _errors(config)
    assert error.startswith("talos_extensions: Packer learns the DHCP address")
    set_cluster(config, packer_build_address="192.168.22.250")
    inputs.read(config)


@pytest.mark.parametrize(
    ("address", "message"),
    [
        ("10.0.0.5", "10.0.0.5 is not a host address of node_cidr 192.168.22.0/24"),
        ("192.168.22.255", "is not a host address"),
        ("192.168.22.100", "192.168.22.100 is also cluster_api_addr"),
        ("192.168.22.1", "192.168.22.1 is also the node gateway"),
        ("192.168.22.10", "192.168.22.10 is also node"),
    ],
)
def test_build_address_must_be_a_free_node_address(
    example_copy: Callable[[str], Path], address: str, message: str
) -> None:
    config = example_copy("minimal")
    set_cluster(config, packer_build_address=address)
    (error,) = _errors(config)
    assert error.startswith("packer_build_address: ") and message in error


def test_capi_template_only_with_capi(rendered: Rendered) -> None:
    """issue 15 item 3: Cluster API's template has no cloud-init drive and its own VM ID."""
    with_capi, without = rendered("multi-host"), rendered("minimal")
    sources = hcl2.loads(text(with_capi, "talos.pkr.hcl"))["source"]
    by_name = {name: body for block in sources for name, body in block['"proxmox-iso"'].items()}
    assert set(by_name) == {'"talos"', '"talos-capi"'}
    capi, talos = by_name['"talos-capi"'], by_name['"talos"']
    assert capi["cloud_init"] is False and "cloud_init_storage_pool" not in capi
    assert talos["cloud_init"] is True
    assert capi["vm_id"] == "${var.talos_capi_template_vmid}"
    assert capi["template_name"] == "${var.talos_capi_template}"
    # issue 15 item 8: CAPMOX has no CPU type field, so Cluster API's machines keep the
    # template's, which is the controller role's cpu_type (the other template's is Packer's).
    assert capi["cpu_type"] == "${var.talos_capi_cpu_type}"
    assert talos["cpu_type"] == "${var.cpu_type}"
    # Otherwise the same build: the same arguments and values but the ones above.
    differ = {"vm_id", "vm_name", "template_name", "cloud_init", "cloud_init_storage_pool"}
    differ.add("cpu_type")
    differ.add("__comments__")
    assert {k: v for k, v in capi.items() if k not in differ} == {
        k: v for k, v in talos.items() if k not in differ
    }
    assert [hcl_string(ref) for ref in build_block(with_capi)["sources"]] == [
        "source.proxmox-iso.talos",
        "source.proxmox-iso.talos-capi",
    ]
    values = pkrvars(with_capi)
    assert values["talos_capi_template_vmid"] == context("multi-host")["talos_capi_template_vmid"]
    assert values["talos_capi_template"] == "talos-prod-template-capi"
    controller_cpu = context("multi-host")["vm_defaults"]["controller"]["cpu_type"]
    assert values["talos_capi_cpu_type"] == controller_cpu
    assert values["cpu_type"] == context("multi-host")["packer_cpu_type"]
    assert [hcl_string(ref) for ref in build_block(without)["sources"]] == [
        "source.proxmox-iso.talos"
    ]
    assert "capi" not in text(without, "talos.pkr.hcl")
    assert "capi" not in text(without, "variables.pkrvars.hcl")


# The provisioner's inline script, run by bash with stand-ins for the network (curl) and the
# partition table reader (sfdisk); xz and dd are the real ones, the disk is a file.
def run_provisioner(files: dict[str, bytes], tmp_path: Path, image: bytes | None) -> Any:
    shell = provisioner(files)
    assert hcl_string(shell["inline_shebang"]) == "/bin/bash -e"
    lines = [hcl_string(line) for line in shell["inline"]]
    assert lines[0] == "set -euo pipefail"
    env_vars = dict(hcl_string(v).split("=", 1) for v in shell["environment_vars"])
    assert env_vars["IMAGE_URL"] == "${var.talos_image_url}"
    assert env_vars["DOWNLOAD_RETRIES"] == "${var.download_retries}"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, body in (("curl", FAKE_CURL), ("sfdisk", FAKE_SFDISK)):
        (bin_dir / name).write_text(body)
        (bin_dir / name).chmod(0o755)
    disk = tmp_path / "sda"
    disk.write_bytes(b"\0" * 4096)
    env = {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "IMAGE_URL": "https://factory.example/image/x/v1.12.0/nocloud-amd64.raw.xz",
        "DOWNLOAD_RETRIES": "5",
        "TARGET_DISK": str(disk),
        "TALOS_PARTITIONS": env_vars["TALOS_PARTITIONS"],
        "FAKE_LOG": str(tmp_path / "curl.log"),
    }
    if image is not None:
        (tmp_path / "image.raw.xz").write_bytes(image)
        env["FAKE_IMAGE"] = str(tmp_path / "image.raw.xz")
    # The script goes to /tmp as in the live ISO; here a private copy of the paths.
    script = "\n".join(lines).replace("/tmp/", f"{tmp_path}/")
    done = subprocess.run(
        ["/bin/bash", "-e", "-c", script],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return done, disk, (tmp_path / "curl.log").read_text()


def _xz(data: bytes) -> bytes:
    return subprocess.run(["xz", "-c"], input=data, capture_output=True, check=True).stdout


def test_provisioner_writes_a_talos_image_and_checks_it(rendered: Rendered, tmp_path: Path) -> None:
    image = b"TALOS" + bytes(range(256)) * 64
    done, disk, log = run_provisioner(rendered("minimal"), tmp_path, _xz(image))
    assert done.returncode == 0, done.stderr
    assert disk.read_bytes() == image
    assert "Talos disk image written" in done.stdout
    assert "--fail" in log and "--retry 5 --retry-all-errors" in log


@pytest.mark.parametrize(
    ("image", "why"),
    [
        (None, "The requested URL returned error: 404"),
        (b"not xz at all", "File format not recognized"),
        ("blank", "no GPT partition table"),
    ],
)
def test_provisioner_fails_loudly(
    rendered: Rendered, tmp_path: Path, image: bytes | str | None, why: str
) -> None:
    data = _xz(b"\0" * 65536) if image == "blank" else image
    assert not isinstance(data, str)
    done, disk, _ = run_provisioner(rendered("minimal"), tmp_path, data)
    assert done.returncode != 0
    assert why in done.stderr
    if image is None or image == b"not xz at all":
        assert disk.read_bytes() == b"\0" * 4096, "nothing may be written after a failed step"


# --- issue 16: SecureBoot only where it is enforced; one image factory for everything ---------


@pytest.mark.parametrize(
    ("version", "given", "expected", "enrolls"),
    [
        ("1.12.0", None, False, False),
        ("1.13.4", None, False, False),
        ("1.14.0", None, True, True),
        ("1.14.0", False, False, False),
        ("1.12.0", True, True, False),
    ],
)
def test_secureboot_default_follows_what_the_disk_image_can_enroll(
    example_copy: Callable[[str], Path],
    version: str,
    given: bool | None,
    expected: bool,
    enrolls: bool,
) -> None:
    config = example_copy("minimal")
    set_cluster(config, talos_version=version)
    if given is not None:
        set_cluster(config, talos_secureboot=given)
    tree = render_tree(Options(config))
    assert tree.context["talos_secureboot"] is expected
    assert pkrvars(tree.files)["talos_secureboot"] is expected
    assert ("-secureboot" in image_url(tree.files)) is expected
    assert ("enrollKeys: true" in schematic_document(tree.files)) is enrolls
    warnings = [f"{w.path}: {w.message}" for w in inputs.read(config).warnings]
    if given and version < "1.14":
        (warning,) = warnings
        assert warning.startswith(
            f"talos_secureboot: Talos {version} disk images carry no SecureBoot keys"
        )
    else:
        assert warnings == []


def test_no_output_promises_key_enrollment(rendered: Rendered) -> None:
    for example in EXAMPLES:
        for path, data in rendered(example).items():
            assert b"enrolls its own keys on first boot" not in data, path


def test_one_factory_url_drives_image_installer_and_schematic_upload(
    example_copy: Callable[[str], Path],
) -> None:
    config = example_copy("multi-host")
    set_cluster(config, talos_factory_url="https://factory.airgap.example")
    tree = render_tree(Options(config))
    assert tree.context["talos_factory_url"] == "https://factory.airgap.example"
    assert image_url(tree.files).startswith("https://factory.airgap.example/image/")
    installer = tree.context["schematic"]["installer_image"]
    assert installer.startswith("factory.airgap.example/nocloud-installer/")
    # Nothing rendered names the public factory any more, the Taskfile's upload task included.
    for path, data in tree.files.items():
        assert b"factory.talos.dev" not in data, path
    assert b"factory.airgap.example" in tree.files[".taskfiles/infrastructure/Taskfile.yaml"]


@pytest.mark.parametrize(
    "url", ["http://factory.example", "https://factory.example/", "https://factory.example/x"]
)
def test_factory_url_is_https_without_path_or_trailing_slash(
    example_copy: Callable[[str], Path], url: str
) -> None:
    config = example_copy("minimal")
    set_cluster(config, talos_factory_url=url)
    (error,) = _errors(config)
    assert error.startswith("talos_factory_url: ")


def test_capi_template_name_must_stay_a_vm_name(example_copy: Callable[[str], Path]) -> None:
    config = example_copy("multi-host")
    set_cluster(config, talos_template="t" * 58)
    assert pkrvars(render_tree(Options(config)).files)["talos_capi_template"] == "t" * 58 + "-capi"
    set_cluster(config, talos_template="t" * 59)
    (error,) = _errors(config)
    assert error.startswith(f"talos_template: '{'t' * 59}' is too long")
