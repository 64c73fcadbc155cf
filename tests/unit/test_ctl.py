"""`kubectl ztj`: the pure parts (merge by time, prefixes, progress, charts, timeline) and each command against a
fake kubectl that serves canned objects (the real cluster is in tests/e2e)."""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path
from typing import Any

import pytest

from zoo_operator.ctl import main as ctl
from zoo_operator.ctl import views

T = "2026-12-02T03:14:"


def test_timestamps_parse_to_unix_seconds() -> None:
    ts, text = views.parse_timestamped("2026-12-02T03:14:40.123456789Z epoch: 1 step: 2, loss is 5.7")
    assert text == "epoch: 1 step: 2, loss is 5.7"
    assert ts == pytest.approx(1796181280.123456789, abs=1e-5)
    assert views.parse_timestamped("no timestamp here") == (None, "no timestamp here")


def test_merge_orders_ranks_by_time_and_keeps_each_ranks_order() -> None:
    r0 = views.rank_lines(0, f"{T}40.5Z a0\n{T}41.0Z b0\n{T}43.0Z c0")
    r1 = views.rank_lines(1, f"{T}40.1Z a1\n{T}41.0Z b1\n{T}42.0Z c1")
    kept = [views.LogLine(None, 2, "gone rank's last line")]
    merged = views.merge([r0, r1, kept])
    assert [ln.text for ln in merged] == ["gone rank's last line", "a1", "a0", "b0", "b1", "c1", "c0"]


def test_prefix_is_padded_and_coloured_only_on_request() -> None:
    line = views.LogLine(1.0, 3, "hello")
    assert views.format_line(line, 2, colour=False) == "[rank 3 ]  hello"
    coloured = views.format_line(line, 2, colour=True)
    assert coloured.startswith("\x1b[") and "rank 3" in coloured and coloured.endswith("\x1b[0m hello")
    assert views.format_line(views.LogLine(None, 3, "x"), 2, colour=False) == "[rank 3 ]* x"


def test_event_lines_hidden_unless_asked() -> None:
    event = json.dumps({"event": "step", "ts": 1, "rank": 0})
    assert not views.keep_line(event, show_events=False) and views.keep_line(event, show_events=True)
    assert views.keep_line("epoch: 1 step: 1, loss is 5.7", show_events=False)


def test_rank_row_progress_and_fraction() -> None:
    text = "\n".join(
        json.dumps(e)
        for e in [
            {
                "event": "start",
                "ts": 1,
                "rank": 1,
                "epochs": 4,
                "steps_per_epoch": 10,
                "batch_size": 8,
                "rank_size": 2,
            },
            {
                "event": "step",
                "ts": 2,
                "rank": 1,
                "epoch": 2,
                "step": 5,
                "steps_per_epoch": 10,
                "loss": 1.23456,
                "images_per_second": 16.0,
            },
        ]
    )
    row = views.rank_row(1, {"phase": "Running"}, views.rank_progress(text))
    # 15 of 40 steps done; 25 left at 16 images / 16 images/s = 1 s each.
    assert row == {
        "rank": "1",
        "phase": "Running",
        "epoch": "2/4",
        "step": "5/10",
        "loss": "1.235",
        "ips": "16.0",
        "eta": "25s",
        "fraction": "0.3750",
    }
    assert views.bar(0.5, 10) == "#####-----"


def test_text_chart_draws_every_point() -> None:
    chart = views.text_chart([(1, 3.0), (2, 2.0), (3, 1.0)], width=9, height=3, title="loss")
    lines = chart.splitlines()
    assert lines[0] == "loss"
    assert lines[1] == "3 |*        " and lines[2] == "  |    *    " and lines[3] == "1 |        *"
    assert "epoch 1" in lines[-1] and "epoch 3" in lines[-1]
    assert views.text_chart([], title="top-1") == "top-1: no data yet"


