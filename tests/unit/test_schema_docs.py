"""The CRD explains itself: every field has a description (`kubectl explain ztj.spec`), and the columns of
`kubectl get ztj` point at fields the status has."""

from __future__ import annotations

from typing import Any

from zoo_operator import history, schema, status


def _root() -> dict[str, Any]:
    return schema.crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


def _undocumented(node: dict[str, Any], path: str) -> list[str]:
    out = [] if node.get("description") else [path or "."]
    for key, child in (node.get("properties") or {}).items():
        out += _undocumented(child, f"{path}.{key}")
    items = node.get("items")
    if isinstance(items, dict) and items.get("type") == "object":
        out += _undocumented(items, f"{path}[]")
    return out


def test_every_field_has_a_description() -> None:
    # .metadata is the one exception: the apiserver refuses a CRD that says anything about it but its type.
    assert _undocumented(_root(), "") == [".metadata"]
    assert _root()["properties"]["metadata"] == {"type": "object"}


def _field(path: str) -> dict[str, Any] | None:
    node: dict[str, Any] | None = _root()
    for part in path.strip(".").split("."):
        node = (node or {}).get("properties", {}).get(part.split("[")[0])  # .spec.command[0]: the list itself
    return node


def test_printer_columns_point_at_schema_fields() -> None:
    cols = {col["name"]: col for col in schema.printer_columns()}
    for col in cols.values():
        if not col["jsonPath"].startswith(".metadata"):
            assert _field(col["jsonPath"]) is not None, col
    assert cols["Epoch"]["jsonPath"] == ".status.progress.display" and cols["Epoch"]["type"] == "string"
    assert {name for name, col in cols.items() if col.get("priority") == 1} >= {"Restarts", "Reason"}
    assert {"Step", "ETA", "Stage"} <= set(cols)


def test_schema_bounds_match_the_operator() -> None:
    assert _field(".status.history")["maxItems"] == history.MAX_ENTRIES
    assert _field(".status.progress.stage")["enum"] == [
        status.STAGE_STARTING,
        status.STAGE_COMPILING,
        status.STAGE_TRAINING,
        status.STAGE_DONE,
    ]
    assert (
        "observedGeneration"
        in _root()["properties"]["status"]["properties"]["conditions"]["items"]["properties"]
    )
