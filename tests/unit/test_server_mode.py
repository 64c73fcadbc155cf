"""Issue 21, spec.device.podsPer server: one pod per server holding perNode NPUs, one process per NPU inside.

Plain data throughout: the spec, the pods, the rank table from a whole server's device annotation, the per-rank
log demultiplexing, and status counts. zoo-server-launch's pure parts too; test_server_launch.py runs it for real.
"""

from __future__ import annotations

import dataclasses
import json

import pytest
from operator_jobs import ascend_job

from zoo_operator import conditions as c
from zoo_operator import dryrun, logparse, memlimits, memory, planner, ranktable, render, schema, spec, status
from zoo_operator.ctl import views
from zoo_operator.podview import PodView
from zoo_operator.settings import Settings
from zoo_workloads import contract

SETTINGS = Settings()


def server_job(replicas: int = 16, per_node: int = 8, **device: object) -> dict:
    return ascend_job(
        "srv",
        replicas=replicas,
        device={"type": "Ascend910", "perNode": per_node, "podsPer": "server", **device},
    )


def parse(body: dict) -> spec.JobSpec:
    return spec.parse(body, SETTINGS)


def problems(body: dict) -> str:
    with pytest.raises(spec.InvalidSpec) as err:
        parse(body)
    return str(err.value)


def test_default_is_one_pod_per_device() -> None:
    job = parse(ascend_job("asc", replicas=16, device={"type": "Ascend910", "perNode": 8}))
    assert job.pods_per == "device" and job.workers == 16 and job.devices_per_pod == 1
    assert len(render.pods(job, 0)) == 16


def test_server_mode_is_one_pod_per_server_with_per_node_npus() -> None:
    job = parse(server_job())
    assert (job.workers, job.devices_per_pod, job.pod_count, job.replicas) == (2, 8, 2, 16)
    pods = render.pods(job, 0)
    assert [p["metadata"]["name"] for p in pods] == ["srv-worker-0", "srv-worker-1"]
    for index, pod in enumerate(pods):
        container = pod["spec"]["containers"][0]
        assert container["resources"]["limits"]["huawei.com/Ascend910"] == 8
        assert container["resources"]["requests"]["huawei.com/Ascend910"] == 8
        assert container["command"][:2] == [contract.SERVER_LAUNCH, "--"]
        assert container["command"][2] == "zoo-train"
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert env[contract.ENV_RANK_SIZE] == "16"  # ranks, not pods
        # Each pod is its own server group: anti-affinity keeps the two pods on different nodes.
        assert pod["metadata"]["labels"][c.LABEL_SERVER_GROUP] == str(index)
        anti = pod["spec"]["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][0]
        assert anti["labelSelector"]["matchExpressions"][1]["values"] == [str(index)]
    # Memory: the table's per-rank default times the pod's ranks (spec.resources would be the pod's as written).
    one = render.pods(parse(ascend_job("asc", replicas=16, device={"type": "Ascend910", "perNode": 8})), 0)[0]
    per_rank = one["spec"]["containers"][0]["resources"]["limits"]["memory"]
    server_limit = pods[0]["spec"]["containers"][0]["resources"]["limits"]["memory"]
    assert memlimits.parse_quantity(server_limit) == 8 * memlimits.parse_quantity(per_rank)
    group = render.pod_group(dataclass_replace(job, gang=True, gang_backend="kubernetes"))
    assert group["spec"]["schedulingPolicy"]["gang"]["minCount"] == 2


def dataclass_replace(job: spec.JobSpec, **changes: object) -> spec.JobSpec:
    return dataclasses.replace(job, **changes)


def test_server_mode_changes_the_gang_hash_and_device_mode_keeps_it() -> None:
    device = parse(ascend_job("asc", replicas=16, device={"type": "Ascend910", "perNode": 8}))
    explicit = parse(
        ascend_job("asc", replicas=16, device={"type": "Ascend910", "perNode": 8, "podsPer": "device"})
    )
    server = parse(server_job())
    assert spec.gang_hash(device) == spec.gang_hash(explicit)
    assert spec.gang_hash(dataclass_replace(server, name="asc")) != spec.gang_hash(device)


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (server_job(per_node=8) | {}, None),
        (
            ascend_job("srv", replicas=16, device={"type": "Ascend910", "podsPer": "server"}),
            "spec.device.perNode",
        ),
        (
            ascend_job("srv", replicas=4, device={"type": "GPU", "perNode": 4, "podsPer": "server"}),
            "spec.device.type Ascend910 (got GPU)",
        ),
        (  # the dynamic launch (msrun style) runs in server mode too
            ascend_job(
                "srv",
                replicas=4,
                launch="dynamic",
                device={"type": "Ascend910", "perNode": 4, "podsPer": "server"},
            ),
            None,
        ),
        (
            ascend_job("srv", replicas=4, device={"type": "Ascend910", "perNode": 4, "podsPer": "node"}),
            "spec.device.podsPer: must be one of device, server",
        ),
    ],
)
def test_server_mode_needs_an_ascend_job_with_per_node(body: dict, needle: str | None) -> None:
    if needle is None:
        parse(body)
        return
    assert needle in problems(body)
    if "must be one of" not in needle:
        assert "spec.device.podsPer: server needs" in problems(body)


