"""A small HTTPS Proxmox VE API double for the Ansible end-to-end test (test code only)."""

from .cert import self_signed_cert
from .server import ApiCall, ProxmoxDouble, VirtualMachine

__all__ = ["ApiCall", "ProxmoxDouble", "VirtualMachine", "self_signed_cert"]
