"""The twin's DRA nodes (issue 21): the ResourceSlice and DeviceClass they publish, as MindCluster's Ascend DRA
driver does, and how the kubelet reads a pod's allocated NPUs back from its ResourceClaim."""

from pathlib import Path

import pytest

from zoo_operator import ascend
from zoocluster import devices, nodes

NODES_YAML = Path(__file__).resolve().parents[2] / "hack" / "cluster" / "nodes.yaml"


def test_the_slice_names_every_npu_as_the_driver_does() -> None:
    s = devices.resource_slice("ascend-dra-1", 8, "Ascend910B3")
    spec = s["spec"]
    # One pool per node named after it, one slice holding all of the node's NPUs (MindCluster docs table 4).
    assert spec["driver"] == "npu.huawei.com" and spec["nodeName"] == "ascend-dra-1"
    assert spec["pool"] == {"name": "ascend-dra-1", "generation": 1, "resourceSliceCount": 1}
    assert [d["name"] for d in spec["devices"]] == [f"npu-{i}" for i in range(8)]
    # type, physicId, chipName (table 5), in resource.k8s.io/v1's typed attribute form.
    assert spec["devices"][3]["attributes"] == {
        "type": {"string": "npu"},
        "physicId": {"int": 3},
        "chipName": {"string": "Ascend910B3"},
    }
    cls = devices.device_class()
    assert cls["metadata"]["name"] == "npu.huawei.com"
    assert cls["spec"]["selectors"] == [{"cel": {"expression": "device.driver == 'npu.huawei.com'"}}]


def test_operator_and_twin_agree_on_the_driver_and_class() -> None:
    assert (ascend.DRA_DRIVER, ascend.DRA_DEVICE_CLASS) == (devices.DRA_DRIVER, devices.DRA_DEVICE_CLASS)


def pod(status: list[dict[str, str]] | None, claims: list[dict[str, str]] | None = None) -> dict:
    claims = [{"name": "npu", "resourceClaimTemplateName": "job-npu"}] if claims is None else claims
    return {"spec": {"resourceClaims": claims}, "status": {"resourceClaimStatuses": status} if status else {}}


def test_claim_names_wait_for_the_resourceclaim_controller() -> None:
    assert devices.claim_names(pod(None)) is None  # not reported yet: wait
    assert devices.claim_names(pod([{"name": "npu", "resourceClaimName": "w0-npu-x1"}])) == ["w0-npu-x1"]
    assert devices.claim_names(pod(None, [{"name": "npu", "resourceClaimName": "shared"}])) == ["shared"]
    assert devices.claim_names(pod(None, [])) == []


def claim(results: list[dict[str, str]] | None) -> dict:
    status = {} if results is None else {"allocation": {"devices": {"results": results}}}
    return {"metadata": {"name": "w0-npu-x1"}, "status": status}


def result(device: str, pool: str = "ascend-dra-1", driver: str = "npu.huawei.com") -> dict[str, str]:
    return {"request": "npu", "driver": driver, "pool": pool, "device": device}


def test_allocated_ids_are_the_physical_ids_of_the_allocated_devices() -> None:
    assert devices.allocated_ids(claim(None), "ascend-dra-1") is None  # not allocated yet
    got = devices.allocated_ids(
        claim([result("npu-5"), result("npu-2"), result("x", driver="other")]), "ascend-dra-1"
    )
    assert got == [2, 5]
    with pytest.raises(ValueError, match="is in pool ascend-dra-2, not on node ascend-dra-1"):
        devices.allocated_ids(claim([result("npu-1", pool="ascend-dra-2")]), "ascend-dra-1")
    with pytest.raises(ValueError, match="'gpu-1' is not an npu-<id> device"):
        devices.allocated_ids(claim([result("gpu-1")]), "ascend-dra-1")


