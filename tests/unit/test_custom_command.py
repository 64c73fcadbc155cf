"""Your own command (issue 26): spec.command/args/workingDir parsed, refused with the field named, rendered through
the launch preamble, and the reporting helper's lines read back by the operator's own parsers."""

from __future__ import annotations

import dataclasses
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from operator_jobs import ascend_job, job

from zoo_operator import history, logparse, render, schema, spec
from zoo_operator.settings import Settings
from zoo_workloads import contract
from zoo_workloads.report import Reporter

SETTINGS = Settings(image_cpu="cpu:1", image_gpu="gpu:1", image_ascend="ascend:1")
SCRIPT = ["python", "/scripts/train.py"]


def custom(name: str = "mine", **spec_fields: object) -> dict:
    """A valid spec.command job (the CPU job of operator_jobs without model and hyperparameters)."""
    fields = {
        "model": None,
        "hyperparameters": None,
        "image": "me/train:1",
        "command": SCRIPT,
        "args": ["--epochs", "2"],
        **spec_fields,
    }
    return job(name, **fields)


def problems(body: dict) -> list[str]:
    with pytest.raises(spec.InvalidSpec) as info:
        spec.parse(body, SETTINGS)
    return info.value.problems


def test_command_job_parses_with_its_image_command_and_args() -> None:
    js = spec.parse(custom(workingDir="/work"), SETTINGS)
    assert js.custom and js.model == schema.CUSTOM_MODEL
    assert js.user_command == ("python", "/scripts/train.py") and js.user_args == ("--epochs", "2")
    assert js.image == "me/train:1" and js.working_dir == "/work"
    assert js.launch == "dynamic" and js.pod_count == 3  # the scheduler runs the same command
    assert not spec.parse(job(), SETTINGS).custom
    one = spec.parse(custom(replicas=1), SETTINGS)
    assert one.launch == "single" and one.pod_count == 1  # one process: no scheduler pod to wait for
    assert spec.parse(custom(replicas=1, launch="dynamic"), SETTINGS).pod_count == 2


def test_dataset_is_optional_with_a_command() -> None:
    js = spec.parse(custom(dataset=None), SETTINGS)
    assert js.dataset_volume == {"emptyDir": {}} and js.num_classes == 0
    assert "spec.dataset: required" in " ".join(problems(job(dataset=None)))


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"command": []}, "spec.command: must not be empty"),
        ({"command": ["python", ""]}, "spec.command[1]: must be a non-empty string"),
        ({"command": "python train.py"}, "spec.command: must be a list of strings"),
        ({"args": ["--x", 3]}, "spec.args[1]: must be a non-empty string"),
        ({"model": "resnet50_bam"}, "spec.model and spec.command are mutually exclusive"),
        ({"image": None}, "spec.image: required with spec.command"),
        ({"hyperparameters": {"epochs": 2}}, "spec.hyperparameters: only for a built-in spec.model"),
        (
            {"task": "evaluate", "from": {"job": "x"}, "replicas": 1},
            "spec.task and spec.from: only for a built-in",
        ),
        ({"workingDir": "work"}, "spec.workingDir: must be an absolute path"),
        ({"command": ["x" * (schema.MAX_ARG + 1)]}, "spec.command[0]: too long"),
        ({"args": ["a"] * (schema.MAX_ARGS_ITEMS + 1)}, "spec.args: at most"),
    ],
)
def test_bad_commands_are_refused_naming_the_field(fields: dict, message: str) -> None:
    found = problems(custom(**fields))
    assert any(p.startswith(message) for p in found), found


def test_args_without_a_command_and_neither_model_nor_command() -> None:
    assert "spec.args and spec.workingDir: only with spec.command" in problems(job(args=["--x"]))
    assert any(p.startswith("spec.model: required") for p in problems(job(model=None)))


def test_crd_rules_say_the_same_as_the_parser() -> None:
    """Every refusal of user_command has a CEL rule with the same message (kubectl apply says what render says)."""
    crd_messages = {r["message"] for r in schema._command_rules()}
    for fields in ({"model": "resnet50_bam"}, {"image": None}, {"hyperparameters": {"epochs": 2}}):
        (problem,) = [p for p in problems(custom(**fields)) if not p.startswith("spec.dataset")]
        assert problem in crd_messages
    spec_schema = schema.crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    assert "model" not in spec_schema["required"]
    assert spec_schema["properties"]["command"]["minItems"] == 1


