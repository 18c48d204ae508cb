"""clustergen: Talos-on-Proxmox VM provisioning artifacts from cluster.yaml + nodes.yaml.

The Python API takes the Options the CLI builds (README "Python API")::

    from generator import Options, run
    code = run("render", Options(config_dir=Path("cluster"), dry_run=True))

Its names are imported on first use (PEP 562): the console script imports this package on
every start, and a pre-commit hook must not pay for what it does not run.
"""

import os as _os
import sys as _sys
from typing import TYPE_CHECKING as _TYPE_CHECKING
from typing import Any as _Any

if _TYPE_CHECKING:  # what __getattr__ returns, for type checkers
    from generator.api import run as run
    from generator.errors import (
        ClustergenError as ClustergenError,
    )
    from generator.errors import (
        ConflictError as ConflictError,
    )
    from generator.errors import (
        Diagnostic as Diagnostic,
    )
    from generator.errors import (
        InputError as InputError,
    )
    from generator.errors import (
        UsageError as UsageError,
    )
    from generator.options import Options as Options
    from generator.pipeline import render_tree as render_tree

    __version__: str

# name -> module it lives in
_API = {
    "Options": "generator.options",
    "run": "generator.api",
    "render_tree": "generator.pipeline",
    "Diagnostic": "generator.errors",
    "ClustergenError": "generator.errors",
    "InputError": "generator.errors",
    "UsageError": "generator.errors",
    "ConflictError": "generator.errors",
}
__all__ = ["__version__", *_API]


def __getattr__(name: str) -> _Any:
    if name == "__version__":
        from generator._version import version

        return version()
    if name in _API:
        import importlib

        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'generator' has no attribute {name!r}")


# The console script imports this package first: from here on Ctrl-C is one line, exit 130.
if _os.path.basename((getattr(_sys, "argv", None) or [""])[0]) == "clustergen":
    from generator import _interrupt

    _interrupt.install()
