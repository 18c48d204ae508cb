"""verify's fast HCL and YAML checks give the same verdicts as python-hcl2 and ruamel."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import hcl2
import pytest

from generator import verify
from generator.errors import InputError

HCL_SAMPLES = {
    "attributes": 'a = 1\nb = "x"\nc = [1, 2]\nd = { k = "v" }\n',
    "block": 'resource "x" "y" {\n  a = 1\n  nested {\n    b = true\n  }\n}\n',
    "interpolation": 'a = "${var.x}-y"\n',
    "escaped interpolation": 'a = "$${var.x}"\n',
    "keyword as name": "in = 1\nif = 2\n",
    "comments": "# c\n// d\n/* e */\na = 1\n",
    "no trailing newline": "a = 1",
    "empty": "",
    "duplicate attribute": "a = 1\na = 2\n",
    "block then attribute of the same name": "a {\n}\na = 1\n",
    "heredoc": "a = <<EOT\nline\nEOT\n",
    "directive": 'a = "%{ if true }y%{ endif }"\n',
    # Rejected by the grammar.
    "unclosed string": 'a = "x\n',
    "unclosed brace": "a {\n  b = 1\n",
    "missing value": "a =\n",
    "two values": "a = 1 2\n",
    "quoted attribute name": '"a" = 1\n',
    "unbalanced escaped interpolation": 'a = "$${"\n',
    # Rejected only by hcl2's transform / serializer.
    "attribute then block of the same name": "a = 1\na {\n}\n",
    "nested attribute then block": "x {\n  a = 1\n  a {\n  }\n}\n",
    "unterminated directive": 'a = "%{ if true }y"\n',
}


def _verdict(parse: Callable[[str], object], text: str) -> bool:
    try:
        parse(text)
    except Exception:
        return False
    return True


@pytest.mark.parametrize("name", sorted(HCL_SAMPLES))
def test_hcl_verdict_equals_hcl2_loads(name: str) -> None:
    text = HCL_SAMPLES[name]
    assert _verdict(verify._parse_hcl, text) == _verdict(hcl2.loads, text)


def test_samples_cover_accept_and_reject() -> None:
    verdicts = {_verdict(hcl2.loads, t) for t in HCL_SAMPLES.values()}
    assert verdicts == {True, False}


def test_fast_parser_decides_the_common_cases(monkeypatch: pytest.MonkeyPatch) -> None:
    """Valid outputs without directives never reach hcl2.loads (the slow path)."""

    def refuse(text: str) -> object:
        raise AssertionError("hcl2.loads called")

    monkeypatch.setattr(hcl2, "loads", refuse)
    verify._parse_hcl(HCL_SAMPLES["block"])
    with pytest.raises(AssertionError):
        verify._parse_hcl(HCL_SAMPLES["attribute then block of the same name"])


def test_rendered_hcl_accepted(rendered: Callable[[str], dict[str, bytes]]) -> None:
    files = rendered("multi-host")
    hcl_files = {p: d for p, d in files.items() if p.endswith(verify.HCL_SUFFIXES)}
    assert hcl_files
    for data in hcl_files.values():
        text = data.decode()
        assert _verdict(verify._parse_hcl, text) == _verdict(hcl2.loads, text) is True


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
        "print(code, 'hcl2' in sys.modules, 'lark' in sys.modules)\n"
    )
    for command in ("render", "check"):
        result = subprocess.run(
            [sys.executable, "-c", probe.replace("{}", command)],
            capture_output=True,
            text=True,
            check=True,
        )
        assert result.stdout.split()[-3:] == ["0", "False", "False"], command


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
