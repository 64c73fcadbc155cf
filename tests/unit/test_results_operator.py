"""Issue 13, operator side: status.result names a checkpoint with the metrics of THAT checkpoint, in the user's
terms; spec.from resolves a finished job into the pod's arguments; evaluate/export/fine-tune render as they should;
a job whose checkpoints die with its pods gets a warning."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from operator_jobs import job

from zoo_operator import conditions as c
from zoo_operator import kube, logparse, memory, reconcile, render, results, spec
from zoo_operator.settings import Settings
from zoo_workloads import contract

SETTINGS = Settings()
PVC = {"persistentVolumeClaim": {"claimName": "ckpts"}}
T0 = 1_700_000_000.0


def parsed(body: dict[str, Any]) -> spec.JobSpec:
    return spec.parse(body, SETTINGS)


def finished_source(name: str = "tiny", **status: Any) -> dict[str, Any]:
    body = job(name, checkpoint={"volume": PVC, "path": "runs/tiny"})
    body["status"] = {
        "phase": "Succeeded",
        "result": {
            "top1": 0.5,
            "checkpoint": "runs/tiny/resnet50_bam-best.ckpt",
            "checkpointVolume": "persistentVolumeClaim/ckpts",
            "best": {
                "epoch": 2,
                "checkpoint": "runs/tiny/resnet50_bam-best.ckpt",
                "metrics": {"top_1_accuracy": 0.5},
            },
            "last": {
                "epoch": 3,
                "checkpoint": "runs/tiny/resnet50_bam-3.ckpt",
                "metrics": {"top_1_accuracy": 0.25},
            },
        },
        **status,
    }
    return body


TERMINATION = {
    "status": "succeeded",
    "epochs": 4,
    "checkpoint": "/zoo/checkpoint/runs/r3d/resnet3d-best.ckpt",
    "metrics": {"top_1_accuracy": 0.25, "top_5_accuracy": 1.0, "clip_accuracy": 0.25, "loss": 1.1},
    "best": {
        "epoch": 2,
        "checkpoint": "/zoo/checkpoint/runs/r3d/resnet3d-best.ckpt",
        "metrics": {"top_1_accuracy": 0.25, "top_5_accuracy": 1.0, "clip_accuracy": 0.25, "loss": 1.1},
    },
    "last": {
        "epoch": 4,
        "checkpoint": "/zoo/checkpoint/runs/r3d/resnet3d-4.ckpt",
        "metrics": {"top_1_accuracy": 0.125, "top_5_accuracy": 1.0, "clip_accuracy": 0.3125, "loss": 0.9},
    },
}


def test_result_pairs_each_checkpoint_with_its_own_metrics_in_user_terms():
    j = parsed(job("r3d", checkpoint={"volume": PVC, "path": "runs/r3d"}))
    result = results.in_user_terms(TERMINATION, j)
    assert result["checkpoint"] == "runs/r3d/resnet3d-best.ckpt"
    assert result["checkpointVolume"] == "persistentVolumeClaim/ckpts"
    # top1 belongs to the checkpoint named, not to the last epoch
    assert result["top1"] == 0.25 and result["metrics"]["clip_accuracy"] == 0.25
    assert result["best"] == {
        "epoch": 2,
        "checkpoint": "runs/r3d/resnet3d-best.ckpt",
        "volume": "persistentVolumeClaim/ckpts",
        "metrics": TERMINATION["best"]["metrics"],
    }
    assert result["last"]["epoch"] == 4 and result["last"]["checkpoint"] == "runs/r3d/resnet3d-4.ckpt"
    assert result["last"]["metrics"]["clip_accuracy"] == 0.3125
    assert "epoch" not in result  # a training job's result: epochs are per checkpoint


def test_done_event_gives_the_same_result_as_the_termination_message():
    j = parsed(job("r3d", checkpoint={"volume": PVC, "path": "runs/r3d"}))
    done = json.dumps(
        {"event": "done", "ts": 1.0, "rank": 0, **{k: v for k, v in TERMINATION.items() if k != "status"}}
    )
    record = logparse.record_from_events(logparse.parse_lines("epoch: 1 step: 1, loss is 1.0\n" + done))
    assert results.in_user_terms(record, j) == results.in_user_terms(TERMINATION, j)
    assert results.in_user_terms(None, j) is None


def test_volume_refs():
    assert results.volume_ref(PVC) == "persistentVolumeClaim/ckpts"
    assert results.volume_ref({"hostPath": {"path": "/srv/ckpt"}}) == "hostPath:/srv/ckpt"
    assert results.volume_ref({"nfs": {"server": "fs", "path": "/x"}}) == "nfs:fs:/x"
    assert results.volume_ref({"emptyDir": {}}) == "emptyDir"


def test_checkpoints_ephemeral_warning_only_for_training_on_emptydir():
    assert "emptyDir" in results.ephemeral_checkpoints(parsed(job()))
    assert results.ephemeral_checkpoints(parsed(job(checkpoint={"volume": PVC}))) is None
    evaluate = parsed(job(task="evaluate", replicas=1, **{"from": {"job": "tiny"}}))
    assert results.ephemeral_checkpoints(evaluate) is None


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (None, "no such ZooTrainingJob"),
        (finished_source(phase="Failed"), "Failed; spec.from needs a Succeeded job"),
        (
            {**finished_source(), "spec": {**finished_source()["spec"], "model": "glore_res50"}},
            "trained glore_res50",
        ),
        ({**finished_source(), "spec": {**finished_source()["spec"], "checkpoint": {}}}, "emptyDir"),
        (finished_source(result={"top1": 0.5}), "no best checkpoint"),
    ],
)
def test_unusable_sources_are_refused(source, message):
    j = parsed(job("ev", task="evaluate", replicas=1, **{"from": {"job": "tiny"}}))
    with pytest.raises(results.SourceError, match=message) as err:
        results.resolve_source(j, source)
    assert not err.value.waiting


def test_a_source_still_running_is_waited_for():
    j = parsed(job("ev", task="evaluate", replicas=1, **{"from": {"job": "tiny"}}))
    with pytest.raises(results.SourceError, match="is Running; waiting until it has Succeeded") as err:
        results.resolve_source(j, finished_source(phase="Running"))
    assert err.value.waiting


def test_source_resolution_picks_the_kind_and_round_trips_through_status():
    j = parsed(job("ev", task="evaluate", replicas=1, **{"from": {"job": "tiny", "checkpoint": "last"}}))
    src = results.resolve_source(j, finished_source())
    assert (src.checkpoint, src.run_dir, src.epoch, src.volume) == (
        "runs/tiny/resnet50_bam-3.ckpt",
        "runs/tiny",
        3,
        PVC,
    )
    assert results.Source.from_status(src.status()) == src


def with_source(body: dict[str, Any]) -> spec.JobSpec:
    j = parsed(body)
    import dataclasses

    return dataclasses.replace(j, source=results.resolve_source(j, finished_source()))


def test_evaluate_renders_one_pod_running_zoo_eval_on_the_source_run():
    j = with_source(
        job(
            "ev",
            task="evaluate",
            replicas=1,
            hyperparameters={"eval_batch_size": 2},
            **{"from": {"job": "tiny"}},
        )
    )
    assert j.launch == c.LAUNCH_SINGLE
    objs = render.all_objects(j)
    pods = [o for o in objs if o["kind"] == "Pod"]
    assert [p["metadata"]["name"] for p in pods] == ["ev-worker-0"]  # no scheduler pod
    container = pods[0]["spec"]["containers"][0]
    assert container["command"] == [
        "zoo-launch",
        "--",
        "zoo-eval",
        "--run",
        "/zoo/from/runs/tiny",
        "--checkpoint",
        "/zoo/from/runs/tiny/resnet50_bam-best.ckpt",
        "--device",
        "CPU",
        "--data-dir",
        "/zoo/data/val",
        "--num-classes",
        "10",
        "--set",
        "eval_batch_size=2",
    ]
    # No dynamic-cluster variables (MS_ROLE, MS_SCHED_HOST ...); MindSpore's cache paths under the writable
    # home (the read-only root file system) are not those.
    scratch = {name for name, _ in contract.SCRATCH_ENV}
    assert not any(e["name"].startswith("MS_") and e["name"] not in scratch for e in container["env"])
    assert {"name": "zoo-from", **PVC} in pods[0]["spec"]["volumes"]
    assert {"name": "zoo-from", "mountPath": "/zoo/from", "readOnly": True} in container["volumeMounts"]


def test_export_writes_next_to_the_source_checkpoint_unless_given_a_volume():
    j = with_source(job("ex", task="export", replicas=1, dataset=None, **{"from": {"job": "tiny"}}))
    container = render.pod(j, 0, 0)["spec"]["containers"][0]
    cmd = container["command"]
    assert (
        cmd[2] == "zoo-export" and cmd[cmd.index("--output") + 1] == "/zoo/from/runs/tiny/resnet50_bam-best"
    )
    assert {"name": "zoo-from", "mountPath": "/zoo/from", "readOnly": False} in container["volumeMounts"]
    own = with_source(
        job(
            "ex",
            task="export",
            replicas=1,
            dataset=None,
            checkpoint={"volume": PVC, "path": "exp"},
            **{"from": {"job": "tiny"}},
        )
    )
    cmd = render.command(own)
    assert cmd[cmd.index("--output") + 1] == "/zoo/checkpoint/exp/resnet50_bam-best"


def test_fine_tune_starts_from_the_source_config_and_weights():
    j = with_source(
        job("ft", checkpoint={"volume": PVC}, hyperparameters={"epochs": 2}, **{"from": {"job": "tiny"}})
    )
    cmd = render.command(j)
    assert cmd[2] == "zoo-train"
    assert cmd[cmd.index("--config") + 1] == "/zoo/from/runs/tiny/config.yaml"
    # the job's own overrides come after the source's config, the source's weights last
    assert cmd.index("--config") < cmd.index("epochs=2")
    assert cmd[-4:] == [
        "--set",
        "pretrained=/zoo/from/runs/tiny/resnet50_bam-best.ckpt",
        "--set",
        "resume=null",
    ]
    assert len([p for p in render.pods(j, 0) if p["metadata"]["name"].endswith("-sched")]) == 1


def test_pretrained_and_resume_are_relative_to_the_checkpoint_volume_like_resume_from():
    cmd = render.command(parsed(job(hyperparameters={"pretrained": "base/m-best.ckpt"})))
    assert "pretrained=/zoo/checkpoint/base/m-best.ckpt" in cmd
    cmd = render.command(parsed(job(hyperparameters={"pretrained": "/opt/weights/m.ckpt"})))
    assert "pretrained=/opt/weights/m.ckpt" in cmd


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"task": "evaluate", "replicas": 1}, "spec.from: required for spec.task evaluate"),
        (
            {"task": "export", "replicas": 2, "from": {"job": "x"}},
            "spec.replicas: spec.task export runs one process",
        ),
        ({"from": {"checkpoint": "best"}}, "spec.from.job: required"),
        ({"from": {"job": "x", "checkpoint": "newest"}}, "spec.from.checkpoint: must be one of best, last"),
        ({"from": {"job": "x"}, "checkpoint": {"resumeFrom": "a/b.ckpt"}}, "choose one"),
        (
            {"task": "evaluate", "replicas": 1, "from": {"job": "x"}, "dataset": None},
            "spec.dataset: required",
        ),
    ],
)
def test_task_and_from_validation(changes, problem):
    with pytest.raises(spec.InvalidSpec, match=problem):
        parsed(job(**changes))


class Fake:
    def __init__(self, monkeypatch: pytest.MonkeyPatch, jobs: dict[str, dict[str, Any]]) -> None:
        self.jobs, self.created, self.patches = jobs, [], []
        self.job_reads = 0

        async def create(obj):
            self.created.append(obj)
            return True

        async def get_job(namespace, name):
            self.job_reads += 1
            return self.jobs.get(name)

        async def patch(namespace, name, patch, uid="", has_status=True):
            self.patches.append(patch)

        async def nothing(*args, **kwargs):
            return None

        for name, fn in (
            ("create", create),
            ("get_job", get_job),
            ("patch_job_status", patch),
            ("put_config_map", nothing),
            ("delete_pod", nothing),
            ("pod_log", nothing),
            ("delete_job", nothing),
            ("controller_uid", nothing),  # no object of another owner holds a name (issue 24)
        ):
            monkeypatch.setattr(kube, name, fn)


def _pass(body, mem, events, now=T0):
    asyncio.run(reconcile.reconcile(body, [], SETTINGS, mem, now, lambda *e: events.append(e)))


def test_reconcile_resolves_from_once_and_keeps_it_in_status(monkeypatch):
    fake = Fake(monkeypatch, {"tiny": finished_source()})
    body = job("ev", task="evaluate", replicas=1, **{"from": {"job": "tiny"}})
    mem, events = memory.JobMemory(), []
    _pass(body, mem, events)
    pods = [o for o in fake.created if o["kind"] == "Pod"]
    assert [p["metadata"]["name"] for p in pods] == ["ev-worker-0"]
    assert "/zoo/from/runs/tiny/resnet50_bam-best.ckpt" in pods[0]["spec"]["containers"][0]["command"]
    source = fake.patches[-1]["source"]
    assert (
        source["job"] == "tiny" and source["epoch"] == 2 and source["volume"] == "persistentVolumeClaim/ckpts"
    )
    assert not any(e[1] == c.REASON_EPHEMERAL_VOLUME for e in events)
    # Later passes use status.source: the source job may change or go away.
    body["status"] = fake.patches[-1]
    fake.jobs.clear()
    _pass(body, mem, events, T0 + 60)
    assert fake.job_reads == 1


def test_reconcile_fails_a_job_whose_source_is_unusable(monkeypatch):
    fake = Fake(monkeypatch, {})
    body = job("ev", task="evaluate", replicas=1, **{"from": {"job": "gone"}})
    _pass(body, memory.JobMemory(), [])
    assert not fake.created
    assert fake.patches[-1]["phase"] == c.FAILED and "no such ZooTrainingJob" in fake.patches[-1]["message"]


def test_reconcile_warns_once_when_checkpoints_are_ephemeral(monkeypatch):
    fake = Fake(monkeypatch, {})
    body, mem, events = job("tr"), memory.JobMemory(), []
    _pass(body, mem, events)
    cond = next(x for x in fake.patches[-1]["conditions"] if x["type"] == c.CHECKPOINTS_EPHEMERAL)
    assert cond["status"] == "True" and cond["reason"] == c.REASON_EPHEMERAL_VOLUME
    body["status"] = fake.patches[-1]
    _pass(body, mem, events, T0 + 60)
    assert [e for e in events if e[1] == c.REASON_EPHEMERAL_VOLUME] == [
        ("Warning", c.REASON_EPHEMERAL_VOLUME, cond["message"])
    ]


def test_export_on_ascend_also_writes_air_and_runs_without_a_rank_table():
    from operator_jobs import ascend_job

    j = with_source(ascend_job("axp", replicas=1, task="export", dataset=None, **{"from": {"job": "tiny"}}))
    cmd = render.command(j)
    assert cmd[cmd.index("--format") + 1] == "MINDIR,AIR" and cmd[cmd.index("--device") + 1] == "Ascend"
    kinds = [o["kind"] for o in render.all_objects(j)]
    assert kinds.count("Pod") == 1
    env = {e["name"] for e in render.pod(j, 0, 0)["spec"]["containers"][0]["env"]}
    assert "RANK_TABLE_FILE" not in env and "MS_ROLE" not in env


def test_reconcile_waits_in_pending_for_a_running_source_then_starts(monkeypatch):
    fake = Fake(monkeypatch, {"tiny": finished_source(phase="Running")})
    body, mem, events = (
        job("ev", task="evaluate", replicas=1, **{"from": {"job": "tiny"}}),
        memory.JobMemory(),
        [],
    )
    _pass(body, mem, events)
    assert not fake.created
    assert (
        fake.patches[-1]["phase"] == c.PENDING and fake.patches[-1]["reason"] == c.REASON_WAITING_FOR_SOURCE
    )
    body["status"] = fake.patches[-1]
    fake.jobs["tiny"] = finished_source()
    _pass(body, mem, events, T0 + 5)
    assert [o["metadata"]["name"] for o in fake.created if o["kind"] == "Pod"] == ["ev-worker-0"]
    assert fake.patches[-1]["source"]["job"] == "tiny"
