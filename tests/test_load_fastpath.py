"""The fast (safe, libyaml) input load yields exactly the round-trip loader's data, or steps
aside so the round-trip loader reports the problem as always."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from generator import inputs, load, plaincopy
from generator.errors import InputError, Unusual
from helpers.paths import EXAMPLES_DIR as EXAMPLES
from helpers.paths import FIXTURES_DIR as FIXTURES

YAML_FILES = sorted([*FIXTURES.rglob("*.yaml"), *EXAMPLES.rglob("*.yaml")])


def _outcome(path: Path, *, fast: bool) -> object:
    try:
        return load.load_yaml(path, shown="f.yaml", fast=fast).data
    except InputError as exc:
        return exc.diagnostics


@pytest.mark.parametrize("path", YAML_FILES, ids=lambda p: str(p.relative_to(p.parents[2])))
def test_fast_load_equals_round_trip(path: Path) -> None:
    fast, slow = _outcome(path, fast=True), _outcome(path, fast=False)
    assert fast == slow
    # bool stays bool, int stays int: equality alone would accept True == 1.
    assert repr(fast) == repr(slow)


def test_fixture_matrix_is_not_empty() -> None:
    assert len(YAML_FILES) > 20


@pytest.mark.parametrize(
    ("text", "fast_path"),
    [
        ("a: 1\nb: [x, {c: true}]\n", True),
        ("a: 2024-01-01\n", False),  # a timestamp: the round-trip loader decides its value
        ("a: !custom x\n", False),
        ("a: &x [1]\nb: *x\n", True),
    ],
)
def test_which_documents_take_the_fast_path(text: str, fast_path: bool, tmp_path: Path) -> None:
    path = tmp_path / "f.yaml"
    path.write_text(text)
    doc = load.load_yaml(path, fast=True)
    assert doc.positions is not fast_path
    assert doc.data == load.load_yaml(path).data


def test_fast_path_refuses_duplicate_keys(tmp_path: Path) -> None:
    path = tmp_path / "f.yaml"
    path.write_text("a: 1\nb: 2\na: 3\n")
    with pytest.raises(InputError) as caught:
        load.load_yaml(path, fast=True)
    (diag,) = caught.value.diagnostics
    assert diag.line == 3
    assert "duplicate key 'a' (first defined on line 1)" in diag.message


def test_fast_path_keeps_the_alias_budget(tmp_path: Path) -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 7)]
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError) as caught:
        load.load_yaml(path, fast=True)
    assert "alias bomb" in caught.value.diagnostics[0].message


def test_warnings_come_with_positions(tmp_path: Path) -> None:
    """A warning makes read() redo the load with positions, so it points where it always did."""
    config = tmp_path / "c"
    config.mkdir()
    (config / "cluster.yaml").write_text((FIXTURES / "valid/minimal/cluster.yaml").read_text())
    nodes = (FIXTURES / "valid/minimal/nodes.yaml").read_text()
    (config / "nodes.yaml").write_text(nodes)
    quiet = inputs.read(config)
    assert not quiet.warnings
    assert not quiet.nodes.positions  # the fast path served the valid config

    # Two controllers: an even count is a warning (rules.controllers).
    data = load.load_yaml(config / "nodes.yaml").data
    controllers = [n for n in data["nodes"] if n.get("controller") is True]
    if len(controllers) % 2 == 1:
        nodes = nodes.replace("controller: false", "controller: true", 1)
        (config / "nodes.yaml").write_text(nodes)
    warned = inputs.read(config)
    assert warned.warnings and warned.nodes.positions
    (warning,) = warned.warnings
    assert (warning.line, warning.col) == load.load_yaml(config / "nodes.yaml").locate(["nodes"])
    assert (warning.line, warning.col) != (1, 1)


# --- the event builder (generator.yamlevents.plain) ------------------------------------------

YAML_ALPHABET = "ab1: -[]{},'\"!&*#\n~.?|>0tTruefnl_x%"


def _round_trip(text: str) -> object:
    """What the round-trip path makes of text: plain data or the exception type."""
    from ruamel.yaml import YAML

    try:
        yaml = YAML(typ="rt", pure=True)
        yaml.allow_duplicate_keys = False
        return plaincopy.to_plain(yaml.load(text), plaincopy.Budget())
    except Exception as exc:
        return type(exc)


@pytest.mark.parametrize("path", YAML_FILES, ids=lambda p: str(p.relative_to(p.parents[2])))
def test_event_builder_equals_round_trip_or_steps_aside(path: Path) -> None:
    from generator import yamlevents

    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        return  # load refuses it before parsing
    try:
        data = yamlevents.plain(text, load.MAX_VALUES)
    except Exception:
        return  # left to the safe / round-trip loaders, covered above
    assert repr(data) == repr(_round_trip(text))


def test_event_builder_serves_the_examples() -> None:
    """The plain inputs never fall through to the slower loaders."""
    from generator import yamlevents

    for path in sorted(EXAMPLES.glob("*/*.yaml")):
        yamlevents.plain(path.read_text(encoding="utf-8"), load.MAX_VALUES)


@pytest.mark.parametrize(
    "text",
    [
        "a: 0x1f\n",  # an int only the full load may read
        "a: 1e3\n",
        "a: .inf\n",
        "1: x\n",  # not a string key
        "a: &x 1\nb: *x\n",
        "a: !tag x\n",
        "a: 2024-01-01\n",
        "<<: {a: 1}\n",
        "---\na: 1\n---\nb: 2\n",
        "- a\n",
        "a: 1\na: 2\n",
        "%YAML 1.1\n---\na: yes\n",
        "a:\n" + "".join("  " * i + "- \n" for i in range(1, 60)),
    ],
)
def test_event_builder_leaves_the_unusual_aside(text: str) -> None:
    from generator import yamlevents

    with pytest.raises(Unusual):
        yamlevents.plain(text, load.MAX_VALUES)


def test_event_builder_keeps_the_value_budget() -> None:
    from generator import yamlevents

    with pytest.raises(Unusual):
        yamlevents.plain("a: [" + ", ".join(["1"] * 50) + "]\n", 40)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(alphabet=YAML_ALPHABET, max_size=60))
def test_event_builder_never_differs_from_round_trip(text: str) -> None:
    from generator import yamlevents

    try:
        data = yamlevents.plain(text, load.MAX_VALUES)
    except Exception:
        return
    assert repr(data) == repr(_round_trip(text)), text


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.sampled_from(
            [
                "a: ",
                "b: ",
                "c",
                "&x ",
                "*x",
                "\n",
                "\n  ",
                "---\n",
                "- ",
                "[",
                "]",
                "{",
                "}",
                ", ",
                "0b_",
                "0x1f",
                "1_0",
                "0o7",
                ".inf",
                "1.5",
                "-0.0",
                "+1",
                "01",
                "2024-01-01",
                "~",
                "!!str ",
                "<<: ",
                "'a'",
                '"a"',
                "? ",
                ": ",
                "true",
                "True",
                "1: ",
                "null: ",
                "|\n  t\n",
                ">\n  t\n",
                "# c\n",
                "yes",
                "%YAML 1.1\n",
            ]
        ),
        max_size=16,
    ).map("".join)
)
def test_event_builder_agrees_with_round_trip_on_yaml_pieces(text: str) -> None:
    from generator import yamlevents

    try:
        data = yamlevents.plain(text, load.MAX_VALUES)
    except Exception:
        return
    assert repr(data) == repr(_round_trip(text)), text


def test_top_level_tagged_scalar_is_reported_not_a_traceback(tmp_path: Path) -> None:
    """`!!` alone (found by test_properties' random bytes): a TaggedScalar without a position."""
    path = tmp_path / "cluster.yaml"
    path.write_bytes(b"!!")
    doc = load.load_yaml(path)
    assert doc.locate([]) == (1, 1)
