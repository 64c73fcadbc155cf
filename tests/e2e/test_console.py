"""The researcher's console on a real two-rank job: `kubectl ztj watch` in a real terminal (tmux) captured
mid-training, `logs` merged across ranks, `plot` from status.history, `describe`, and the operator's /metrics
scraped while the job runs and after it succeeded.

Set ZOO_CONSOLE_CAPTURE_DIR to keep the captured screen and the plot (the README's pictures come from there).
"""

from __future__ import annotations

import itertools
import os
import re
import secrets
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import operator_pods
from e2e_helpers import E2E, REPO, demo_job, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
JOB = "console"


def tool_env(e2e: E2E) -> dict[str, str]:
    """What a user's shell has: KUBECONFIG, and kubectl plus the installed `kubectl-ztj` on PATH."""
    env = dict(e2e.cluster.env)
    env["PATH"] = os.pathsep.join(
        [str(Path(sys.executable).parent), str(REPO / ".cache" / "bin"), env["PATH"]]
    )
    env.pop("NO_COLOR", None)
    return env


def ztj(e2e: E2E, *args: str) -> subprocess.CompletedProcess[str]:
    """`kubectl ztj ...` through kubectl's plugin mechanism."""
    return subprocess.run(
        ["kubectl", "ztj", *args, "-n", e2e.namespace],
        capture_output=True,
        text=True,
        env=tool_env(e2e),
        timeout=120,
        check=False,
    )


def scrape(e2e: E2E) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """The operator's /metrics, sample -> value ({} while it does not answer)."""
    from prometheus_client.parser import text_string_to_metric_families

    service = e2e.cluster.kubectl(
        "get",
        "service",
        f"{e2e.release}-metrics",
        "-n",
        e2e.release_namespace,
        "-o",
        "jsonpath={.spec.ports[0].port}",
    ).stdout
    ip = operator_pods(e2e)[0]["status"]["podIP"]
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://{ip}:{service}/metrics", timeout=5) as resp:
            text = resp.read().decode()
    except OSError:
        return {}
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def sample(
    metrics: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str
) -> float | None:
    """The value of the one sample of `name` whose labels include `labels`."""
    for (metric, have), value in metrics.items():
        if metric == name and set(labels.items()) <= set(have):
            return value
    return None


@pytest.fixture()
def tmux(tmp_path: Path) -> Any:
    """A private tmux server (its own socket), killed afterwards."""
    binary = shutil.which("tmux")
    assert binary, "tmux is needed for the terminal test (apt-get install tmux)"
    socket = f"zoo-console-{secrets.token_hex(3)}"

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [binary, "-L", socket, *args], capture_output=True, text=True, timeout=30, check=False
        )

    yield run
    run("kill-server")


