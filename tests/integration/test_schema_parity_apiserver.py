"""spec.parse accepts exactly what the real apiserver accepts (OpenAPI and CEL together), on cases generated from
the schema (tests/unit/schema_cases.py): every bound, one past it, a wrong type, every enum value and one that is
not. All cases go to the apiserver in one server-side dry run of a List; nothing is stored (issue 20)."""

from __future__ import annotations

import copy
import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit"))
from schema_cases import cases

from zoo_operator import spec
from zoo_operator.settings import Settings

pytestmark = pytest.mark.integration


def _operator_accepts(body: dict[str, Any]) -> bool:
    try:
        spec.parse(body, Settings())
    except spec.InvalidSpec:
        return False
    return True


def test_operator_and_apiserver_agree_on_every_generated_case(ztj_crd: Any, namespace: str) -> None:
    generated = cases()
    items = []
    for i, (_, body) in enumerate(generated):
        item = copy.deepcopy(body)
        item["metadata"] = {"name": f"parity-{i}", "namespace": namespace}
        items.append(item)
    out = ztj_crd.kubectl(
        "create",
        "--dry-run=server",
        "--validate=false",
        "-o",
        "name",
        "-f",
        "-",
        check=False,
        input=json.dumps({"apiVersion": "v1", "kind": "List", "items": items}),
        timeout=300,
    )
    admitted = {int(m) for m in re.findall(r"zootrainingjob\.modelzoo\.io/parity-(\d+)", out.stdout)}
    refused = {int(m) for m in re.findall(r'"parity-(\d+)" is invalid', out.stderr)}
    assert admitted | refused == set(range(len(generated))), (out.stdout[-1500:], out.stderr[-1500:])
    disagree = []
    for i, (case, body) in enumerate(generated):
        body = {**body, "metadata": {**body["metadata"], "namespace": namespace}}
        if _operator_accepts(body) != (i in admitted):
            disagree.append(f"{case}: apiserver {'admits' if i in admitted else 'refuses'}")
    assert not disagree, "\n".join(disagree)
