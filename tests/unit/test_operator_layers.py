"""The operator's layering (STYLE.md): one module talks to the API, kopf stays in the handlers, the rest is pure."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "operator" / "zoo_operator"
PURE = ["admission", "conditions", "dryrun", "generate", "history", "limits", "logparse", "podview", "policy",
        "ranktable", "render", "schema", "settings", "spec", "status", "workqueue"]


def imports(module: str) -> set[str]:
    tree = ast.parse((PACKAGE / f"{module}.py").read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def test_only_kube_imports_the_kubernetes_client() -> None:
    users = sorted(p.stem for p in PACKAGE.glob("*.py") if any(i.startswith("kubernetes") for i in imports(p.stem)))
    assert users == ["kube"]


def test_only_handlers_and_cli_import_kopf() -> None:
    users = sorted(p.stem for p in PACKAGE.glob("*.py") if any(i.split(".")[0] == "kopf" for i in imports(p.stem)))
    assert users == ["cli", "handlers"]


@pytest.mark.parametrize("module", PURE)
def test_pure_modules_do_not_reach_the_api(module: str) -> None:
    bad = {i for i in imports(module) if i in ("zoo_operator.kube", "zoo_operator.reconcile", "aiohttp")
           or i.startswith("kubernetes") or i.split(".")[0] == "kopf"}
    assert not bad, f"{module} imports {bad}"
