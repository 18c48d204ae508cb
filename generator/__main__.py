from generator import _interrupt

_interrupt.install()  # done by __init__ already (argv[0] was -m); kept for a direct run

from generator.cli import entry  # noqa: E402

entry()
