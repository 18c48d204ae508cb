"""clustergen: Talos-on-Proxmox VM provisioning artifacts from cluster.yaml + nodes.yaml."""

import os as _os
import sys as _sys

__version__ = "0.1.0"

# The console script imports this package first: from here on Ctrl-C is one line, exit 130.
if _os.path.basename((getattr(_sys, "argv", None) or [""])[0]) == "clustergen":
    from generator import _interrupt

    _interrupt.install()