def test_timeline_and_restarts() -> None:
    job = {
        "metadata": {"creationTimestamp": f"{T}00Z", "generation": 1},
        "status": {
            "restarts": 1,
            "restartTime": f"{T}30Z",
            "conditions": [
                {
                    "type": "Running",
                    "status": "True",
                    "reason": "AllRanksRunning",
                    "message": "ok",
                    "lastTransitionTime": f"{T}40Z",
                },
                {"type": "Failed", "status": "False", "lastTransitionTime": f"{T}41Z"},
            ],
        },
    }
    events = [
        {
            "reason": "GangRestart",
            "type": "Warning",
            "message": "rank 1 exited 75",
            "lastTimestamp": f"{T}30Z",
        },
        {"reason": "JobCreated", "type": "Normal", "message": "created", "lastTimestamp": f"{T}01Z"},
    ]
    rows = views.timeline(job, events)
    assert [r[1] for r in rows] == ["Applied", "Event JobCreated", "Event GangRestart", "Running"]
    why = views.restarts(job, events)
    assert why[0] == f"1 whole-gang restart(s), last at {T}30Z" and "rank 1 exited 75" in why[1]
    assert views.restarts({"status": {}}, []) == []


# ---- the commands, against a fake kubectl ------------------------------------------------------------------------

FAKE = r"""#!PYTHON
import json, os, sys
d = os.environ["FAKE_KUBE"]
args = sys.argv[1:]
with open(os.path.join(d, "calls.txt"), "a") as f:
    f.write(" ".join(args) + "\n")
while args and args[0] in ("--kubeconfig", "--context", "--namespace"):
    args = args[2:]
def out(name):
    sys.stdout.write(open(os.path.join(d, name)).read())
if args[:2] == ["get", "zootrainingjobs.modelzoo.io"]:
    out("job.json")
elif args[:2] == ["get", "pods"]:
    out("pods.json")
elif args[:2] == ["get", "events"]:
    out("events.json")
elif args[:2] == ["get", "configmap"]:
    out("ranks.json")
elif args[0] == "logs":
    path = os.path.join(d, args[1] + ".log")
    if not os.path.exists(path):
        sys.stderr.write("Error from server (BadRequest): container is waiting\n"); sys.exit(1)
    text = open(path).read()
    if "--timestamps" not in args:
        text = "\n".join(l.split(" ", 1)[1] for l in text.splitlines())
    sys.stdout.write(text)
else:
    sys.stderr.write("unexpected: %r\n" % args); sys.exit(1)
"""

HISTORY = [
    {"epoch": e, "loss": 3.0 / e, "top1": 0.2 + 0.1 * e, "top5": 0.5 + 0.05 * e, "seconds": 5.0}
    for e in range(1, 6)
]


def pod(rank: int) -> dict[str, Any]:
    return {
        "metadata": {
            "name": f"demo-worker-{rank}",
            "uid": f"u{rank}",
            "labels": {"modelzoo.io/rank": str(rank), "modelzoo.io/role": "worker"},
        },
        "status": {"phase": "Running", "containerStatuses": [{"state": {"running": {}}}]},
    }


@pytest.fixture()
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    script = tmp_path / "kubectl"
    script.write_text(FAKE.replace("#!PYTHON", "#!" + sys.executable))
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("KUBECTL", str(script))
    monkeypatch.setenv("FAKE_KUBE", str(tmp_path))
    job = {
        "metadata": {"name": "demo", "namespace": "ml", "creationTimestamp": f"{T}00Z", "generation": 1},
        "spec": {"model": "resnet50", "replicas": 3, "device": {"type": "CPU"}},
        "status": {
            "phase": "Succeeded",
            "reason": "JobSucceeded",
            "message": "all ranks succeeded",
            "history": HISTORY,
            "result": {"top1": 0.7, "top5": 0.75, "metrics": {"loss": 0.6}},
            "progress": {"display": "5/5", "stage": "Done"},
            "rankTable": {"configMap": "demo-ranktable", "status": "completed", "version": "1.0"},
            "rankSummaries": [
                {
                    "rank": 0,
                    "pod": "demo-worker-0",
                    "phase": "Succeeded",
                    "exitCode": 0,
                    "lastLines": ["result: {'top_1_accuracy': 0.7}"],
                },
                {
                    "rank": 2,
                    "pod": "demo-worker-2",
                    "phase": "Succeeded",
                    "exitCode": 0,
                    "lastLines": ["rank 2 kept line"],
                },
            ],
        },
    }
    (tmp_path / "job.json").write_text(json.dumps(job))
    (tmp_path / "pods.json").write_text(json.dumps({"items": [pod(1), pod(0)]}))
    (tmp_path / "events.json").write_text(
        json.dumps(
            {
                "items": [
                    {
                        "reason": "JobSucceeded",
                        "type": "Normal",
                        "message": "done",
                        "lastTimestamp": f"{T}50Z",
                    }
                ]
            }
        )
    )
    (tmp_path / "ranks.json").write_text(
        json.dumps({"demo-worker-0": {"rank_id": "0", "server_id": "10.0.0.1", "device_id": "0"}})
    )
    (tmp_path / "demo-worker-0.log").write_text(
        f"{T}40.0Z epoch: 1 step: 1, loss is 5.7\n"
        f"{T}42.0Z " + json.dumps({"event": "step", "ts": 42, "rank": 0}) + f"\n{T}44.0Z rank 0 last\n"
    )
    (tmp_path / "demo-worker-1.log").write_text(f"{T}41.0Z rank 1 first\n{T}43.0Z rank 1 second\n")
    return tmp_path


