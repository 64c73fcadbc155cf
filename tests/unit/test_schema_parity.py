"""spec.parse accepts and refuses exactly what the CRD's OpenAPI schema does, field by field (issue 20).

The cases come from the schema itself (schema_cases.py). Here the apiserver's structural checks are the CRD's own
openAPIV3Schema validated with jsonschema; tests/integration/test_schema_parity_apiserver.py sends the same cases
to a real apiserver (OpenAPI and CEL together).
"""

from __future__ import annotations

import jsonschema
import pytest
from schema_cases import cases

from zoo_operator import schema, spec
from zoo_operator.settings import Settings

CASES = cases()
OPENAPI = schema.crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


def _openapi_errors(body: dict) -> list[str]:
    """The fields the CRD's structural schema refuses, as paths (`spec.replicas`)."""
    return [
        ".".join(str(p) for p in err.absolute_path) or "(root)"
        for err in jsonschema.Draft7Validator(OPENAPI).iter_errors(body)
    ]


def _operator_accepts(body: dict) -> bool:
    try:
        spec.parse(body, Settings())
    except spec.InvalidSpec:
        return False
    return True


def test_cases_cover_every_bound_and_enum() -> None:
    ids = {case for case, _ in CASES}
    assert len(CASES) > 60
    for field in (
        "spec.replicas",
        "spec.device.perNode",
        "spec.dataset.numClasses",
        "spec.checkpoint.keep",
        "spec.checkpoint.stopGracePeriodSeconds",
        "spec.runPolicy.backoffLimit",
        "spec.runPolicy.cleanPodPolicy",
        "spec.runPolicy.schedulingTimeoutSeconds",
    ):
        assert any(case.startswith(field + "=") for case in ids), field


@pytest.mark.parametrize(("case", "body"), CASES, ids=[c for c, _ in CASES])
def test_spec_validation_agrees_with_the_schema(case: str, body: dict) -> None:
    """Where the structural schema refuses, spec.parse refuses too, naming the same field. (Where it admits,
    a cross-field CEL rule may still refuse: the apiserver test checks that direction with CEL included.)"""
    refused = _openapi_errors(body)
    if not refused:
        return
    assert not _operator_accepts(body), f"{case}: the CRD refuses {refused}, spec.parse accepts it"
    with pytest.raises(spec.InvalidSpec) as err:
        spec.parse(body, Settings())
    for path in refused:
        assert path in str(err.value), (
            f"{case}: the CRD refuses {path}; spec.parse does not name it: {err.value}"
        )
