"""Every command and every option, declared once: the CLI (cli.py) builds its argparse parsers
from this, and the Python API (`generator.run`) takes the same frozen Options.

An option is a field of Options; its default is the field's default, and its metadata says
how it appears on the command line (flags, help, which commands take it, choices), the way
makejinja builds its click options from its Config. Nothing else writes a default or a help
text. No `from __future__ import annotations`: the field types are read at run time.
Kept free of heavy imports: cli.py imports it on every start, --help included.
"""

from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from types import MappingProxyType
from typing import Any

from generator.errors import UsageError


@dataclass(frozen=True)
class Command:
    name: str
    help: str
    # Its stdout carries a result (a diff, a table, a listing): --format json/github
    # diagnostics then go to stderr, else to stdout (output.begin reads this).
    result_on_stdout: bool


COMMANDS: Mapping[str, Command] = MappingProxyType(
    {
        c.name: c
        for c in (
            Command(
                "validate",
                "check cluster.yaml and nodes.yaml; exit 0 when valid, 1 when not",
                False,
            ),
            Command("render", "render every artifact and write the files that changed", True),
            Command(
                "check",
                "exit 1 with a unified diff when the generated files drifted from the inputs",
                True,
            ),
            Command(
                "init",
                "create cluster.yaml and nodes.yaml (and the sops setup) without overwriting",
                True,
            ),
            Command(
                "schematic", "print the Talos schematic ID and the image and installer URLs", True
            ),
            Command(
                "plan",
                "list the VMs the change adds, removes, resizes or moves (vs a git revision)",
                True,
            ),
        )
    }
)
EVERY = tuple(COMMANDS)

# Diagnostics formats; plan prints its result in these or as a Markdown table.
FORMATS = ("text", "json", "github")
PLAN_FORMATS = ("text", "markdown", "json", "github")
# generator.dialects.CHOICES (tests/test_cli_options.py keeps them equal), without importing
# the dialects package on every start.
DIALECTS = ("auto", "clustergen", "cluster-template", "talos-cluster")


@dataclass(frozen=True)
class Flag:
    """How one Options field appears on the command line."""

    flags: tuple[str, ...]
    help: str
    commands: tuple[str, ...]
    metavar: str | None = None
    choices: tuple[str, ...] = ()
    # Also accepted before the command name (`clustergen -C DIR validate`).
    before_command: bool = False
    # What the help says the default is, when the field's own default says it badly.
    default_text: str | None = None
    # Per command: other choices or another help text (plan's --format, --exit-code).
    choices_for: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    help_for: Mapping[str, str] = field(default_factory=dict)


def flag(*flags: str, help: str, commands: tuple[str, ...], **more: Any) -> dict[str, Flag]:
    """An Options field's metadata: how the field appears on the command line."""
    return {"flag": Flag(flags, help, commands, **more)}


@dataclass(frozen=True)
class Options:
    config_dir: Path = field(
        default=Path("."),
        metadata=flag(
            "-C",
            help="directory holding cluster.yaml and nodes.yaml",
            commands=EVERY,
            metavar="DIR",
            before_command=True,
        ),
    )
    fmt: str = field(
        default="text",
        metadata=flag(
            "--format",
            help="diagnostics format",
            commands=EVERY,
            choices=FORMATS,
            before_command=True,
            choices_for={"plan": PLAN_FORMATS},
            help_for={"plan": "output format (markdown: for $GITHUB_STEP_SUMMARY)"},
        ),
    )
    dialect: str = field(
        default="auto",
        metadata=flag(
            "--dialect",
            help="whose keys the input files use; auto detects it from the repo",
            commands=EVERY,
            choices=DIALECTS,
            before_command=True,
        ),
    )
    output_dir: Path | None = field(
        default=None,
        metadata=flag(
            "-o",
            help="output root",
            commands=("render", "check"),
            metavar="OUT",
            default_text="DIR",
        ),
    )
    dry_run: bool = field(
        default=False,
        metadata=flag("--dry-run", help="print the diff, write nothing", commands=("render",)),
    )
    force: bool = field(
        default=False,
        metadata=flag(
            "--force", help="overwrite generated files edited by hand", commands=("render",)
        ),
    )
    exit_code: bool = field(
        default=False,
        metadata=flag(
            "--exit-code",
            help="exit 1 when a file was created, updated or removed (for pre-commit)",
            commands=("render", "plan"),
            help_for={"plan": "exit 1 when a VM changes"},
        ),
    )
    example: str = field(
        default="minimal",
        metadata=flag(
            "--example", help="example to start from", commands=("init",), metavar="NAME"
        ),
    )
    move_secrets: bool = field(
        default=False,
        metadata=flag(
            "--move-secrets",
            help="move proxmox_api_token_* from cluster.yaml into secrets.sops.yaml",
            commands=("init",),
        ),
    )
    base: str = field(
        default="HEAD",
        metadata=flag(
            "--base", help="git revision to compare with", commands=("plan",), metavar="REV"
        ),
    )

    @property
    def output_root(self) -> Path:
        return self.output_dir if self.output_dir is not None else self.config_dir


@dataclass(frozen=True)
class Option:
    """One declared option: the Options field, its type and default, and its Flag."""

    field: str
    type: Any
    default: Any
    flag: Flag

    @property
    def is_switch(self) -> bool:
        return self.type is bool

    def choices(self, command: str) -> tuple[str, ...]:
        return self.flag.choices_for.get(command, self.flag.choices)

    def help(self, command: str | None) -> str:
        text = self.flag.help_for.get(command or "", self.flag.help)
        shown = self.flag.default_text
        if shown is None and not self.is_switch and self.default is not None:
            shown = str(self.default)
        return f"{text} (default: {shown})" if shown else text


def declared() -> tuple[Option, ...]:
    """Every option, in the order of the Options fields (the order --help lists them)."""
    return tuple(
        Option(f.name, f.type, f.default, f.metadata["flag"])
        for f in fields(Options)
        if f.default is not MISSING
    )


def for_command(command: str) -> tuple[Option, ...]:
    return tuple(o for o in declared() if command in o.flag.commands)


def check(command: str, options: Options) -> None:
    """What argparse enforces for the CLI, for the Python API: a known command, only options
    that command takes, values among the choices. UsageError otherwise."""
    if command not in COMMANDS:
        raise UsageError(f"unknown command {command!r}; choose one of: {', '.join(COMMANDS)}")
    for option in declared():
        value = getattr(options, option.field)
        name = "/".join(option.flag.flags)
        if command not in option.flag.commands:
            if value != option.default:
                raise UsageError(f"{command} takes no {name} (Options.{option.field})")
            continue
        choices = option.choices(command)
        if choices and value not in choices:
            raise UsageError(
                f"{command} {name}: {value!r} is not one of: {', '.join(choices)} "
                f"(Options.{option.field})"
            )