def test_server_mode_refuses_a_static_device_map() -> None:
    body = server_job(replicas=2, per_node=2)
    body["spec"]["rankTable"] = {
        "staticDevices": [
            {"podIndex": i, "serverId": "10.0.0.1", "deviceId": str(i), "deviceIp": f"192.168.1.{i + 1}"}
            for i in range(2)
        ]
    }
    assert "spec.rankTable.staticDevices: not with spec.device.podsPer server" in problems(body)


def test_the_schema_rule_names_the_field() -> None:
    rules = [r for r in schema._spec_rules() if "podsPer" in r["rule"]]
    assert len(rules) == 1 and rules[0]["message"].startswith("spec.device.podsPer: server needs")
    assert schema.field("spec.device.podsPer")["default"] == "device"


def test_a_spec_command_job_runs_its_preamble_under_the_server_launcher() -> None:
    body = server_job(replicas=4, per_node=2)
    for key in ("model", "hyperparameters"):
        body["spec"].pop(key)
    body["spec"].update(command=["python", "train.py"], image="registry.local/me/train:1")
    pod = render.pods(parse(body), 0)[0]
    cmd = pod["spec"]["containers"][0]["command"]
    assert cmd[:2] == ["/bin/sh", "-c"] and f"exec {contract.SERVER_LAUNCH} -- " in cmd[2]
    assert "zoo-launch --" not in cmd[2] and cmd[3:] == ["zoo-launch", "python", "train.py"]


def server_annotation(pod: str, node_ip: str, node: int, ids: list[int], generation: str) -> str:
    """A server pod's annotation as ascend-device-plugin writes it: <= v7 server_id is the node IP, >= v26 the
    pod UID with the node IP in host_ip (pkg/device/ascendcommon.go getConfigAnno)."""
    devices = [{"device_id": str(i), "device_ip": f"192.168.{node}.{101 + i}"} for i in ids]
    if generation == "v7":
        return json.dumps({"pod_name": pod, "server_id": node_ip, "super_pod_id": -1, "devices": devices})
    return json.dumps(
        {
            "pod_name": pod,
            "server_id": f"uid-{pod}",
            "host_ip": node_ip,
            "server_ip": node_ip,
            "rack_id": "-1",
            "server_index": str(node),
            "super_pod_id": -1,
            "devices": devices,
        }
    )


