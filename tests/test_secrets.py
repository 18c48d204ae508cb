"""The secrets stage with the real sops binary and real age keys, in temp dirs only."""

from __future__ import annotations

import dataclasses
import io
import json
import re
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from generator import cli, errors, leaks, outtree, seal, secrets, settings, sops
from generator.errors import InputError, UsageError
from generator.options import Options
from generator.pipeline import CREDENTIALS_OUTPUT, needs_secrets, render_tree

CAPMOX_LABEL = "platform.ionos.com/secret-type"


def _yaml(data: bytes) -> Any:
    return YAML(typ="safe", pure=True).load(io.BytesIO(data))


def _identity() -> tuple[str, str]:
    from pyrage import x25519

    identity = x25519.Identity.generate()
    return str(identity), str(identity.to_public())


@pytest.fixture
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """sops looks for keys under HOME and XDG_CONFIG_HOME: point both at an empty dir."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    for name in (
        "SOPS_AGE_KEY_FILE",
        "SOPS_AGE_KEY",
        "SOPS_AGE_KEY_CMD",
        "SOPS_AGE_SSH_PRIVATE_KEY_FILE",
    ):
        monkeypatch.delenv(name, raising=False)
    return home


@dataclasses.dataclass
class Keys:
    recipient: str
    key_file: Path
    monkeypatch: pytest.MonkeyPatch

    def use(self, key_file: Path | None) -> None:
        if key_file is None:
            self.monkeypatch.delenv("SOPS_AGE_KEY_FILE", raising=False)
        else:
            self.monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(key_file))


@pytest.fixture
def keys(tmp_path: Path, isolated_home: Path, monkeypatch: pytest.MonkeyPatch) -> Keys:
    secret, public = _identity()
    key_file = tmp_path / "age.key"
    key_file.write_text(f"# public key: {public}\n{secret}\n")
    key_file.chmod(0o600)
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(key_file))
    return Keys(public, key_file, monkeypatch)


def _values() -> dict[str, str]:
    # Fresh per test, so a hit in an output can only come from this test's render.
    return {
        "proxmox_api_token_id": f"terraform@pve!t{uuid.uuid4().hex[:8]}",
        "proxmox_api_token_secret": str(uuid.uuid4()),
    }


def _dump(values: dict[str, str]) -> bytes:
    return "".join(f"{k}: {json.dumps(v)}\n" for k, v in values.items()).encode()


def _write_secrets(config: Path, values: dict[str, Any], recipient: str) -> None:
    encrypted = sops.encrypt(
        _dump(values), secrets.SECRETS_FILE, age_recipients=[recipient], cwd=config
    )
    (config / secrets.SECRETS_FILE).write_bytes(encrypted)


def _write_sops_config(config: Path, recipient: str) -> None:
    from generator.commands.init import sops_config

    (config / sops.SOPS_CONFIG).write_bytes(sops_config(recipient))


def _set_provisioners(config: Path, provisioners: list[str], **extra: str) -> None:
    # Only the key under test changes; the example's other inputs stay as they are.
    path = config / "cluster.yaml"
    lines = path.read_text().splitlines()
    kept, skipping = [], False
    for line in lines:
        if line.startswith(("provisioners:", "capi_spare_addresses:", *(f"{k}:" for k in extra))):
            skipping = True
            continue
        if skipping and line.startswith("  - "):
            continue
        skipping = False
        kept.append(line)
    kept.append("provisioners:")
    kept += [f"  - {p}" for p in provisioners]
    if "capi" in provisioners:  # minimal's one controller surges on rollout: a spare address
        kept.append("capi_spare_addresses: [192.168.22.20]")
    kept += [f"{k}: {v}" for k, v in extra.items()]
    path.write_text("\n".join(kept) + "\n")


@pytest.fixture
def capi_config(
    example_copy: Callable[[str], Path], keys: Keys
) -> Iterator[tuple[Path, dict[str, str]]]:
    """minimal with capi enabled, a .sops.yaml like init writes, and encrypted secrets."""
    config = example_copy("minimal")
    _set_provisioners(config, ["capi"])
    _write_sops_config(config, keys.recipient)
    values = _values()
    _write_secrets(config, values, keys.recipient)
    yield config, values


def _render(config: Path) -> int:
    return cli.main(["-C", str(config), "render"])


def _all_text(root: Path, *, skip_sops: bool) -> dict[str, str]:
    out = {}
    for path in root.rglob("*"):
        if path.is_file() and not (skip_sops and outtree.is_sops(path.name)):
            out[path.relative_to(root).as_posix()] = path.read_text(errors="replace")
    return out


# --- round trip ----------------------------------------------------------------------------


def test_credentials_secret_is_encrypted_and_decrypts_to_the_capmox_secret(
    capi_config: tuple[Path, dict[str, str]],
) -> None:
    config, values = capi_config
    result = render_tree(Options(config))
    sealed = result.files[CREDENTIALS_OUTPUT]
    on_disk = _yaml(sealed)
    assert sops.is_encrypted(on_disk)
    assert all(v not in sealed.decode() for v in values.values())
    # kind, name and namespace stay readable for reviewers and kustomize; values do not.
    assert on_disk["kind"] == "Secret"
    assert all(str(v).startswith("ENC[") for v in on_disk["stringData"].values())

    target = config / CREDENTIALS_OUTPUT
    target.parent.mkdir(parents=True)
    target.write_bytes(sealed)
    secret = _yaml(sops.decrypt(target))
    context = result.context
    # The ProxmoxCluster's credentialsRef must point at this very Secret.
    manifests = YAML(typ="safe", pure=True).load_all(
        io.BytesIO(result.files["infrastructure/capi/cluster.yaml"])
    )
    (proxmox_cluster,) = [m for m in manifests if m and m["kind"] == "ProxmoxCluster"]
    ref = proxmox_cluster["spec"]["credentialsRef"]
    assert secret["metadata"] == {
        "name": ref["name"],
        "namespace": ref.get("namespace", proxmox_cluster["metadata"].get("namespace")),
        "labels": {CAPMOX_LABEL: "proxmox-credentials"},
    }
    assert secret["metadata"]["namespace"] == context["capi_namespace"]
    assert secret["stringData"] == {
        "url": context["proxmox_endpoint"],
        "token": values["proxmox_api_token_id"],
        "secret": values["proxmox_api_token_secret"],
        # CAPMOX skips TLS verification when the key is missing: it follows proxmox_insecure.
        "insecure": "false",
    }


def test_plaintext_of_the_credentials_template(
    capi_config: tuple[Path, dict[str, str]], snapshot: Any
) -> None:
    config, _ = capi_config
    # Fixed values instead of the random ones, so the snapshot is stable.
    _write_secrets(config, dict(secrets.PLACEHOLDERS), _recipient_of(config))
    result = render_tree(Options(config))
    target = config / CREDENTIALS_OUTPUT
    target.parent.mkdir(parents=True)
    target.write_bytes(result.files[CREDENTIALS_OUTPUT])
    assert sops.decrypt(target).decode() == snapshot


def _recipient_of(config: Path) -> str:
    found = re.search(r"age: (age1\w+)", (config / sops.SOPS_CONFIG).read_text())
    assert found
    return found.group(1)


def test_returned_context_masks_secret_values(capi_config: tuple[Path, dict[str, str]]) -> None:
    config, values = capi_config
    shown = repr(dict(render_tree(Options(config)).context))
    assert all(v not in shown for v in values.values())


# --- no churn ------------------------------------------------------------------------------


def test_second_render_keeps_the_ciphertext_byte_for_byte(
    capi_config: tuple[Path, dict[str, str]],
) -> None:
    config, values = capi_config
    assert _render(config) == 0
    first = (config / CREDENTIALS_OUTPUT).read_bytes()
    assert render_tree(Options(config)).files[CREDENTIALS_OUTPUT] == first
    assert _render(config) == 0
    assert (config / CREDENTIALS_OUTPUT).read_bytes() == first

    # A changed secret is encrypted anew and decrypts to the new value.
    changed = {**values, "proxmox_api_token_secret": str(uuid.uuid4())}
    _write_secrets(config, changed, _recipient_of(config))
    assert _render(config) == 0
    again = (config / CREDENTIALS_OUTPUT).read_bytes()
    assert again != first
    decrypted = _yaml(sops.decrypt(config / CREDENTIALS_OUTPUT))
    assert decrypted["stringData"]["secret"] == changed["proxmox_api_token_secret"]


def test_a_changed_plaintext_field_outside_the_secret_values_re_encrypts(
    capi_config: tuple[Path, dict[str, str]],
) -> None:
    config, _ = capi_config
    assert _render(config) == 0
    first = (config / CREDENTIALS_OUTPUT).read_bytes()
    _set_provisioners(config, ["capi"], capi_namespace="elsewhere")
    assert _render(config) == 0
    decrypted = _yaml(sops.decrypt(config / CREDENTIALS_OUTPUT))
    assert decrypted["metadata"]["namespace"] == "elsewhere"
    assert (config / CREDENTIALS_OUTPUT).read_bytes() != first


def test_same_plaintext_ignores_sops_layout_but_not_data_or_comments() -> None:
    rendered = b"# head\n---\na:\n  b: 'x'\n"
    assert seal.same_plaintext(b"# head\na:\n    b: x\n", rendered)
    assert not seal.same_plaintext(b"# head\na:\n    b: y\n", rendered)
    assert not seal.same_plaintext(b"# other\na:\n    b: x\n", rendered)
    assert not seal.same_plaintext(b"a: [unclosed\n", rendered)


# --- when no secret is needed / present ----------------------------------------------------


def test_no_decryption_when_no_output_needs_a_secret(
    example_copy: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch, isolated_home: Path
) -> None:
    config = example_copy("minimal")
    assert not needs_secrets(_yaml((config / "cluster.yaml").read_bytes()))
    # Not even valid sops: any attempt to decrypt it would fail loudly.
    (config / secrets.SECRETS_FILE).write_text("proxmox_api_token_id: nope\n")
    calls: list[Path] = []
    monkeypatch.setattr(sops, "decrypt", lambda path, **_: calls.append(path) or b"")
    result = render_tree(Options(config))
    assert calls == []
    assert result.context["has_secrets_file"] is True
    assert not any(outtree.is_sops(p) for p in result.files)


def test_capi_without_secrets_file_warns_once_and_skips_the_secret(
    example_copy: Callable[[str], Path], isolated_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = example_copy("minimal")
    _set_provisioners(config, ["capi"])
    result = render_tree(Options(config))
    assert CREDENTIALS_OUTPUT not in result.files
    mine = [w for w in result.warnings if "does not exist" in w.message]
    assert len(mine) == 1 and mine[0].severity == "warning"
    assert CREDENTIALS_OUTPUT in mine[0].message
    # Anchored where capi was asked for, in a file that exists (an annotation must land there).
    assert mine[0].file.endswith("cluster.yaml") and mine[0].path == "provisioners"
    line = (config / "cluster.yaml").read_text().splitlines()[mine[0].line - 1]
    assert line.lstrip().startswith("provisioners") or line.lstrip().startswith("- ")
    assert _render(config) == 0
    assert capsys.readouterr().err.count("does not exist") == 1
    assert not (config / CREDENTIALS_OUTPUT).exists()


# --- leak guard ----------------------------------------------------------------------------


@pytest.fixture
def hostile_templates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The real templates plus one that prints a secret into a plaintext output."""
    real = settings.load()
    copy = tmp_path / "templates"
    shutil.copytree(real.templates, copy)
    hostile = copy / "infrastructure" / "leak.txt.j2"
    hostile.write_text(
        "#% if secrets %#\nnote: #{ secrets.proxmox_api_token_secret }#\n#% endif %#\n"
    )
    patched = dataclasses.replace(real, templates=copy)
    monkeypatch.setattr(settings, "load", lambda path=None: patched)
    return hostile


