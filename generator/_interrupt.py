"""Ctrl-C before main() runs (while Python imports clustergen): one line, exit 130.

Installed by the package's __init__, which both `python -m generator` and the console
script (`from generator.cli import entry`) run first, as early as possible (__main__ again,
a no-op then); main() then hands SIGINT back to Python, whose KeyboardInterrupt it handles.
The C module _signal, not signal: importing signal imports enum, long enough to be hit.
"""

import _signal  # type: ignore[import-not-found]  # C module, no stub
import os

EXIT_INTERRUPTED = 130


def interrupted(signum: int, frame: object) -> None:
    os.write(2, b"clustergen: interrupted\n")
    os._exit(EXIT_INTERRUPTED)


interrupted.clustergen_startup = True  # type: ignore[attr-defined]


def install() -> None:
    """Only over Python's own handler: never over one a caller (a test runner) installed."""
    if _signal.getsignal(_signal.SIGINT) is _signal.default_int_handler:
        _signal.signal(_signal.SIGINT, interrupted)
