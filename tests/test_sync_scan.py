"""sync.plan reads each output once and scans only the directories clustergen renders into;
sync.verified recognises only bytes that are on disk and recorded in the manifest."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from generator import constants, safefs, sync

HEADER = f"# {constants.GENERATED_HEADER}\n".encode()
NESTED = ("infra", "infra/vars", "other")


def _rendered() -> dict[str, bytes]:
    return {p: HEADER + p.encode() + b"\n" for p in ("infra/a.yaml", "infra/vars/b.yaml")}


def test_only_the_rendered_directories_are_scanned(tmp_path: Path) -> None:
    sync.apply(tmp_path, sync.plan(tmp_path, _rendered(), NESTED))
    (tmp_path / "infra/vars/deeper").mkdir()
    (tmp_path / "infra/vars/deeper/x.yaml").write_bytes(HEADER)
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere/y.yaml").write_bytes(HEADER)
    plan = sync.plan(tmp_path, _rendered(), NESTED)
    assert plan.changes == () and plan.kept == ()


def test_plan_reads_every_file_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    files = _rendered()
    sync.apply(tmp_path, sync.plan(tmp_path, files, NESTED))
    stale = tmp_path / "infra/vars/stale.yaml"
    stale.write_bytes(HEADER)  # generated, not recorded: only the header scan finds it

    opened: list[str] = []
    real_read = safefs.Tree.read

    def counting_read(self: safefs.Tree, rel: str, **kwargs: Any) -> bytes | None:
        opened.append(rel)
        return real_read(self, rel, **kwargs)

    monkeypatch.setattr(safefs.Tree, "read", counting_read)
    plan = sync.plan(tmp_path, files, NESTED)
    # Each output once, and the stale file once (the scan keeps the bytes it read).
    outputs = sorted(o for o in opened if not o.startswith(".clustergen"))
    assert outputs == ["infra/a.yaml", "infra/vars/b.yaml", "infra/vars/stale.yaml"]
    assert [p for p, _ in plan.kept] == ["infra/vars/stale.yaml"]


def test_verified_needs_recorded_digest_and_same_bytes_on_disk(tmp_path: Path) -> None:
    files = _rendered()
    assert not sync.verified(tmp_path)("infra/a.yaml", files["infra/a.yaml"])  # no manifest
    sync.apply(tmp_path, sync.plan(tmp_path, files, NESTED))
    known = sync.verified(tmp_path)
    assert known("infra/a.yaml", files["infra/a.yaml"])
    assert not known("infra/a.yaml", files["infra/a.yaml"] + b"x: 1\n")  # new bytes
    assert not known("infra/c.yaml", files["infra/a.yaml"])  # not recorded for that path

    # The manifest still records the old digest, but the file on disk was changed.
    (tmp_path / "infra/a.yaml").write_bytes(b"edited\n")
    assert not sync.verified(tmp_path)("infra/a.yaml", files["infra/a.yaml"])
