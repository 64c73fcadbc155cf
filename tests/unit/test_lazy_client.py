"""The operator's narrow client (issue 25, README "Scale"): kubernetes_asyncio's packages made lazy
(zoo_operator.lazyclient) resolve every name to the same class, and kube.CoreApi sends exactly the requests the
generated CoreV1Api sends for the methods the operator calls."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from kubernetes_asyncio import client

from zoo_operator import kube, lazyclient


def _all(init: Path) -> set[str]:
    """The names a generated package `__init__` lists in `__all__` (what `from package import *` gives)."""
    for node in ast.parse(init.read_text()).body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "__all__":
            return set(ast.literal_eval(node.value))
    return set()


@pytest.mark.parametrize("package", ["", "api", "models"])
def test_every_exported_name_is_found_in_the_generated_init(package: str) -> None:
    init = Path(client.__file__).parent.joinpath(package, "__init__.py")
    found = lazyclient.exported(init.read_text())
    listed = _all(init)
    assert len(found) > (700 if package == "models" else 50)
    assert listed <= set(found), sorted(listed - set(found))[:5]
    module, name = next(iter(found.items()))[::-1]
    assert name == next(iter(found)) or module  # every value is a module path
    assert all(m.startswith("kubernetes_asyncio.client") for m in found.values())


def test_a_fresh_operator_process_loads_only_what_it_uses() -> None:
    code = """
import json, sys
import zoo_operator, kopf
from zoo_operator import handlers, kube
from kubernetes_asyncio import client
from kubernetes_asyncio.client import V1Pod, CoreV1Api
from kubernetes_asyncio.client.rest import ApiException
import asyncio
async def read():  # the client's own deserializer, as for an answer (an ApiClient needs a running loop)
    async with client.ApiClient() as api:
        return api._ApiClient__deserialize(
            {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "worker", "image": "i"}]}}, "V1Pod"
        )
pod = asyncio.run(read())
print(json.dumps({
    "modules": sum(m.startswith("kubernetes_asyncio.client.") for m in sys.modules),
    "pod": [type(pod).__module__, pod.metadata.name, pod.spec.containers[0].name],
    "same": V1Pod is client.models.V1Pod and CoreV1Api.__module__.endswith("core_v1_api"),
    "lazy": type(sys.modules["kubernetes_asyncio.client"]).__name__,
}))
"""
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300
    )
    seen = json.loads(out.stdout.splitlines()[-1])
    assert seen["pod"] == ["kubernetes_asyncio.client.models.v1_pod", "p", "worker"]
    assert seen["same"] is True
    # without the lazy packages: ~1200 modules of the client (every API and model); kopf, kube and handlers
    # need a few dozen, plus the models of the pod just read
    assert seen["modules"] < 120, seen


class Recorder:
    """An ApiClient that records what call_api is asked (the real header selection, no network)."""

    client_side_validation = True
    select_header_accept = client.ApiClient.select_header_accept
    select_header_content_type = client.ApiClient.select_header_content_type

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def call_api(
        self,
        path: str,
        method: str,
        path_params: Any = None,
        query_params: Any = None,
        header_params: Any = None,
        body: Any = None,
        **opts: Any,
    ) -> None:
        types = opts.get("response_types_map") or {}
        self.calls.append(
            {
                "path": path,
                "method": method,
                "path_params": dict(path_params or {}),
                "query": sorted(query_params or []),
                "content_type": (header_params or {}).get("Content-Type"),
                "accept": (header_params or {}).get("Accept"),
                "body": body,
                "answer": types.get(200) or types.get(201),
                "preload": opts.get("_preload_content", True),
                "timeout": opts.get("_request_timeout"),
            }
        )


CALLS: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = [
    ("create_namespaced_pod", ("ns", {"kind": "Pod"}), {"_preload_content": False, "_request_timeout": 3}),
    ("create_namespaced_service", ("ns", {"kind": "Service"}), {"_preload_content": False}),
    ("create_namespaced_config_map", ("ns", {"kind": "ConfigMap"}), {"_preload_content": False}),
    ("create_namespaced_event", ("ns", {"kind": "Event"}), {"_request_timeout": 3}),
    ("patch_namespaced_config_map", ("cm", "ns", {"data": {}}), {"_content_type": kube._MERGE}),
    ("patch_namespaced_pod", ("p", "ns", {"metadata": {}}), {"_content_type": kube._MERGE}),
    ("patch_namespaced_pod", ("p", "ns", [{"op": "test"}]), {"_content_type": "application/json-patch+json"}),
    ("patch_namespaced_pod", ("p", "ns", {"metadata": {}}), {}),  # no content type given: strategic merge
    ("patch_namespaced_pod", ("p", "ns", [{"op": "test"}]), {}),
    ("read_namespaced_pod", ("p", "ns"), {"_request_timeout": 3}),
    ("delete_namespaced_pod", ("p", "ns"), {"_preload_content": False}),
    ("delete_namespaced_pod", ("p", "ns"), {"body": {"preconditions": {"uid": "u"}}}),
    ("read_namespaced_pod_log", ("p", "ns"), {"container": "worker", "tail_lines": 200}),
    ("read_namespaced_pod_log", ("p", "ns"), {"container": "worker", "follow": True, "tail_lines": 5}),
    ("read_namespaced_pod_log", ("p", "ns"), {"container": "worker", "timestamps": True}),
    ("list_namespaced_event", ("ns",), {"field_selector": "involvedObject.name=p", "limit": 50}),
    ("list_namespaced_pod", ("ns",), {"label_selector": "a=b", "_preload_content": False}),
]


@pytest.mark.parametrize(("method", "args", "kwargs"), CALLS, ids=[c[0] for c in CALLS])
def test_core_api_sends_what_the_generated_client_sends(method: str, args: tuple, kwargs: dict) -> None:
    ours, generated = Recorder(), Recorder()
    getattr(kube.CoreApi(ours), method)(*args, **kwargs)  # type: ignore[arg-type]
    getattr(client.CoreV1Api(generated), method)(*args, **kwargs)  # type: ignore[arg-type]
    assert ours.calls == generated.calls


def test_a_core_method_not_written_in_core_api_is_the_generated_one() -> None:
    ours, generated = Recorder(), Recorder()
    kube.CoreApi(ours).read_namespaced_config_map("cm", "ns")  # type: ignore[arg-type]
    client.CoreV1Api(generated).read_namespaced_config_map("cm", "ns")  # type: ignore[arg-type]
    assert ours.calls == generated.calls and ours.calls[0]["path"].endswith("/configmaps/{name}")
