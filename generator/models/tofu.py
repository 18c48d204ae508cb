"""Derived values for the tofu templates, available as context["tofu"]."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def build(base: Mapping[str, Any]) -> dict[str, Any]:
    return {}
