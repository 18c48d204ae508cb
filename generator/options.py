"""The one frozen options object that drives both the CLI and the Python API."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Options:
    config_dir: Path = Path(".")
    output_dir: Path | None = None  # default: config_dir
    fmt: str = "text"
    dry_run: bool = False
    force: bool = False
    exit_code: bool = False  # render: exit 1 when it changed something
    example: str = "minimal"
    dialect: str = "auto"  # auto | clustergen | cluster-template | talos-cluster
    base: str = "HEAD"  # plan: the git revision whose inputs it compares with
    move_secrets: bool = False  # init: move proxmox_api_token_* from cluster.yaml to sops

    @property
    def output_root(self) -> Path:
        return self.output_dir if self.output_dir is not None else self.config_dir
