"""Thin command line: parse arguments into Options, run one command, map errors to exit codes.

Command modules are imported only when chosen, so `validate` never imports the renderer.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib
import os
import signal
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

REPORT_URL = "https://github.com/clustergen/clustergen/issues"
# Exit codes beyond the errors module's: a closed pipe (128 + SIGPIPE), Ctrl-C (128 + SIGINT).
EXIT_BROKEN_PIPE = 141
EXIT_INTERRUPTED = 130
EXIT_BUG = 3


class _Parser(argparse.ArgumentParser):
    """argparse whose usage errors become a UsageError, reported like every other error
    (and in the chosen --format); --help and --version still exit through SystemExit."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see `{self.prog} --help`)")


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
    common = _Parser(add_help=False)
    # plan has its own --format choices (markdown), so it gets -C without --format.
    dir_only = _Parser(add_help=False)
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

    parser = _Parser(
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


def requested_format(argv: Sequence[str]) -> str:
    """The --format the arguments ask for, read before parsing so that a usage error is
    reported in it too (the last one wins, as in argparse)."""
    fmt = "text"
    for i, arg in enumerate(argv):
        value = None
        if arg == "--format" and i + 1 < len(argv):
            value = argv[i + 1]
        elif arg.startswith("--format="):
            value = arg.split("=", 1)[1]
        if value in FORMATS:
            fmt = value
    return fmt


def _options(argv: Sequence[str]) -> tuple[str, Options]:
    args = _parser().parse_args(argv)
    return args.command, Options(
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


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; every way it can end is an exit code and at most a few lines:
    1 bad input or a conflict, 2 usage or environment, 3 a clustergen bug, 130 Ctrl-C,
    141 a closed stdout. Never a traceback."""
    argv = list(sys.argv[1:] if argv is None else argv)
    fmt = requested_format(argv)
    from generator import report
    from generator.output import emit_diagnostics, error, write_err

    name: str = ""
    options: Options | None = None
    try:
        # Ctrl-C from here on raises KeyboardInterrupt, handled below.
        if getattr(signal.getsignal(signal.SIGINT), "clustergen_startup", False):
            signal.signal(signal.SIGINT, signal.default_int_handler)
        name, options = _options(argv)
        fmt = options.fmt
        command = importlib.import_module(f"generator.commands.{name}")
        return int(command.run(options))
    except InputError as exc:
        emit_diagnostics(exc.diagnostics, fmt)
        errors = sum(1 for d in exc.diagnostics if d.is_error)
        if fmt == "text":
            write_err(f"clustergen: {errors} error(s){_nothing_written(name, options)}")
        return exc.exit_code
    except ClustergenError as exc:
        code = exc.exit_code
        message, paths = str(exc), tuple(getattr(exc, "paths", ()))
        shown = getattr(exc, "shown", "")
        kind = "conflict" if isinstance(exc, ConflictError) else "usage"
        if code == EXIT_BUG:
            message, kind = _bug_message(message), "bug"
    except BrokenPipeError:
        _discard_stdout()
        return EXIT_BROKEN_PIPE
    except OSError as exc:
        # The file system said no (a file where a directory belongs, no permission, disk
        # full): an environment problem, one line naming the file, exit 2.
        shown = str(exc.filename) if exc.filename else ""
        message = f"{shown + ': ' if shown else ''}{exc.strerror or exc}"
        code, paths, kind = UsageError.exit_code, (), "file system"
    except KeyboardInterrupt:
        write_err("clustergen: interrupted")
        return EXIT_INTERRUPTED
    except (Exception, RecursionError, MemoryError) as exc:  # a clustergen bug
        message = _bug_message(f"{type(exc).__name__}: {exc}")
        code, paths, shown, kind = EXIT_BUG, (), "", "bug"
    try:
        if fmt == "text":
            error(message)
        else:
            files = paths or ((shown,) if shown else ())
            emit_diagnostics(report.error_records(message, kind, files), fmt)
    except BrokenPipeError:
        _discard_stdout()
    return code


def _bug_message(detail: str) -> str:
    return (
        f"internal error: {detail}\n"
        f"this is a clustergen bug; please report it at {REPORT_URL} "
        "with the command you ran and clustergen --version"
    )


def _discard_stdout() -> None:
    """The reader of stdout went away (`| head`): later writes and the final flush go to
    /dev/null instead of raising again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


def _nothing_written(command: str, options: Options | None) -> str:
    """Only a command that writes says it wrote nothing: validate, check and the rest never
    write, and saying so would suggest they might."""
    dry_run = options is not None and options.dry_run
    writes = command == "init" or (command == "render" and not dry_run)
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
    install_startup_interrupt()
    gc.freeze()
    gc.set_threshold(GC_THRESHOLD, 50, 1000)
    try:
        code = main()
    except SystemExit as exc:  # argparse: --help, --version
        code = _exit_status(exc.code)
    except KeyboardInterrupt:  # between main()'s handlers and the flush below
        os.write(2, b"clustergen: interrupted\n")
        code = EXIT_INTERRUPTED
    install_startup_interrupt()  # Ctrl-C while flushing: one line, too
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        _discard_stdout()
        code = code or EXIT_BROKEN_PIPE
    except OSError:
        code = code or UsageError.exit_code
    with contextlib.suppress(OSError):
        sys.stderr.flush()
    os._exit(code)


def install_startup_interrupt() -> None:
    """Until main() takes over, Ctrl-C ends the process with one line (no traceback from
    the middle of an import). Only for a real process: never when main() is called."""
    from generator import _interrupt

    _interrupt.install()
