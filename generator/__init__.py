"""clustergen: Talos-on-Proxmox VM provisioning artifacts from cluster.yaml + nodes.yaml.

Python API (README): `from generator import Options, run`. Keep this file short: every
start may compile it (no .pyc written), and a Ctrl-C meanwhile would be a traceback.
"""

_launched = False
try:  # Ctrl-C from here on: one line, exit 130 (_interrupt.py says why and how)
    import os as _os
    import sys as _sys

    _launcher = (getattr(_sys, "argv", None) or [""])[0]
    _launched = _launcher == "-m" or _os.path.basename(_launcher) == "clustergen"
    if _launched:
        from generator import _interrupt

        _interrupt.install()
except KeyboardInterrupt:
    if not _launched:
        raise
    _os.write(2, b"clustergen: interrupted\n")
    _os._exit(130)

TYPE_CHECKING = False  # not typing's (slow to import); mypy takes any TYPE_CHECKING
if TYPE_CHECKING:
    from typing import Any


# `from generator import name`: the module of each name, imported on first use (PEP 562).
_API = {"Options": "options", "run": "api", "render_tree": "pipeline", "__version__": "_version"}
_API.update(dict.fromkeys(("Diagnostic", "ClustergenError", "InputError"), "errors"))
_API.update(dict.fromkeys(("UsageError", "ConflictError"), "errors"))


def __getattr__(name: str) -> "Any":
    if name not in _API:  # a submodule being imported asks here too: no import then
        raise AttributeError(f"module 'generator' has no attribute {name!r}")
    module = f"generator.{_API[name]}"
    __import__(module)
    found = _sys.modules[module]
    return found.version() if name == "__version__" else getattr(found, name)
