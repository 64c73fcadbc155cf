"""`zoo-operator render`: the dry run prints every object; bad input is one line on stderr and exit code 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from operator_jobs import ascend_job, job

from zoo_operator import cli

REPO = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, body: object, name: str = "job.yaml") -> str:
    path = tmp_path / name
    path.write_text(body if isinstance(body, str) else yaml.safe_dump(body))
    return str(path)


def render(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[dict], str]:
    code = cli.main(["render", *args])
    out, err = capsys.readouterr()
    return code, [d for d in yaml.safe_load_all(out) if d] if code == 0 else [], err


def test_render_ascend_job_with_allocations(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    alloc = [
        {
            "pod_name": f"asc-worker-{i}",
            "server_id": f"10.0.0.{9 + i}",
            "devices": [{"device_id": str(i), "device_ip": f"192.168.100.{101 + i}"}],
        }
        for i in range(2)
    ]
    code, objs, err = render(
        capsys,
        "-f",
        write(tmp_path, ascend_job(replicas=2)),
        "--allocations",
        write(tmp_path, json.dumps(alloc), "alloc.json"),
    )
    assert code == 0 and err == ""
    assert [o["kind"] for o in objs] == ["Service", "ConfigMap", "NetworkPolicy", "Pod", "Pod"]
    table = json.loads(objs[1]["data"]["hccl.json"])
    assert table["status"] == "completed"
    assert [s["server_id"] for s in table["server_list"]] == ["10.0.0.10", "10.0.0.9"]


def test_render_without_allocations_is_initializing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, objs, _ = render(capsys, "-f", write(tmp_path, ascend_job(replicas=2)))
    assert code == 0 and json.loads(objs[1]["data"]["hccl.json"])["status"] == "initializing"


def test_render_dynamic_job(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, objs, _ = render(capsys, "-f", write(tmp_path, job()))
    assert code == 0
    assert [o["metadata"]["name"] for o in objs] == [
        "demo",
        "demo-launch",
        "demo",
        "demo-sched",
        "demo-worker-0",
        "demo-worker-1",
    ]


@pytest.mark.parametrize(
    ("content", "alloc", "expected"),
    [
        ("a: [unclosed", None, "not valid YAML"),
        ("kind: Pod\n", None, "exactly one ZooTrainingJob"),
        (job(hyperparameters={"nope": 1}), None, "spec.hyperparameters.nope: unknown hyperparameter"),
        (job(model="vgg"), None, "spec.model: must be one of"),
        ({**job(), "apiVersion": "modelzoo.io/v2"}, None, "apiVersion: must be modelzoo.io/v1alpha1"),
        (ascend_job(replicas=2), "{", "allocations: not JSON"),
        (
            ascend_job(replicas=2),
            (
                '[{"pod_name": "other-worker-0", "server_id": "10.0.0.1", '
                '"devices": [{"device_id": "0", "device_ip": "i"}]}]'
            ),
            "is not a worker of job asc",
        ),
        (ascend_job(replicas=2), '[{"pod_name": "asc-worker-0"}]', "allocations[0]: device annotation needs"),
        (job(), "[]", "only for launch ranktable"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: object, alloc: str | None, expected: str
) -> None:
    args = ["-f", write(tmp_path, content)]
    if alloc is not None:
        args += ["--allocations", write(tmp_path, alloc, "alloc.json")]
    code, _, err = render(capsys, *args)
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("zoo-operator render: ") and expected in err


def test_missing_file(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = render(capsys, "-f", "/nonexistent/job.yaml")
    assert code == 2 and "cannot read /nonexistent/job.yaml" in err


def test_console_script_exit_code(tmp_path: Path) -> None:
    exe = Path(sys.executable).parent / "zoo-operator"
    proc = subprocess.run(
        [str(exe), "render", "-f", write(tmp_path, job(replicas=0))],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and "spec.replicas" in proc.stderr and proc.stdout == ""


def test_example_manifests_render(capsys: pytest.CaptureFixture[str]) -> None:
    examples = sorted((REPO / "manifests" / "examples").glob("*.yaml"))
    assert examples
    for path in examples:
        code, objs, err = render(capsys, "-f", str(path))
        assert code == 0, f"{path.name}: {err}"
        assert objs[-1]["kind"] == "Pod"