@pytest.mark.parametrize("generation", ["v7", "v26"])
def test_rank_table_of_two_server_pods_is_two_servers_of_eight(generation: str) -> None:
    job = parse(server_job())
    # worker-0 landed on the node whose IP sorts second: its ranks are 8..15 (one server per node IP, as in
    # device mode), each pod's ranks contiguous.
    pods = [
        PodView(
            name="srv-worker-0",
            index=0,
            ip="127.1.0.5",
            host_ip="10.0.0.9",
            device_annotation=server_annotation(
                "srv-worker-0", "10.0.0.9", 1, [7, 3, 0, 1, 2, 4, 5, 6], generation
            ),
        ),
        PodView(
            name="srv-worker-1",
            index=1,
            ip="127.1.0.6",
            host_ip="10.0.0.10",
            device_annotation=server_annotation("srv-worker-1", "10.0.0.10", 2, list(range(8)), generation),
        ),
    ]
    devices, _cache, errors = planner.devices_of(job, pods, {})
    assert errors == [] and len(devices) == 16
    table = ranktable.build(devices, job.replicas)
    assert table["status"] == "completed" and table["server_count"] == "2"
    first, second = table["server_list"]
    assert (first["server_id"], second["server_id"]) == ("10.0.0.10", "10.0.0.9")
    assert [d["device_id"] for d in second["device"]] == [str(i) for i in range(8)]
    assert [d["rank_id"] for d in first["device"]] == [str(i) for i in range(8)]
    assert [d["rank_id"] for d in second["device"]] == [str(i) for i in range(8, 16)]
    assert ranktable.order(devices)[0].pod_name == "srv-worker-1"  # the pod holding rank 0


def test_a_partial_server_annotation_is_refused_like_a_device_one() -> None:
    bad = json.dumps(
        {"pod_name": "p", "server_id": "10.0.0.1", "devices": [{"device_id": "x", "device_ip": "1"}]}
    )
    with pytest.raises(ValueError, match="numeric device_id"):
        ranktable.parse_server_annotation(bad)


def test_rank_lines_and_their_prefix_round_trip() -> None:
    assert contract.rank_line(3, "epoch: 1 step: 2, loss is 1.5") == "[rank 3] epoch: 1 step: 2, loss is 1.5"
    assert contract.line_rank("[rank 3] epoch: 1") == (3, "epoch: 1")
    event = '{"event": "step", "rank": 3}'
    assert contract.rank_line(3, event) == event  # event lines carry their rank already
    assert contract.line_rank("[rank x] no") == (None, "[rank x] no")
    assert contract.line_rank("plain") == (None, "plain")


SERVER_LINES = [
    "zoo-server-launch: rank 8: DEVICE_ID=0 (physical NPU 0) pid 11",
    '{"event": "start", "ts": 1.0, "rank": 9, "epochs": 2, "steps_per_epoch": 3, "batch_size": 4, "rank_size": 16}',
    "[rank 9] epoch: 1 step: 1, loss is 9.0",
    '{"event": "step", "ts": 2.0, "rank": 9, "epoch": 1, "step": 1, "loss": 9.0}',
    '{"event": "start", "ts": 1.1, "rank": 8, "epochs": 2, "steps_per_epoch": 3, "batch_size": 4, "rank_size": 16}',
    "[rank 8] epoch: 1 step: 1, loss is 8.0",
    '{"event": "step", "ts": 2.1, "rank": 8, "epoch": 1, "step": 1, "loss": 8.0}',
    '{"event": "step", "ts": 3.0, "rank": 9, "epoch": 1, "step": 2, "loss": 9.5}',
]
SERVER_LOG = "\n".join(SERVER_LINES)


def test_split_ranks_demultiplexes_a_server_pods_log() -> None:
    parts = logparse.split_ranks(SERVER_LOG)
    assert sorted(parts, key=lambda r: -1 if r is None else r) == [None, 8, 9]
    assert parts[8][1] == "epoch: 1 step: 1, loss is 8.0"
    assert len(parts[9]) == 4 and parts[None][0].startswith("zoo-server-launch:")


