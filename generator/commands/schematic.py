"""`clustergen schematic`: the Talos image factory schematic, its ID and the image URLs."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from generator import inputs, model
from generator.options import Options
from generator.output import emit_diagnostics
from generator.report import as_dicts

KEYS = ("id", "image_url", "iso_url", "installer_image")


def run(options: Options) -> int:
    read = inputs.read(options.config_dir, options.dialect)
    context = model.build(read.cluster.data, read.nodes.data)
    image = context["schematic"]
    # With capi, each template's Cluster API twin: where CAPMOX clones from (capi alone: the
    # VM the user must provide).
    capi = context["enabled"]["capi"]
    twins = {t["template_vmid"]: t for t in context["capi"]["twins"]} if capi else {}
    # On stderr (json, github: schematic's stdout carries its result; README rule).
    emit_diagnostics(read.warnings)
    if options.fmt == "json":
        # One JSON document on stdout; it carries the warnings too, as it always did.
        result: dict[str, object] = {key: image[key] for key in KEYS}
        result["yaml"] = image["yaml"]
        first = context["talos_templates"][0]
        if first["vmid"] in twins:
            result["capi_template"] = _twin(twins[first["vmid"]])
        if context["template_split"]:
            result["templates"] = [_template(t, twins) for t in context["talos_templates"]]
        result["diagnostics"] = as_dicts(read.warnings)
        print(json.dumps(result, indent=2))
        return 0
    print(f"schematic id: {image['id']}")
    print(f"disk image:   {image['image_url']}")
    print(f"iso:          {image['iso_url']}")
    print(f"installer:    {image['installer_image']}")
    _print_twin(twins, context["talos_templates"][0])
    print()
    print(image["yaml"], end="")
    if context["template_split"]:
        # The other templates' images (nodes with a schematic or SecureBoot of their own).
        for template in context["talos_templates"][1:]:
            other = template["schematic"]
            print()
            print(
                f"template {template['name']} (VM {template['vmid']}) for "
                f"{', '.join(template['nodes'])}:"
            )
            for key, label in zip(KEYS, LABELS, strict=True):
                print(f"{label}{other[key]}")
            _print_twin(twins, template)
            print()
            print(other["yaml"], end="")
    return 0


LABELS = ("schematic id: ", "disk image:   ", "iso:          ", "installer:    ")


def _print_twin(twins: Mapping[int, Any], template: Any) -> None:
    twin = twins.get(template["vmid"])
    if twin is not None:
        print(f"cluster api:  {twin['name']} (VM {twin['vmid']}, no cloud-init drive)")


def _twin(twin: Any) -> dict[str, object]:
    return {"name": twin["name"], "vmid": twin["vmid"]}


def _template(template: Any, twins: Mapping[int, Any]) -> dict[str, object]:
    image = template["schematic"]
    out: dict[str, object] = {
        "name": template["name"],
        "vmid": template["vmid"],
        "secureboot": template["secureboot"],
        "nodes": list(template["nodes"]),
        **{key: image[key] for key in KEYS},
        "yaml": image["yaml"],
    }
    if template["vmid"] in twins:
        out["capi_template"] = _twin(twins[template["vmid"]])
    return out
