"""Measure the stages of one render and cheaper alternatives for the expensive ones.

Usage: python benchmarks/alternatives.py CONFIG_DIR [--repeat N]

In process, CPU time (time.process_time, best of --repeat), so the numbers stay comparable
on a busy machine. Each line names a stage as clustergen runs it today, or an alternative
that would give the same verdict (parse or not, same data); the alternatives are what the
optimisation phase can pick from. Some alternatives need packages that are optional here
(PyYAML with libyaml); they are skipped with a note when missing.
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from generator import inputs, model, render, settings, validate, verify
from generator.load import load_yaml


def cpu(fn: Callable[[], Any], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.process_time()
        fn()
        best = min(best, time.process_time() - start)
    return best


def each(parse: Callable[[str], object], texts: dict[str, str]) -> None:
    for text in texts.values():
        parse(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("config", type=Path)
    parser.add_argument("--repeat", type=int, default=3)
    ns = parser.parse_args(argv)
    config: Path = ns.config
    rep: int = ns.repeat
    rows: list[tuple[str, float]] = []

    def measure(label: str, fn: Callable[[], Any]) -> None:
        rows.append((label, cpu(fn, rep)))
        print(f"{rows[-1][1] * 1e3:10.1f} ms  {label}", flush=True)

    nodes_path = config / "nodes.yaml"
    measure("load: nodes.yaml, ruamel round-trip (today)", lambda: load_yaml(nodes_path))
    try:
        import yaml as pyyaml  # type: ignore[import-untyped,unused-ignore]

        c_loader = pyyaml.CSafeLoader
        text = nodes_path.read_text(encoding="utf-8")
        measure("load: nodes.yaml, PyYAML CSafeLoader", lambda: pyyaml.load(text, c_loader))
    except (ImportError, AttributeError):
        c_loader = None
        print("   (PyYAML with libyaml not installed: C loader alternatives skipped)")

    read = inputs.read(config)
    measure(
        "validate: schema + rules (today, validator cached)",
        lambda: validate.validate(read.cluster, read.nodes),
    )
    measure(
        "validate: JSON Schema of nodes.yaml", lambda: validate.check_schema(read.nodes, "nodes")
    )

    def build() -> Any:
        return model.build(read.cluster.data, read.nodes.data, secrets=None, has_secrets_file=False)

    measure("model.build", build)
    context = build()
    conf = settings.load()
    measure(
        "render: new Environment, compile + render (today)", lambda: render.render(context, conf)
    )
    env = render.environment(conf)
    render.render(context, conf, env)
    measure(
        "render: reused Environment (templates compiled)", lambda: render.render(context, conf, env)
    )

    def compile_all() -> None:
        fresh = render.environment(conf)
        for name in render.template_names(conf):
            fresh.get_template(name)

    measure("render: compile all templates only", compile_all)
    files = render.render(context, conf, env)
    hcl = {p: d.decode() for p, d in files.items() if p.endswith(verify.HCL_SUFFIXES)}
    yml = {p: d.decode() for p, d in files.items() if p.endswith(verify.YAML_SUFFIXES)}
    big = max(files, key=lambda p: len(files[p]))
    print(f"   ({len(files)} outputs, {sum(map(len, files.values()))} bytes, largest {big})")

    measure("verify: everything (today)", lambda: verify.verify(files))
    measure("verify: HCL, HashiCorp's parser (today)", lambda: each(verify._parse_hcl, hcl))

    import hcl2

    measure("verify: HCL, hcl2.loads (before issue 18)", lambda: each(hcl2.loads, hcl))

    measure(
        "verify: HCL, hcl2.parses (no transform)", lambda: [hcl2.parses(t) for t in hcl.values()]
    )
    try:
        import hcl2.parser
        from hcl2.postlexer import PostLexer
        from lark import Lark

        # hcl2's own parser keeps line/column on every tree node; a yes/no verdict needs none.
        plain = Lark.open(
            "hcl2.lark",
            parser="lalr",
            rel_to=hcl2.parser.__file__,
            propagate_positions=False,
            postlex=PostLexer(),
        )
        measure(
            "verify: HCL, same grammar without positions",
            lambda: [plain.parse(t) for t in hcl.values()],
        )
    except Exception as exc:  # hcl2's internals differ between versions
        print(f"   (HCL grammar without positions not measured: {type(exc).__name__}: {exc})")

    measure(
        "verify: YAML, libyaml events, full load for the unusual (today)",
        lambda: each(verify._parse_yaml, yml),
    )
    measure(
        "verify: YAML, ruamel safe load with libyaml (before issue 18)",
        lambda: [list(verify._yaml().load_all(t)) for t in yml.values()],
    )
    if c_loader is not None:
        import yaml as pyyaml

        class Loader(c_loader):  # type: ignore[misc,valid-type]
            pass

        Loader.add_constructor("!unsafe", lambda loader, node: loader.construct_scalar(node))
        measure(
            "verify: YAML, PyYAML CSafeLoader (+!unsafe)",
            lambda: [list(pyyaml.load_all(io.StringIO(t), Loader)) for t in yml.values()],
        )
        measure(
            "verify: YAML, libyaml events only (syntax, no tags)",
            lambda: [list(pyyaml.parse(t, pyyaml.CSafeLoader)) for t in yml.values()],
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
