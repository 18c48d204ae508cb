"""sync: only changed bytes are written, atomically; orphans go; foreign and edited files stay."""

from __future__ import annotations

import json
import multiprocessing
import os
import time
from pathlib import Path

import pytest

from generator import constants, manifest, outtree, sync, writer
from generator.errors import ConflictError, UsageError

HEADER = f"# {constants.GENERATED_HEADER}\n".encode()
MANAGED = ("infra",)


def files(**contents: str) -> dict[str, bytes]:
    return {f"infra/{name}": HEADER + text.encode() for name, text in contents.items()}


def render(
    root: Path, rendered: dict[str, bytes], force: bool = False, managed: tuple[str, ...] = MANAGED
) -> sync.Plan:
    plan = sync.plan(outtree.take(root, managed), rendered)
    writer.apply(root, plan, force=force)
    return plan


def test_first_render_creates_files_and_manifest(tmp_path: Path) -> None:
    plan = render(tmp_path, files(a="1", b="2"))
    assert [c.action for c in plan.changes] == ["create", "create"]
    assert (tmp_path / "infra/a").read_bytes() == HEADER + b"1"
    doc = json.loads((tmp_path / manifest.MANIFEST).read_text())
    assert doc["files"] == {
        "infra/a": manifest.digest(HEADER + b"1"),
        "infra/b": manifest.digest(HEADER + b"2"),
    }
    assert "pending" not in doc


def test_second_render_writes_nothing(tmp_path: Path) -> None:
    render(tmp_path, files(a="1", b="2"))
    before = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*") if p.is_file()}
    time.sleep(0.01)
    plan = render(tmp_path, files(a="1", b="2"))
    assert plan.changes == () and plan.unchanged == ("infra/a", "infra/b")
    after = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*") if p.is_file()}
    assert before == after


def test_only_changed_file_is_rewritten_and_keeps_its_mode(tmp_path: Path) -> None:
    render(tmp_path, files(a="1", b="2"))
    os.chmod(tmp_path / "infra/a", 0o600)
    untouched = (tmp_path / "infra/b").stat().st_mtime_ns
    plan = render(tmp_path, files(a="changed", b="2"))
    assert [(c.path, c.action) for c in plan.changes] == [("infra/a", "update")]
    assert (tmp_path / "infra/a").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "infra/b").stat().st_mtime_ns == untouched


def test_orphan_removed_user_file_kept(tmp_path: Path) -> None:
    render(tmp_path, files(a="1", b="2"))
    (tmp_path / "infra/notes.md").write_text("mine")
    plan = render(tmp_path, files(a="1"))
    assert [(c.path, c.action) for c in plan.changes] == [("infra/b", "remove")]
    assert not (tmp_path / "infra/b").exists()
    assert (tmp_path / "infra/notes.md").read_text() == "mine"


def test_emptied_directories_are_pruned(tmp_path: Path) -> None:
    managed = ("infra", "infra/x/deep")
    render(tmp_path, {"infra/x/deep/a": HEADER, "infra/b": HEADER}, managed=managed)
    render(tmp_path, {"infra/b": HEADER}, managed=managed)
    assert not (tmp_path / "infra/x").exists()
    assert (tmp_path / "infra").is_dir()


def test_hand_edited_file_stops_render_before_any_write(tmp_path: Path) -> None:
    render(tmp_path, files(a="1", b="2"))
    (tmp_path / "infra/a").write_bytes(HEADER + b"edited by hand")
    with pytest.raises(ConflictError) as exc:
        render(tmp_path, files(a="new", b="new"))
    assert "infra/a" in str(exc.value) and "--force" in str(exc.value)
    assert (tmp_path / "infra/b").read_bytes() == HEADER + b"2"  # nothing written
    render(tmp_path, files(a="new", b="new"), force=True)
    assert (tmp_path / "infra/a").read_bytes() == HEADER + b"new"


def test_hand_edited_orphan_is_kept_even_with_force(tmp_path: Path) -> None:
    render(tmp_path, files(a="1", b="2"))
    (tmp_path / "infra/b").write_bytes(HEADER + b"my precious changes")
    for force in (False, True):
        plan = render(tmp_path, files(a="1"), force=force)
        assert [c.action for c in plan.changes if c.path == "infra/b"] == []
        assert (tmp_path / "infra/b").read_bytes() == HEADER + b"my precious changes"
    assert [p for p, _ in plan.kept] == ["infra/b"]


def test_foreign_file_in_the_way_is_never_overwritten(tmp_path: Path) -> None:
    (tmp_path / "infra").mkdir()
    (tmp_path / "infra/a").write_text("a user's file, no header")
    with pytest.raises(ConflictError):
        render(tmp_path, files(a="1"))
    assert (tmp_path / "infra/a").read_text() == "a user's file, no header"


def test_stale_generated_file_without_manifest_entry_is_reported_not_removed(
    tmp_path: Path,
) -> None:
    render(tmp_path, files(a="1"))
    (tmp_path / "infra/stale.yaml").write_bytes(HEADER + b"x: 1\n")
    plan = sync.plan(outtree.take(tmp_path, MANAGED), files(a="1"))
    assert plan.changes == ()
    assert [(p, "manifest" in why) for p, why in plan.kept] == [("infra/stale.yaml", True)]


def test_diff_has_relative_paths(tmp_path: Path) -> None:
    render(tmp_path, files(a="1\n", b="2\n"))
    plan = sync.plan(outtree.take(tmp_path, MANAGED), files(a="one\n", c="3\n"))
    diff = sync.unified_diff(plan)
    assert "--- a/infra/a\n+++ b/infra/a\n" in diff
    assert "--- /dev/null\n+++ b/infra/c\n" in diff
    assert "--- a/infra/b\n+++ /dev/null\n" in diff
    assert str(tmp_path) not in diff


