"""Running the real Ansible tools from tests: offline, deterministic, writing only to tmp."""

from __future__ import annotations

import os
from pathlib import Path


def ansible_env(home: Path, **extra: str) -> dict[str, str]:
    """Environment for ansible-playbook / ansible-lint: every writable dir under home.

    ANSIBLE_COLLECTIONS_PATH points at an empty dir so that collections a developer installed
    in ~/.ansible cannot shadow the community.proxmox that the ansible package ships.
    """
    home.mkdir(parents=True, exist_ok=True)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("ANSIBLE_", "PROXMOX_")) and k not in ("REQUESTS_CA_BUNDLE",)
    }
    env.update(
        HOME=str(home),
        XDG_CACHE_HOME=str(home / "cache"),
        XDG_CONFIG_HOME=str(home / "config"),
        ANSIBLE_HOME=str(home / "ansible"),
        ANSIBLE_LOCAL_TEMP=str(home / "ansible" / "tmp"),
        ANSIBLE_REMOTE_TEMP=str(home / "ansible" / "remote-tmp"),
        ANSIBLE_COLLECTIONS_PATH=str(home / "collections"),
        ANSIBLE_ROLES_PATH=str(home / "roles"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_FORCE_COLOR="0",
        ANSIBLE_RETRY_FILES_ENABLED="0",
        ANSIBLE_GALAXY_DISABLE_GPG_VERIFY="1",
        ANSIBLE_LOAD_CALLBACK_PLUGINS="0",
        ANSIBLE_STDOUT_CALLBACK="default",
        PY_COLORS="0",
        NO_COLOR="1",
        LC_ALL="C.UTF-8",
    )
    env.update(extra)
    return env
