"""verify's HCL verdicts are HashiCorp's (hashicorp/hcl via pygohcl), its YAML verdicts
ruamel's."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import hcl2
import pygohcl
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from generator import verify
from generator.errors import HCLRejected, InputError

# name -> (text, accepted by HashiCorp's HCL parser, the parser OpenTofu and Packer use)
HCL_SAMPLES = {
    "attributes": ('a = 1\nb = "x"\nc = [1, 2]\nd = { k = "v" }\n', True),
    "block": ('resource "x" "y" {\n  a = 1\n  nested {\n    b = true\n  }\n}\n', True),
    "interpolation": ('a = "${var.x}-y"\n', True),
    "escaped interpolation": ('a = "$${var.x}"\n', True),
    "keyword as name": ("in = 1\nif = 2\n", True),
    "comments": ("# c\n// d\n/* e */\na = 1\n", True),
    "no trailing newline": ("a = 1", True),
    "empty": ("", True),
    "block then attribute of the same name": ("a {\n}\na = 1\n", True),
    "heredoc": ("a = <<EOT\nline\nEOT\n", True),
    "directive": ('a = "%{ if true }y%{ endif }"\n', True),
    "unclosed string": ('a = "x\n', False),
    "unclosed brace": ("a {\n  b = 1\n", False),
    "missing value": ("a =\n", False),
    "two values": ("a = 1 2\n", False),
    "quoted attribute name": ('"a" = 1\n', False),
    "unterminated directive": ('a = "%{ if true }y"\n', False),
    # Where python-hcl2 (the previous verdict) differs, HashiCorp's parser decides:
    # hclsyntax refuses an argument set twice in one body ("Attribute redefined"), as
    # OpenTofu does; python-hcl2 silently keeps the last value.
    "duplicate attribute": ("a = 1\na = 2\n", False),
    # `$${` is the escape for a literal `${`: the string is the three characters `${"`
    # minus the quote, i.e. valid HCL; python-hcl2's grammar reads it as an open template.
    "unbalanced escaped interpolation": ('a = "$${"\n', True),
    # An attribute and a block of the same name are different body items to the parser
    # (only a provider schema could refuse them); python-hcl2's serializer cannot hold both.
    "attribute then block of the same name": ("a = 1\na {\n}\n", True),
    "nested attribute then block": ("x {\n  a = 1\n  a {\n  }\n}\n", True),
    # The parser accepts it; only pygohcl's conversion to JSON cannot nest the block under
    # the attribute's value (HCLInternalError "cannot convert ..."), which is no verdict.
    "attribute then labelled block of the same name": ('a = 1\na "x" {\n}\n', True),
}
# The samples on which python-hcl2 gives the other verdict.
HCL2_DIFFERS = {
    "duplicate attribute",
    "unbalanced escaped interpolation",
    "attribute then block of the same name",
    "nested attribute then block",
    "attribute then labelled block of the same name",
}


def _verdict(parse: Callable[[str], object], text: str) -> bool:
    try:
        parse(text)
    except Exception:
        return False
    return True


@pytest.mark.parametrize("name", sorted(HCL_SAMPLES))
def test_hcl_verdict_is_hashicorps(name: str) -> None:
    text, accepted = HCL_SAMPLES[name]
    assert _verdict(verify._parse_hcl, text) is accepted
    try:
        pygohcl.loads(text)
    except pygohcl.HCLInternalError as exc:
        assert accepted and str(exc).startswith("cannot convert")  # parsed, not converted
    except pygohcl.HCLParseError:
        assert not accepted
    else:
        assert accepted


def test_nul_is_refused_before_the_c_string_would_cut_it() -> None:
    """pygohcl passes a C string, so "x" would be all it saw of this text; verify refuses
    a NUL itself (no template emits one) instead of passing a truncated file."""
    assert _verdict(pygohcl.loads, 'a = "x"\n\0 = = broken\n') is True
    with pytest.raises(HCLRejected, match="NUL") as caught:
        verify._parse_hcl('a = "x"\n\0 = = broken\n')
    assert caught.value.line == 2


@pytest.mark.parametrize("name", sorted(HCL_SAMPLES))
def test_where_python_hcl2_differs(name: str) -> None:
    """The differences from the previous verdict are exactly the documented ones."""
    text, accepted = HCL_SAMPLES[name]
    assert (_verdict(hcl2.loads, text) is not accepted) is (name in HCL2_DIFFERS)


def test_samples_cover_accept_and_reject() -> None:
    assert {accepted for _, accepted in HCL_SAMPLES.values()} == {True, False}


def test_python_hcl2_only_words_rejections(monkeypatch: pytest.MonkeyPatch) -> None:
    """Accepted text never reaches python-hcl2; a rejection is worded by it when it
    refuses the text too, by HashiCorp's parser (with the output's line) otherwise."""
    calls: list[str] = []
    real = hcl2.loads
    monkeypatch.setattr(hcl2, "loads", lambda text: calls.append(text) or real(text))
    verify._parse_hcl(HCL_SAMPLES["block"][0])
    assert calls == []
    with pytest.raises(HCLRejected) as caught:
        verify._parse_hcl('b = 1\nc = "x"\nb = 2\n')
    assert len(calls) == 1
    assert caught.value.line == 3
    assert str(caught.value).startswith("Attribute redefined;")
    assert "already set at line 1, column 1" in str(caught.value)


def test_hcl_parsed_beside_the_yaml_checks(monkeypatch: pytest.MonkeyPatch) -> None:
    """HCL goes to one worker thread while YAML is checked on the caller's; the problems
    still come back in the order of the files."""
    import threading

    threads: dict[str, str] = {}
    real_hcl, real_yaml = verify._parse_hcl, verify._parse_yaml

    def hcl(text: str) -> None:
        threads[text] = threading.current_thread().name
        real_hcl(text)

    def yaml(text: str) -> None:
        threads[text] = threading.current_thread().name
        real_yaml(text)

    monkeypatch.setattr(verify, "_parse_hcl", hcl)
    monkeypatch.setattr(verify, "_parse_yaml", yaml)
    with pytest.raises(InputError) as caught:
        verify.verify({"a.tf": b"x = = 1\n", "b.yaml": b"a: [\n", "c.hcl": b"y = {\n"})
    assert [d.file for d in caught.value.diagnostics] == ["a.tf", "b.yaml", "c.hcl"]
    assert threads["x = = 1\n"] == threads["y = {\n"] == "verify-hcl"
    assert threads["a: [\n"] == threading.main_thread().name


def test_rendered_hcl_accepted(rendered: Callable[[str], dict[str, bytes]]) -> None:
    files = rendered("multi-host")
    hcl_files = {p: d for p, d in files.items() if p.endswith(verify.HCL_SUFFIXES)}
    assert hcl_files
    for data in hcl_files.values():
        text = data.decode()
        assert _verdict(verify._parse_hcl, text) is True


def test_broken_hcl_reports_the_line() -> None:
    with pytest.raises(InputError) as caught:
        verify.verify({"x.tf": b'a = 1\nb = "ok"\nc = = 3\n'})
    (diag,) = caught.value.diagnostics
    assert diag.line == 3
    assert diag.file == "x.tf"
    assert "does not parse" in diag.message


YAML_SAMPLES = {
    "mapping": "a: 1\nb: [x, y]\n",
    "documents": "---\na: 1\n---\nb: 2\n",
    "unsafe tag": "a: !unsafe '{{ x }}'\n",
    "unknown tag": "a: !vault x\n",
    "duplicate key": "a: 1\na: 2\n",
    "bad indentation": "a:\n  b: 1\n c: 2\n",
    "unclosed flow": "a: [1, 2\n",
    # Left to the full load by the event check:
    "timestamp": "a: 2024-01-01\n",
    "bad timestamp": "a: 2024-13-45\n",
    "anchor and alias": "a: &x [1]\nb: *x\n",
    "undefined alias": "a: *x\n",
    "alias into an earlier document": "a: &x 1\n---\nb: *x\n",
    "binary int without digits": "a: 0b_\n",
    "alias as a key": "a: &x k\n*x : 1\n",
    "merge key": "a: &x {k: 1}\nb:\n  <<: *x\n",
    "unsafe on a mapping": "a: !unsafe {b: 1}\n",
    "quoted duplicate key": "a: 1\n'a': 2\n",
    "integer keys": "1: a\n1: b\n",
    "yaml 1.1 directive": "%YAML 1.1\n---\na: yes\n",
    "deep block nesting": "a:\n" + "".join("  " * i + "- \n" for i in range(1, 60)),
}


@pytest.mark.parametrize("name", sorted(YAML_SAMPLES))
def test_yaml_verdict_equals_pure_ruamel(name: str) -> None:
    from ruamel.yaml import YAML
    from ruamel.yaml.constructor import SafeConstructor

    class Pure(SafeConstructor):  # type: ignore[misc]
        pass

    Pure.add_constructor("!unsafe", lambda loader, node: loader.construct_scalar(node))
    pure = YAML(typ="safe", pure=True)
    pure.Constructor = Pure

    def pure_parse(text: str) -> None:
        list(pure.load_all(text))

    text = YAML_SAMPLES[name]
    assert _verdict(verify._parse_yaml, text) == _verdict(pure_parse, text)


YAML_ALPHABET = "ab1: -[]{},'\"!&*#\n~.?|>0tTrue<%_xo"


def _full_yaml(text: str) -> None:
    for _ in verify._yaml().load_all(text):
        pass


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(alphabet=YAML_ALPHABET, max_size=60))
def test_event_check_never_accepts_what_the_full_load_refuses(text: str) -> None:
    from generator import yamlevents

    try:
        yamlevents.check(text)
    except Exception:
        return  # the full load decides
    _full_yaml(text)  # raises if the event check was wrong


# Pieces of YAML that reach every branch of the event check: anchors, aliases, documents,
# tags, numbers the resolver reads in surprising ways, keys of every kind.
YAML_PIECES = st.sampled_from(
    [
        "a: ",
        "b: ",
        "a",
        "&x ",
        "&y ",
        "*x",
        "*y",
        "\n",
        "\n  ",
        "---\n",
        "...\n",
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
        "1e3",
        "2024-01-01",
        "~",
        "!unsafe ",
        "!!str ",
        "!x ",
        "<<: ",
        "'a'",
        '"a"',
        "? ",
        ": ",
        "true",
        "%YAML 1.1\n",
        "1: ",
        "null: ",
        "|\n  t\n",
        "# c\n",
    ]
)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(YAML_PIECES, max_size=16).map("".join))
@example("&x a: &x ")  # found by Hypothesis: a reused anchor, which the full load refuses
@example("a: &x\nb: &x c\n")
def test_event_check_agrees_with_the_full_load_on_yaml_pieces(text: str) -> None:
    from generator import yamlevents

    try:
        yamlevents.check(text)
    except Exception:
        return
    _full_yaml(text)


def test_event_check_decides_every_rendered_yaml(
    rendered: Callable[[str], dict[str, bytes]],
) -> None:
    """The outputs are plain YAML: none falls through to the slower full load."""
    from generator import yamlevents

    files = rendered("multi-host")
    yaml_files = [d for p, d in files.items() if p.endswith(verify.YAML_SUFFIXES)]
    assert yaml_files
    for data in yaml_files:
        yamlevents.check(data.decode())


def test_unsafe_constructor_stays_local() -> None:
    from ruamel.yaml import YAML

    verify._parse_yaml("a: !unsafe x\n")
    with pytest.raises(Exception, match="unsafe"):
        YAML(typ="safe").load("a: !unsafe x\n")


def test_yaml_uses_libyaml_when_installed() -> None:
    pytest.importorskip("_ruamel_yaml")
    assert "CParser" in verify._yaml().Parser.__name__


def test_unchanged_outputs_skip_the_parsers() -> None:
    calls: list[str] = []
    verify.verify({"a.tf": b"x = = 1\n"}, skip=lambda path, data: calls.append(path) or True)
    assert calls == ["a.tf"]


def test_unchanged_tree_skips_verify_and_never_imports_hcl2(
    example_copy: Callable[[str], Path],
) -> None:
    config = example_copy("multi-host")
    from generator.cli import main

    assert main(["-C", str(config), "render"]) == 0
    probe = (
        "import sys\n"
        "from generator.cli import main\n"
        f"code = main(['-C', {str(config)!r}, '{{}}'])\n"
        "print(code, 'hcl2' in sys.modules, 'lark' in sys.modules, 'pygohcl' in sys.modules)\n"
    )
    for command in ("render", "check"):
        result = subprocess.run(
            [sys.executable, "-c", probe.replace("{}", command)],
            capture_output=True,
            text=True,
            check=True,
        )
        assert result.stdout.split()[-4:] == ["0", "False", "False", "False"], command


def test_only_new_or_changed_outputs_are_parsed(
    example_copy: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from generator.cli import main

    config = example_copy("multi-host")
    assert main(["-C", str(config), "render"]) == 0
    parsed: list[str] = []
    real_hcl, real_yaml = verify._parse_hcl, verify._parse_yaml
    monkeypatch.setattr(verify, "_parse_hcl", lambda t: parsed.append(t) or real_hcl(t))
    monkeypatch.setattr(verify, "_parse_yaml", lambda t: parsed.append(t) or real_yaml(t))
    assert main(["-C", str(config), "render"]) == 0
    assert parsed == []

    manifest = json.loads((config / ".clustergen/manifest.json").read_text())
    target = next(p for p in manifest["files"] if p.endswith(".tfvars"))
    (config / target).write_text("edited = 1\n")  # disk differs from the recorded bytes
    assert main(["-C", str(config), "check"]) == 1
    assert len(parsed) == 1 and parsed[0].startswith("# generated")