def test_logs_merges_live_ranks_and_kept_lines(fake: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert ctl.main(["logs", "demo", "-n", "ml", "--context", "lab", "--color", "never"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [
        "[rank 2]* rank 2 kept line",
        "[rank 0]  epoch: 1 step: 1, loss is 5.7",
        "[rank 1]  rank 1 first",
        "[rank 1]  rank 1 second",
        "[rank 0]  rank 0 last",
    ]
    calls = (fake / "calls.txt").read_text()
    assert "--context lab --namespace ml get zootrainingjobs.modelzoo.io demo -o json" in calls
    assert ctl.main(["logs", "demo", "--rank", "1", "--color", "never"]) == 0
    assert capsys.readouterr().out.splitlines() == ["[rank 1]  rank 1 first", "[rank 1]  rank 1 second"]


def test_logs_of_a_gone_server_pod_go_to_the_ranks_they_name(
    fake: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A server pod (issue 21) keeps lines of all its ranks; once it is gone, --rank picks that rank's lines.
    job = json.loads((fake / "job.json").read_text())
    job["spec"]["device"] = {"type": "Ascend", "perNode": 2, "podsPer": "server"}
    job["status"]["rankSummaries"] = [
        {
            "rank": 2,
            "ranks": 2,
            "pod": "demo-worker-9",
            "phase": "Failed",
            "exitCode": 1,
            "lastLines": ["[rank 2] two says", "[rank 3] three says", "launcher line"],
        }
    ]
    (fake / "job.json").write_text(json.dumps(job))
    (fake / "pods.json").write_text(json.dumps({"items": []}))
    assert ctl.main(["logs", "demo", "--rank", "3", "--color", "never"]) == 0
    assert capsys.readouterr().out.splitlines() == ["[rank 3]* three says"]
    assert ctl.main(["logs", "demo", "--color", "never"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "[rank 2]* two says",
        "[rank 2]* launcher line",
        "[rank 3]* three says",
    ]
    assert ctl.main(["describe", "demo"]) == 0
    assert "2-3" in capsys.readouterr().out


def test_plot_writes_a_png_and_a_text_chart(
    fake: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from PIL import Image

    target = tmp_path / "out" / "demo.png"
    assert ctl.main(["plot", "demo", "-o", str(target)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("loss\n  3 |*") and "top-1" in out and f"wrote {target}" in out
    with Image.open(target) as img:
        assert img.format == "PNG" and img.size == (1000, 400)
        pixels = img.convert("L")
        histogram = pixels.histogram()
        non_white = sum(histogram[:250])
        assert non_white > 0.01 * img.size[0] * img.size[1]  # curves, axes and text were drawn
        # The loss curve is red in the left panel: some strongly red pixels exist there.
        rgb = img.convert("RGB").crop((0, 0, 500, 400))
        red = rgb.split()
        strong = [
            r > 150 and g < 100 and b < 100
            for r, g, b in zip(red[0].tobytes(), red[1].tobytes(), red[2].tobytes(), strict=True)
        ]
        assert any(strong)


def test_plot_without_history_fails_clearly(fake: Path, capsys: pytest.CaptureFixture[str]) -> None:
    job = json.loads((fake / "job.json").read_text())
    job["status"]["history"] = []
    (fake / "job.json").write_text(json.dumps(job))
    assert ctl.main(["plot", "demo"]) == 1
    assert "no epoch has finished yet" in capsys.readouterr().err


def test_describe_summarises_the_job(fake: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert ctl.main(["describe", "demo"]) == 0
    out = capsys.readouterr().out
    for text in (
        "ml/demo",
        "Succeeded",
        "Timeline",
        "Event JobSucceeded",
        "Restarts: none",
        "demo-worker-2",
        "rank 2 kept line",
        "top-1 0.7",
        "loss: 0.6",
        "Rank table (completed",
        "10.0.0.1",
    ):
        assert text in out, text


def test_watch_plain_prints_until_finished(fake: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert ctl.main(["watch", "demo", "--plain", "--interval", "0.01"]) == 0
    out = capsys.readouterr().out
    assert "phase=Succeeded stage=Done epoch=5/5" in out and "top1=0.7" in out
    assert "rank 0: Running" in out and "rank 1: Running" in out


def test_kubectl_missing_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("KUBECTL", "")
    monkeypatch.setenv("PATH", os.devnull)
    assert ctl.main(["describe", "demo"]) == 1
    assert capsys.readouterr().err.startswith("kubectl ztj: kubectl not found")


def test_watch_screen_fits_an_80_column_terminal() -> None:
    from rich.console import Console

    job = {
        "metadata": {"namespace": "ml", "name": "demo"},
        "spec": {"model": "resnet50", "replicas": 2, "device": {"type": "CPU"}},
        "status": {"phase": "Running", "progress": {"stage": "Training", "display": "2/4"}},
    }
    rows = [
        views.rank_row(
            r,
            {"phase": "Running"},
            {
                "epoch": 2,
                "epochs": 4,
                "step": 10,
                "stepsPerEpoch": 22,
                "loss": 1.2345,
                "imagesPerSecond": 41.5,
                "globalBatchSize": 64,
            },
        )
        for r in (0, 1)
    ]
    events = [{"lastTimestamp": f"{T}46Z", "reason": "AllRanksRunning", "type": "Normal", "message": "all 3"}]
    console = Console(width=80, record=True, file=open(os.devnull, "w"))  # noqa: SIM115
    console.print(ctl._render(job, rows, events))
    text = console.export_text()
    assert "…" not in text, text
    header = next(ln for ln in text.splitlines() if ln.startswith("RANK"))
    assert header.split() == ["RANK", "PHASE", "PROGRESS", "EPOCH", "STEP", "LOSS", "IMAGES/S", "ETA"]
    assert [ln.split()[0] for ln in text.splitlines() if ln.startswith(("0 ", "1 "))] == ["0", "1"]
    assert "2/4" in text and "10/22" in text and "1.234" in text and "AllRanksRunning" in text


def test_logs_follow_prints_every_rank_and_ends_with_the_job(
    fake: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The job has Succeeded: once every `kubectl logs -f` has ended and its lines are out, follow mode returns.
    assert ctl.main(["logs", "demo", "-f", "--color", "never"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "[rank 2]* rank 2 kept line"
    assert sorted(out[1:]) == sorted(
        [
            "[rank 0]  epoch: 1 step: 1, loss is 5.7",
            "[rank 0]  rank 0 last",
            "[rank 1]  rank 1 first",
            "[rank 1]  rank 1 second",
        ]
    )
    assert "logs demo-worker-0 -f -c worker --timestamps" in (fake / "calls.txt").read_text()


def test_missing_console_extra_is_one_line(
    fake: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "rich.console", None)  # as if rich were not installed
    assert ctl.main(["describe", "demo"]) == 1
    assert "install the console extra" in capsys.readouterr().err


def test_plot_by_step(fake: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert ctl.main(["plot", "demo", "--by", "step", "-o", "-"]) == 1  # steps per epoch unknown
    assert "steps per epoch not known" in capsys.readouterr().err
    job = json.loads((fake / "job.json").read_text())
    job["status"]["progress"]["stepsPerEpoch"] = 22
    (fake / "job.json").write_text(json.dumps(job))
    assert ctl.main(["plot", "demo", "--by", "step", "-o", str(tmp_path / "s.png")]) == 0
    chart = capsys.readouterr().out.split("top-1")[0].splitlines()
    assert chart[-1].split() == ["step", "22", "step", "110"]  # epochs 1..5 end at steps 22..110
    assert (tmp_path / "s.png").stat().st_size > 10_000
    assert views.series([{"epoch": 2, "loss": 1.0}, {"epoch": 3, "loss": float("nan")}], "loss", 10) == [
        (20, 1.0)
    ]
