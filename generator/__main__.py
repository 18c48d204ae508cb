from generator import _interrupt

_interrupt.install()  # before the CLI's imports, which Ctrl-C must not turn into a traceback

from generator.cli import entry  # noqa: E402

entry()
