"""The output tree and the manifest are untrusted (issue 14, items 2-5 and 7): nothing is
deleted that fails the conditions of removal, nothing foreign is printed, nothing is read,
written, locked or removed through a link, and FIFOs, devices and huge files never hang or
exhaust clustergen."""

from __future__ import annotations

import errno
import gc
import hashlib
import json
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from generator import cli, constants, manifest, outtree, resources, safefs, sync, writer
from helpers.tools import clustergen

SECRET = "AGE-SECRET-KEY-1QQQSECRETSECRETSECRETSECRET"
TOKEN = "ghp_TOPSECRETTOKEN0123456789"
TOFU = "infrastructure/tofu"
TFVARS = f"{TOFU}/terraform.tfvars"
HEADER = f"# {constants.GENERATED_HEADER}\n".encode()


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def snapshot(root: Path) -> dict[str, tuple[str, bytes | str]]:
    """Every entry below root: links as their target, files as their bytes (never followed)."""
    out: dict[str, tuple[str, bytes | str]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            rel = path.relative_to(root).as_posix()
            if path.is_symlink():
                out[rel] = ("link", os.readlink(path))
            elif path.is_file():
                out[rel] = ("file", path.read_bytes())
            elif path.is_dir():
                out[rel] = ("dir", "")
            else:
                out[rel] = ("other", "")
    return out


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = cli.main(list(args))
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return code, captured.out, captured.err


@pytest.fixture
def cfg(example_copy: Callable[[str], Path], capsys: pytest.CaptureFixture[str]) -> Path:
    config = example_copy("minimal")
    assert run(capsys, "-C", str(config), "render")[0] == 0
    return config


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    directory = tmp_path / "outside"
    directory.mkdir()
    (directory / "victim.txt").write_bytes(HEADER + b"precious\n")
    return directory


def _change_inputs(config: Path) -> None:
    """Give render something to write."""
    path = config / "cluster.yaml"
    path.write_text(path.read_text().replace("talos_version: 1.12.0", "talos_version: 1.12.1"))


def _add_to_manifest(config: Path, entries: dict[str, str]) -> None:
    path = config / manifest.MANIFEST
    doc = json.loads(path.read_text())
    doc["files"].update(entries)
    path.write_text(json.dumps(doc))


# --- item 2: the manifest does not decide deletions ------------------------------------------


def test_a_tampered_manifest_deletes_nothing_but_verified_stale_output(
    cfg: Path, outside: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (cfg / ".git").mkdir()
    (cfg / ".git/HEAD").write_text("ref: refs/heads/main\n")
    (cfg / "age.key").write_text(f"{SECRET}\n")
    (cfg / "docs").mkdir()
    (cfg / "docs/generated.md").write_bytes(HEADER + b"looks generated\n")
    (cfg / TOFU / "link").symlink_to(outside)
    (cfg / TOFU / "alias.tf").symlink_to(outside / "victim.txt")
    os.link(cfg / "age.key", cfg / TOFU / "hardlink.tf")
    (cfg / TOFU / "edited.tf").write_bytes(HEADER + b"edited by hand\n")
    stale = HEADER + b"an output an earlier render wrote\n"
    (cfg / TOFU / "old.tf").write_bytes(stale)
    victims = {
        "nodes.yaml": (cfg / "nodes.yaml").read_bytes(),
        "cluster.yaml": (cfg / "cluster.yaml").read_bytes(),
        ".git/HEAD": (cfg / ".git/HEAD").read_bytes(),
        "age.key": (cfg / "age.key").read_bytes(),
        "docs/generated.md": (cfg / "docs/generated.md").read_bytes(),
        f"{TOFU}/link/victim.txt": (outside / "victim.txt").read_bytes(),
        f"{TOFU}/alias.tf": (outside / "victim.txt").read_bytes(),
        f"{TOFU}/hardlink.tf": (cfg / "age.key").read_bytes(),
        f"{TOFU}/edited.tf": HEADER + b"what clustergen wrote\n",  # not these bytes now
    }
    _add_to_manifest(
        cfg, {p: _sha(b) for p, b in victims.items()} | {f"{TOFU}/old.tf": _sha(stale)}
    )
    before_outside = snapshot(outside)
    for force in ([], ["--force"], []):
        code, out, err = run(capsys, "-C", str(cfg), "render", *force)
        assert code == 0, err
        for path in victims:
            assert (cfg / path).exists() or (cfg / path).is_symlink(), path
        assert "age.key" not in out and SECRET not in out + err
    assert not (cfg / TOFU / "old.tf").exists()  # the one file that meets every condition
    assert (cfg / "age.key").read_text() == f"{SECRET}\n"
    assert (cfg / TOFU / "alias.tf").is_symlink() and (cfg / TOFU / "link").is_symlink()
    assert snapshot(outside) == before_outside


@pytest.mark.parametrize(
    "condition",
    ["outside-rendered-dir", "symlink", "no-header", "hash-differs", "not-recorded", "fifo"],
)
def test_each_condition_of_removal_on_its_own(tmp_path: Path, condition: str) -> None:
    managed = ("out",)
    root = tmp_path / "root"
    files = {"out/keep": HEADER + b"1\n"}
    root.mkdir()
    writer.apply(root, sync.plan(outtree.take(root, managed), files))
    path = {"outside-rendered-dir": "other/x"}.get(condition, "out/x")
    target = root / path
    target.parent.mkdir(exist_ok=True)
    data = HEADER + b"stale\n"
    if condition == "symlink":
        (tmp_path / "real").write_bytes(data)
        target.symlink_to(tmp_path / "real")
    elif condition == "fifo":
        os.mkfifo(target)
    else:
        target.write_bytes(data if condition != "no-header" else b"stale\n")
    recorded = _sha(b"other bytes" if condition == "hash-differs" else data)
    if condition == "no-header":
        recorded = _sha(b"stale\n")
    if condition != "not-recorded":
        doc = json.loads((root / manifest.MANIFEST).read_text())
        doc["files"][path] = recorded
        (root / manifest.MANIFEST).write_text(json.dumps(doc))
    for force in (False, True):
        plan = sync.plan(outtree.take(root, managed), files)
        assert [c for c in plan.changes if c.action == "remove"] == []
        writer.apply(root, plan, force=force)
        assert target.exists() or target.is_symlink()
    if condition == "symlink":
        assert (tmp_path / "real").read_bytes() == data


# --- item 3: never print what is not clustergen's ---------------------------------------------


@pytest.mark.parametrize("fmt", ["text", "json", "github"])
@pytest.mark.parametrize("command", [["check"], ["render", "--dry-run"]])
def test_check_and_dry_run_never_print_a_foreign_file(
    cfg: Path, capsys: pytest.CaptureFixture[str], fmt: str, command: list[str]
) -> None:
    (cfg / "age.key").write_text(f"# public key: age1xyz\n{SECRET}\n")
    (cfg / ".git").mkdir()
    (cfg / ".git/config").write_text(f"[remote]\n\turl = https://x:{TOKEN}@github.com/a/b\n")
    secret_bytes = (cfg / "age.key").read_bytes()
    # A generated path linked to the key, another hard-linked to the git config, and the
    # manifest naming both private files with their true hashes.
    (cfg / TFVARS).unlink()
    (cfg / TFVARS).symlink_to(cfg / "age.key")
    (cfg / f"{TOFU}/outputs.tf").unlink()
    os.link(cfg / ".git/config", cfg / f"{TOFU}/outputs.tf")
    _add_to_manifest(
        cfg,
        {
            "age.key": _sha(secret_bytes),
            ".git/config": _sha((cfg / ".git/config").read_bytes()),
            f"{TOFU}/stolen.tf": _sha(secret_bytes),
        },
    )
    os.link(cfg / "age.key", cfg / f"{TOFU}/stolen.tf")
    code, out, err = run(capsys, "--format", fmt, "-C", str(cfg), *command)
    # Drift for check; for the dry run, a real render would refuse the link in TFVARS' place
    # and the foreign bytes of outputs.tf (issue 13: the dry run fails like it would).
    assert code == 1, err
    assert SECRET not in out + err and TOKEN not in out + err
    assert "AGE-SECRET" not in out + err
    assert "not a clustergen file" in out + err
    assert TFVARS in out  # the drift is reported, its old contents are not


def test_a_diff_of_a_sops_file_shows_no_content() -> None:
    plan = sync.Plan(
        (
            sync.Change("x/creds.sops.yaml", "update", b"old: ENC[...]\n", b"token: plain\n"),
            sync.Change("x/new.sops.yaml", "create", None, b"token: plain\n"),
        ),
        (),
        (),
        {},
        {},
    )
    diff = sync.unified_diff(plan)
    assert "plain" not in diff and "ENC" not in diff
    assert diff.count("contents not shown") == 2


# --- item 4: no write, rename, mkdir, lock or delete through a link ---------------------------


@pytest.mark.parametrize(
    "entry",
    [
        "infrastructure",
        TOFU,
        ".taskfiles",
        ".clustergen",
        writer.LOCK,
        manifest.MANIFEST,
        writer.STATE_GITIGNORE,
        TFVARS,
        ".taskfiles/infrastructure/Taskfile.yaml",
    ],
)
@pytest.mark.parametrize("force", [False, True])
def test_no_write_goes_through_a_link(
    cfg: Path, outside: Path, capsys: pytest.CaptureFixture[str], entry: str, force: bool
) -> None:
    moved = outside / "moved"
    shutil.move(str(cfg / entry), str(moved))
    (cfg / entry).symlink_to(moved)
    (outside / "nologin").unlink(missing_ok=True)
    _change_inputs(cfg)
    before = snapshot(outside)
    for args in (["check"], ["render", "--dry-run"], ["render", *(["--force"] if force else [])]):
        code, _out, err = run(capsys, "-C", str(cfg), *args)
        assert code in (0, 1, 2), (args, code)
        assert snapshot(outside) == before, args
    if entry not in (writer.STATE_GITIGNORE,):
        # The refusal names the link; nothing was written anywhere.
        assert code != 0 and entry.split("/")[0] in err, err
    assert (cfg / entry).is_symlink() or entry == writer.STATE_GITIGNORE


def test_a_symlinked_lock_creates_nothing(cfg: Path, outside: Path) -> None:
    (cfg / writer.LOCK).unlink()
    (cfg / writer.LOCK).symlink_to(outside / "nologin")
    with pytest.raises(safefs.UnsafePath, match="symbolic link"):  # noqa: SIM117
        with writer.locked(cfg):
            pass
    assert not (outside / "nologin").exists()


def test_the_mode_is_the_files_own(cfg: Path, capsys: pytest.CaptureFixture[str]) -> None:
    os.chmod(cfg / TFVARS, 0o600)
    _change_inputs(cfg)
    assert run(capsys, "-C", str(cfg), "render")[0] == 0
    assert (cfg / TFVARS).stat().st_mode & 0o777 == 0o600


# --- item 5: FIFOs, devices and huge files ------------------------------------------------


@pytest.mark.parametrize(
    ("make", "said"),
    [
        (os.mkfifo, "FIFO"),
        (lambda p: p.symlink_to("/dev/zero"), "symbolic link"),
        (lambda p: p.symlink_to("/dev/urandom"), "symbolic link"),
        (lambda p: p.mkdir(), "directory"),
    ],
    ids=["fifo", "dev-zero", "dev-urandom", "directory"],
)
@pytest.mark.parametrize("command", [["check"], ["render", "--dry-run"], ["render", "--force"]])
def test_a_special_file_where_an_output_belongs_never_hangs(
    cfg: Path, make: Callable[[Path], None], said: str, command: list[str]
) -> None:
    (cfg / TFVARS).unlink()
    make(cfg / TFVARS)
    result = clustergen("-C", str(cfg), *command, timeout=60)
    # Every command fails: check reports drift, a render (a dry run too, issue 13) refuses.
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr and said in result.stdout + result.stderr
    assert not (cfg / TFVARS).is_file()  # still the special file, never replaced


@pytest.mark.parametrize("where", [manifest.MANIFEST, writer.LOCK, f"{TOFU}/stale.tf"])
def test_a_fifo_in_the_state_or_a_rendered_directory_never_hangs(cfg: Path, where: str) -> None:
    (cfg / where).unlink(missing_ok=True)
    os.mkfifo(cfg / where)
    for command in (["check"], ["render"]):
        result = clustergen("-C", str(cfg), *command, timeout=60)
        assert "Traceback" not in result.stderr
        refused = where == manifest.MANIFEST or (where == writer.LOCK and command == ["render"])
        assert result.returncode == (2 if refused else 0), (command, result.stderr)
    assert (cfg / where).exists()  # left alone


def test_a_huge_user_file_beside_the_outputs_is_fine(
    cfg: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    cap = max(p.stat().st_size for p in cfg.rglob("*") if p.is_file())
    monkeypatch.setattr(safefs, "MAX_FILE_BYTES", cap)
    (cfg / TOFU / "terraform.tfstate").write_bytes(b'{"version": 4}' + b" " * cap)
    (cfg / TOFU / "huge.tf").write_bytes(HEADER + b"#" * cap)  # looks generated, too big
    assert run(capsys, "-C", str(cfg), "check")[0] == 0
    assert run(capsys, "-C", str(cfg), "render")[0] == 0
    assert (cfg / TOFU / "terraform.tfstate").exists() and (cfg / TOFU / "huge.tf").exists()


def test_a_huge_file_where_an_output_belongs_is_refused(
    cfg: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(safefs, "MAX_FILE_BYTES", 4096)
    (cfg / TFVARS).write_bytes(HEADER + b"#" * 10_000)
    code, out, err = run(capsys, "-C", str(cfg), "check")
    assert code == 1 and "larger than 4096 bytes" in out + err


# --- item 7: the output root, temp files and errors that name the real file ------------------


@pytest.mark.parametrize(
    "target",
    [
        lambda: resources.templates_dir(),
        lambda: resources.templates_dir() / "infrastructure",
        lambda: resources.templates_dir() / ".taskfiles",
        lambda: resources.schema_path("cluster").parent,
        lambda: Path("/"),
    ],
    ids=["templates", "inside-templates", "taskfiles-templates", "schemas", "root"],
)
def test_render_refuses_clustergen_own_files_and_the_root(
    example_copy: Callable[[str], Path],
    capsys: pytest.CaptureFixture[str],
    target: Callable[[], Path],
) -> None:
    config = example_copy("minimal")
    out = target()
    before = snapshot(resources.templates_dir())
    for command in (["render"], ["render", "--dry-run"], ["check"]):
        code, _, err = run(capsys, "-C", str(config), *command, "-o", str(out))
        assert code == 2 and len(err.splitlines()) == 1, err
    assert snapshot(resources.templates_dir()) == before


def test_a_repo_that_contains_clustergen_is_a_fine_output_root(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A virtualenv inside the repository holds clustergen's templates: that is normal."""
    repo = tmp_path / "repo"
    shutil.copytree(resources.examples_dir() / "minimal", repo)
    venv_templates = repo / ".venv/lib/generator/_data/templates"
    shutil.copytree(resources.templates_dir(), venv_templates)
    monkeypatch.setattr(resources, "templates_dir", lambda: venv_templates)
    assert run(capsys, "-C", str(repo), "render")[0] == 0


def test_stale_temp_files_are_cleaned_everywhere(
    cfg: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    leftovers = [
        cfg / manifest.STATE_DIR / f"{writer.TMP_PREFIX}abc",
        cfg / TOFU / f"{writer.TMP_PREFIX}def",
        cfg / ".taskfiles/infrastructure" / f"{writer.TMP_PREFIX}ghi",
    ]
    for path in leftovers:
        path.write_bytes(b"half written")
    linked = cfg / TOFU / f"{writer.TMP_PREFIX}link"
    linked.symlink_to(cfg / "nodes.yaml")
    assert run(capsys, "-C", str(cfg), "render")[0] == 0  # nothing else to do
    assert not any(p.exists() for p in leftovers)
    assert (cfg / "nodes.yaml").exists()


@pytest.mark.parametrize(
    ("call", "code"),
    [("write", errno.ENOSPC), ("replace", errno.EACCES), ("fsync", errno.EIO)],
)
def test_a_write_error_names_the_real_file(
    cfg: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    call: str,
    code: int,
) -> None:
    _change_inputs(cfg)
    real = getattr(os, call)

    def failing(*args: object, **kwargs: object) -> object:
        if call != "fsync" or kwargs == {}:
            raise OSError(code, os.strerror(code))
        return real(*args, **kwargs)

    monkeypatch.setattr(safefs.os, call, failing)
    status, _, err = run(capsys, "-C", str(cfg), "render")
    monkeypatch.undo()
    assert status == 2, err
    (line,) = err.splitlines()
    assert writer.TMP_PREFIX not in line and os.strerror(code) in line
    assert ".clustergen/manifest.json" in line or TOFU in line or "infrastructure" in line
    leftovers = [p for p in cfg.rglob(f"{writer.TMP_PREFIX}*")]
    assert leftovers == []


# --- item 8: a deep manifest, file names that are not UTF-8 ----------------------------------


@pytest.mark.parametrize("depth", [1_000, 200_000])
def test_a_deeply_nested_manifest_is_ignored(
    cfg: Path, capsys: pytest.CaptureFixture[str], depth: int
) -> None:
    (cfg / manifest.MANIFEST).write_text('{"files": ' + "[" * depth + "]" * depth + "}")
    code, _, err = run(capsys, "-C", str(cfg), "check")
    assert code == 0, err
    assert run(capsys, "-C", str(cfg), "render")[0] == 0


@pytest.mark.parametrize("recorded", [False, True])
def test_a_stale_file_name_that_is_not_utf8(cfg: Path, recorded: bool) -> None:
    name = os.fsencode(str(cfg / TOFU)) + b"/\xff\x1b[2Jstale.tf"
    data = HEADER + b"stale\n"
    with open(name, "wb") as fh:
        fh.write(data)
    if recorded:
        _add_to_manifest(cfg, {os.fsdecode(name[len(os.fsencode(str(cfg))) + 1 :]): _sha(data)})
    for command in (["check"], ["render"], ["check"]):
        result = clustergen(
            "-C", str(cfg), *command, env={**os.environ, "PYTHONIOENCODING": "utf-8"}
        )
        assert "Traceback" not in result.stderr, result.stderr
        assert "\x1b" not in result.stdout + result.stderr
        assert result.returncode in (0, 1)
    assert os.path.exists(name)  # clustergen never generates such a name: never removed


@pytest.mark.parametrize("call", ["open", "stat"])
def test_a_read_error_names_the_file_below_the_root(
    cfg: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, call: str
) -> None:
    real = getattr(os, call)

    def failing(*args: object, **kwargs: object) -> object:
        name = args[0]
        reading_output = isinstance(name, str) and name.endswith(".tf") and "dir_fd" in kwargs
        if reading_output:
            raise OSError(errno.EACCES, os.strerror(errno.EACCES), str(name))
        return real(*args, **kwargs)

    monkeypatch.setattr(safefs.os, call, failing)
    status, _, err = run(capsys, "-C", str(cfg), "check")
    monkeypatch.undo()
    assert status == 2, err
    (line,) = err.splitlines()
    assert line.startswith("clustergen: error: cannot ") and "Permission denied" in line
    assert "infrastructure/" in line or ".clustergen/" in line, line


def test_a_tree_interrupted_while_it_opens_is_finalised_quietly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C inside Tree() (seen in CI: the signal landed before its fd table existed) leaves
    a half-built object that Python still finalises; that must print nothing ("Exception
    ignored in ... __del__" is a traceback the user sees) and leak no descriptor."""

    def interrupted(*args: object, **kwargs: object) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(safefs.os, "open", interrupted)
    unraisable: list[object] = []
    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)
    with pytest.raises(KeyboardInterrupt):
        safefs.Tree(tmp_path)
    bare = safefs.Tree.__new__(safefs.Tree)  # interrupted before its first attribute
    del bare
    gc.collect()
    assert unraisable == []
