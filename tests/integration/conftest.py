"""The `kube` fixture: kubectl helpers bound to the test's fresh namespace."""

from __future__ import annotations

from typing import Any

import pytest
from kubehelpers import Kube


@pytest.fixture
def kube(cluster: Any, namespace: str) -> Kube:
    """Helpers for the test's fresh namespace."""
    return Kube(cluster, namespace)


# The operator's fixtures (CRD installed once per session, a `zoo-operator run` process per test).
from operator_fixtures import operator, ztj_crd  # noqa: F401
