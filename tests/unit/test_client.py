"""The pure parts of the Python client: building and validating jobs, merging rank logs, the local-mode plan,
and `wait`'s timeout message (the client's own `status` replaced: the boundary it owns)."""

from __future__ import annotations

from typing import Any

import pytest
from operator_jobs import job

from zoo_operator import conditions as c
from zoo_operator.client import InvalidSpec, ZooClient, build_job, plan, validate
from zoo_operator.client.api import merged_logs


def test_build_job_from_keywords() -> None:
    body = build_job(
        "try-1",
        model="resnet50_bam",
        namespace="ns",
        replicas=2,
        device={"type": "CPU"},
        labels={"team": "a"},
    )
    assert body["apiVersion"] == "modelzoo.io/v1alpha1" and body["kind"] == "ZooTrainingJob"
    assert body["metadata"] == {"name": "try-1", "namespace": "ns", "labels": {"team": "a"}}
    assert body["spec"] == {"model": "resnet50_bam", "replicas": 2, "device": {"type": "CPU"}}


def test_build_job_from_a_dict_keeps_it_and_overrides() -> None:
    original = job("x")
    body = build_job(body=original, replicas=1)
    assert body["spec"]["replicas"] == 1 and original["spec"]["replicas"] == 2
    assert body["metadata"]["namespace"] == "ns1"


def test_validate_names_the_field() -> None:
    validate(job())
    with pytest.raises(InvalidSpec, match=r"spec\.replicas: must be between 1 and 4096"):
        validate(job(replicas=0))
    with pytest.raises(InvalidSpec, match=r"spec\.device\.type"):
        validate(job(device={"type": "TPU"}))
    body = job()
    del body["metadata"]["name"]
    with pytest.raises(InvalidSpec, match=r"metadata\.name: required"):
        validate(body)
    body["metadata"]["generateName"] = "try-"
    validate(body)


def pod(name: str, rank: int) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": {c.LABEL_RANK: str(rank)}}}


def test_merged_logs_in_time_order_across_ranks() -> None:
    logs = {
        "p0": "2026-01-01T00:00:01.000000000Z zero-a\n2026-01-01T00:00:03.000000000Z zero-b\n",
        "p1": "2026-01-01T00:00:02.000000000Z one-a\n",
    }
    lines = merged_logs([pod("p0", 0), pod("p1", 1)], logs.get)
    assert [(ln.rank, ln.text) for ln in lines] == [(0, "zero-a"), (1, "one-a"), (0, "zero-b")]
    assert merged_logs([pod("p0", 0)], lambda _: None) == []


def test_local_plan_one_rank_runs_zoo_train_on_local_paths(tmp_path: Any) -> None:
    procs = plan(job("one", replicas=1), tmp_path / "data", tmp_path / "out")
    assert len(procs) == 1
    (only,) = procs
    assert only.rank == 0 and only.argv[:3] == ["zoo-launch", "--", "zoo-train"]
    argv = " ".join(only.argv)
    assert f"--data-dir {tmp_path}/data/train" in argv and f"--eval-dir {tmp_path}/data/val" in argv
    assert f"--output-dir {tmp_path}/out/" in argv and "/zoo/" not in argv
    assert "MS_ROLE" not in only.env and only.env["ZOO_TERMINATION_LOG"].startswith(str(tmp_path / "out"))


def test_local_plan_many_ranks_gets_the_dynamic_cluster_env(tmp_path: Any) -> None:
    procs = plan(job("two", replicas=2), tmp_path, tmp_path / "out", port=18118)
    assert [(p.role, p.rank) for p in procs] == [
        (c.ROLE_SCHEDULER, None),
        (c.ROLE_WORKER, 0),
        (c.ROLE_WORKER, 1),
    ]
    for p in procs:
        assert p.env["MS_SCHED_HOST"] == "127.0.0.1" and p.env["MS_SCHED_PORT"] == "18118"
        assert p.env["MS_WORKER_NUM"] == "2"
    assert [p.env["MS_ROLE"] for p in procs] == ["MS_SCHED", "MS_WORKER", "MS_WORKER"]
    assert [p.env["MS_NODE_ID"] for p in procs] == ["sched", "0", "1"]


def test_local_plan_validates(tmp_path: Any) -> None:
    with pytest.raises(InvalidSpec, match=r"spec\.replicas"):
        plan(job(replicas=-1), tmp_path, tmp_path)


def test_local_plan_refuses_a_rank_table_job_at_once(tmp_path: Any) -> None:
    # Its processes would wait for a rank table nobody writes here: refused before anything starts.
    ascend = {"type": "Ascend910", "perNode": 2, "podsPer": "server"}
    with pytest.raises(
        InvalidSpec, match=r"spec\.launch: local mode runs the dynamic launch only.*Ascend910"
    ):
        plan(job(replicas=4, launch="ranktable", device=ascend), tmp_path, tmp_path)
    with pytest.raises(InvalidSpec, match=r"try it here with spec\.device\.type CPU"):
        plan(job(replicas=2, launch="ranktable", device={"type": "Ascend910"}), tmp_path, tmp_path)


def test_local_plan_refuses_server_pods(tmp_path: Any) -> None:
    # A dynamic server-mode job is valid on a cluster, but its server pods start one process per NPU given to the
    # container: there are none here, so it is refused before anything starts.
    ascend = {"type": "Ascend910", "perNode": 2, "podsPer": "server"}
    with pytest.raises(InvalidSpec, match=r"spec\.device\.podsPer: local mode runs one process per rank"):
        plan(job(replicas=4, launch="dynamic", device=ascend), tmp_path, tmp_path)


class Phases(ZooClient):
    """A client whose `status` answers from a list (no cluster): the boundary the client owns."""

    def __init__(self, phases: list[str | None]) -> None:  # no super(): no loop, no API
        self.namespace, self.phases = "ns", phases

    def status(self, name: str) -> dict[str, Any]:
        phase = self.phases.pop(0) if len(self.phases) > 1 else self.phases[0]
        return {"phase": phase} if phase else {}


def test_wait_returns_at_the_phase_and_times_out_naming_the_last_phase() -> None:
    assert Phases([None, "Pending", "Running", "Succeeded"]).wait("j", interval=0)["phase"] == "Succeeded"
    assert Phases(["Pending", "Running"]).wait("j", [c.RUNNING], interval=0) == {"phase": "Running"}
    with pytest.raises(TimeoutError, match="last phase seen: Running"):
        Phases(["Pending", "Running"]).wait("j", timeout=0.05, interval=0.01)
    with pytest.raises(TimeoutError, match="has the operator seen the job"):
        Phases([None]).wait("j", timeout=0.02, interval=0.01)