def test_console_follows_a_two_rank_job(e2e: E2E, tmux: Any, tmp_path: Path) -> None:
    keep = Path(os.environ["ZOO_CONSOLE_CAPTURE_DIR"]) if os.environ.get("ZOO_CONSOLE_CAPTURE_DIR") else None
    e2e.apply(demo_job(JOB, e2e.data["digits"]))
    wait_for(
        "the job to start training",
        lambda: (e2e.status(JOB).get("progress") or {}).get("stage") == "Training",
        timeout=600,
        interval=1,
    )

    # watch, in a real 150x30 terminal, redrawn in place.
    env = tool_env(e2e)
    command = (
        f"env -u COLUMNS -u LINES PATH={env['PATH']} KUBECONFIG={env['KUBECONFIG']} TERM=xterm-256color "
        f"kubectl ztj watch {JOB} -n {e2e.namespace} --interval 1; sleep 600"
    )
    assert tmux("new-session", "-d", "-s", "w", "-x", "150", "-y", "30", command).returncode == 0

    def screen() -> str:
        return tmux("capture-pane", "-p", "-t", "w").stdout

    rank_row = re.compile(r"^\s*([01])\s+Running\s.*?([1-4])/4\s+(\d+)/22\s+(\d+\.\d+)", re.MULTILINE)

    def mid_training() -> str | None:
        text = screen()
        return text if len(rank_row.findall(text)) == 2 and "Running" in text.splitlines()[0] else None

    # logs -f, started mid-training: it prints both ranks as they go and ends by itself when the job does.
    follow = subprocess.Popen(
        ["kubectl", "ztj", "logs", JOB, "-f", "--color", "never", "-n", e2e.namespace],
        stdout=open(tmp_path / "follow.txt", "w"),  # noqa: SIM115  (the child keeps it open)
        stderr=subprocess.STDOUT,
        env=tool_env(e2e),
    )
    mid = wait_for("watch to show both ranks training", mid_training, timeout=300, interval=1)
    (tmp_path / "watch.txt").write_text(mid)
    if keep:
        keep.mkdir(parents=True, exist_ok=True)
        (keep / "watch.txt").write_text(mid)
    lines = mid.splitlines()
    assert lines[0].startswith(f"{e2e.namespace}/{JOB}") and "resnet50_bam x2 CPU" in lines[0], mid
    assert "stage=Training" in lines[0] and "epoch=" in lines[0], mid
    assert re.search(r"RANK\s+PHASE\s+PROGRESS\s+EPOCH\s+STEP\s+LOSS\s+IMAGES/S\s+ETA", mid), mid
    assert "Events" in mid and "AllRanksRunning" in mid, mid
    # Redrawn in place: the header appears once on the screen, not once per refresh.
    assert mid.count("PROGRESS") == 1, mid

    # /metrics while training: this job's gauges.
    def training_metrics() -> Any:
        m = scrape(e2e)
        return (
            m
            if (
                sample(m, "zoo_job_ranks", job=JOB, state="active") == 2
                and (sample(m, "zoo_job_step", job=JOB) or 0) >= 1
            )
            else None
        )

    running = wait_for("the job's gauges on /metrics", training_metrics, timeout=60, interval=2)
    assert sample(running, "zoo_job_phase", job=JOB, phase="Running") == 1
    assert (sample(running, "zoo_job_loss", job=JOB) or 0) > 0
    assert sample(running, "zoo_operator_build_info") == 1

    status = e2e.wait_phase(JOB, {"Succeeded", "Failed"}, timeout=900)
    assert status["phase"] == "Succeeded", status.get("message")

    def ended() -> str | None:  # the job's phase on the header line (pods show Succeeded a moment earlier)
        text = screen()
        return text if " Succeeded " in text.splitlines()[0] else None

    final = wait_for("watch to show the end", ended, timeout=30)
    try:
        assert follow.wait(timeout=60) == 0
    finally:
        follow.kill()
    followed = (tmp_path / "follow.txt").read_text().splitlines()
    for rank in (0, 1):
        assert any(
            ln.startswith(f"[rank {rank}]") and "epoch: 4 step: 22, loss is" in ln for ln in followed
        ), followed[-20:]
    assert "stage=Done" in final and "epoch=4/4" in final, final

    # status.history: every epoch, with its loss and accuracy; lastLines are for people only.
    history = status["history"]
    assert [h["epoch"] for h in history] == [1, 2, 3, 4]
    assert all(h["loss"] > 0 and h["seconds"] > 0 for h in history), history
    # The operator reads a 200-line log tail every few seconds: an eval event can scroll out of it between two
    # reads (MindSpore's banners while the eval graph compiles), so only the last epoch's accuracy is certain
    # (the done event carries it too).
    assert 0 <= history[-1]["top1"] <= 1 and all(0 <= h.get("top1", 0) <= 1 for h in history), history
    lines_kept = [ln for s in status["rankSummaries"] for ln in s.get("lastLines") or []]
    assert lines_kept and not [ln for ln in lines_kept if ln.startswith('{"event"') or "] ME(" in ln]

    done = scrape(e2e)
    assert sample(done, "zoo_job_phase", job=JOB, phase="Succeeded") == 1
    assert sample(done, "zoo_job_epoch", job=JOB) == 4
    assert sample(done, "zoo_job_top1", job=JOB) == pytest.approx(status["result"]["top1"])
    assert (sample(done, "zoo_job_apply_to_running_seconds_count") or 0) >= 1
    assert (sample(done, "zoo_job_apply_to_first_step_seconds_count") or 0) >= 1
    assert (sample(done, "zoo_job_duration_seconds_count", outcome="Succeeded") or 0) >= 1
    assert (sample(done, "zoo_jobs_succeeded_total") or 0) >= 1

    # plot: a PNG and a text chart, from status alone.
    png = tmp_path / "console.png"
    out = ztj(e2e, "plot", JOB, "-o", str(png))
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("loss") and "top-1" in out.stdout and "epoch 4" in out.stdout
    from PIL import Image

    with Image.open(png) as img:
        assert img.format == "PNG" and img.size == (1000, 400)
        assert sum(img.convert("L").histogram()[:250]) > 0.01 * 1000 * 400
    if keep:
        shutil.copy(png, keep / "console.png")
        (keep / "plot.txt").write_text(out.stdout)

    # logs: both ranks, merged by time, each line prefixed with its rank.
    out = ztj(e2e, "logs", JOB, "--color", "never")
    assert out.returncode == 0, out.stderr
    merged = out.stdout.splitlines()
    ranks = [ln[:9] for ln in merged if ln.startswith("[rank ")]
    assert {"[rank 0] ", "[rank 1] "} <= set(ranks)
    for rank in (0, 1):
        assert any(ln.startswith(f"[rank {rank}]") and "epoch: 4 step: 22, loss is" in ln for ln in merged)
    # Interleaved, not one rank after the other.
    switches = sum(1 for a, b in itertools.pairwise(ranks) if a != b)
    assert switches >= 4, merged[:40]
    assert not [ln for ln in merged if '{"event"' in ln]
    one = ztj(e2e, "logs", JOB, "--rank", "1", "--color", "never").stdout.splitlines()
    assert one and all(ln.startswith("[rank 1]") for ln in one)

    # describe: a readable summary.
    out = ztj(e2e, "describe", JOB)
    assert out.returncode == 0, out.stderr
    for text in ("Timeline", "Running", "Succeeded", "Restarts: none", f"{JOB}-worker-1", "Result: top-1"):
        assert text in out.stdout, out.stdout
