"""benchmarks/scale.py: its pure parts (fake nodes, the job, annotations, the floor's pods, /proc parsing)."""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

from zoo_operator import conditions as c
from zoo_operator import ranktable

REPO = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("scale", REPO / "benchmarks" / "scale.py")
assert spec and spec.loader
scale = importlib.util.module_from_spec(spec)
spec.loader.exec_module(scale)


def test_nodes_hold_the_devices_and_only_bench_pods() -> None:
    assert [scale.nodes_needed(n) for n in (1, 8, 9, 1024, 4096)] == [1, 1, 2, 128, 512]
    assert len({scale.node_ip(i) for i in range(600)}) == 600
    node, st = scale.fake_node(3), scale.fake_node_status(3)["status"]
    assert node["spec"]["taints"][0]["key"] == scale.BENCH_LABEL
    assert st["allocatable"][scale.ASCEND_RESOURCE] == "8"
    assert node["metadata"]["labels"]["kubernetes.io/hostname"] == "bench-node-3"  # server pods' topologyKey
    assert st["conditions"][0]["type"] == "Ready" and st["conditions"][0]["status"] == "True"


def test_job_and_floor_pods_match_what_the_operator_creates() -> None:
    body = scale.bench_job("n16", 16)
    pods = scale.floor_pods(body, "floor-ns")
    assert [p["metadata"]["name"] for p in pods] == [f"n16-worker-{i}" for i in range(16)]
    assert all(
        "ownerReferences" not in p["metadata"] and p["metadata"]["namespace"] == "floor-ns" for p in pods
    )
    selector = pods[0]["spec"]["nodeSelector"]
    assert selector[scale.BENCH_LABEL] == "true"
    assert selector.items() <= scale.fake_node(0)["metadata"]["labels"].items(), (
        "the fake nodes must match the pods"
    )
    assert pods[0]["spec"]["containers"][0]["resources"]["limits"][scale.ASCEND_RESOURCE] in (1, "1")
    assert scale.ANNOTATION == c.ASCEND_ANNOTATION


def test_annotations_parse_as_the_operator_reads_them() -> None:
    dev = ranktable.parse_annotation(scale.device_annotation("n16-worker-3", 7, 5))
    assert (dev.pod_name, dev.server_id, dev.device_id) == ("n16-worker-3", scale.node_ip(7), "5")
    assert scale.table_status(json.dumps({"status": "completed"})) == "completed"
    assert scale.table_status(None) is None and scale.table_status("[]") is None


def test_proc_parsing_and_the_table() -> None:
    tick = os.sysconf("SC_CLK_TCK")
    stat = f"42 (python3 x) S 1 2 3 4 5 6 7 8 9 10 {3 * tick} {tick} 0 0"
    assert scale.cpu_seconds(stat) == 4.0
    assert scale.peak_rss_mib("VmRSS:\t 1000 kB\nVmHWM:\t  102400 kB\n") == 100.0
    row = {
        "scenario": "1 job of 8",
        "pods": 8,
        "op_created_s": 1.0,
        "floor_created_s": 0.5,
        "fair_floor_s": 0.8,
        "jobs": 2,
        "op_requests": 30,
        "floor_requests": 26,
        "objects": 22,
        "table_s": 0.2,
        "table_kib": 12.4,
        "idle_s": 60,
        "idle_cpu_s": 0.1,
        "idle_requests_per_min": 0.0,
        "peak_rss_mib": 120.4,
    }
    out = scale.table([row])
    assert (
        "| 1 job of 8 | 8 | 1.00 s / 0.80 s (1.25x) | 0.50 s (2.00x) | 15.0 / 13.0 / 11.0 | 0.20 s (12 KiB) | "
        "0.10 in 60 s | 0.0 | 120 MiB |"
    ) in out


