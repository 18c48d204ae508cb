"""Thin command line: parse arguments into Options, run one command, map errors to exit codes.

Command modules are imported only when chosen, so `validate` never imports the renderer.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from generator import options as declaration
from generator.errors import ClustergenError, ConflictError, InputError, UsageError
from generator.options import COMMANDS, FORMATS, Option, Options

__all__ = ["COMMANDS", "entry", "main"]

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


class _Version(argparse.Action):
    """--version, which reads the version only when asked (importlib.metadata is slow to
    import, and every run builds the parser)."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: object) -> None:
        super().__init__(
            option_strings, dest, nargs=0, default=argparse.SUPPRESS, help="print the version"
        )

    def __call__(self, parser: argparse.ArgumentParser, *_args: object) -> NoReturn:
        from generator._version import version

        sys.stdout.write(f"clustergen {version()}\n")  # stdout, as argparse's own action
        parser.exit()


# Allocations between young collections in the CLI process (the default is 700).
GC_THRESHOLD = 200_000


def _add(parser: argparse.ArgumentParser, option: Option, command: str | None) -> None:
    """One declared option on one parser. No default here: an option not given is absent
    from the namespace, and Options' own default applies (SUPPRESS)."""
    kwargs: dict[str, object] = {
        "dest": option.field,
        "default": argparse.SUPPRESS,
        "help": option.help(command),
    }
    if option.is_switch:
        kwargs["action"] = "store_true"
    else:
        if Path in (option.type, *getattr(option.type, "__args__", ())):
            kwargs["type"] = Path
        choices = option.choices(command or "")
        if choices:
            kwargs["choices"] = choices
        if option.flag.metavar:
            kwargs["metavar"] = option.flag.metavar
    parser.add_argument(*option.flag.flags, **kwargs)  # type: ignore[arg-type]


def _parser() -> argparse.ArgumentParser:
    """The whole command line, built from generator/options.py."""
    parser = _Parser(
        prog="clustergen",
        description="Talos-on-Proxmox VM provisioning artifacts from cluster.yaml + nodes.yaml.",
    )
    parser.add_argument("--version", action=_Version)
    for option in declaration.declared():
        if option.flag.before_command:
            _add(parser, option, None)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS.values():
        cmd = sub.add_parser(command.name, help=command.help, description=command.help)
        for option in declaration.for_command(command.name):
            _add(cmd, option, command.name)
    return parser


def requested(argv: Sequence[str]) -> tuple[str, str]:
    """(the command, the diagnostics --format) the arguments ask for, read before parsing
    so that a usage error is reported in that format and stream too (the last --format
    wins, as in argparse; no command: "")."""
    takes_value = {f for o in declaration.declared() if not o.is_switch for f in o.flag.flags}
    command, fmt, pending = "", "text", ""
    for arg in argv:
        if pending:  # the value of the flag before it
            fmt = arg if pending == "--format" and arg in FORMATS else fmt
            pending = ""
        elif arg in takes_value:
            pending = arg
        elif arg.startswith("--format="):
            value = arg.split("=", 1)[1]
            fmt = value if value in FORMATS else fmt
        elif not command and arg in COMMANDS:
            command = arg
    return command, fmt


def requested_format(argv: Sequence[str]) -> str:
    return requested(argv)[1]


def _options(argv: Sequence[str]) -> tuple[str, Options]:
    args = vars(_parser().parse_args(argv))
    command = args.pop("command")
    return command, Options(**args)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; every way it can end is an exit code and at most a few lines:
    1 bad input or a conflict, 2 usage or environment, 3 a clustergen bug, 130 Ctrl-C,
    141 a closed stdout. Never a traceback."""
    argv = list(sys.argv[1:] if argv is None else argv)
    command, fmt = requested(argv)
    from generator import output

    # One decision per run of where its diagnostics go (README "Exit codes and diagnostics").
    output.begin(command, fmt)
    code = _main(argv, fmt)
    try:
        output.finish(emit=code != EXIT_INTERRUPTED)  # interrupted: no half a report
    except BrokenPipeError:
        _discard_stdout()
        code = code or EXIT_BROKEN_PIPE
    except OSError:  # the stream itself failed (EIO, disk full): nothing left to say it on
        code = code or UsageError.exit_code
    return code


def _main(argv: list[str], fmt: str) -> int:
    from generator import report
    from generator.api import dispatch
    from generator.output import emit_diagnostics, error, write_err

    name: str = ""
    options: Options | None = None
    try:
        # Ctrl-C from here on raises KeyboardInterrupt, handled below.
        if getattr(signal.getsignal(signal.SIGINT), "clustergen_startup", False):
            signal.signal(signal.SIGINT, signal.default_int_handler)
        name, options = _options(argv)
        fmt = options.fmt
        return dispatch(name, options)
    except InputError as exc:
        emit_diagnostics(exc.diagnostics)
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
            emit_diagnostics(report.error_records(message, kind, files))
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