def test_dra_nodes_advertise_no_extended_resource() -> None:
    specs = {s.name: s for s in nodes.load_nodes(NODES_YAML.read_text())}
    dra = [s for s in specs.values() if s.dra]
    assert sorted(s.name for s in dra) == ["ascend-dra-1", "ascend-dra-2"]
    for spec in dra:
        advertised = nodes.node_status(spec, "127.0.0.9", 1, "now")["capacity"]
        assert "huawei.com/Ascend910" not in advertised and advertised["cpu"] == "16"
        assert spec.capacity["huawei.com/Ascend910"] == "8"  # what the driver publishes in the slice
    plain = nodes.node_status(specs["ascend-node-1"], "127.0.0.9", 1, "now")["capacity"]
    assert plain["huawei.com/Ascend910"] == "8"
    with pytest.raises(TypeError, match=r"nodes\[0\].dra must be true or false"):
        nodes.parse_nodes({"nodes": [{"name": "n", "dra": "yes"}]})


class FakeClient:
    """The one read the kubelet makes for a DRA pod: GET its ResourceClaim."""

    def __init__(self, claims: dict[str, dict]) -> None:
        self.claims = claims
        self.paths: list[str] = []

    def get(self, path: str) -> dict:
        from zoocluster.kubeapi import ApiError

        self.paths.append(path)
        name = path.rsplit("/", 1)[1]
        if name not in self.claims:
            raise ApiError(404, "not found")
        return self.claims[name]


def worker(tmp_path: Path, client: FakeClient, pod_body: dict):  # -> PodWorker
    from zoocluster.podworker import NodeInfo, PodWorker

    node = NodeInfo(
        "ascend-dra-1", "127.0.6.11", 11, devices.DeviceAllocator(8), devices.PluginConfig("v26"), dra=True
    )

    class Ctx:
        def __init__(self) -> None:
            self.client, self.state_dir, self.images = client, tmp_path, {}
            self.api_host, self.api_port, self.api_proxy_ip = "127.0.0.1", 1, None

        def node(self, name: str) -> NodeInfo:
            return node

        def configmap(self, ns: str, name: str) -> None:
            return None

        def secret(self, ns: str, name: str) -> None:
            return None

    return PodWorker(Ctx(), pod_body, "127.203.0.9")  # type: ignore[arg-type]


def dra_pod(status: list[dict[str, str]] | None) -> dict:
    body = pod(status)
    body["metadata"] = {"name": "job-worker-0", "namespace": "ns", "uid": "pod-uid"}
    body["spec"].update(nodeName="ascend-dra-1", containers=[{"name": "worker", "image": "x"}])
    return body


def test_the_kubelet_runs_a_dra_pod_only_on_its_allocated_and_reserved_npus(tmp_path: Path) -> None:
    allocated = claim([result("npu-6"), result("npu-3")])
    client = FakeClient({"w0-npu-x1": allocated})
    w = worker(tmp_path, client, dra_pod(None))
    assert not w._claimed(w.pod) and w.main[0].message == "waiting for the pod's ResourceClaim"
    assert client.paths == []  # nothing to read before the resourceclaim controller names the claim

    reported = dra_pod([{"name": "npu", "resourceClaimName": "w0-npu-x1"}])
    assert not w._claimed(reported)  # allocated, but not reserved for this pod: a kubelet refuses it
    assert w.main[0].message == "ResourceClaim w0-npu-x1 is not reserved for this pod"
    assert client.paths == ["/apis/resource.k8s.io/v1/namespaces/ns/resourceclaims/w0-npu-x1"]

    allocated["status"]["reservedFor"] = [{"resource": "pods", "name": "job-worker-0", "uid": "pod-uid"}]
    assert w._claimed(reported)
    assert (
        w.device_ids == [3, 6]
        and w.node.allocator is not None
        and w.node.allocator.held == {"pod-uid": [3, 6]}
    )
    # As MindCluster's DRA driver: no device annotation (its RBAC has no pod access) and no
    # ASCEND_VISIBLE_DEVICES (its CDI spec sets none): the container has only its davinci3/davinci6 nodes.
    assert w.annotation is None
    assert "ASCEND_VISIBLE_DEVICES" not in devices.container_env(w.device_ids, dra=True)