def test_fair_floor_writes_what_the_operators_first_pass_writes() -> None:
    """Issue 25: the fair floor's objects are the first plan's (the table inside the ConfigMap's create), the
    NetworkPolicy before the pods, and its request count is objects + the status patch + the completed table."""
    work = scale.floor_work(scale.bench_job("n16", 16), "floor-ns")
    assert [o["kind"] for o in work["before"]] == ["NetworkPolicy"]
    kinds = [o["kind"] for o in work["along"]]
    assert sorted(set(kinds)) == ["ConfigMap", "Pod", "Service"] and kinds.count("Pod") == 16
    objs = work["before"] + work["along"]
    assert all(
        "ownerReferences" not in o["metadata"] and o["metadata"]["namespace"] == "floor-ns" for o in objs
    )
    table = next(o for o in work["along"] if o["kind"] == "ConfigMap")
    assert scale.table_status(table["data"][c.RANKTABLE_FILE]) == "initializing"
    name, patch = work["table"]
    assert name == table["metadata"]["name"] == "n16-ranktable"
    done = json.loads(patch["data"][c.RANKTABLE_FILE])
    assert done["status"] == "completed" and sum(len(s["device"]) for s in done["server_list"]) == 16
    assert work["status"] is not None
    assert scale.objects_of([work]) == 19 and scale.floor_requests([work, work]) == 2 * (19 + 2)


def test_server_pods_job_and_annotations() -> None:
    """podsPer server: one pod per node holding its 8 NPUs, and an annotation listing all 8 (issue 21)."""
    body = scale.bench_job("s16", 16, server=True)
    assert scale.pods_of(body) == 2 and scale.pods_of(scale.bench_job("n16", 16)) == 16
    pods = scale.floor_pods(body, "floor-ns")
    assert [p["metadata"]["name"] for p in pods] == ["s16-worker-0", "s16-worker-1"]
    assert pods[0]["metadata"]["labels"][scale.JOB_LABEL] == "s16" and scale.JOB_LABEL == c.LABEL_JOB
    devs = ranktable.parse_server_annotation(scale.device_annotation("s16-worker-1", 4, 0, 8))
    assert [d.device_id for d in devs] == [str(i) for i in range(8)]
    assert {d.server_id for d in devs} == {scale.node_ip(4)}


def _job(name: str, uid: str, phase: str | None = "Pending") -> dict:
    return {"metadata": {"name": name, "uid": uid}, **({"status": {"phase": phase}} if phase else {})}


def _pod(job: str, rank: int, owner: str | None, role: str = "worker") -> dict:
    meta: dict = {"labels": {scale.JOB_LABEL: job, c.LABEL_ROLE: role, c.LABEL_RANK: str(rank)}}
    if owner:
        meta["ownerReferences"] = [{"uid": owner, "controller": True}]
    return {"metadata": meta}


def test_census_counts_lost_unplanned_doubled_and_foreign() -> None:
    expected = {"a": 2, "b": 2, "c": 1, "gone": 1}
    jobs = [_job("a", "ua"), _job("b", "ub", phase=None), _job("c", "uc", "Running")]
    pods = [_pod("a", 0, "ua"), _pod("a", 1, "ua")]  # a: complete
    pods += [_pod("b", 0, "ub"), _pod("b", 0, "ub")]  # b: rank 0 twice, rank 1 missing (count still 2)
    pods += [_pod("c", 0, "u-old")]  # c: a pod of an older job of the same name: foreign, c has none
    pods += [_pod("x", 0, "ux")]  # a job that is not the run's
    got = scale.census(jobs, pods, expected)
    assert got == {
        "lost": 1,
        "unplanned": 1,
        "wrong_pod_count": 2,  # c (0 of 1) and gone (0 of 1); b has 2 pods but a rank twice
        "duplicate_ranks": 1,
        "foreign_pods": 2,
        "phases": {"Pending": 1, "-": 1, "Running": 1},
    }
    whole = scale.census(jobs[:1], pods[:2], {"a": 2})
    assert {k: v for k, v in whole.items() if k != "phases"} == dict.fromkeys(
        ("lost", "unplanned", "wrong_pod_count", "duplicate_ranks", "foreign_pods"), 0
    )


def test_census_labels_are_the_operators() -> None:
    assert (scale.JOB_LABEL, scale.ROLE_LABEL, scale.RANK_LABEL) == (c.LABEL_JOB, c.LABEL_ROLE, c.LABEL_RANK)
