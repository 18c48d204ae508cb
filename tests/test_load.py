"""Stage 1, load: positions for every value and one clear diagnostic per unreadable file."""

from __future__ import annotations

import contextlib
import time
import tracemalloc
from pathlib import Path

import pytest

from generator import load
from generator.errors import InputError


def _write(tmp_path: Path, text: str | bytes, name: str = "cluster.yaml") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


def _problems(path: Path) -> list[str]:
    with pytest.raises(InputError) as info:
        load.load_yaml(path, shown=path.name)
    return [f"{d.line}:{d.col}: {d.path}: {d.message}" for d in info.value.diagnostics]


def test_locate_points_at_values_and_keys(tmp_path: Path) -> None:
    doc = load.load_yaml(
        _write(tmp_path, "a: 1\nnodes:\n  - name: x\n    address: 10.0.0.1\n"), shown="f"
    )
    assert doc.locate(["a"]) == (1, 4)
    assert doc.locate(["nodes", 0, "address"]) == (4, 14)
    assert doc.locate(["nodes", 0, "address"], key=True) == (4, 5)
    assert doc.locate(["nodes", 0]) == (3, 5)
    # A missing key points at the nearest ancestor that exists.
    assert doc.locate(["nodes", 0, "mac_addr"]) == (3, 5)
    assert doc.locate(["nodes", 7]) == doc.locate(["nodes"])


def test_diag_formats_the_path(tmp_path: Path) -> None:
    doc = load.load_yaml(_write(tmp_path, "nodes:\n  - name: x\n"), shown="nodes.yaml")
    d = doc.diag(["nodes", 0, "name"], "bad", "fix it")
    assert (d.file, d.line, d.col, d.path, d.message, d.hint) == (
        "nodes.yaml",
        2,
        11,
        "nodes[0].name",
        "bad",
        "fix it",
    )
    assert load.format_path([]) == "(root)"


def test_plain_data_has_plain_types(tmp_path: Path) -> None:
    doc = load.load_yaml(
        _write(tmp_path, 'a: true\nb: 3\nc: 1.5\nd: "x"\ne: [1, no]\n1: k\nf:\ng: 0o17\n')
    )
    assert doc.data == {
        "a": True,
        "b": 3,
        "c": 1.5,
        "d": "x",
        "e": [1, "no"],
        "1": "k",
        "f": None,
        "g": 15,
    }
    assert type(doc.data["a"]) is bool
    assert type(doc.data["b"]) is int
    assert type(doc.data["d"]) is str


def test_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    assert load.load_yaml(_write(tmp_path, "\ufeffa: 1\n")).data == {"a": 1}


def test_tab_after_the_indentation_is_fine(tmp_path: Path) -> None:
    assert load.load_yaml(_write(tmp_path, "a: 1 #\tnote\nb: 'x\ty'\n")).data == {
        "a": 1,
        "b": "x\ty",
    }


def test_syntax_error_has_its_line(tmp_path: Path) -> None:
    (problem,) = _problems(_write(tmp_path, "a: 1\nb: [1, 2\nc: 3\n"))
    assert problem.startswith("3:2: (file): YAML syntax error: ")
    assert "line 2" in problem


def test_unexpected_end_of_file_points_at_the_last_line(tmp_path: Path) -> None:
    (problem,) = _problems(_write(tmp_path, "a: 1\nb: [1, 2\n"))
    assert problem == (
        "2:9: (file): YAML syntax error: expected ',' or ']', but got the end of the file "
        "(while parsing a flow sequence started on line 2)"
    )


def test_duplicate_key_names_both_lines(tmp_path: Path) -> None:
    (problem,) = _problems(_write(tmp_path, "a: 1\nb: 2\na: 3\n"))
    assert problem == "3:1: (file): duplicate key 'a' (first defined on line 1)"


def test_duplicate_key_finds_the_first_line_not_the_mapping_start(tmp_path: Path) -> None:
    (problem,) = _problems(_write(tmp_path, "a: 1\nb: 2\nc: 3\nb: 4\n"))
    assert problem == "4:1: (file): duplicate key 'b' (first defined on line 2)"
    (problem,) = _problems(_write(tmp_path, "n:\n  - x: 1\n    y: 2\n    y: 3\n"))
    assert problem == "4:5: (file): duplicate key 'y' (first defined on line 3)"
    (problem,) = _problems(_write(tmp_path, "z: 0\na: {k: 1, k: 2}\n"))
    assert problem == "2:11: (file): duplicate key 'k' (in the mapping that starts on line 2)"


