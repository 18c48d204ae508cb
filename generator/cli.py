"""Thin command line: parse arguments into Options, run one command, map errors to exit codes.

Command modules are imported only when chosen, so `validate` never imports the renderer.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from generator import __version__
from generator.errors import ClustergenError, ConflictError, InputError, UsageError
from generator.options import Options
from generator.report import FORMATS

# generator.dialects.CHOICES, without importing the dialects package for --help.
DIALECT_CHOICES = ("auto", "clustergen", "cluster-template", "talos-cluster")

# Allocations between young collections in the CLI process (the default is 700).
GC_THRESHOLD = 200_000

COMMANDS = {
    "validate": "check cluster.yaml and nodes.yaml; exit 0 when valid, 1 when not",
    "render": "render every artifact and write the files that changed",
    "check": "exit 1 with a unified diff when the generated files drifted from the inputs",
    "init": "create cluster.yaml and nodes.yaml (and the sops setup) without overwriting",
    "schematic": "print the Talos schematic ID and the image and installer URLs",
    "plan": "list the VMs the change adds, removes, resizes or moves (vs a git revision)",
}


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    # plan has its own --format choices (markdown), so it gets -C without --format.
    dir_only = argparse.ArgumentParser(add_help=False)
    for holder in (common, dir_only):
        holder.add_argument(
            "-C",
            dest="config_dir",
            type=Path,
            default=argparse.SUPPRESS,
            metavar="DIR",
            help="directory holding cluster.yaml and nodes.yaml (default: .)",
        )
    common.add_argument("--format", choices=FORMATS, default=argparse.SUPPRESS)
    for holder in (common, dir_only):
        holder.add_argument(
            "--dialect",
            choices=DIALECT_CHOICES,
            default=argparse.SUPPRESS,
            help="keys of the input files (default auto: detected from the repo)",
        )

    parser = argparse.ArgumentParser(
        prog="clustergen",
        description="Talos-on-Proxmox VM provisioning artifacts from cluster.yaml + nodes.yaml.",
    )
    parser.add_argument("--version", action="version", version=f"clustergen {__version__}")
    parser.add_argument("-C", dest="config_dir", type=Path, default=Path("."), metavar="DIR")
    parser.add_argument("--format", choices=FORMATS, default="text", help="diagnostics format")
    parser.add_argument("--dialect", choices=DIALECT_CHOICES, default="auto", help="input keys")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, text in COMMANDS.items():
        parent = dir_only if name == "plan" else common
        cmd = sub.add_parser(name, parents=[parent], help=text, description=text)
        if name == "plan":
            from generator.commands.plan import FORMATS as PLAN_FORMATS

            cmd.add_argument("--format", choices=PLAN_FORMATS, default=argparse.SUPPRESS)
            cmd.add_argument(
                "--base", default="HEAD", metavar="REV", help="git revision to compare with"
            )
            cmd.add_argument("--exit-code", action="store_true", help="exit 1 when a VM changes")
        if name in ("render", "check"):
            cmd.add_argument(
                "-o", dest="output_dir", type=Path, metavar="OUT", help="output root (default: DIR)"
            )
        if name == "render":
            cmd.add_argument("--dry-run", action="store_true", help="print the diff, write nothing")
            cmd.add_argument(
                "--force", action="store_true", help="overwrite generated files edited by hand"
            )
            cmd.add_argument(
                "--exit-code",
                action="store_true",
                help="exit 1 when a file was created, updated or removed (for pre-commit)",
            )
        if name == "init":
            cmd.add_argument("--example", default="minimal", help="example to start from")
            cmd.add_argument(
                "--move-secrets",
                action="store_true",
                help="move proxmox_api_token_* from cluster.yaml into secrets.sops.yaml",
            )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    options = Options(
        config_dir=args.config_dir,
        output_dir=getattr(args, "output_dir", None),
        fmt=args.format,
        dry_run=getattr(args, "dry_run", False),
        force=getattr(args, "force", False),
        exit_code=getattr(args, "exit_code", False),
        example=getattr(args, "example", "minimal"),
        dialect=args.dialect,
        move_secrets=getattr(args, "move_secrets", False),
        base=getattr(args, "base", "HEAD"),
    )
    from generator.output import emit_diagnostics, error

    try:
        command = importlib.import_module(f"generator.commands.{args.command}")
        return int(command.run(options))
    except InputError as exc:
        emit_diagnostics(exc.diagnostics, options.fmt)
        errors = sum(1 for d in exc.diagnostics if d.is_error)
        if options.fmt == "text":
            print(
                f"clustergen: {errors} error(s){_nothing_written(args.command, options)}",
                file=sys.stderr,
            )
        return exc.exit_code
    except (UsageError, ConflictError, ClustergenError) as exc:
        error(str(exc))
        return exc.exit_code
    except OSError as exc:
        # The file system said no (a file where a directory belongs, no permission, disk
        # full): an environment problem, one line, exit 2.
        where = f"{exc.filename}: " if exc.filename else ""
        error(f"{where}{exc.strerror or exc}")
        return UsageError.exit_code
    except KeyboardInterrupt:
        return 130


def _nothing_written(command: str, options: Options) -> str:
    """Only a command that writes says it wrote nothing: validate, check and the rest never
    write, and saying so would suggest they might."""
    writes = command == "init" or (command == "render" and not options.dry_run)
    return "; nothing was written" if writes else ""


def _exit_status(code: object) -> int:
    """What the interpreter would exit with for SystemExit(code)."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


def entry() -> NoReturn:
    """`python -m generator` and the console script: main() tuned for one short process.

    The parsers allocate millions of objects that are all alive until the end, so the
    cyclic GC only re-walks a growing heap (about 30 % of a 1000-node render): it runs
    rarely instead. At the end nothing is left to clean up that the OS does not reclaim, so
    the process leaves without tearing down every module (lark, ruamel, jsonschema).
    Tests call main() in process and keep the normal GC and shutdown.
    """
    gc.freeze()
    gc.set_threshold(GC_THRESHOLD, 50, 1000)
    try:
        code = main()
    except SystemExit as exc:  # argparse: --help, --version, usage errors
        code = _exit_status(exc.code)
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (BrokenPipeError, OSError):
        code = code or 1
    os._exit(code)
