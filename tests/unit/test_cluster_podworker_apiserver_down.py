"""The local kubelet while the apiserver is down (found by tests/integration/test_chaos.py): a pod worker whose
status update is refused keeps its containers and publishes the same status once the apiserver is back, as the
kubelet's status manager does (pkg/kubelet/status/status_manager.go), instead of crashing and starting the
pod's containers a second time."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

from zoocluster.podworker import NodeInfo, PodWorker


class DownThenUp:
    """A client whose first `down` requests are refused (connection refused), then answered."""

    def __init__(self, down: int) -> None:
        self.down = down
        self.patches: list[tuple[str, Any]] = []

    def merge_patch(self, path: str, patch: Any) -> Any:
        if self.down > 0:
            self.down -= 1
            raise ConnectionRefusedError(111, "Connection refused")
        self.patches.append((path, patch))
        return {}


def worker(tmp_path: Path, client: DownThenUp) -> tuple[PodWorker, dict[str, Any]]:
    node = NodeInfo(name="cpu-node-1", ip="127.0.5.1", index=1, allocator=None)
    ctx = SimpleNamespace(
        client=client,
        state_dir=tmp_path,
        node=lambda name: node,
        configmap=lambda ns, name: None,
        secret=lambda ns, name: None,
    )
    pod = {
        "metadata": {"name": "j-worker-0", "namespace": "ns", "uid": "uid-1"},
        "spec": {"nodeName": "cpu-node-1", "containers": [{"name": "worker", "image": "x"}]},
        "status": {},
    }
    return PodWorker(ctx, pod, "127.202.0.9"), pod  # type: ignore[arg-type]


def test_a_refused_status_update_is_retried_not_fatal(tmp_path: Path) -> None:
    client = DownThenUp(down=2)
    pw, pod = worker(tmp_path, client)
    pw._publish(pod)  # refused: must not raise (a raise crashed the worker and re-ran the pod's containers)
    pw._publish(pod)
    assert client.patches == [] and pw._published is None
    pw._publish(pod)  # the apiserver is back: the status goes out
    ((path, patch),) = client.patches
    assert path == "/api/v1/namespaces/ns/pods/j-worker-0/status"
    assert patch["status"]["podIP"] == "127.202.0.9" and pw._published == patch["status"]
    pw._publish(pod)  # nothing changed: nothing sent again
    assert len(client.patches) == 1
