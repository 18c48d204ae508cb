from __future__ import annotations

import json

from generator import inputs, model
from generator.options import Options
from generator.output import emit_diagnostics


def run(options: Options) -> int:
    read = inputs.read(options.config_dir)
    emit_diagnostics(read.warnings, options.fmt)
    context = model.build(read.cluster.data, read.nodes.data)
    image = context["schematic"]
    if options.fmt == "json":
        print(json.dumps({k: image[k] for k in ("id", "image_url", "iso_url", "installer_image")}, indent=2))
        return 0
    print(f"schematic id: {image['id']}")
    print(f"disk image:   {image['image_url']}")
    print(f"iso:          {image['iso_url']}")
    print(f"installer:    {image['installer_image']}")
    print()
    print(image["yaml"], end="")
    return 0
