"""Secrets are never printed, in any form (issue 14, items 3 and 7): the leak guard knows the
escaped forms a value takes in YAML, HCL and JSON and runs over everything printed; a *.sops.*
diff shows no content; a credentials file that is not sops output is an error that shows
nothing of it; init refuses links instead of encrypting for a key it throws away."""

from __future__ import annotations

import io
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from generator import cli, filters, leaks, output, secrets, sops
from generator.commands.init import sops_config
from generator.errors import Diagnostic, InputError
from generator.pipeline import CREDENTIALS_OUTPUT
from helpers.data import CAPI_ON_MINIMAL
from helpers.tools import tool

TOKENS = [
    'ro"ot@pam!clustergen',
    "ro\\ot@pam!clustergen",
    'a"\\"b\\@pve!t0k',
    "o'neil@pam!tok",
    "r${x}%{y}@pam!tok",
]
SECRET_VALUE = "9f1c3a1e-0c6b-4c1e-9a3e-6c2e6b1f7d42"


@pytest.fixture(autouse=True)
def _forget_secrets() -> Iterator[None]:
    yield
    output.forget()


def _forms(value: str) -> set[str]:
    return {
        value,
        json.dumps(value)[1:-1],
        filters.hcl_string(value)[1:-1],
        filters.yaml(value).strip('"'),
        filters.ansible(value).removeprefix("!unsafe ").strip('"'),
        value.replace("'", "''"),
    }


@pytest.mark.parametrize("token", TOKENS)
def test_redaction_covers_every_escaped_form(token: str) -> None:
    values = {"proxmox_api_token_id": token, "proxmox_api_token_secret": SECRET_VALUE}
    for form in _forms(token):
        text = f"before {form} after"
        assert form not in leaks.redact(text, values), form
        assert leaks.MASK in leaks.redact(text, values)


@pytest.mark.parametrize("token", TOKENS)
def test_the_guard_finds_an_escaped_secret_in_an_output(token: str) -> None:
    values = {"proxmox_api_token_id": token, "proxmox_api_token_secret": SECRET_VALUE}
    for form in _forms(token) - {token}:
        with pytest.raises(InputError) as exc:
            leaks.guard({"infrastructure/tofu/x.tf": f'id = "{form}"\n'.encode()}, values)
        assert any("proxmox_api_token_id" in d.message for d in exc.value.diagnostics)


@pytest.mark.parametrize("token", TOKENS)
def test_everything_printed_is_redacted(token: str, capsys: pytest.CaptureFixture[str]) -> None:
    output.protect({"proxmox_api_token_id": token})
    for form in _forms(token):
        output.error(f"sops said {form}")
        output.info("text", f"note {form}")
        output.write_out(f"+ token: {form}\n")
        output.emit_diagnostics([Diagnostic("f", 1, 1, "p", f"m {form}", f"h {form}")], "text")
        output.emit_diagnostics([Diagnostic("f", 1, 1, "p", f"m {form}")], "json")
    captured = capsys.readouterr()
    for form in _forms(token):
        assert form not in captured.out + captured.err
        assert json.dumps(token)[1:-1] not in captured.out  # inside the JSON documents too


# --- with the real sops ----------------------------------------------------------------------


@pytest.fixture
def keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, Path]:
    from pyrage import x25519

    tool("sops")
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    for name in ("SOPS_AGE_KEY", "SOPS_AGE_KEY_CMD", "SOPS_AGE_SSH_PRIVATE_KEY_FILE"):
        monkeypatch.delenv(name, raising=False)
    identity = x25519.Identity.generate()
    key_file = tmp_path / "age.key"
    key_file.write_text(f"{identity}\n")
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(key_file))
    return str(identity.to_public()), key_file


def _capi(config: Path, recipient: str, token: str) -> None:
    (config / "cluster.yaml").write_text((config / "cluster.yaml").read_text() + CAPI_ON_MINIMAL)
    (config / sops.SOPS_CONFIG).write_bytes(sops_config(recipient))
    plain = (
        f"proxmox_api_token_id: {json.dumps(token)}\n"
        f"proxmox_api_token_secret: {json.dumps(SECRET_VALUE)}\n"
    )
    encrypted = sops.encrypt(
        plain.encode(), secrets.SECRETS_FILE, age_recipients=[recipient], cwd=config
    )
    (config / secrets.SECRETS_FILE).write_bytes(encrypted)


