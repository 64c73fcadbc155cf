"""benchmarks/recovery.py: the pure helpers that turn logs, pod uids and a seed into the reported numbers."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "recovery.py"


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_recovery", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _log(*events: tuple[str, float]) -> str:
    return "\n".join(
        ["epoch: 2 step: 3, loss is 2.1", *(json.dumps({"event": e, "ts": t}) for e, t in events)]
    )


def test_first_resumed_step_is_the_first_step_after_the_resume_that_followed_the_fault(
    bench: ModuleType,
) -> None:
    old = _log(("resume", 1.0), ("step", 2.0), ("step", 9.0))  # an earlier resume, steps before the fault
    new = _log(("start", 40.0), ("resume", 41.0), ("step", 47.5), ("step", 48.0)) + "\n{broken"
    assert bench.first_resumed_step([old, new], fault_ts=10.0) == 47.5
    assert bench.first_resumed_step([old], fault_ts=10.0) is None  # never resumed


def test_pods_recreated_counts_new_names_and_new_uids(bench: ModuleType) -> None:
    before = {"j-sched": "a", "j-worker-0": "b", "j-worker-1": "c"}
    assert bench.pods_recreated(before, dict(before)) == 0
    assert bench.pods_recreated(before, {**before, "j-worker-1": "d"}) == 1
    assert bench.pods_recreated(before, {"j-sched": "x", "j-worker-0": "y", "j-worker-1": "z"}) == 3


def test_fault_steps_are_seeded_and_inside_epoch_2(bench: ModuleType) -> None:
    steps = bench.fault_steps(23, bench.JOBS)
    assert steps == bench.fault_steps(23, bench.JOBS) and set(steps) == set(bench.JOBS)
    assert all(2 <= s <= bench.STEPS - 2 for s in steps.values())
    assert any(bench.fault_steps(seed, bench.JOBS) != steps for seed in range(5))


def test_table_has_one_row_per_job(bench: ModuleType) -> None:
    row = {"job": "inplace", "fault": "process killed", "step": 3, "level": "in place", "resume_s": 57.25}
    text = bench.table(
        [{**row, "lost": 1, "recreated": 0}, {**row, "resume_s": None, "lost": None, "recreated": 3}]
    )
    lines = text.splitlines()
    assert len(lines) == 4 and "| 57.2 | 1 | 0 |" in lines[2] and "| - | None | 3 |" in lines[3]


def test_jobs_have_the_ranks_and_levels_asked_for(bench: ModuleType, tmp_path: Path) -> None:
    jobs = {name: bench._job(name, tmp_path, tmp_path, ranks=4)["spec"] for name in bench.JOBS}
    assert {s["replicas"] for s in jobs.values()} == {4}
    # in place and the lost pod recreated alone need zoo-launch's restarts; the baseline has none
    assert (
        jobs["inplace"]["runPolicy"]["processRestarts"] > 0
        and jobs["podloss"]["runPolicy"]["processRestarts"] > 0
    )
    assert jobs["gang"]["runPolicy"]["processRestarts"] == 0
    assert jobs["gang"]["hyperparameters"]["save_checkpoint_steps"] == 0  # the epoch checkpoint only


def test_periodic_loss_counts_the_steps_since_the_newest_checkpoint_before_the_fault(
    bench: ModuleType,
) -> None:
    def step(epoch: int, n: int, ts: float) -> str:
        return json.dumps({"event": "step", "epoch": epoch, "step": n, "steps_per_epoch": 8, "ts": ts})

    def ckpt(global_step: int, ts: float) -> str:
        return json.dumps({"event": "checkpoint", "global_step": global_step, "ts": ts})

    rank0 = "\n".join([step(2, 1, 1.0), step(2, 2, 2.0), ckpt(10, 2.1), step(2, 3, 3.0), step(2, 4, 4.0)])
    rank1 = "\n".join([step(2, 4, 4.1), step(2, 5, 9.0)])  # step 5 came after the fault: not counted
    assert bench.periodic_loss([rank0, rank1], 5.0) == 2  # steps 11 and 12 since the checkpoint at step 10
    assert bench.periodic_loss([rank0], 2.5) == 0
    assert bench.periodic_loss(["no events"], 5.0) is None
    assert bench.periodic_loss([step(1, 3, 1.0)], 5.0) == 3  # nothing saved yet: from the start


def test_node_victim_is_a_rank_alone_on_its_node(bench: ModuleType) -> None:
    # the scheduler beside worker 1: losing that node would take the scheduler too, so worker 0's node goes
    pods = {"j-sched": "n2", "j-worker-0": "n1", "j-worker-1": "n2"}
    assert bench.node_victim(pods) == ("j-worker-0", "n1")
    # the highest index wins when several are alone; worker-10 sorts after worker-9 as a number
    pods = {"j-sched": "n0", **{f"j-worker-{i}": f"n{i + 1}" for i in range(11)}}
    assert bench.node_victim(pods) == ("j-worker-10", "n11")
    assert bench.node_victim({"j-sched": "n1", "j-worker-0": "n1", "j-worker-1": None}) is None


def test_hardware_jobs_are_dynamic_ascend_jobs_on_their_own_pool(bench: ModuleType, tmp_path: Path) -> None:
    for name in bench.HARDWARE:
        spec = bench._job(name, tmp_path, tmp_path, ranks=2)["spec"]
        assert spec["launch"] == "dynamic" and spec["device"] == {"type": "Ascend910", "perNode": 1}
        assert spec["hyperparameters"]["sink_size"] == 1  # a step event per step, not per epoch
        assert spec["podTemplate"]["nodeSelector"] == {bench.POOL_LABEL: name}
        assert spec["runPolicy"]["processRestarts"] > 0  # a rank moves alone only with in-place restarts on
    assert "launch" not in bench._job("gang", tmp_path, tmp_path)["spec"]
    assert bench.pool_nodes_needed("nodeloss", 2) == 3 and bench.pool_nodes_needed("npufault", 2) == 2


def test_the_benchmark_node_list_has_the_pools_the_4_rank_run_needs(bench: ModuleType) -> None:
    import yaml

    nodes = yaml.safe_load(bench.NODES_FILE.read_text())["nodes"]
    for job in bench.HARDWARE:
        pool = [n for n in nodes if n["labels"].get(bench.POOL_LABEL) == job]
        assert len(pool) >= bench.pool_nodes_needed(job, 4), job
        # v7 plugin (server_id = node IP) and tainted, so CPU jobs and the operator stay off the pools
        assert all(n["devicePlugin"]["generation"] == "v7" and n.get("taints") for n in pool), pool
    assert [n["name"] for n in nodes if not n.get("taints")] == [bench.OPERATOR_NODE]