def test_golden_custom_script_worker_pod() -> None:
    """render.pod of manifests/examples/custom-script/job.yaml, worker 1, attempt 2."""
    import yaml

    repo = Path(__file__).resolve().parents[2]
    body = yaml.safe_load((repo / "manifests" / "examples" / "custom-script" / "job.yaml").read_text())
    body["metadata"].update(namespace="research", uid="0f1e2d3c-aaaa-bbbb-cccc-000000000001", generation=1)
    golden = yaml.safe_load(
        (repo / "tests" / "unit" / "golden" / "pod_custom_script_worker_1.yaml").read_text()
    )
    assert render.pod(spec.parse(body, SETTINGS), 1, attempt=2) == golden


def test_rendered_pod_runs_the_command_through_the_preamble() -> None:
    js = spec.parse(custom(workingDir="/work"), SETTINGS)
    pod = render.pod(js, 1, attempt=0)
    container = pod["spec"]["containers"][0]
    assert container["command"] == [
        "/bin/sh",
        "-c",
        render.LAUNCH_PREAMBLE,
        "zoo-launch",
        *SCRIPT,
        "--epochs",
        "2",
    ]
    assert container["image"] == "me/train:1" and container["workingDir"] == "/work"
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["ZOO_MODEL"] == "custom" and env["RANK_SIZE"] == "2"
    assert env["MS_ROLE"] == "MS_WORKER" and env["MS_NODE_ID"] == "1" and env["MS_WORKER_NUM"] == "2"
    assert env["ZOO_DATA_DIR"] == "/zoo/data/train" and env["ZOO_EVAL_DIR"] == "/zoo/data/val"
    assert env["ZOO_OUTPUT_DIR"] == "/zoo/checkpoint/ns1/mine-uid-1" and env["ZOO_DEVICE"] == "CPU"
    sched = render.pod(js, None, attempt=0)["spec"]["containers"][0]
    assert sched["command"] == container["command"]  # MindSpore's scheduler role runs the same script
    # The gang, restarts and attempt rule are the built-in job's: same pods, same policy fields.
    assert [p["metadata"]["name"] for p in render.pods(js, 0)] == [
        "mine-sched",
        "mine-worker-0",
        "mine-worker-1",
    ]


def test_rank_table_command_job_gets_the_rank_table_and_attempt() -> None:
    body = ascend_job("asc", model=None, hyperparameters=None, image="me/npu:1", command=SCRIPT)
    js = spec.parse(body, SETTINGS)
    container = render.pod(js, 0, attempt=3)["spec"]["containers"][0]
    names = {e["name"] for e in container["env"]}
    assert {"RANK_TABLE_FILE", "HOST_IP", "ZOO_ATTEMPT", "RANK_SIZE"} <= names
    assert {m["mountPath"] for m in container["volumeMounts"]} >= {contract.RANKTABLE_DIR}


def test_built_in_hash_is_unchanged_and_command_changes_restart_the_gang() -> None:
    built_in = spec.parse(job(), SETTINGS)
    fields = {name: getattr(built_in, name) for name in spec.GANG_FIELDS}
    text = json.dumps(fields, sort_keys=True, default=lambda o: o.__dict__)
    import hashlib

    assert spec.gang_hash(built_in) == hashlib.sha256(text.encode()).hexdigest()[:16]
    one, two = (spec.parse(custom(args=a), SETTINGS) for a in (["--epochs", "2"], ["--epochs", "3"]))
    assert spec.gang_hash(one) != spec.gang_hash(two)


def test_display_model() -> None:
    assert spec.display_model({"model": "resnet50_bam"}) == "resnet50_bam"
    assert spec.display_model({"command": ["python", "/scripts/train.py"]}) == "custom:train.py"
    assert spec.display_model({"command": ["/opt/bin/trainer", "--x"]}) == "custom:trainer"
    assert spec.display_model({}) == ""


