"""The fake Ascend device plugin: allocation and the annotation the operator reads."""

import json

from zoocluster.devices import DeviceAllocator, annotation_value, ids_from_annotation, requested_devices


def test_allocation_is_lowest_free_first_and_released_ids_are_reused():
    alloc = DeviceAllocator(8)
    assert alloc.allocate("a", 3) == [0, 1, 2]
    assert alloc.allocate("b", 4) == [3, 4, 5, 6]
    assert alloc.allocate("a", 3) == [0, 1, 2]  # idempotent per pod
    assert alloc.allocate("c", 2) is None  # only 7 is free
    alloc.release("a")
    assert alloc.allocate("c", 2) == [0, 1]


def test_annotation_has_pod_server_and_device_ips():
    value = json.loads(annotation_value("job-worker-0", "127.0.2.2", 2, [0, 5]))
    assert value == {
        "pod_name": "job-worker-0",
        "server_id": "127.0.2.2",
        "devices": [
            {"device_id": "0", "device_ip": "192.168.2.101"},
            {"device_id": "5", "device_ip": "192.168.2.106"},
        ],
    }
    assert ids_from_annotation(json.dumps(value)) == [0, 5]
    assert ids_from_annotation("not json") == []


def test_requested_devices_counts_containers_and_init_containers():
    def ctr(n):
        return {"resources": {"limits": {"huawei.com/Ascend910": str(n)}}}

    pod = {"spec": {"containers": [ctr(1), ctr(2)], "initContainers": [ctr(1)]}}
    assert requested_devices(pod) == 3
    assert requested_devices({"spec": {"containers": [{}]}}) == 0
