# Ctrl-C while the CLI is being imported: one line and exit 130 (see cli.entry). The C
# module _signal, not signal: importing signal imports enum, long enough to be interrupted.
import _signal  # type: ignore[import-not-found]  # C module, no stub
import os


def _interrupted(signum: int, frame: object) -> None:
    os.write(2, b"clustergen: interrupted\n")
    os._exit(130)


_interrupted.clustergen_startup = True  # type: ignore[attr-defined]
if _signal.getsignal(_signal.SIGINT) is _signal.default_int_handler:
    _signal.signal(_signal.SIGINT, _interrupted)

from generator.cli import entry  # noqa: E402

entry()
