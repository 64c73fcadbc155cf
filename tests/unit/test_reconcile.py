"""Reconcile passes against an in-memory stand-in for `zoo_operator.kube` (the operator's own API boundary)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from typing import Any

import merge_patch
import pytest
from operator_jobs import ascend_job, job

from zoo_operator import conditions as c
from zoo_operator import executor, kube, memory, planner, podview, ranktable, reconcile
from zoo_operator.settings import Settings

SETTINGS = Settings(status_interval_seconds=5.0, log_tail_lines=2)
T0 = 1_800_000_000.0


class FakeKube:
    """Records calls; holds created objects and the job's status like the apiserver would."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, volcano: bool = True) -> None:
        self.objects: dict[tuple[str, str], dict[str, Any]] = {}
        self.deleted: list[str] = []
        self.delete_uids: dict[str, str] = {}  # the UID precondition of each deletion (issue 24)
        self.write_uids: dict[
            str, str
        ] = {}  # "<verb> <name>" -> the UID precondition of that write (issue 24)
        self.taken_on_put: set[str] = set()  # ConfigMaps whose put raises NotOwned (taken since observe)
        self.status_patches: list[dict[str, Any]] = []
        self.logs: dict[str, str] = {}
        self.job_deleted = False
        self.volcano = volcano
        self.calls: list[str] = []
        self.warnings: dict[str, list[tuple[str, str]]] = {}
        for name in (
            "create",
            "put_config_map",
            "delete_pod",
            "pod_log",
            "patch_job_status",
            "delete_job",
            "pod_warnings",
            "annotate_pod",
            "remove_pod_finalizer",
            "serves",
            "controller_uid",
            "local_queue_exists",
            "get_node",
            "get_config_map_data",
        ):
            monkeypatch.setattr(kube, name, getattr(self, name))
        # Issue 23: Node objects and kube-system ConfigMaps (device info) by name; absent: a Ready node.
        self.nodes: dict[str, dict[str, Any] | None] = {}
        self.system_config_maps: dict[str, dict[str, str]] = {}
        self.delete_graces: dict[str, int | None] = {}
        self.local_queues: set[str] | None = None  # LocalQueues that exist; None: Kueue is not served

    async def create(self, obj: dict[str, Any]) -> bool:
        if obj["kind"] == "PodGroup" and not self.volcano:
            raise kube.MissingAPI("scheduling.volcano.sh/v1beta1 PodGroup is not served by this cluster")
        key = (obj["kind"], obj["metadata"]["name"])
        self.calls.append(f"create {key[0]} {key[1]}")
        if key in self.objects:
            return False
        self.objects[key] = obj
        return True

    async def controller_uid(self, obj: dict[str, Any]) -> str | None:
        held = self.objects.get((obj["kind"], obj["metadata"]["name"]))
        if held is None:
            return None
        refs = held["metadata"].get("ownerReferences") or []
        return next((r["uid"] for r in refs if r.get("controller")), "")

    async def local_queue_exists(self, namespace: str, name: str) -> bool | None:
        self.calls.append(f"get LocalQueue {name}")
        return None if self.local_queues is None else name in self.local_queues

    async def serves(self, api_version: str, plural: str) -> bool:
        self.calls.append(f"discover {api_version}")
        return self.volcano or not api_version.startswith("scheduling.volcano.sh/")

    async def put_config_map(self, obj: dict[str, Any]) -> None:
        self.calls.append(f"put ConfigMap {obj['metadata']['name']}")
        if obj["metadata"]["name"] in self.taken_on_put:
            raise kube.NotOwned("ConfigMap", obj["metadata"]["name"], "replaced since it was read")
        self.objects[("ConfigMap", obj["metadata"]["name"])] = obj

    async def get_node(self, name: str) -> dict[str, Any] | None:
        self.calls.append(f"get Node {name}")
        ready = {"status": {"conditions": [{"type": "Ready", "status": "True"}]}}
        return self.nodes.get(name, ready)

    async def get_config_map_data(self, namespace: str, name: str) -> dict[str, str] | None:
        self.calls.append(f"get ConfigMap {namespace}/{name}")
        return self.system_config_maps.get(name)

    async def delete_pod(self, namespace: str, name: str, uid: str = "", grace: int | None = None) -> None:
        self.calls.append(f"delete Pod {name}")
        self.delete_uids[name] = uid
        self.delete_graces[name] = grace
        self.deleted.append(name)
        self.objects.pop(("Pod", name), None)

    async def pod_log(self, namespace: str, name: str, tail_lines: int) -> str | None:
        return self.logs.get(name)

    async def patch_job_status(
        self, namespace: str, name: str, patch: dict[str, Any], uid: str = "", has_status: bool = True
    ) -> None:
        self.calls.append("patch status")
        self.write_uids[f"status {name}"] = uid
        self.status_patches.append(patch)

    async def delete_job(self, namespace: str, name: str, uid: str = "") -> None:
        self.job_deleted = True
        self.write_uids[f"delete {name}"] = uid

    async def pod_warnings(self, namespace: str, name: str) -> list[tuple[str, str]]:
        self.calls.append(f"events {name}")
        return self.warnings.get(name, [])

    async def annotate_pod(
        self, namespace: str, name: str, annotations: dict[str, str], uid: str = ""
    ) -> None:
        self.calls.append(f"annotate Pod {name} {sorted(annotations.items())}")
        self.write_uids[f"annotate {name}"] = uid

    async def remove_pod_finalizer(self, namespace: str, name: str, finalizer: str, uid: str = "") -> None:
        self.calls.append(f"release Pod {name}")
        self.write_uids[f"release {name}"] = uid

    def pods(self) -> list[dict[str, Any]]:
        return [o for (kind, _), o in sorted(self.objects.items()) if kind == "Pod"]


