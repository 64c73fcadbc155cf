"""Cases generated from the CRD's schema (schema.field), for the parity of spec validation with the apiserver's.

For every bounded integer of the spec: its bounds and the values one past them, plus a wrong type; for every
enum: each allowed value and one that is not. Nothing here names a bound: it is all read from the schema, so a
bound changed in schema.py is tested at once, in both validators.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

from zoo_operator import schema

# A valid CPU job every case starts from (the fields a case sets are added to it).
BASE: dict[str, Any] = {
    "apiVersion": f"{schema.GROUP}/{schema.VERSION}",
    "kind": schema.KIND,
    "metadata": {"name": "parity", "namespace": "ns1", "uid": "uid-1", "generation": 1},
    "spec": {
        "model": "resnet50_bam",
        "device": {"type": "CPU"},
        "replicas": 1,
        "dataset": {
            "volume": {"hostPath": {"path": "/tmp/zoo-data"}},
            "trainPath": "train",
            "numClasses": 10,
        },
        "hyperparameters": {"epochs": 1},
    },
}


def _walk(node: dict[str, Any], path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    for key, child in (node.get("properties") or {}).items():
        here = f"{path}.{key}"
        yield here, child
        if child.get("type") == "object":
            yield from _walk(child, here)


def _set(body: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    out = copy.deepcopy(body)
    node = out
    parts = path.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value
    return out


def cases() -> list[tuple[str, dict[str, Any]]]:
    """(case id, job body) for every bounded integer and every enum of spec (arrays' items left out)."""
    out: list[tuple[str, dict[str, Any]]] = []
    for path, field in _walk(
        schema.field("spec") | {"properties": schema.field("spec")["properties"]}, "spec"
    ):
        if path.startswith(("spec.rankTable.staticDevices", "spec.podTemplate")):
            continue
        values: list[Any] = []
        if field.get("type") == "integer":
            low, high = field.get("minimum"), field.get("maximum")
            for bound in (low, high):
                if bound is not None:
                    values += [bound - 1, bound, bound + 1]
            values += ["7"]  # a string where an integer belongs
        elif "enum" in field:
            values += [*field["enum"], "not-" + str(field["enum"][0])]
        for value in values:
            out.append((f"{path}={value!r}", _set(BASE, path, value)))
    return out
