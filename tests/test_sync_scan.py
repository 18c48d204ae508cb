"""The snapshot (outtree.take) reads each output once and sync.plan scans only the directories
clustergen renders into; Snapshot.known recognises only bytes that are on disk and recorded in
the manifest."""

from __future__ import annotations

from pathlib import Path

from generator import constants, outtree, sync, writer

HEADER = f"# {constants.GENERATED_HEADER}\n".encode()
NESTED = ("infra", "infra/vars", "other")


def _rendered() -> dict[str, bytes]:
    return {p: HEADER + p.encode() + b"\n" for p in ("infra/a.yaml", "infra/vars/b.yaml")}


def test_only_the_rendered_directories_are_scanned(tmp_path: Path) -> None:
    writer.apply(tmp_path, sync.plan(outtree.take(tmp_path, NESTED), _rendered()))
    (tmp_path / "infra/vars/deeper").mkdir()
    (tmp_path / "infra/vars/deeper/x.yaml").write_bytes(HEADER)
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere/y.yaml").write_bytes(HEADER)
    plan = sync.plan(outtree.take(tmp_path, NESTED), _rendered())
    assert plan.changes == () and plan.kept == ()


def test_verified_needs_recorded_digest_and_same_bytes_on_disk(tmp_path: Path) -> None:
    files = _rendered()
    assert not outtree.take(tmp_path, NESTED).known(
        "infra/a.yaml", files["infra/a.yaml"]
    )  # no manifest
    writer.apply(tmp_path, sync.plan(outtree.take(tmp_path, NESTED), files))
    known = outtree.take(tmp_path, NESTED).known
    assert known("infra/a.yaml", files["infra/a.yaml"])
    assert not known("infra/a.yaml", files["infra/a.yaml"] + b"x: 1\n")  # new bytes
    assert not known("infra/c.yaml", files["infra/a.yaml"])  # not recorded for that path

    # The manifest still records the old digest, but the file on disk was changed.
    (tmp_path / "infra/a.yaml").write_bytes(b"edited\n")
    assert not outtree.take(tmp_path, NESTED).known("infra/a.yaml", files["infra/a.yaml"])
