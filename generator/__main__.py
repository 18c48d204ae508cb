# Ctrl-C while the CLI is being imported: one line and exit 130 (see cli.entry).
import os
import signal


def _interrupted(signum: int, frame: object) -> None:
    os.write(2, b"clustergen: interrupted\n")
    os._exit(130)


_interrupted.clustergen_startup = True  # type: ignore[attr-defined]
if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
    signal.signal(signal.SIGINT, _interrupted)

from generator.cli import entry  # noqa: E402

entry()
