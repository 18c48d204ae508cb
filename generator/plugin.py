"""makejinja plugin: plain `makejinja` renders the same bytes as clustergen.

makejinja merges cluster.yaml and nodes.yaml into its data; this plugin turns that data into
the same model clustergen builds and gives makejinja the same filters.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from generator import filters, model
from generator.inputs import SECRETS_FILE


class Plugin:
    def __init__(self, *, data: Mapping[str, Any], config: Any = None) -> None:
        cluster = {k: v for k, v in data.items() if k != "nodes"}
        self._context = model.build(
            cluster,
            {"nodes": data.get("nodes", [])},
            has_secrets_file=Path(SECRETS_FILE).is_file(),
        )

    def data(self) -> Mapping[str, Any]:
        return self._context

    def filters(self) -> Sequence[Callable[..., Any]]:
        return filters.FILTERS