class Harness:
    """Runs passes the way the kopf timer does, applying status patches to the body in between."""

    def __init__(self, fake: FakeKube, body: dict[str, Any]) -> None:
        self.fake, self.body, self.mem = fake, body, memory.JobMemory()
        self.events: list[tuple[str, str, str]] = []
        self.pod_state: dict[str, dict[str, Any]] = {}
        self.last = planner.Plan()

    def views(self) -> list[podview.PodView]:
        out = []
        for pod in self.fake.pods():
            name = pod["metadata"]["name"]
            body = {
                **pod,
                "metadata": {
                    **pod["metadata"],
                    "uid": f"uid-{name}",
                    "creationTimestamp": podview.format_time(T0),
                },
            }
            extra = self.pod_state.get(name, {})
            body["metadata"]["annotations"] = {
                **pod["metadata"].get("annotations", {}),
                **extra.get("annotations", {}),
            }
            body["status"] = extra.get("status", {"phase": "Pending"})
            body["metadata"]["finalizers"] = extra.get("finalizers", [])
            out.append(podview.view(body))
        return out

    def run(self, now: float) -> None:
        self.last = asyncio.run(
            reconcile.reconcile(
                self.body, self.views(), SETTINGS, self.mem, now, lambda *e: self.events.append(e)
            )
        )
        for patch in self.fake.status_patches:
            # As the apiserver applies a merge patch to the status subresource: RFC 7386, recursively.
            self.body["status"] = merge_patch.apply(self.body.get("status") or {}, patch)
        self.fake.status_patches.clear()

    def set_running(self, name: str, annotation: dict[str, Any] | None = None) -> None:
        state: dict[str, Any] = {
            "status": {
                "phase": "Running",
                "podIP": "10.244.0.5",
                "containerStatuses": [{"state": {"running": {}}}],
            }
        }
        if annotation:
            state["annotations"] = {c.ASCEND_ANNOTATION: json.dumps(annotation)}
        self.pod_state[name] = state

    def set_exit(self, name: str, code: int, message: str = "") -> None:
        term = {"exitCode": code, "reason": "Completed" if code == 0 else "Error", "message": message}
        self.pod_state[name] = {
            **self.pod_state.get(name, {}),
            "status": {
                "phase": "Succeeded" if code == 0 else "Failed",
                "containerStatuses": [{"state": {"terminated": term}}],
            },
        }


def hccl(fake: FakeKube, name: str) -> dict[str, Any]:
    return json.loads(fake.objects[("ConfigMap", name)]["data"]["hccl.json"])