def _sh(
    job_env: dict[str, str], tmp_path: Path, with_launcher: bool, *cmd: str
) -> subprocess.CompletedProcess:
    """Run the preamble as the pod would, with or without a zoo-launch on PATH."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    if with_launcher:
        fake = bin_dir / "zoo-launch"
        fake.write_text('#!/bin/sh\necho "via zoo-launch: $*"\n')
        fake.chmod(0o755)
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", **job_env}
    return subprocess.run(
        ["/bin/sh", "-c", render.LAUNCH_PREAMBLE, "zoo-launch", *cmd],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_preamble_survives_the_kubelets_variable_expansion() -> None:
    # Kubernetes expands $(VAR) in command and args (and $$ to $): the preamble must hold neither.
    assert "$(" not in render.LAUNCH_PREAMBLE and "$$" not in render.LAUNCH_PREAMBLE


def test_preamble_uses_zoo_launch_when_the_image_has_it(tmp_path: Path) -> None:
    out = _sh({}, tmp_path, True, "echo", "a b", "$HOME")
    assert out.stdout.strip() == "via zoo-launch: -- echo a b $HOME"  # arguments untouched by the shell


def test_preamble_without_zoo_launch(tmp_path: Path) -> None:
    plain = _sh({}, tmp_path, False, "echo", "hello", "'quoted'")
    assert plain.returncode == 0 and plain.stdout.strip() == "hello 'quoted'"
    table = _sh({"RANK_TABLE_FILE": "/etc/zoo/ranktable/hccl.json"}, tmp_path, False, "echo", "x")
    assert table.returncode == contract.EXIT_CONFIG and "no zoo-launch" in table.stderr
    assert contract.exit_class(table.returncode) == "permanent"
    dyn = _sh({"MS_SCHED_HOST": "localhost"}, tmp_path, False, "sh", "-c", 'echo "$MS_SCHED_HOST"')
    assert dyn.returncode == 0 and dyn.stdout.strip() in ("127.0.0.1", "::1")


def test_user_exit_codes_are_retryable_unless_they_say_otherwise() -> None:
    assert [contract.exit_class(code) for code in (0, 1, 2, 137)] == [
        "ok",
        "retryable",
        "retryable",
        "retryable",
    ]
    assert contract.exit_class(64) == "permanent"


def test_report_lines_drive_progress_history_and_result(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    term = tmp_path / "termination-log"
    monkeypatch.setenv(contract.ENV_TERMINATION_LOG, str(term))
    monkeypatch.setenv(contract.ENV_RANK_SIZE, "2")
    out = io.StringIO()
    r = Reporter(rank=0, stream=out)
    r.start(epochs=2, steps_per_epoch=3, batch_size=8)
    r.step(epoch=1, step=3, loss=0.5, steps_per_epoch=3)
    r.epoch(epoch=1, loss=0.6, seconds=1.5)
    r.eval(epoch=1, top1=0.8)
    r.step(epoch=2, step=1, loss=float("nan"))  # NaN becomes null, never invalid JSON
    r.done(top1=0.9, checkpoint="/zoo/checkpoint/run/net.ckpt")
    events = logparse.parse_lines(out.getvalue())
    assert [e["event"] for e in events] == ["start", "step", "epoch", "eval", "step", "done"]
    progress = logparse.fold_progress({}, events)
    assert progress["epochs"] == 2 and progress["globalBatchSize"] == 16 and progress["loss"] == 0.6
    assert progress["epoch"] == 2  # done: every epoch done
    curve = history.fold([], events)
    assert curve[0]["epoch"] == 1 and curve[0]["loss"] == 0.6 and curve[0]["top1"] == 0.8
    record = logparse.record_from_events(events)
    assert (
        record is not None
        and logparse.result_from_metrics(record["metrics"], record["checkpoint"])["top1"] == 0.9
    )
    message = logparse.parse_termination(term.read_text())
    assert message is not None and message["status"] == "succeeded"
    assert message["metrics"] == {"top_1_accuracy": 0.9} and message["epochs"] == 2


def test_reporter_rank_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(contract.ENV_RANK_ID, raising=False)
    monkeypatch.setenv(contract.ENV_MS_NODE_ID, "sched")
    assert Reporter().rank == 0
    monkeypatch.setenv(contract.ENV_MS_NODE_ID, "3")
    assert Reporter().rank == 3
    monkeypatch.setenv(contract.ENV_RANK_ID, "5")
    assert Reporter().rank == 5


def test_report_without_the_operator_writes_no_termination_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv(contract.ENV_TERMINATION_LOG, raising=False)
    monkeypatch.chdir(tmp_path)
    err = io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    Reporter(rank=0, stream=io.StringIO()).done(top1=0.5)
    assert err.getvalue() == "" and not os.listdir(tmp_path)


def test_example_job_parses_and_runs_its_script_with_the_spec_paths() -> None:
    import yaml

    path = Path(__file__).resolve().parents[2] / "manifests" / "examples" / "custom-script" / "job.yaml"
    body = yaml.safe_load(path.read_text())
    body["metadata"].update(namespace="default", uid="u1")
    js = spec.parse(body, SETTINGS)
    assert js.custom and js.replicas == 2 and js.device_type == "CPU"
    assert "$(ZOO_DATA_DIR)" in js.user_args and "$(ZOO_OUTPUT_DIR)" in js.user_args


def test_line_follower_turns_loss_monitor_lines_into_events() -> None:
    from zoo_workloads.report import LineFollower

    out = io.StringIO()
    follow = LineFollower(Reporter(rank=0, stream=out), epochs=2)
    for text in [
        "=======Training Begin========",
        "epoch: 1 step: 1, loss is 6.9",
        "epoch: 1 step: 2, loss is 6.5",
        "epoch time: 10.0 ms, per step time: 5.0 ms",
        "epoch: 2 step: 2, loss is 5.5",
    ]:
        follow.line(text)
    follow.end_epoch()
    events = logparse.parse_lines(out.getvalue())
    assert [(e["event"], e.get("epoch"), e.get("loss")) for e in events] == [
        ("step", 1, 6.9),
        ("step", 1, 6.5),
        ("epoch", 1, 6.7),
        ("step", 2, 5.5),
        ("epoch", 2, 5.5),
    ]
    assert logparse.fold_progress({}, events)["epochs"] == 2


def test_report_module_runs_a_command_and_keeps_its_exit_code(tmp_path: Path) -> None:
    env = {**os.environ, "RANK_ID": "0"}
    env.pop(contract.ENV_TERMINATION_LOG, None)
    code = "print('epoch: 1 step: 3, loss is 0.25'); raise SystemExit(7)"
    proc = subprocess.run(
        [sys.executable, "-m", "zoo_workloads.report", "--epochs", "1", "--", sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 7
    lines = proc.stdout.splitlines()
    assert "epoch: 1 step: 3, loss is 0.25" in lines  # the command's own output passes through
    assert [e["event"] for e in logparse.parse_lines(proc.stdout)] == [
        "start",
        "step",
        "epoch",
    ]  # no done on 7


def test_run_seed_job_sets_the_seeds_flags_from_the_spec(tmp_path: Path) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "hack" / "modelzoo"))
    import run_seed

    seed = tmp_path / "research" / "cv" / "resnet50_bam"
    (seed / "src").mkdir(parents=True)
    (seed / "train.py").write_text("print('train')\n")
    (seed / "src" / "config.py").write_text("cfg = {}\n")
    (seed / "ascend310_infer").mkdir()
    (seed / "ascend310_infer" / "skip.py").write_text("")
    files = run_seed.sources(seed)
    assert sorted(files) == ["src/config.py", "train.py"]
    body = run_seed.job(
        "research/cv/resnet50_bam", files, replicas=8, device="Ascend910", data="/d", image="i:1"
    )
    assert body["spec"]["args"] == ["--device_target", "Ascend", "--device_num", "8"]
    assert body["spec"]["podTemplate"]["env"] == [{"name": "DEVICE_NUM", "value": "8"}]
    items = body["spec"]["podTemplate"]["volumes"][0]["configMap"]["items"]
    assert {"key": "src__config.py", "path": "src/config.py"} in items
    # The seed's config has no data-path flag: a podTemplate hostPath, which the platform policy must allow.
    assert "hostPath volumes in podTemplate are not allowed" in str(
        pytest.raises(
            spec.InvalidSpec, spec.parse, {**body, "metadata": {"name": "s", "namespace": "n"}}, SETTINGS
        ).value
    )
    admin = dataclasses.replace(SETTINGS, policy_volume_kinds=(*SETTINGS.policy_volume_kinds, "hostPath"))
    js = spec.parse({**body, "metadata": {**body["metadata"], "namespace": "ns", "uid": "u"}}, admin)
    assert js.custom and js.launch == "ranktable" and js.working_dir == "/modelzoo"
    cpu = run_seed.job("research/cv/resnet50_bam", files, replicas=2, device="CPU", data="/d", image="i:1")
    assert (
        cpu["spec"]["args"] == ["--is_distributed", "1"]
        and spec.parse({**cpu, "metadata": {**cpu["metadata"], "namespace": "ns", "uid": "u"}}, admin).launch
        == "dynamic"
    )
