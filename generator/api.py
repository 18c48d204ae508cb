"""The Python API's one call: run a command with the Options the CLI would build
(`from generator import Options, run`; generator/__init__.py lists what it exports)."""

from __future__ import annotations

import importlib

from generator import output
from generator.options import Options, check


def dispatch(command: str, options: Options) -> int:
    """Check the options against the declaration (argparse did for the CLI) and run the
    command's module, imported only now: `validate` never imports the renderer."""
    check(command, options)
    module = importlib.import_module(f"generator.commands.{command}")
    return int(module.run(options))


def run(command: str, options: Options | None = None) -> int:
    """`clustergen <command>` in this process: prints what the command prints (diagnostics
    where the README's rule says) and returns its exit code (0, or 1 for drift and
    --exit-code). Errors are raised, not printed: InputError (with .diagnostics),
    ConflictError, UsageError, all ClustergenError."""
    options = options if options is not None else Options()
    output.begin(command, options.fmt)
    try:
        return dispatch(command, options)
    finally:
        output.finish()
