"""Device mode: a summary's `rank` is the RANK_ID the pod really has (issue 21). zoo-launch takes it from the rank
table, which orders servers by node IP as strings (ranktable.order), so pods that land out of that order hold
other ranks than their worker index; the summary must say the table's rank, not the index."""

from __future__ import annotations

import json
from typing import Any

from operator_jobs import ascend_job

from zoo_operator import conditions as c
from zoo_operator import planner, ranktable, status
from zoo_operator.memory import JobMemory, Observation
from zoo_operator.podview import PodView
from zoo_operator.settings import Settings

# Worker 0 on 10.0.0.9, worker 1 on 10.0.0.10 and worker 2 on 10.0.0.10 (its NPU 1, below worker 1's NPU 4):
# "10.0.0.10" < "10.0.0.9" as strings, so the table's ranks are worker-2: 0, worker-1: 1, worker-0: 2.
PLACED = {
    "asc-worker-0": ("10.0.0.9", "0"),
    "asc-worker-1": ("10.0.0.10", "4"),
    "asc-worker-2": ("10.0.0.10", "1"),
}
EXPECTED = {"asc-worker-2": 0, "asc-worker-1": 1, "asc-worker-0": 2}


def devices() -> list[ranktable.Device]:
    return [ranktable.Device(name, ip, dev, f"192.168.0.{dev}") for name, (ip, dev) in PLACED.items()]


def test_pod_ranks_follow_the_table_not_the_index() -> None:
    assert ranktable.pod_ranks(devices(), 3) == EXPECTED
    assert ranktable.pod_ranks(devices()[:2], 3) == {}  # not complete: no table, no ranks yet
    # The very table the pods read agrees.
    table = ranktable.build(devices(), 3)
    by_device = {
        (s["server_id"], d["device_id"]): int(d["rank_id"]) for s in table["server_list"] for d in s["device"]
    }
    assert {name: by_device[placed] for name, placed in PLACED.items()} == EXPECTED


def test_summaries_carry_the_table_rank_then_the_logged_one_then_the_index() -> None:
    pods = [PodView(name=name, index=int(name[-1])) for name in PLACED]
    out = status.rank_summaries(pods, {}, table_ranks=EXPECTED)
    assert [(s["rank"], s["pod"]) for s in out] == [
        (0, "asc-worker-2"),
        (1, "asc-worker-1"),
        (2, "asc-worker-0"),
    ]
    # Dynamic launch (no table): the rank its log named; before any line, the index.
    out = status.rank_summaries(pods, {}, logged_ranks={"asc-worker-0": 1, "asc-worker-1": 0})
    assert [(s["rank"], s["pod"]) for s in out] == [
        (0, "asc-worker-1"),
        (1, "asc-worker-0"),
        (2, "asc-worker-2"),
    ]


def annotated(name: str) -> PodView:
    ip, dev = PLACED[name]
    note: dict[str, Any] = {
        "pod_name": name,
        "server_id": ip,
        "devices": [{"device_id": dev, "device_ip": "1.1.1.1"}],
    }
    return PodView(
        name=name,
        uid=f"uid-{name}",
        owner_uid="uid-1",
        role=c.ROLE_WORKER,
        index=int(name[-1]),
        phase="Running",
        running=True,
        node=f"node-{ip}",
        ip="10.244.0.5",
        host_ip=ip,
        device_annotation=json.dumps(note),
    )


def test_the_planner_writes_each_pods_table_rank_into_its_summary() -> None:
    body = {**ascend_job(replicas=3), "status": {"phase": c.PENDING}}
    body["metadata"]["uid"] = "uid-1"
    obs = Observation(body=body, pods=tuple(annotated(n) for n in PLACED), now=1.0)
    out = planner.plan(obs, JobMemory(), Settings(image_ascend="zoo-operator/workload-ascend:t"))
    assert out.status is not None
    ranks = {s["pod"]: s["rank"] for s in out.status["rankSummaries"]}
    assert ranks == EXPECTED, out.status["rankSummaries"]
