"""Derived values for the capi templates, available as context["capi"]."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def build(base: Mapping[str, Any]) -> dict[str, Any]:
    return {}
