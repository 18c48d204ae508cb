"""The repo's Taskfile and every rendered Taskfile pass go-task's schema and go-task itself."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft7Validator
from ruamel.yaml import YAML

from generator.options import Options
from helpers.paths import EXAMPLES, ROOT, TASKFILE
from helpers.tools import stand_in, tool


def schema_errors(reference_dir: Path, document: Any) -> list[str]:
    schema = json.loads((reference_dir / "taskfile" / "schema.json").read_text())
    validator = Draft7Validator(schema)
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(document)]


def load(data: bytes) -> Any:
    return YAML(typ="safe", pure=True).load(data)


def test_repo_taskfile_matches_schema(reference_dir: Path) -> None:
    assert schema_errors(reference_dir, load((ROOT / "Taskfile.yaml").read_bytes())) == []


@pytest.mark.parametrize("example", EXAMPLES)
def test_rendered_taskfile_matches_schema(
    example: str, reference_dir: Path, rendered: Callable[[str], dict[str, bytes]]
) -> None:
    assert schema_errors(reference_dir, load(rendered(example)[TASKFILE])) == []


def test_schema_check_can_fail(reference_dir: Path) -> None:
    assert schema_errors(reference_dir, {"version": "3", "tasks": {"x": {"cmds": 5}}})


@pytest.mark.parametrize("example", EXAMPLES)
def test_go_task_lists_rendered_tasks(
    example: str, tmp_path: Path, rendered: Callable[[str], dict[str, bytes]]
) -> None:
    taskfile = tmp_path / "Taskfile.yaml"
    taskfile.write_bytes(rendered(example)[TASKFILE])
    result = subprocess.run(
        [tool("task"), "--taskfile", str(taskfile), "--list-all"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    tasks = load(rendered(example)[TASKFILE])["tasks"]
    for name, task in tasks.items():
        # Internal tasks (a confirmation step) are not for users: go-task hides them.
        assert (f"* {name}:" in result.stdout) != bool(task.get("internal")), name


def test_task_configure_and_check(tmp_path: Path, example_copy: Callable[[str], Path]) -> None:
    config = example_copy("homelab")
    out = tmp_path / "out"
    env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "HOME": str(tmp_path)}

    def task(name: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                tool("task"),
                "--taskfile",
                str(ROOT / "Taskfile.yaml"),
                name,
                f"CONFIG_DIR={config}",
                f"OUT={out}",
            ],
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
        )

    result = task("configure")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "valid: 5 node(s)" in result.stdout
    assert (out / TASKFILE).is_file()
    result = task("check")
    assert result.returncode == 0, result.stdout + result.stderr
    (out / TASKFILE).write_text("# drift\n")
    assert task("check").returncode != 0


def test_sops_finds_the_init_age_key_unless_told_otherwise(
    tmp_path: Path, example_copy: Callable[[str], Path]
) -> None:
    from generator.pipeline import render_tree

    config = example_copy("homelab")
    tasks = load(render_tree(Options(config)).files[TASKFILE])["tasks"]
    assert not any("SOPS_AGE_KEY_FILE" in (t.get("env") or {}) for t in tasks.values())
    (config / "secrets.sops.yaml").write_text("placeholder: homelab has no capi, never decrypted\n")
    taskfile = load(render_tree(Options(config)).files[TASKFILE])
    # The environment of a task that runs sops, with a command that only shows it. Only the
    # tasks that run sops set SOPS_AGE_KEY_FILE: a host Taskfile's own setting stays in force.
    tasks = taskfile["tasks"]
    sops_tasks = [n for n, t in tasks.items() if "SOPS_AGE_KEY_FILE" in t.get("env", {})]
    assert sops_tasks and all("sops --decrypt" in json.dumps(tasks[n]) for n in sops_tasks)
    env_of_plan = taskfile["tasks"]["tofu:plan"]["env"]
    taskfile["tasks"]["show-key"] = {"env": env_of_plan, "cmds": ['echo "key=$SOPS_AGE_KEY_FILE"']}
    target = tmp_path / ".taskfiles/infrastructure/Taskfile.yaml"
    target.parent.mkdir(parents=True)
    target.write_text(json.dumps(taskfile))
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    run = [tool("task"), "--silent", "--taskfile", str(target), "show-key"]
    result = subprocess.run(run, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == f"key={tmp_path}/age.key", result.stderr
    env["SOPS_AGE_KEY_FILE"] = "/elsewhere/keys.txt"
    result = subprocess.run(run, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "key=/elsewhere/keys.txt", result.stderr


FAKE_CURL = """#!/bin/sh
# Stand-in for curl: records the posted data (a file or stdin) and answers like the factory.
for arg in "$@"; do
  case "$arg" in @-) cat > "$RECORD" ;; @*) cp "${arg#@}" "$RECORD" ;; esac
done
printf '{"id":"%s"}' "$ANSWER_ID"
"""


@pytest.mark.parametrize("example", EXAMPLES)
def test_schematic_upload_posts_the_schematic_and_checks_the_id(
    example: str, tmp_path: Path, rendered: Callable[[str], dict[str, bytes]]
) -> None:
    from generator.pipeline import render_tree

    files = rendered(example)
    context = render_tree(Options(ROOT / "examples" / example)).context
    (tmp_path / "Taskfile.yaml").write_bytes(files[TASKFILE])
    bin_dir = tmp_path / "bin"
    stand_in(bin_dir / "curl", FAKE_CURL)
    record = tmp_path / "posted.yaml"
    env = {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "RECORD": str(record),
        "ANSWER_ID": context["schematic"]["id"],
    }
    run = [tool("task"), "schematic:upload"]
    if not context["schematic"]["known"]:
        # A given talos_schematic_id: the task only checks that the factory knows it.
        (bin_dir / "curl").write_text('#!/bin/sh\necho "$@" > "$RECORD"\nexit "${FAIL:-0}"\n')
        ok = subprocess.run(run, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
        assert ok.returncode == 0, ok.stderr
        assert f"/schematics/{context['schematic']['id']}" in record.read_text()
        env["FAIL"] = "22"
        bad = subprocess.run(run, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
        assert bad.returncode != 0
        return
    ok = subprocess.run(run, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stderr
    assert f"schematic {context['schematic']['id']} is registered" in ok.stdout
    assert record.read_text() == context["schematic"]["yaml"]
    env["ANSWER_ID"] = "0" * 64
    bad = subprocess.run(run, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert bad.returncode != 0
    assert f"expected id {context['schematic']['id']}" in bad.stderr