def test_leak_guard_aborts_before_anything_is_written(
    capi_config: tuple[Path, dict[str, str]],
    hostile_templates: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config, values = capi_config
    with pytest.raises(InputError) as caught:
        render_tree(Options(config))
    (problem,) = caught.value.diagnostics
    assert problem.file == "infrastructure/leak.txt"
    assert (problem.line, problem.col) == (1, 7)
    assert "proxmox_api_token_secret" in problem.message
    assert values["proxmox_api_token_secret"] not in repr(caught.value.diagnostics)

    before = sorted(p.relative_to(config).as_posix() for p in config.rglob("*"))
    assert _render(config) == 1
    after = sorted(p.relative_to(config).as_posix() for p in config.rglob("*"))
    assert after == before
    out = capsys.readouterr()
    assert all(v not in out.out + out.err for v in values.values())


def test_leak_guard_finds_encoded_values() -> None:
    import base64
    from urllib.parse import quote

    values = _values()
    for key, value in values.items():
        for form in (base64.b64encode(value.encode()).decode(), quote(value, safe="")):
            files = {"a.yaml": f"data:\n  x: {form}\n".encode()}
            with pytest.raises(InputError) as caught:
                leaks.guard(files, values)
            assert [d.line for d in caught.value.diagnostics] == [2]
            assert key in caught.value.diagnostics[0].message
    # *.sops.* outputs hold them by design (before they are sealed).
    leaks.guard({"x.sops.yaml": " ".join(values.values()).encode()}, values)


# --- errors --------------------------------------------------------------------------------


def _cli_error(config: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = cli.main(["-C", str(config), *(args or ("render",))])
    captured = capsys.readouterr()
    return code, captured.err


def test_sops_not_installed(
    capi_config: tuple[Path, dict[str, str]],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config, _ = capi_config
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.setattr("sys.executable", str(tmp_path / "nowhere" / "python"))
    sops.sops_binary.cache_clear()
    try:
        code, err = _cli_error(config, capsys)
    finally:
        sops.sops_binary.cache_clear()
    assert code == 2
    assert err.count("\n") == 1 and "sops is not installed" in err
    assert not (config / CREDENTIALS_OUTPUT).exists()


def test_no_key_to_decrypt(
    capi_config: tuple[Path, dict[str, str]], keys: Keys, capsys: pytest.CaptureFixture[str]
) -> None:
    config, _ = capi_config
    keys.use(None)
    code, err = _cli_error(config, capsys)
    assert code == 2
    assert err.count("\n") == 1
    assert "no key to decrypt secrets.sops.yaml" in err and "SOPS_AGE_KEY_FILE" in err
    assert keys.recipient in err  # which key would open it


def test_wrong_key(
    capi_config: tuple[Path, dict[str, str]],
    keys: Keys,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config, _ = capi_config
    other = tmp_path / "other.key"
    other.write_text(_identity()[0] + "\n")
    keys.use(other)
    code, err = _cli_error(config, capsys)
    assert code == 2
    assert err.count("\n") == 1 and "wrong key" in err


def test_plaintext_secrets_file_is_an_input_error(
    capi_config: tuple[Path, dict[str, str]], capsys: pytest.CaptureFixture[str]
) -> None:
    config, values = capi_config
    (config / secrets.SECRETS_FILE).write_bytes(_dump(values))
    code, err = _cli_error(config, capsys)
    assert code == 1
    assert "secrets.sops.yaml:1:1: error:" in err and "plaintext" in err
    assert all(v not in err for v in values.values())


def test_plaintext_output_on_disk_is_an_input_error(
    capi_config: tuple[Path, dict[str, str]], capsys: pytest.CaptureFixture[str]
) -> None:
    config, values = capi_config
    target = config / CREDENTIALS_OUTPUT
    target.parent.mkdir(parents=True)
    target.write_text(f"stringData:\n  secret: {values['proxmox_api_token_secret']}\n")
    for command in ("render", "check"):
        code, err = _cli_error(config, capsys, command)
        assert code == 1, command
        assert f"{CREDENTIALS_OUTPUT}:1:1: error:" in err and "plaintext" in err
        assert values["proxmox_api_token_secret"] not in err


def test_tampered_secrets_file_fails_its_integrity_check(
    capi_config: tuple[Path, dict[str, str]], capsys: pytest.CaptureFixture[str]
) -> None:
    config, _ = capi_config
    path = config / secrets.SECRETS_FILE
    # One ciphertext pasted over another without sops: the MAC no longer matches.
    text = path.read_text()
    enc = re.findall(r"ENC\[[^\]]+\]", text)
    path.write_text(text.replace(enc[0], enc[1], 1))
    code, err = _cli_error(config, capsys)
    assert code == 1 and "integrity check failed" in err

    # A re-ordered or edited value that keeps the ciphertexts: the MAC catches it.
    mac = re.search(r"mac: (ENC\[[^\]]+\])", text)
    assert mac
    path.write_text(text.replace(mac.group(1), enc[0]))
    code, err = _cli_error(config, capsys)
    assert code == 1 and "integrity check failed" in err


def test_sops_config_without_a_rule_for_the_output(
    capi_config: tuple[Path, dict[str, str]], keys: Keys, capsys: pytest.CaptureFixture[str]
) -> None:
    config, _ = capi_config
    (config / sops.SOPS_CONFIG).write_text(
        f"creation_rules:\n  - path_regex: ^secrets\\.sops\\.yaml$\n    age: {keys.recipient}\n"
    )
    code, err = _cli_error(config, capsys)
    assert code == 2 and err.count("\n") == 1
    assert f".sops.yaml has no creation rule for {CREDENTIALS_OUTPUT}" in err


def test_no_sops_config_at_all(
    capi_config: tuple[Path, dict[str, str]], capsys: pytest.CaptureFixture[str]
) -> None:
    config, _ = capi_config
    (config / sops.SOPS_CONFIG).unlink()
    code, err = _cli_error(config, capsys)
    assert code == 2 and "no .sops.yaml" in err


BAD_SECRETS = [
    pytest.param({"proxmox_api_token_id": "root@pam"}, "proxmox_api_token_id", 1, id="id-no-name"),
    pytest.param(
        {"proxmox_api_token_secret": "not-a-uuid"}, "proxmox_api_token_secret", 2, id="secret"
    ),
    pytest.param({"proxmox_api_token_secret": 12345}, "proxmox_api_token_secret", 2, id="type"),
    pytest.param({"extra_key": "s3cr3t-extra"}, "extra_key", 3, id="unknown"),
]


@pytest.mark.parametrize(("change", "key", "line"), BAD_SECRETS)
def test_invalid_secrets_name_the_key_never_the_value(
    capi_config: tuple[Path, dict[str, str]],
    keys: Keys,
    change: dict[str, Any],
    key: str,
    line: int,
) -> None:
    config, values = capi_config
    bad: dict[str, Any] = {**values, **change}
    _write_secrets(config, bad, keys.recipient)
    with pytest.raises(InputError) as caught:
        render_tree(Options(config))
    (problem,) = caught.value.diagnostics
    assert key in problem.path + problem.message
    assert (problem.file, problem.line) == (secrets.SECRETS_FILE, line)
    shown = repr(caught.value.diagnostics)
    assert all(str(v) not in shown for v in bad.values() if str(v) != key)


def test_missing_secret_key(capi_config: tuple[Path, dict[str, str]], keys: Keys) -> None:
    config, values = capi_config
    _write_secrets(config, {"proxmox_api_token_id": values["proxmox_api_token_id"]}, keys.recipient)
    with pytest.raises(InputError) as caught:
        render_tree(Options(config))
    assert [d.message for d in caught.value.diagnostics] == [
        "missing required key 'proxmox_api_token_secret'"
    ]


def test_usage_errors_are_one_class() -> None:
    assert issubclass(errors.KeyUnavailable, UsageError)


# --- check ---------------------------------------------------------------------------------


def test_check_with_the_key_compares_plaintext(
    capi_config: tuple[Path, dict[str, str]], keys: Keys, capsys: pytest.CaptureFixture[str]
) -> None:
    config, values = capi_config
    assert _render(config) == 0
    on_disk = (config / CREDENTIALS_OUTPUT).read_bytes()
    result = render_tree(Options(config), check=True)
    assert result.files[CREDENTIALS_OUTPUT] == on_disk and result.unverified == ()

    changed = {**values, "proxmox_api_token_secret": str(uuid.uuid4())}
    _write_secrets(config, changed, keys.recipient)
    result = render_tree(Options(config), check=True)
    expected = result.files[CREDENTIALS_OUTPUT]
    assert expected != on_disk
    assert not sops.is_encrypted(_yaml(expected))  # check never encrypts
    capsys.readouterr()
    assert cli.main(["-C", str(config), "check"]) == 1
    out = capsys.readouterr()
    for value in (*values.values(), *changed.values()):
        assert value not in out.out + out.err
        assert value.encode() not in expected


def test_check_without_the_key_compares_structure_and_says_so(
    capi_config: tuple[Path, dict[str, str]], keys: Keys, capsys: pytest.CaptureFixture[str]
) -> None:
    config, values = capi_config
    assert _render(config) == 0
    on_disk = (config / CREDENTIALS_OUTPUT).read_bytes()
    keys.use(None)
    with pytest.raises(errors.KeyUnavailable):
        render_tree(Options(config))
    # A dry run writes nothing and so, like check, needs no key.
    capsys.readouterr()
    assert cli.main(["-C", str(config), "render", "--dry-run"]) == 0
    assert "up to date" in capsys.readouterr().out
    result = render_tree(Options(config), check=True)
    assert result.files[CREDENTIALS_OUTPUT] == on_disk
    assert result.unverified == (CREDENTIALS_OUTPUT,)
    capsys.readouterr()
    assert cli.main(["-C", str(config), "check"]) == 0
    assert CREDENTIALS_OUTPUT in capsys.readouterr().err

    # What is visible without the key (here the namespace) is still checked.
    _set_provisioners(config, ["capi"], capi_namespace="elsewhere")
    result = render_tree(Options(config), check=True)
    assert result.files[CREDENTIALS_OUTPUT] != on_disk
    assert result.unverified == (CREDENTIALS_OUTPUT,)
    assert cli.main(["-C", str(config), "check"]) == 1
    out = capsys.readouterr()
    assert all(v not in out.out + out.err for v in values.values())


def test_visible_structure_masks_only_encrypted_keys() -> None:
    regex = re.compile("^(data|stringData)$")
    doc = {"kind": "Secret", "stringData": {"a": "ENC[x]"}, "sops": {"mac": "m"}}
    assert seal.visible_structure(doc, regex) == {
        "kind": "Secret",
        "stringData": {"a": leaks.MASK},
    }
    assert seal.visible_structure(doc, None) == {
        "kind": leaks.MASK,
        "stringData": {"a": leaks.MASK},
    }


def test_output_root_elsewhere_keeps_ciphertext_and_dry_run_shows_no_secret(
    capi_config: tuple[Path, dict[str, str]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config, values = capi_config
    out = tmp_path / "out"
    assert cli.main(["-C", str(config), "render", "-o", str(out)]) == 0
    first = (out / CREDENTIALS_OUTPUT).read_bytes()
    assert sops.is_encrypted(_yaml(first))
    assert not (config / CREDENTIALS_OUTPUT).exists()
    assert cli.main(["-C", str(config), "render", "-o", str(out)]) == 0
    assert (out / CREDENTIALS_OUTPUT).read_bytes() == first

    new = _values()
    _write_secrets(config, new, _recipient_of(config))
    capsys.readouterr()
    assert cli.main(["-C", str(config), "render", "-o", str(out), "--dry-run"]) == 0
    shown = capsys.readouterr()
    assert CREDENTIALS_OUTPUT in shown.out
    assert all(v not in shown.out + shown.err for v in (*values.values(), *new.values()))
    assert (out / CREDENTIALS_OUTPUT).read_bytes() == first


def test_new_recipient_in_sops_config_re_encrypts_unchanged_plaintext(
    capi_config: tuple[Path, dict[str, str]], keys: Keys, tmp_path: Path
) -> None:
    config, values = capi_config
    assert _render(config) == 0
    first = (config / CREDENTIALS_OUTPUT).read_bytes()

    teammate_secret, teammate = _identity()
    rules = (config / sops.SOPS_CONFIG).read_text()
    (config / sops.SOPS_CONFIG).write_text(
        rules.replace(f"age: {keys.recipient}", f"age: {keys.recipient},{teammate}")
    )
    assert sops.rule_recipients(
        sops.creation_rules(config / sops.SOPS_CONFIG), CREDENTIALS_OUTPUT
    ) == {
        keys.recipient,
        teammate,
    }
    assert render_tree(Options(config), check=True).files[CREDENTIALS_OUTPUT] != first
    assert _render(config) == 0
    second = (config / CREDENTIALS_OUTPUT).read_bytes()
    assert second != first
    assert render_tree(Options(config)).files[CREDENTIALS_OUTPUT] == second

    teammate_key = tmp_path / "teammate.key"
    teammate_key.write_text(teammate_secret + "\n")
    keys.use(teammate_key)
    decrypted = _yaml(sops.decrypt(config / CREDENTIALS_OUTPUT))
    assert decrypted["stringData"]["secret"] == values["proxmox_api_token_secret"]


def test_noop_render_runs_its_two_sops_calls_side_by_side(
    capi_config: tuple[Path, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """secrets.sops.yaml and the existing credentials output are decrypted at once (real
    sops both times); the ciphertext is still kept byte for byte."""
    import threading
    import time

    config, _ = capi_config
    assert _render(config) == 0
    first = (config / CREDENTIALS_OUTPUT).read_bytes()
    spans: list[tuple[float, float, str]] = []
    real_run = sops.run

    def timed(args: list[str], **kwargs: Any) -> tuple[int, bytes, str]:
        start = time.monotonic()
        try:
            return real_run(args, **kwargs)
        finally:
            spans.append((start, time.monotonic(), threading.current_thread().name))

    monkeypatch.setattr(sops, "run", timed)
    assert render_tree(Options(config)).files[CREDENTIALS_OUTPUT] == first
    assert len(spans) == 2, spans
    (a_start, a_end, _), (b_start, b_end, _) = spans
    assert max(a_start, b_start) < min(a_end, b_end), "the sops calls did not overlap"
    assert {name for *_, name in spans} == {"sops-prefetch", threading.main_thread().name}


def test_prefetched_decryption_is_not_used_for_other_bytes(
    capi_config: tuple[Path, dict[str, str]],
) -> None:
    config, _ = capi_config
    assert _render(config) == 0
    target = config / CREDENTIALS_OUTPUT
    early = seal.Prefetch(target.read_bytes())
    early.join()
    original = target.read_bytes()
    outcome = early.outcome(original)
    assert outcome is not None and outcome[0] == 0
    assert early.outcome(original + b"# edited\n") is None  # seal would call sops again
    link = config / "link.sops.yaml"
    link.symlink_to(target)
    # The snapshot never reads through a symlink: nothing to decrypt ahead.
    assert seal.existing(outtree.take(config), link.name) is None


def test_the_missing_secrets_warning_has_one_place_with_or_without_other_warnings(
    example_copy: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """capi without secrets.sops.yaml: anchored at cluster.yaml's provisioners. When inputs.read
    already loaded with positions (another warning), cluster.yaml is not loaded again."""
    from generator import load, pipeline

    config = example_copy("multi-host")

    def missing() -> list[Any]:
        warnings = render_tree(Options(config), check=True).warnings
        return [w for w in warnings if w.path == "provisioners"]

    (alone,) = missing()
    assert alone.file.endswith("cluster.yaml") and (alone.line, alone.col) == (55, 3)
    nodes = config / "nodes.yaml"
    # A fourth controller: an even count is a warning of its own.
    text = nodes.read_text().replace("controller: false", "controller: true", 1)
    nodes.write_text(text)
    loads: list[Path] = []
    real = load.load_yaml

    def counting(path: Path, **kwargs: Any) -> Any:
        loads.append(path)
        return real(path, **kwargs)

    monkeypatch.setattr(pipeline, "load_yaml", counting)
    (beside,) = missing()
    assert beside == alone
    assert loads == []


def test_a_check_reads_the_encrypted_output_once(
    capi_config: tuple[Path, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The prefetch, seal and sync.plan all use the snapshot's bytes of the existing
    credentials output: one read of it, not one per stage."""
    from generator import safefs, sync

    config, _ = capi_config
    assert _render(config) == 0
    opened: list[str] = []
    real_tree_read, real_read_file = safefs.Tree.read, safefs.read_file

    def tree_read(self: safefs.Tree, rel: str, **kwargs: Any) -> bytes | None:
        opened.append(rel)
        return real_tree_read(self, rel, **kwargs)

    def read_file(path: Path, **kwargs: Any) -> bytes:
        opened.append(path.relative_to(config).as_posix())
        return real_read_file(path, **kwargs)

    monkeypatch.setattr(safefs.Tree, "read", tree_read)
    monkeypatch.setattr(safefs, "read_file", read_file)
    result = render_tree(Options(config), check=True)
    assert sync.plan(result.snapshot, result.files).changes == ()
    assert opened.count(CREDENTIALS_OUTPUT) == 1