def test_a_server_pods_progress_is_its_lowest_ranks() -> None:
    """Without the filter the later rank-9 step (loss 9.5, step 2) would be the pod's progress."""
    entry = memory.PodLog(uid="u").folded(logparse.parse_lines(SERVER_LOG))
    assert entry.rank == 8
    assert entry.progress["loss"] == 8.0 and entry.progress["step"] == 1
    # A later batch holding only rank 9's lines moves nothing: rank 8 still speaks for the pod.
    later = entry.folded(
        logparse.parse_lines('{"event": "step", "ts": 4, "rank": 9, "epoch": 1, "step": 3, "loss": 1}')
    )
    assert later.rank == 8 and later.progress["step"] == 1


def test_ztj_logs_gives_each_line_of_a_server_pod_its_rank() -> None:
    text = "\n".join(
        f"2026-12-07T10:00:0{i}.000000000Z {line}" for i, line in enumerate(SERVER_LOG.splitlines())
    )
    lines = views.rank_lines(1, text, server=True)
    assert [ln.rank for ln in lines] == [1, 9, 9, 9, 8, 8, 8, 9]
    assert lines[2].text == "epoch: 1 step: 1, loss is 9.0"
    assert [ln.rank for ln in views.rank_lines(1, text)] == [1] * 8  # device mode: the pod's rank


def test_status_counts_a_server_pod_as_its_ranks() -> None:
    pods = [
        PodView(name="srv-worker-0", index=0, phase="Running", running=True),
        PodView(name="srv-worker-1", index=1, phase="Pending"),
    ]
    assert status.rank_counts(pods, 16, per_pod=8) == {
        "total": 16,
        "pending": 8,
        "active": 8,
        "succeeded": 0,
        "failed": 0,
    }
    assert status.rank_counts(pods, 2)["active"] == 1  # device mode unchanged


def test_dry_run_render_of_a_server_job_with_its_allocations() -> None:
    """`zoo-operator render --allocations`: one annotation per server pod, each with perNode devices."""
    alloc = [
        json.loads(server_annotation(f"srv-worker-{i}", f"10.0.0.{9 + i}", i + 1, list(range(8)), "v7"))
        for i in range(2)
    ]
    objs = dryrun.objects(json.dumps(server_job()), SETTINGS, json.dumps(alloc))
    pods = [o for o in objs if o["kind"] == "Pod"]
    assert [p["metadata"]["name"] for p in pods] == ["srv-worker-0", "srv-worker-1"]
    table = json.loads(next(o for o in objs if o["kind"] == "ConfigMap")["data"]["hccl.json"])
    assert table["status"] == "completed" and [len(s["device"]) for s in table["server_list"]] == [8, 8]
    with pytest.raises(dryrun.RenderError, match="listed twice"):
        dryrun.objects(json.dumps(server_job()), SETTINGS, json.dumps([alloc[0], alloc[0]]))


def test_ztj_watch_shows_a_row_per_rank_of_a_server_pod() -> None:
    progress = views.server_progress(SERVER_LOG)
    assert sorted(progress) == [8, 9]
    assert (progress[8]["step"], progress[8]["loss"]) == (1, 8.0)
    assert (progress[9]["step"], progress[9]["loss"]) == (2, 9.5)


def dynamic_server_job(replicas: int = 16, per_node: int = 8, **spec_: object) -> dict:
    body = server_job(replicas=replicas, per_node=per_node)
    body["spec"].update(launch="dynamic", **spec_)
    return body