def test_ascend_job_lifecycle(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeKube(monkeypatch)
    h = Harness(fake, ascend_job(replicas=2))
    h.run(T0)
    assert {k for k in fake.objects} == {
        ("Service", "asc"),
        ("ConfigMap", "asc-ranktable"),
        ("NetworkPolicy", "asc"),
        ("Pod", "asc-worker-0"),
        ("Pod", "asc-worker-1"),
    }
    assert h.body["status"]["phase"] == c.PENDING
    assert h.body["status"]["rankTable"]["status"] == "initializing"
    assert hccl(fake, "asc-ranktable")["status"] == "initializing"
    assert [e[1] for e in h.events][:1] == [c.REASON_JOB_CREATED]  # an Event says the objects were created

    h.run(T0 + 1)  # nothing new: no duplicate pods, no status write
    assert [e[1] for e in h.events].count(c.REASON_JOB_CREATED) == 1
    assert len(fake.pods()) == 2 and fake.calls.count("patch status") == 1

    h.set_running(
        "asc-worker-0",
        {
            "pod_name": "asc-worker-0",
            "server_id": "10.0.0.2",
            "devices": [{"device_id": "0", "device_ip": "192.168.100.101"}],
        },
    )
    h.set_running(
        "asc-worker-1",
        {
            "pod_name": "asc-worker-1",
            "server_id": "10.0.0.10",
            "devices": [{"device_id": "5", "device_ip": "192.168.100.106"}],
        },
    )
    h.run(T0 + 2)
    table = hccl(fake, "asc-ranktable")
    assert table["status"] == "completed"
    assert [s["server_id"] for s in table["server_list"]] == ["10.0.0.10", "10.0.0.2"]
    assert table["server_list"][0]["device"] == [
        {"device_id": "5", "device_ip": "192.168.100.106", "rank_id": "0"}
    ]
    assert fake.objects[("ConfigMap", "asc-ranktable")]["data"]["attempt"] == "0"
    assert set(fake.objects[("ConfigMap", "asc-ranktable")]["data"]) == {"hccl.json", "attempt"}
    st = h.body["status"]
    assert st["phase"] == c.RUNNING and st["rankTable"]["status"] == "completed"
    assert any(e[1] == c.REASON_RANK_TABLE_COMPLETED for e in h.events)

    done = {
        "status": "succeeded",
        "metrics": {"top_1_accuracy": 0.61, "top_5_accuracy": 0.9},
        "checkpoint": "/zoo/checkpoint/asc/final.ckpt",
        "epochs": 1,
    }
    # rank 0 is worker-1 (server 10.0.0.10 sorts first); its log says so.
    fake.logs["asc-worker-1"] = json.dumps({"event": "start", "ts": 1, "rank": 0, "epochs": 1})
    h.set_exit("asc-worker-1", 0, json.dumps(done))
    h.set_exit("asc-worker-0", 0, json.dumps({**done, "metrics": {"top_1_accuracy": 0.1}}))
    h.run(T0 + 10)
    st = h.body["status"]
    assert st["phase"] == c.SUCCEEDED and st["result"]["top1"] == 0.61 and st["result"]["top5"] == 0.9
    # In the user's terms: the volume as the spec names it and the path relative to it (issue 13).
    assert st["result"]["checkpoint"] == "asc/final.ckpt" and st["result"]["checkpointVolume"] == "emptyDir"
    assert st["completionTime"] == podview.format_time(T0 + 10)


def test_gang_restart_counts_before_deleting(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeKube(monkeypatch)
    h = Harness(fake, job(runPolicy={"backoffLimit": 1}))
    h.run(T0)
    assert [p["metadata"]["name"] for p in fake.pods()] == ["demo-sched", "demo-worker-0", "demo-worker-1"]
    for name in ("demo-sched", "demo-worker-0", "demo-worker-1"):
        h.set_running(name)
    fake.logs["demo-worker-1"] = "step 1\nstep 2\nconnection lost"
    h.set_exit("demo-worker-1", 75)
    fake.calls.clear()
    h.run(T0 + 3)
    assert fake.calls[0] == "patch status" and fake.calls[1].startswith("delete Pod")
    st = h.body["status"]
    assert st["phase"] == c.RESTARTING and st["restarts"] == 1
    failed = next(s for s in st["rankSummaries"] if s["pod"] == "demo-worker-1")
    assert failed["exitCode"] == 75 and failed["lastLines"] == ["step 2", "connection lost"]
    h.pod_state.clear()
    h.run(T0 + 4)  # pods are gone, but the first restart waits 10 s
    assert fake.pods() == [] and h.body["status"]["phase"] == c.RESTARTING
    h.run(T0 + 14)  # recreated with the next attempt
    assert [p["metadata"]["annotations"][c.ANNOTATION_ATTEMPT] for p in fake.pods()] == ["1", "1", "1"]
    assert h.body["status"]["phase"] == c.RESTARTING
    assert "lastLines" in next(s for s in h.body["status"]["rankSummaries"] if s["pod"] == "demo-worker-1")
    h.set_exit("demo-worker-0", 75)
    h.run(T0 + 15)
    assert h.body["status"]["phase"] == c.FAILED and h.body["status"]["reason"] == c.REASON_BACKOFF_LIMIT


def test_invalid_spec_creates_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeKube(monkeypatch)
    h = Harness(fake, job(hyperparameters={"learning_rate": 1}))
    h.run(T0)
    assert fake.objects == {}
    st = h.body["status"]
    assert st["phase"] == c.FAILED and st["reason"] == c.REASON_INVALID_SPEC
    assert st["message"].startswith("spec.hyperparameters.learning_rate: unknown hyperparameter")
    assert h.events and h.events[0][:2] == ("Warning", c.REASON_INVALID_SPEC)
    h.run(T0 + 1)
    assert fake.calls.count("patch status") == 1  # unchanged: not written again
    # Fixing the spec (a new generation) starts the job.
    h.body["spec"]["hyperparameters"] = {"lr_max": 0.1}
    h.body["metadata"]["generation"] = 2
    h.run(T0 + 2)
    assert h.body["status"]["phase"] == c.PENDING and len(fake.pods()) == 3


def test_progress_writes_are_rate_limited(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeKube(monkeypatch)
    h = Harness(fake, job())
    h.run(T0)
    for name in ("demo-sched", "demo-worker-0", "demo-worker-1"):
        h.set_running(name)
    h.run(T0 + 1)  # phase change: written at once
    assert h.body["status"]["phase"] == c.RUNNING
    assert h.last.follow == "demo-worker-0"  # rank 0's log is followed, no other log is read
    step = {
        "event": "step",
        "ts": 1,
        "rank": 0,
        "epoch": 1,
        "step": 3,
        "steps_per_epoch": 9,
        "loss": 2.5,
        "images_per_second": 7.0,
    }
    # What the runner's follower does with each streamed line of rank 0's log.
    assert memory.feed_lines(h.mem, "demo-worker-0", "uid-demo-worker-0", [json.dumps(step)], 2)
    h.run(T0 + 2)  # the last write was 1 s ago: not yet, but the pass says when
    assert "step" not in h.body["status"].get("progress", {})
    assert h.last.next_due == T0 + 1 + SETTINGS.status_interval_seconds
    h.run(T0 + 6.5)
    assert h.body["status"]["progress"] == {
        "epoch": 1,
        "step": 3,
        "stepsPerEpoch": 9,
        "loss": 2.5,
        "imagesPerSecond": 7.0,
        "updateTime": podview.format_time(T0 + 6.5),
        "stage": "Training",
        "display": "1",
        "stepDisplay": "3/9",
    }
    assert memory.feed_lines(
        h.mem, "demo-worker-0", "uid-demo-worker-0", [json.dumps({**step, "step": 4})], 2
    )
    assert not memory.feed_lines(h.mem, "demo-worker-0", "uid-demo-worker-0", ["a person's line"], 2)
    writes = fake.calls.count("patch status")
    h.run(T0 + 12)
    h.run(T0 + 13)
    assert fake.calls.count("patch status") == writes + 1 and h.body["status"]["progress"]["step"] == 4
    rank0 = next(s for s in h.body["status"]["rankSummaries"] if s["pod"] == "demo-worker-0")
    assert rank0["lastLines"][-1] == "a person's line"
    assert fake.calls.count("patch status") == writes + 1 and fake.logs == {}  # nothing polled


def test_missing_volcano_is_a_condition(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeKube(monkeypatch, volcano=False)
    h = Harness(fake, job(scheduling={"gang": True}))
    h.run(T0)
    cond = next(x for x in h.body["status"]["conditions"] if x["type"] == c.POD_GROUP_READY)
    assert cond["status"] == "False" and cond["reason"] == c.REASON_VOLCANO_MISSING
    assert "install Volcano" in cond["message"]
    assert len(fake.pods()) == 3


def test_ttl_deletes_the_job(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeKube(monkeypatch)
    body = job(runPolicy={"ttlSecondsAfterFinished": 0})
    body["status"] = {"phase": c.SUCCEEDED, "completionTime": podview.format_time(T0)}
    Harness(fake, body).run(T0 + 1)
    assert fake.job_deleted and fake.objects == {}


def test_static_devices_complete_the_table_without_annotations(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeKube(monkeypatch)
    static = [
        {"podIndex": i, "serverId": "10.0.0.1", "deviceId": str(i), "deviceIp": f"192.168.0.{i}"}
        for i in range(2)
    ]
    h = Harness(
        fake,
        ascend_job(
            replicas=2,
            device={"type": "Ascend910", "chip": "A3"},
            rankTable={"version": "1.2", "staticDevices": static},
        ),
    )
    h.run(T0)
    table = hccl(fake, "asc-ranktable")
    assert table["status"] == "completed" and table["version"] == "1.2"
    assert [d["device_ip"] for d in table["server_list"][0]["device"]] == ["192.168.0.0", "192.168.0.1"]


def test_a_lagging_body_does_not_undo_a_restart(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeKube(monkeypatch)
    h = Harness(fake, job(replicas=1))
    h.run(T0)
    for name in ("demo-sched", "demo-worker-0"):
        h.set_running(name)
    h.set_exit("demo-worker-0", 1)
    stale = {k: dict(v) if isinstance(v, dict) else v for k, v in h.body["status"].items()}
    h.run(T0 + 1)
    assert h.body["status"]["restarts"] == 1
    h.body["status"] = stale  # the watch has not delivered the restart yet
    h.pod_state.clear()
    h.run(T0 + 12)
    assert [p["metadata"]["annotations"][c.ANNOTATION_ATTEMPT] for p in fake.pods()] == ["1", "1"]


def test_big_jobs_read_only_the_logs_status_keeps(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeKube(monkeypatch)
    read: list[str] = []

    async def pod_log(namespace: str, name: str, tail_lines: int) -> str | None:
        read.append(name)
        return "line"

    monkeypatch.setattr(kube, "pod_log", pod_log)
    h = Harness(fake, ascend_job(replicas=80))
    h.run(T0)
    for i in range(80):
        h.set_running(f"asc-worker-{i}")
    h.set_exit("asc-worker-7", 75)
    h.run(T0 + 10)
    # Only the rank that ended is read, once (rank 0 is followed as a stream by the runner, not polled).
    assert read == ["asc-worker-7"] and h.last.follow is None  # restarting: nothing followed
    h.run(T0 + 11)
    assert read == ["asc-worker-7"]


def test_replicas_patch_on_a_running_job_restarts_the_whole_gang(monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 11: `kubectl patch` of spec.replicas 2 -> 3 never adds a pod to the running gang."""
    fake = FakeKube(monkeypatch)
    h = Harness(fake, job(replicas=2))
    h.run(T0)
    for pod in fake.pods():
        h.set_running(pod["metadata"]["name"])
    h.run(T0 + 1)
    assert h.body["status"]["phase"] == c.RUNNING
    h.body["spec"]["replicas"] = 3
    h.body["metadata"]["generation"] = 2
    h.run(T0 + 2)
    assert h.body["status"]["reason"] == c.REASON_SPEC_CHANGED
    assert sorted(fake.deleted) == ["demo-sched", "demo-worker-0", "demo-worker-1"]
    # Each deletion is of the pod the pass saw, by UID: a pod that took the name since is not deleted.
    assert fake.delete_uids == {n: f"uid-{n}" for n in ("demo-sched", "demo-worker-0", "demo-worker-1")}
    assert ("Pod", "demo-worker-2") not in fake.objects, "no pod joins the running gang"
    assert any(e[0] == "Warning" and e[1] == c.REASON_SPEC_CHANGED for e in h.events)
    h.pod_state.clear()
    h.run(T0 + 3)  # old pods gone: the new gang of 3 is created whole, without using up a restart
    assert {p["metadata"]["name"] for p in fake.pods()} == {
        "demo-sched",
        "demo-worker-0",
        "demo-worker-1",
        "demo-worker-2",
    }
    assert h.body["status"]["restarts"] == 0


def test_edit_of_a_finished_job_posts_one_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeKube(monkeypatch)
    h = Harness(fake, job(replicas=1))
    h.run(T0)
    for pod in fake.pods():
        h.set_exit(pod["metadata"]["name"], 0)
    h.run(T0 + 1)
    assert h.body["status"]["phase"] == c.SUCCEEDED
    created = [call for call in fake.calls if call.startswith("create Pod")]
    h.body["spec"]["hyperparameters"]["epochs"] = 9
    h.body["metadata"]["generation"] = 2
    for t in range(2, 6):
        h.run(T0 + t)
    ignored = [e for e in h.events if e[1] == c.REASON_SPEC_CHANGE_IGNORED]
    assert len(ignored) == 1 and ignored[0][0] == "Warning" and "generation 1 -> 2" in ignored[0][2]
    assert h.body["status"]["phase"] == c.SUCCEEDED
    assert [call for call in fake.calls if call.startswith("create Pod")] == created, "not acted on"


def test_kubelet_warning_of_a_pod_that_cannot_start_reaches_status(monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 11: a real kubelet says why a volume cannot mount only in a FailedMount Event."""
    fake = FakeKube(monkeypatch)
    h = Harness(fake, job(replicas=1, runPolicy={"schedulingTimeoutSeconds": 30}))
    h.run(T0)
    for pod in fake.pods():
        pod["spec"]["nodeName"] = "n1"
        h.pod_state[pod["metadata"]["name"]] = {
            "status": {
                "phase": "Pending",
                "containerStatuses": [{"state": {"waiting": {"reason": "ContainerCreating"}}}],
            }
        }
    fake.warnings["demo-worker-0"] = [
        ("FailedMount", ('MountVolume.SetUp failed for volume "zoo-data" : hostPath /data doesn\'t exist'))
    ]
    h.run(T0 + 2)  # too young: no Event read yet
    assert not any(call.startswith("events") for call in fake.calls)
    h.run(T0 + 6)
    status = h.body["status"]
    assert status["reason"] == c.REASON_POD_START_BLOCKED, status
    assert (
        'FailedMount: MountVolume.SetUp failed for volume "zoo-data" (spec.dataset.volume)'
        in status["message"]
    )
    reads = sum(call.startswith("events") for call in fake.calls)
    h.run(T0 + 8)  # read again only after 10 s
    assert sum(call.startswith("events") for call in fake.calls) == reads
    h.run(T0 + 31)
    assert (h.body["status"]["phase"], h.body["status"]["reason"]) == (c.FAILED, c.REASON_POD_START_FAILED)


def test_rank_table_is_rebuilt_only_when_devices_change(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeKube(monkeypatch)
    built: list[int] = []
    real = ranktable.config_map_data

    def counting(devices: Any, replicas: int, version: str, attempt: int = 0) -> dict[str, str]:
        built.append(len(devices))
        return real(devices, replicas, version, attempt)

    monkeypatch.setattr(ranktable, "config_map_data", counting)
    h = Harness(fake, ascend_job(replicas=2))
    h.run(T0)
    h.run(T0 + 1)
    assert built == [0]
    for i in range(2):
        h.set_running(
            f"asc-worker-{i}",
            {
                "pod_name": f"asc-worker-{i}",
                "server_id": "10.0.0.2",
                "devices": [{"device_id": str(i), "device_ip": f"192.168.100.10{i}"}],
            },
        )
    h.run(T0 + 2)
    h.run(T0 + 3)
    # issue 25: the first table went out in the ConfigMap's create, so only the completed one is a put.
    assert built == [0, 2] and fake.calls.count("put ConfigMap asc-ranktable") == 1


def test_pods_go_out_with_the_service_and_table_but_after_the_policy_and_group(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Issue 25: the first pass's pods do not wait for the Service or the rank-table ConfigMap (the ConfigMap is
    created holding the initializing table, no separate put), but never start before the NetworkPolicy and the
    gang's PodGroup exist."""
    fake = FakeKube(monkeypatch)
    trace: list[str] = []
    record = fake.create

    async def slow_create(obj: dict[str, Any]) -> bool:
        trace.append(f"start {obj['kind']}")
        if obj["kind"] != "Pod":
            await asyncio.sleep(0.05)  # long enough for every pod create to start if nothing waits
        made = await record(obj)
        trace.append(f"end {obj['kind']}")
        return made

    monkeypatch.setattr(kube, "create", slow_create)
    h = Harness(fake, ascend_job(replicas=2, scheduling={"gang": True}))
    h.run(T0)
    first_pod = trace.index("start Pod")
    assert trace.index("end NetworkPolicy") < first_pod and trace.index("end PodGroup") < first_pod, trace
    assert first_pod < trace.index("end Service") and first_pod < trace.index("end ConfigMap"), trace
    assert "put ConfigMap asc-ranktable" not in fake.calls
    assert hccl(fake, "asc-ranktable")["status"] == "initializing"
    assert fake.objects[("ConfigMap", "asc-ranktable")]["data"]["attempt"] == "0"
    assert h.mem.rank_table_data == fake.objects[("ConfigMap", "asc-ranktable")]["data"]
    assert [e[1] for e in h.events][:1] == [c.REASON_JOB_CREATED]
    h.run(T0 + 1)  # the memory knows the table is written: no put of the same data
    assert "put ConfigMap asc-ranktable" not in fake.calls


def test_a_pass_before_the_index_caught_up_creates_no_pod_twice(monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 25: the pod index lags the creates (a watch); the next pass does not ask for the same pods again,
    and once the pods show they stay created exactly once."""
    fake = FakeKube(monkeypatch)
    h = Harness(fake, ascend_job(replicas=3))
    h.run(T0)
    real_views = h.views
    monkeypatch.setattr(h, "views", lambda: real_views()[:1])  # the index shows one pod of three
    h.run(T0 + 1)
    monkeypatch.setattr(h, "views", real_views)
    h.run(T0 + 2)
    assert sum(call.startswith("create Pod") for call in fake.calls) == 3 and len(fake.pods()) == 3
    assert h.mem.expected == {}


def test_an_existing_config_map_still_gets_the_table(monkeypatch: pytest.MonkeyPatch) -> None:
    """A launch ConfigMap that already exists (an operator restart: the memory is new) is not overwritten by the
    create, so the table goes out as a put."""
    fake = FakeKube(monkeypatch)
    h = Harness(fake, ascend_job(replicas=2))
    owner = {"kind": "ZooTrainingJob", "name": "asc", "uid": h.body["metadata"]["uid"], "controller": True}
    meta = {
        "name": "asc-ranktable",
        "namespace": "ns1",
        "ownerReferences": [owner],
    }  # the job's own (issue 24)
    fake.objects[("ConfigMap", "asc-ranktable")] = {"kind": "ConfigMap", "metadata": meta, "data": {}}
    h.run(T0)
    assert fake.calls.count("put ConfigMap asc-ranktable") == 1
    assert hccl(fake, "asc-ranktable")["status"] == "initializing"


def test_missing_service_and_config_map_are_recreated(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeKube(monkeypatch)
    h = Harness(fake, job())
    h.run(T0)
    assert ("Service", "demo") in fake.objects
    del fake.objects[("Service", "demo")], fake.objects[("ConfigMap", "demo-launch")]
    asyncio.run(
        reconcile.reconcile(
            h.body,
            h.views(),
            SETTINGS,
            h.mem,
            T0 + 1,
            lambda *e: None,
            existing={("Service", "demo"), ("ConfigMap", "demo-launch")},
        )
    )
    assert ("Service", "demo") not in fake.objects  # the index says they exist: nothing written
    asyncio.run(
        reconcile.reconcile(h.body, h.views(), SETTINGS, h.mem, T0 + 2, lambda *e: None, existing=set())
    )
    assert ("Service", "demo") in fake.objects and ("ConfigMap", "demo-launch") in fake.objects


def test_next_due_covers_backoff_deadline_scheduling_and_ttl(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeKube(monkeypatch)
    h = Harness(
        fake,
        job(
            replicas=1,
            runPolicy={
                "backoffLimit": 2,
                "activeDeadlineSeconds": 200,
                "schedulingTimeoutSeconds": 60,
                "ttlSecondsAfterFinished": 30,
            },
        ),
    )
    h.run(T0)
    assert h.last.next_due == T0 + 200  # the deadline; the new pods' events bring the next pass
    h.run(T0 + 1)  # the pods show up: a rate-limited status write (rank counts) is due first
    assert h.last.next_due == T0 + 5
    h.run(T0 + 5)  # pods created at T0 (the harness's creationTimestamp), not scheduled: the timeout is next,
    assert h.last.next_due == T0 + 1 + 60  # counted from the end of the creation timestamp's second
    for name in ("demo-sched", "demo-worker-0"):
        h.set_running(name)
    h.run(T0 + 6)
    assert h.last.next_due == T0 + 200  # the deadline (startTime is T0)
    h.set_exit("demo-worker-0", 1)
    h.run(T0 + 7)
    h.pod_state.clear()
    h.run(T0 + 8)
    assert h.last.next_due == T0 + 7 + 5  # the rate-limited write of the pods being gone
    h.run(T0 + 12)
    assert h.body["status"]["phase"] == c.RESTARTING and h.last.next_due == T0 + 7 + 10  # backoff end
    assert fake.pods() == []
    h.body["spec"]["replicas"] = 1
    h.body["status"]["phase"] = c.SUCCEEDED
    h.body["status"]["completionTime"] = podview.format_time(T0 + 20)
    h.mem.last_written = None
    h.run(T0 + 21)
    assert h.last.next_due == T0 + 50 and not fake.job_deleted
    h.run(T0 + 50)
    assert fake.job_deleted and h.last.next_due is None


def test_pods_are_created_concurrently_and_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeKube(monkeypatch)
    in_flight = peak = 0

    async def create(obj: dict[str, Any]) -> bool:
        nonlocal in_flight, peak
        pod = obj["kind"] == "Pod"  # the Service and ConfigMap go out beside the pods (issue 25)
        in_flight += pod
        peak = max(peak, in_flight)
        await asyncio.sleep(0.001)
        in_flight -= pod
        fake.objects[(obj["kind"], obj["metadata"]["name"])] = obj
        return True

    monkeypatch.setattr(kube, "create", create)
    h = Harness(fake, ascend_job(replicas=200))
    h.run(T0)
    assert len(fake.pods()) == 200 and peak == executor.WRITES_IN_FLIGHT


def refusing(
    fake: FakeKube, monkeypatch: pytest.MonkeyPatch, allowed: int, code: int, message: str
) -> list[int]:
    """Make pod creation fail like admission would, after `allowed` pods; returns a one-item list to change it."""
    budget = [allowed]
    real = fake.create

    async def create(obj: dict[str, Any]) -> bool:
        if obj["kind"] == "Pod" and ("Pod", obj["metadata"]["name"]) not in fake.objects:
            if budget[0] <= 0:
                raise kube.Refused(obj["metadata"]["name"], code, message)
            budget[0] -= 1
        return await real(obj)

    monkeypatch.setattr(kube, "create", create)
    return budget


def test_a_webhook_refusal_fails_the_job_at_once_and_deletes_its_pods(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake = FakeKube(monkeypatch)
    refusing(
        fake, monkeypatch, 1, 422, 'admission webhook "deny.example.com" denied the request: no GPUs here'
    )
    h = Harness(fake, job())
    h.run(T0)
    assert len(fake.pods()) == 1 and h.last.next_due == T0  # refused: the next pass is due now
    h.run(T0 + 0.1)
    st = h.body["status"]
    assert st["phase"] == c.FAILED and st["reason"] == c.REASON_ADMISSION_REFUSED
    assert "(422)" in st["message"] and "denied the request: no GPUs here" in st["message"]
    assert fake.pods() == [] and h.events[-1][:2] == ("Warning", c.REASON_ADMISSION_REFUSED)


def test_a_quota_refusal_waits_with_a_condition_then_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeKube(monkeypatch)
    quota = 'pods "demo-worker-1" is forbidden: exceeded quota: one-pod, requested: pods=1, used: pods=1, limited: pods=1'
    budget = refusing(fake, monkeypatch, 1, 403, quota)
    h = Harness(fake, job(runPolicy={"schedulingTimeoutSeconds": 30}))
    h.run(T0)
    assert h.last.next_due == T0 + 10  # tried again in 10 s
    h.run(T0 + 6)  # (the condition is a rate-limited write)
    st = h.body["status"]
    cond = next(x for x in st["conditions"] if x["type"] == c.PODS_ADMITTED)
    assert (
        st["phase"] == c.PENDING and cond["status"] == "False" and cond["reason"] == c.REASON_QUOTA_EXCEEDED
    )
    assert "exceeded quota: one-pod" in cond["message"]
    budget[0] = 1  # one more pod fits now
    h.run(T0 + 11)
    h.run(T0 + 29)
    assert len(fake.pods()) == 2 and h.body["status"]["phase"] == c.PENDING
    h.run(T0 + 30)  # 30 s after the first refusal
    st = h.body["status"]
    assert (
        st["phase"] == c.FAILED
        and st["reason"] == c.REASON_ADMISSION_REFUSED
        and "waited 30s" in st["message"]
    )
    assert fake.pods() == []  # nothing keeps holding the quota


def test_a_quota_that_clears_admits_the_pods(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeKube(monkeypatch)
    budget = refusing(fake, monkeypatch, 0, 403, "exceeded quota: q")
    h = Harness(fake, job())
    h.run(T0)
    budget[0] = 10
    h.run(T0 + 10)
    h.run(T0 + 20)
    cond = next(x for x in h.body["status"]["conditions"] if x["type"] == c.PODS_ADMITTED)
    assert cond["status"] == "True" and len(fake.pods()) == 3 and h.body["status"]["phase"] == c.PENDING


def test_a_timeout_while_a_quota_refuses_is_reported_as_the_refusal(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeKube(monkeypatch)
    refusing(fake, monkeypatch, 1, 403, "exceeded quota: q")
    h = Harness(fake, job(runPolicy={"schedulingTimeoutSeconds": 30}))
    h.run(T0)
    h.run(T0 + 30)  # the admitted pod (created at T0) is not scheduled after 30 s
    assert h.body["status"]["reason"] == c.REASON_ADMISSION_REFUSED and fake.pods() == []


def test_times_that_passed_never_make_a_job_due_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeKube(monkeypatch)
    h = Harness(fake, ascend_job(replicas=2, runPolicy={"schedulingTimeoutSeconds": 60}))
    h.run(T0)
    for name in ("asc-worker-0", "asc-worker-1"):  # bound to a node, no container yet (no kubelet there)
        h.pod_state[name] = {"status": {"phase": "Pending"}}
    h.views = lambda real=h.views: [dataclasses.replace(p, node="n1") for p in real()]  # type: ignore[method-assign]
    h.run(T0 + 1000)  # long past created + 60 s: the pods never started (issue 11: the job fails, with why)
    assert (h.body["status"]["phase"], h.body["status"]["reason"]) == (c.FAILED, c.REASON_POD_START_FAILED)
    assert h.last.next_due is None or h.last.next_due > T0 + 1000  # never due at once again: no spin


def test_finished_kueue_job_marks_its_pods_unretriable_before_deleting_any(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Kueue finishes a pod group only when every pod succeeded, or none is active and one is marked
    unretriable: cleanPodPolicy Running deletes the scheduler pod, which never succeeds."""
    fake = FakeKube(monkeypatch)
    h = Harness(fake, job(replicas=1))
    h.run(T0)
    for name in ("demo-sched", "demo-worker-0"):
        h.set_running(name)
        h.pod_state[name]["finalizers"] = [c.KUEUE_FINALIZER]
    h.run(T0 + 1)
    assert not any(call.startswith("annotate") for call in fake.calls)  # running: no mark
    h.set_exit("demo-worker-0", 0)
    fake.calls.clear()
    h.run(T0 + 2)
    assert h.body["status"]["phase"] == c.SUCCEEDED
    marks = [i for i, call in enumerate(fake.calls) if call.startswith("annotate Pod")]
    mark = str([(c.KUEUE_RETRIABLE_ANNOTATION, "false")])
    assert sorted(fake.calls[i] for i in marks) == [
        f"annotate Pod demo-sched {mark}",
        f"annotate Pod demo-worker-0 {mark}",
    ]
    # issue 24: each mark names the pod the index saw (a merge patch carrying metadata.uid)
    assert {k: v for k, v in fake.write_uids.items() if k.startswith("annotate")} == {
        "annotate demo-sched": "uid-demo-sched",
        "annotate demo-worker-0": "uid-demo-worker-0",
    }
    assert fake.write_uids["status demo"] == h.body["metadata"]["uid"]  # the status names the job read
    assert "delete Pod demo-sched" not in fake.calls  # cleanPodPolicy acts on the next pass, after the mark
    for name in ("demo-sched", "demo-worker-0"):
        h.pod_state[name].setdefault("annotations", {})[c.KUEUE_RETRIABLE_ANNOTATION] = "false"
    fake.calls.clear()
    h.run(T0 + 3)
    assert "delete Pod demo-sched" in fake.calls and not any(
        call.startswith("annotate") for call in fake.calls
    )


def test_a_rank_table_taken_between_observe_and_put_is_not_written_and_is_read_next(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Issue 24: the rank-table ConfigMap replaced by another owner's after the pass read its owner: the put is
    refused (kube.NotOwned, the apiserver's UID test), the memory does not claim the table was written, the name
    is read again soon, and once read as foreign the job stops with ObjectNotOwned and writes nothing by name."""
    fake = FakeKube(monkeypatch)
    h = Harness(fake, ascend_job(replicas=2))
    h.run(T0)
    for i in range(2):
        h.set_running(
            f"asc-worker-{i}",
            {
                "pod_name": f"asc-worker-{i}",
                "server_id": "10.0.0.2",
                "devices": [{"device_id": str(i), "device_ip": f"192.168.100.10{i}"}],
            },
        )
    written = dict(h.mem.rank_table_data or {})
    fake.taken_on_put.add("asc-ranktable")
    h.run(T0 + 1)
    assert "put ConfigMap asc-ranktable" in fake.calls
    assert h.mem.rank_table_data == written, "a refused put is not remembered as written"
    assert ("ConfigMap", "asc-ranktable") in h.mem.taken
    assert h.last.next_due is not None and h.last.next_due <= T0 + 1 + 1.0  # guards.TAKEN_RECHECK_SECONDS
    intruder = {"kind": "ConfigMap", "metadata": {"name": "asc-ranktable", "ownerReferences": []}, "data": {}}
    fake.objects[("ConfigMap", "asc-ranktable")] = intruder
    fake.calls.clear()
    h.run(T0 + 10)  # past the status interval (a condition alone is not written at once)
    owned = next(x for x in h.body["status"]["conditions"] if x["type"] == c.OBJECTS_OWNED)
    assert (owned["status"], owned["reason"]) == ("False", c.REASON_OBJECT_NOT_OWNED)
    assert "ConfigMap asc-ranktable" in owned["message"]
    assert any(e[:2] == ("Warning", c.REASON_OBJECT_NOT_OWNED) for e in h.events), h.events
    assert not [call for call in fake.calls if call.startswith(("put", "delete", "create"))], fake.calls
    assert fake.objects[("ConfigMap", "asc-ranktable")] is intruder


def test_gang_restart_resets_the_rank_table_to_the_new_attempt(monkeypatch: pytest.MonkeyPatch) -> None:
    """The old gang's completed table must not reach the new pods as if it were theirs: the restart pass writes
    an initializing table marked with the new attempt, and the old pods' devices are never listed again."""
    fake = FakeKube(monkeypatch)
    h = Harness(fake, ascend_job(replicas=2, runPolicy={"backoffLimit": 2}))
    h.run(T0)
    for i, (server, dev) in enumerate((("10.0.0.2", "0"), ("10.0.0.10", "5"))):
        h.set_running(
            f"asc-worker-{i}",
            {
                "pod_name": f"asc-worker-{i}",
                "server_id": server,
                "devices": [{"device_id": dev, "device_ip": f"192.168.100.10{i}"}],
            },
        )
    h.run(T0 + 1)
    assert hccl(fake, "asc-ranktable")["status"] == "completed"
    h.set_exit("asc-worker-1", 75)
    h.run(T0 + 2)
    data = fake.objects[("ConfigMap", "asc-ranktable")]["data"]
    assert h.body["status"]["phase"] == c.RESTARTING
    assert data["attempt"] == "1" and json.loads(data["hccl.json"])["status"] == "initializing"
    assert json.loads(data["hccl.json"]).get("server_list", []) == []
    h.pod_state.clear()
    h.run(T0 + 30)  # the new gang (attempt 1) is created; its devices complete the attempt-1 table
    assert [p["metadata"]["annotations"][c.ANNOTATION_ATTEMPT] for p in fake.pods()] == ["1", "1"]
    for i in range(2):
        h.set_running(
            f"asc-worker-{i}",
            {
                "pod_name": f"asc-worker-{i}",
                "server_id": "10.0.0.2",
                "devices": [{"device_id": str(4 + i), "device_ip": f"192.168.100.1{i}"}],
            },
        )
    h.run(T0 + 31)
    data = fake.objects[("ConfigMap", "asc-ranktable")]["data"]
    assert data["attempt"] == "1" and json.loads(data["hccl.json"])["status"] == "completed"


def _own_pass(h: Harness, now: float) -> planner.Plan:
    """A pass as the runner makes it: only pods the job controls (PodView.owner_uid) reach it."""
    uid = h.body["metadata"]["uid"]
    views = [v for v in h.views() if v.owner_uid == uid]
    existing = {  # the index of the job's Services and ConfigMaps, counting only those it controls
        key
        for key, obj in h.fake.objects.items()
        if key[0] in ("Service", "ConfigMap")
        and any(r.get("uid") == uid for r in obj["metadata"].get("ownerReferences") or [])
    }
    out = asyncio.run(
        reconcile.reconcile(h.body, views, SETTINGS, h.mem, now, lambda *e: h.events.append(e), existing)
    )
    for patch in h.fake.status_patches:
        h.body["status"] = merge_patch.apply(h.body.get("status") or {}, patch)
    h.fake.status_patches.clear()
    return out


def test_a_foreign_rank_table_is_never_patched_and_no_pod_is_created_on_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Issue 24: observe reads the owner of each object it would create; someone's ConfigMap holding the
    rank table's name is left exactly as it was, until it is deleted; then the job goes on."""
    fake = FakeKube(monkeypatch)
    planted = {
        "kind": "ConfigMap",
        "metadata": {"name": "asc-ranktable", "namespace": "ns1"},
        "data": {"x": "1"},
    }
    fake.objects[("ConfigMap", "asc-ranktable")] = planted
    h = Harness(fake, ascend_job(replicas=1))
    for step in range(2):
        _own_pass(h, T0 + step)
    assert fake.objects[("ConfigMap", "asc-ranktable")] is planted and planted["data"] == {"x": "1"}
    assert not fake.pods() and not [x for x in fake.calls if x.startswith(("put ", "create Pod"))]
    cond = next(x for x in h.body["status"]["conditions"] if x["type"] == c.OBJECTS_OWNED)
    assert cond["status"] == "False" and "ConfigMap asc-ranktable" in cond["message"]
    assert next(e for e in h.events if e[1] == c.REASON_OBJECT_NOT_OWNED)[0] == "Warning"
    del fake.objects[("ConfigMap", "asc-ranktable")]
    _own_pass(h, T0 + 20)
    made = fake.objects[("ConfigMap", "asc-ranktable")]
    assert made["metadata"]["ownerReferences"][0]["uid"] == "uid-1"
    assert [p["metadata"]["name"] for p in fake.pods()] == ["asc-worker-0"]


def test_a_foreign_pod_with_a_rank_name_is_found_by_its_409_and_left_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A pod named like a rank that the job does not control: the create's 409 is recorded, the next pass
    (due within a second) reads its owner and holds the job; the pod is never deleted."""
    fake = FakeKube(monkeypatch)
    foreign = {"kind": "Pod", "metadata": {"name": "demo-worker-0", "namespace": "ns1", "labels": {}}}
    fake.objects[("Pod", "demo-worker-0")] = foreign
    h = Harness(fake, job())
    first = _own_pass(h, T0)
    assert h.mem.taken == {("Pod", "demo-worker-0")}
    assert first.next_due is not None and first.next_due <= T0 + 1.0
    created = [x for x in fake.calls if x.startswith("create Pod")]
    _own_pass(h, T0 + 1)
    assert [x for x in fake.calls if x.startswith("create Pod")] == created, "no creation while it is there"
    cond = next(x for x in h.body["status"]["conditions"] if x["type"] == c.OBJECTS_OWNED)
    assert cond["status"] == "False" and "Pod demo-worker-0" in cond["message"]
    assert fake.objects[("Pod", "demo-worker-0")] is foreign and "demo-worker-0" not in fake.deleted
    del fake.objects[("Pod", "demo-worker-0")]
    _own_pass(h, T0 + 12)
    assert ("Pod", "demo-worker-0") in fake.objects and h.mem.taken == frozenset()
    assert fake.objects[("Pod", "demo-worker-0")]["metadata"]["ownerReferences"][0]["uid"] == "uid-1"


def test_a_missing_local_queue_is_read_and_waited_for(monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 24: with Kueue served, a job naming a LocalQueue the namespace lacks creates no pods and says
    so; once the LocalQueue exists, the pods are created. Without Kueue nothing is held."""
    fake = FakeKube(monkeypatch)
    fake.local_queues = set()
    h = Harness(fake, job(scheduling={"queue": "lq"}))
    _own_pass(h, T0)
    assert not fake.pods() and "get LocalQueue lq" in fake.calls
    cond = next(x for x in h.body["status"]["conditions"] if x["type"] == c.QUEUE_FOUND)
    assert cond["status"] == "False" and "kubectl get localqueues -n ns1" in cond["message"]
    assert h.body["status"]["phase"] == c.PENDING
    fake.local_queues.add("lq")
    _own_pass(h, T0 + 11)
    assert len(fake.pods()) == 3
    fake.calls.clear()
    _own_pass(h, T0 + 12)
    assert "get LocalQueue lq" not in fake.calls, "read only while the job has no pods or waits for it"


def test_a_lost_node_and_an_unhealthy_npu_are_read_and_restart_the_gang_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Issue 23: observe reads the nodes of a running gang and their device-info ConfigMaps; the executor deletes
    the pods of a node that is not Ready without a grace period, the others gracefully."""
    fake = FakeKube(monkeypatch)
    h = Harness(fake, ascend_job(replicas=2, runPolicy={"backoffLimit": 0}))
    h.run(T0)
    for i, node in enumerate(("n1", "n2")):
        fake.objects[("Pod", f"asc-worker-{i}")]["spec"]["nodeName"] = node
        devices = [{"device_id": str(i), "device_ip": f"192.168.100.{101 + i}"}]
        h.set_running(
            f"asc-worker-{i}", {"pod_name": f"asc-worker-{i}", "server_id": f"10.0.0.{i}", "devices": devices}
        )
    h.run(T0 + 2)
    assert h.body["status"]["phase"] == c.RUNNING
    assert "get Node n1" not in fake.calls  # read only once the gang runs (the status this pass started from)
    h.run(T0 + 3)
    assert {"get Node n1", "get Node n2", "get ConfigMap kube-system/mindx-dl-deviceinfo-n2"} <= set(
        fake.calls
    )
    assert h.body["status"]["phase"] == c.RUNNING and fake.deleted == []  # healthy: nothing happens
    fake.nodes["n1"] = {
        "status": {"conditions": [{"type": "Ready", "status": "Unknown", "reason": "NodeStatusUnknown"}]}
    }
    unhealthy = {"DeviceInfo": {"DeviceList": {"huawei.com/Ascend910-Unhealthy": "Ascend910-1"}}}
    fake.system_config_maps["mindx-dl-deviceinfo-n2"] = {"DeviceInfoCfg": json.dumps(unhealthy)}
    h.run(T0 + 5)
    st = h.body["status"]
    assert st["phase"] == c.RESTARTING and st["reason"] == c.REASON_NODE_NOT_READY
    assert st["restarts"] == 1 and st["stoppedRestarts"] == 1  # backoffLimit 0: not counted
    assert [(f["reason"], f["node"], f.get("device")) for f in st["faults"]] == [
        (c.REASON_NODE_NOT_READY, "n1", None),
        (c.REASON_NPU_UNHEALTHY, "n2", 1),
    ]
    assert fake.delete_graces == {"asc-worker-0": 0, "asc-worker-1": None}
    assert ("Warning", c.REASON_NODE_NOT_READY) in {(k, r) for k, r, _ in h.events}