def test_nested_duplicate_key(tmp_path: Path) -> None:
    (problem,) = _problems(_write(tmp_path, "nodes:\n  - name: a\n    name: b\n"))
    assert problem == "3:5: (file): duplicate key 'name' (first defined on line 2)"


def test_every_tab_indented_line_is_reported(tmp_path: Path) -> None:
    problems = _problems(_write(tmp_path, "a:\n\tb: 1\n  \tc: 2\n"))
    assert problems == [
        "2:1: (file): tab character in indentation",
        "3:3: (file): tab character in indentation",
    ]


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n", "---\n", "\ufeff"])
def test_empty_file(tmp_path: Path, text: str) -> None:
    assert _problems(_write(tmp_path, text)) == ["1:1: (file): file is empty"]


def test_non_utf8_points_at_the_byte(tmp_path: Path) -> None:
    (problem,) = _problems(_write(tmp_path, b"a: 1\nb: caf\xe9\n"))
    assert problem == "2:7: (file): not valid UTF-8 (byte 0xe9)"


def test_missing_file(tmp_path: Path) -> None:
    assert _problems(tmp_path / "nope.yaml") == ["1:1: (file): file not found"]


def test_directory_instead_of_file(tmp_path: Path) -> None:
    (tmp_path / "dir.yaml").mkdir()
    (problem,) = _problems(tmp_path / "dir.yaml")
    assert "directory" in problem


def test_oversized_file_is_rejected_before_parsing(tmp_path: Path) -> None:
    path = _write(tmp_path, "a: " + "x" * (load.MAX_BYTES + 10) + "\n")
    (problem,) = _problems(path)
    assert f"larger than {load.MAX_BYTES} bytes" in problem


def _bomb(levels: int, fan: int) -> str:
    lines = [f"l0: &l0 [{', '.join(['x'] * fan)}]"]
    for i in range(1, levels):
        lines.append(f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * fan)}]")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    "text",
    [
        _bomb(9, 10),  # billion laughs: 10**9 values from a 1 KB file
        # Few values, each a long string: bounded by characters, not only by count.
        'a: &a "' + "x" * 200_000 + '"\nb: [' + ", ".join(["*a"] * 2000) + "]\n",
    ],
    ids=["billion-laughs", "long-string"],
)
def test_alias_bomb_is_rejected_fast_with_bounded_memory(tmp_path: Path, text: str) -> None:
    path = _write(tmp_path, text)
    tracemalloc.start()
    started = time.perf_counter()
    try:
        (problem,) = _problems(path)
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert time.perf_counter() - started < 10
    assert peak < 200 * 1024 * 1024
    assert "alias bomb" in problem


def test_moderate_alias_use_is_fine(tmp_path: Path) -> None:
    doc = load.load_yaml(_write(tmp_path, "a: &s {cores: 2}\nb: *s\nc: [*s, *s]\n"))
    assert doc.data["c"] == [{"cores": 2}, {"cores": 2}]
    # The plain copy is independent: changing one value does not change its aliases.
    doc.data["b"]["cores"] = 3
    assert doc.data["a"]["cores"] == 2


def test_recursive_alias_does_not_crash(tmp_path: Path) -> None:
    for text in ("a: &a [*a]\n", "a: &a {b: *a}\n"):
        path = _write(tmp_path, text)
        with contextlib.suppress(InputError):
            load.load_yaml(path)


def test_deep_flow_nesting_is_rejected_before_parsing(tmp_path: Path) -> None:
    # ruamel's scanner is quadratic in flow depth: 5000 levels would take minutes.
    started = time.perf_counter()
    (problem,) = _problems(_write(tmp_path, "a: " + "[" * 5000 + "]" * 5000 + "\n"))
    assert time.perf_counter() - started < 2
    assert problem == f"1:{4 + load.MAX_DEPTH}: (file): nested deeper than {load.MAX_DEPTH} levels"


def test_deep_block_nesting_is_one_diagnostic(tmp_path: Path) -> None:
    text = "a:\n" + "".join(" " * i + "- \n" for i in range(0, 2000, 2))
    (problem,) = _problems(_write(tmp_path, text))
    assert problem.startswith("1:1: (file): ")


def test_multiple_documents(tmp_path: Path) -> None:
    (problem,) = _problems(_write(tmp_path, "a: 1\n---\nb: 2\n"))
    assert problem.startswith("2:1: (file): YAML syntax error: ")
    assert "single document" in problem


def test_display_name_is_relative_below_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sub").mkdir()
    assert load.display_name(tmp_path / "sub" / "nodes.yaml") == str(Path("sub") / "nodes.yaml")
    assert load.display_name(tmp_path.parent / "x.yaml") == str(tmp_path.parent / "x.yaml")