def _printed(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = cli.main(list(args))
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return code, captured.out + captured.err


@pytest.mark.parametrize("token", TOKENS[:3])
def test_check_and_dry_run_never_print_the_token(
    example_copy: Callable[[str], Path],
    keys: tuple[str, Path],
    capsys: pytest.CaptureFixture[str],
    token: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = example_copy("minimal")
    _capi(config, keys[0], token)
    assert _printed(capsys, "-C", str(config), "render")[0] == 0
    (config / CREDENTIALS_OUTPUT).write_text("tampered: true\n")  # drift in the sops file
    runs = []
    for fmt in ("text", "json", "github"):
        runs.append(_printed(capsys, "--format", fmt, "-C", str(config), "check"))
        (config / CREDENTIALS_OUTPUT).unlink()
        runs.append(_printed(capsys, "--format", fmt, "-C", str(config), "render", "--dry-run"))
        (config / CREDENTIALS_OUTPUT).write_text("tampered: true\n")
    monkeypatch.delenv("SOPS_AGE_KEY_FILE")  # check without the key: placeholders, masked
    runs.append(_printed(capsys, "-C", str(config), "check"))
    for code, printed in runs:
        assert code in (0, 1)
        for form in _forms(token) | _forms(SECRET_VALUE):
            assert form not in printed, form
    assert any("contents not shown" in printed for _, printed in runs)


@pytest.mark.parametrize(
    "content",
    [
        "token: [unclosed\n",
        f"stringData: {{token: {SECRET_VALUE}\n",
        f"\tkey: {SECRET_VALUE}\n",
        f"{SECRET_VALUE}: [\n",
        f"apiVersion: v1\nstringData:\n  secret: {SECRET_VALUE}\n",
    ],
)
def test_plaintext_credentials_are_an_error_that_shows_nothing(
    example_copy: Callable[[str], Path],
    keys: tuple[str, Path],
    capsys: pytest.CaptureFixture[str],
    content: str,
) -> None:
    config = example_copy("minimal")
    _capi(config, keys[0], TOKENS[0])
    target = config / CREDENTIALS_OUTPUT
    target.parent.mkdir(parents=True)
    target.write_text(content)
    for command in (["check"], ["render", "--dry-run"], ["render"], ["render", "--force"]):
        code, printed = _printed(capsys, "-C", str(config), *command)
        assert code == 1 and "holds plaintext" in printed, printed
        assert SECRET_VALUE not in printed and "unclosed" not in printed
    assert target.read_text() == content


# --- init ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "make"),
    [
        ("age.key", lambda p: p.symlink_to(p.parent / "nowhere.key")),
        ("age.key", lambda p: p.symlink_to("/dev/null")),
        ("age.key", os.mkfifo),
        (".sops.yaml", lambda p: p.symlink_to(p.parent / "elsewhere.yaml")),
        ("secrets.sops.yaml", lambda p: p.symlink_to(p.parent / "missing.yaml")),
        (".gitignore", lambda p: p.symlink_to(p.parent / "outside-ignore")),
        ("cluster.yaml", lambda p: p.symlink_to(p.parent / "missing.yaml")),
    ],
    ids=[
        "dangling-key",
        "key-to-dev-null",
        "key-fifo",
        "sops-config",
        "secrets",
        "gitignore",
        "input",
    ],
)
def test_init_refuses_links_and_special_files(
    tmp_path: Path,
    keys: tuple[str, Path],
    capsys: pytest.CaptureFixture[str],
    name: str,
    make: Callable[[Path], None],
) -> None:
    config = tmp_path / "repo"
    config.mkdir()
    make(config / name)
    before = sorted(p.name for p in config.iterdir())
    code, printed = _printed(capsys, "-C", str(config), "init")
    assert code == 2 and name in printed and "link" in printed, printed
    assert sorted(p.name for p in config.iterdir()) == before  # nothing created
    assert not (tmp_path / "outside-ignore").exists()


def test_an_encrypted_credentials_diff_is_hidden_even_when_decrypted() -> None:
    """The sops diff rule holds for the plan itself, whatever the bytes are."""
    from generator import sync

    change = sync.Change(
        CREDENTIALS_OUTPUT, "update", b"a: ENC[x]\n", f"a: {SECRET_VALUE}\n".encode()
    )
    diff = sync.unified_diff(sync.Plan((change,), (), (), {}, {}))
    assert SECRET_VALUE not in diff and "ENC" not in diff
    assert io.StringIO(diff).read().count("\n") == 1