def test_pending_hashes_make_an_interrupted_render_recoverable(tmp_path: Path) -> None:
    """A render killed after writing some files must not make them look hand-edited."""
    render(tmp_path, files(a="1", b="2"))
    new = files(a="NEW", b="NEW")
    plan = sync.plan(outtree.take(tmp_path, MANAGED), new)
    # What apply() does first, then "crash" after one file.
    writer.write_atomic(
        tmp_path / manifest.MANIFEST,
        manifest.to_bytes(
            plan.old_manifest, {c.path: manifest.digest(c.new or b"") for c in plan.changes}
        ),
    )
    writer.write_atomic(tmp_path / "infra/a", new["infra/a"])
    # The user now changes the inputs again: a third content, no --force needed.
    render(tmp_path, files(a="THIRD", b="THIRD"))
    assert (tmp_path / "infra/a").read_bytes() == HEADER + b"THIRD"


@pytest.mark.parametrize("change", ["update", "create", "remove"])
def test_a_file_changed_after_the_plan_is_never_written_over(tmp_path: Path, change: str) -> None:
    """apply compares what it replaces or removes with what the plan read (compare and swap):
    a hand edit between plan and write is refused, before anything is written."""
    render(tmp_path, files(a="1", b="2"))
    manifest_before = (tmp_path / manifest.MANIFEST).read_bytes()
    rendered = {"update": files(a="NEW", b="2"), "create": files(a="1", b="2", c="3")}
    plan = sync.plan(outtree.take(tmp_path, MANAGED), rendered.get(change, files(a="1")))
    target = tmp_path / "infra" / {"update": "a", "create": "c", "remove": "b"}[change]
    target.write_bytes(b"the user's edit\n")
    with pytest.raises(ConflictError, match="changed while clustergen was rendering") as caught:
        writer.apply(tmp_path, plan, force=True)
    assert caught.value.paths == (f"infra/{target.name}",)
    assert target.read_bytes() == b"the user's edit\n"
    assert (tmp_path / manifest.MANIFEST).read_bytes() == manifest_before


def test_stale_temp_files_are_cleaned(tmp_path: Path) -> None:
    render(tmp_path, files(a="1"))
    stale = tmp_path / "infra" / f"{writer.TMP_PREFIX}leftover"
    stale.write_text("half")
    render(tmp_path, files(a="2"))
    assert not stale.exists()


def test_write_atomic_leaves_no_temp_file_on_error(tmp_path: Path) -> None:
    target = tmp_path / "d" / "f"
    with pytest.raises(TypeError):
        writer.write_atomic(target, "not bytes")  # type: ignore[arg-type]
    assert list((tmp_path / "d").iterdir()) == []


def _hold_lock(root: str, ready: multiprocessing.synchronize.Event, release: float) -> None:
    with writer.locked(Path(root)):
        ready.set()
        time.sleep(release)


def test_lock_keeps_two_renders_apart(tmp_path: Path) -> None:
    ready = multiprocessing.get_context("fork").Event()
    holder = multiprocessing.get_context("fork").Process(
        target=_hold_lock, args=(str(tmp_path), ready, 2.0)
    )
    holder.start()
    try:
        assert ready.wait(10)
        with pytest.raises(UsageError, match="another clustergen render"):  # noqa: SIM117
            with writer.locked(tmp_path, timeout=0.2):
                pass
        started = time.monotonic()
        with writer.locked(tmp_path, timeout=10):
            assert time.monotonic() - started > 0.5  # waited for the holder to finish
    finally:
        holder.join(10)


def test_a_file_that_only_carries_the_header_is_never_deleted(tmp_path: Path) -> None:
    """A user's copy of a generated file (not in the manifest) is reported, never removed:
    --force overrides hand edits of rendered files, not the conditions of removal."""
    render(tmp_path, files(a="1"))
    copy = tmp_path / "infra" / "my-copy"
    copy.write_bytes(HEADER + b"edited copy of a\n")
    plan = sync.plan(outtree.take(tmp_path, MANAGED), files(a="1"))
    assert plan.changes == () and plan.conflicts == ()
    assert [p for p, _ in plan.kept] == ["infra/my-copy"]
    writer.apply(tmp_path, plan, force=True)
    assert copy.exists()


@pytest.mark.parametrize(
    "entry",
    ["../victim.txt", "/ABSOLUTE", "infra/../../victim.txt", "./infra/a", "infra//a", "a\\b"],
)
def test_manifest_entries_outside_the_output_root_are_ignored(tmp_path: Path, entry: str) -> None:
    root = tmp_path / "root"
    root.mkdir()
    render(root, files(a="1"))
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    absolute = tmp_path / "absolute.txt"
    absolute.write_text("precious")
    entry = entry.replace("/ABSOLUTE", str(absolute))
    doc = json.loads((root / manifest.MANIFEST).read_text())
    doc["files"][entry] = manifest.digest(b"precious")
    (root / manifest.MANIFEST).write_text(json.dumps(doc))
    plan = sync.plan(outtree.take(root, MANAGED), files(a="1"))
    assert all(c.path == "infra/a" or c.action != "remove" for c in plan.changes), plan.changes
    writer.apply(root, plan, force=True)
    assert victim.read_text() == "precious" and absolute.read_text() == "precious"
    assert (root / "infra/a").read_bytes() == files(a="1")["infra/a"]