def test_dynamic_server_mode_renders_one_msrun_node_per_pod_and_a_plain_scheduler() -> None:
    """msrun style in server mode: a scheduler pod (one process under zoo-launch, no NPU) and one pod per server
    whose zoo-server-launch starts perNode workers; the pod says its node rank and local worker count (msrun's
    --node_rank, --local_worker_num) and carries no MS_NODE_ID (each process gets its own)."""
    job = parse(dynamic_server_job())
    assert (job.launch, job.workers, job.pod_count) == ("dynamic", 2, 3)
    sched, *workers = render.pods(job, 0)
    assert [p["metadata"]["name"] for p in workers] == ["srv-worker-0", "srv-worker-1"]
    container = sched["spec"]["containers"][0]
    assert sched["metadata"]["name"] == "srv-sched" and container["command"][:3] == [
        "zoo-launch",
        "--",
        "zoo-train",
    ]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env[contract.ENV_MS_ROLE] == contract.MS_ROLE_SCHEDULER and env[contract.ENV_MS_NODE_ID] == "sched"
    assert (
        contract.ENV_NODE_RANK not in env and "huawei.com/Ascend910" not in container["resources"]["limits"]
    )
    for index, pod in enumerate(workers):
        container = pod["spec"]["containers"][0]
        assert container["command"][:3] == [contract.SERVER_LAUNCH, "--", "zoo-train"]
        assert container["resources"]["limits"]["huawei.com/Ascend910"] == 8
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert env[contract.ENV_MS_ROLE] == contract.MS_ROLE_WORKER
        assert env[contract.ENV_MS_WORKER_NUM] == "16" and env[contract.ENV_RANK_SIZE] == "16"
        assert env[contract.ENV_NODE_RANK] == str(index) and env[contract.ENV_LOCAL_WORKER_NUM] == "8"
        assert contract.ENV_MS_NODE_ID not in env and contract.ENV_RANK_TABLE_FILE not in env
        assert pod["metadata"]["labels"][c.LABEL_SERVER_GROUP] == str(index)
    # No rank table: the launch ConfigMap is the scheduler's address.
    assert render.launch_config_map_name(job) == "srv-launch"
    # Device mode keeps one MS_NODE_ID per pod.
    device = parse(
        ascend_job("asc", replicas=4, launch="dynamic", device={"type": "Ascend910", "perNode": 2})
    )
    env = {e["name"]: e.get("value") for e in render.pods(device, 0)[2]["spec"]["containers"][0]["env"]}
    assert env[contract.ENV_MS_NODE_ID] == "1" and contract.ENV_NODE_RANK not in env


def test_dynamic_server_mode_on_dra_claims_per_node_npus() -> None:
    """With NPUs through DRA the dynamic launch is the default, and server mode is allowed: each server pod claims
    perNode devices from the job's template; the scheduler claims none."""
    dra = Settings(ascend_dra_device_class="npu.huawei.com")
    job = spec.parse(server_job(), dra)
    assert job.launch == "dynamic" and job.pods_per == "server"
    (request,) = render.resource_claim_template(job)["spec"]["spec"]["devices"]["requests"]
    assert request["exactly"]["count"] == 8
    sched, *workers = render.pods(job, 0)
    assert "resourceClaims" not in sched["spec"]
    for pod in workers:
        assert pod["spec"]["resourceClaims"] == [{"name": "npu", "resourceClaimTemplateName": "srv-npu"}]
        assert "huawei.com/Ascend910" not in pod["spec"]["containers"][0]["resources"]["limits"]


def test_a_lost_server_pod_of_a_dynamic_gang_restarts_the_whole_gang() -> None:
    """Pod-level recovery (a lost worker recreated alone) needs every process under zoo-launch's supervisor on the
    gang channel; zoo-server-launch restarts none in place, so a lost server pod restarts the gang."""
    body = dynamic_server_job(replicas=4, per_node=2, runPolicy={"processRestarts": 3})
    body["status"] = {"phase": c.RUNNING, "startTime": "2027-01-15T08:00:00Z", "restarts": 0}
    live = tuple(
        PodView(
            name=n,
            uid=f"uid-{n}",
            owner_uid="uid-1",
            role=c.ROLE_SCHEDULER if n.endswith("sched") else c.ROLE_WORKER,
            index=None if n.endswith("sched") else 0,
            attempt=0,
            phase="Running",
            running=True,
            spec_hash=spec.gang_hash(parse(body)),
        )
        for n in ("srv-sched", "srv-worker-0")
    )
    obs = memory.Observation(body=body, pods=live, now=1_800_000_000.0)
    p = planner.plan(obs, memory.JobMemory(uid="uid-1"), SETTINGS)
    assert p.status is not None and p.status["reason"] == c.REASON_POD_LOST, p.status
    assert sorted(p.delete) == ["srv-sched", "srv-worker-0"] and not p.create
