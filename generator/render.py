"""Stage 4: render every template with the model into an in-memory map path -> bytes."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path, PurePath
from typing import Any

import jinja2

from generator import filters, provisioners, resources
from generator.errors import InternalError
from generator.settings import RenderSettings


def _bytecode_cache() -> jinja2.BytecodeCache | None:
    """Compiled templates kept in the user's cache directory (never in the repository):
    compiling them costs ~70 ms per process. Jinja keys each entry by template path and
    checks the source's checksum, so an edited template is compiled again; output bytes do
    not depend on it."""
    directory = resources.user_cache_dir()
    if directory is None:
        return None
    jinja_dir = directory / "jinja"
    try:
        jinja_dir.mkdir(exist_ok=True)
    except OSError:
        return None
    return jinja2.FileSystemBytecodeCache(str(jinja_dir))


def environment(settings: RenderSettings) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(settings.templates)),
        bytecode_cache=_bytecode_cache(),
        undefined=jinja2.StrictUndefined if settings.strict else jinja2.Undefined,
        autoescape=False,
        **settings.jinja_options(),
    )
    env.filters.update({f.__name__: f for f in filters.FILTERS})
    return env


# settings -> (directory mtimes, names): render and output_dirs both ask, and matching every
# path against the exclude patterns costs more than checking that no directory changed.
_NAMES: dict[RenderSettings, tuple[tuple[tuple[str, int], ...], list[str]]] = {}


def _tree_stamp(root: Path) -> tuple[tuple[str, int], ...]:
    """(directory, mtime) of root and every directory below it: adding, removing or
    renaming a template changes one of them."""
    stamp = []
    for directory, _, _ in os.walk(root):
        try:
            stamp.append((directory, os.stat(directory).st_mtime_ns))
        except OSError:
            stamp.append((directory, -1))
    return tuple(sorted(stamp))


def template_names(settings: RenderSettings) -> list[str]:
    """Templates to render, in makejinja's order, without excluded paths."""
    stamp = _tree_stamp(settings.templates)
    cached = _NAMES.get(settings)
    if cached is not None and cached[0] == stamp:
        return list(cached[1])
    names = _find_templates(settings)
    _NAMES[settings] = (stamp, names)
    return list(names)


def _find_templates(settings: RenderSettings) -> list[str]:
    root = settings.templates
    names = []
    for path in sorted(root.glob("**/*")):
        if not path.is_file() or any(path.match(p) for p in settings.exclude_patterns):
            continue
        if any(
            PurePath(parent.name).match(p)
            for parent in path.relative_to(root).parents
            for p in settings.exclude_patterns
            if parent.name
        ):
            continue
        names.append(path.relative_to(root).as_posix())
    return names


def _template_line(exc: BaseException, name: str) -> int:
    """The template line a Python exception was raised at (Jinja keeps it in the traceback)."""
    tb = exc.__traceback__
    line = 1
    while tb is not None:
        if tb.tb_frame.f_code.co_filename.endswith(name):
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def output_name(template: str, settings: RenderSettings) -> str:
    return template.removesuffix(settings.jinja_suffix)


def render(
    context: Mapping[str, Any],
    settings: RenderSettings,
    env: jinja2.Environment | None = None,
) -> dict[str, bytes]:
    """path (relative to the output root) -> bytes. A whitespace-only result writes no file
    where that is expected (provisioners.may_render_empty); anywhere else it is a bug."""
    env = env or environment(settings)
    out: dict[str, bytes] = {}
    for name in template_names(settings):
        if not name.endswith(settings.jinja_suffix):
            out[name] = (settings.templates / name).read_bytes()
            continue
        try:
            text = env.get_template(name).render(context)
        except Exception as exc:  # any failure inside a template is a clustergen bug
            line = getattr(exc, "lineno", None) or _template_line(exc, name)
            raise InternalError(
                f"templates/{name}:{line}: {output_name(name, settings)}: template error: "
                f"{type(exc).__name__}: {exc}"
            ) from None
        output = output_name(name, settings)
        if text.strip():
            out[output] = text.encode("utf-8")
        elif not provisioners.may_render_empty(output, context):
            raise InternalError(
                f"templates/{name}:1: {output}: rendered empty; an output that may do so is "
                "declared in generator/provisioners.py (may_be_empty)"
            )
    return dict(sorted(out.items()))


def output_dirs(settings: RenderSettings) -> tuple[str, ...]:
    """Every directory any template (enabled or not) writes into: where stale outputs can be."""
    dirs = {PurePath(output_name(n, settings)).parent.as_posix() for n in template_names(settings)}
    return tuple(sorted(d for d in dirs if d != "."))
