"""`kubectl ztj`: follow ZooTrainingJobs from the terminal (a kubectl plugin; kubectl runs `kubectl-ztj`).

  kubectl ztj logs JOB [-f] [--rank N]   all ranks merged in time order, with a rank prefix
  kubectl ztj watch JOB                  live per-rank progress, phase and events
  kubectl ztj plot JOB [-o FILE.png]     loss and top-1 against epoch (PNG and a text chart)
  kubectl ztj describe JOB               timeline, restarts, ranks, result, rank table
  kubectl ztj sweep -f JOB.yaml --name S --grid lr=0.1,0.01 | --random lr=1e-4:1e-1:log --trials 8
  kubectl ztj compare S [-o S.png]       the trials of sweep S: table, best first, and their curves

Talks to the cluster through the kubectl binary (like every kubectl plugin, so --kubeconfig, --context and
-n/--namespace mean exactly what they mean to kubectl; see
https://kubernetes.io/docs/tasks/extend-kubectl/kubectl-plugins/). Exit codes: 0 ok, 1 kubectl failed or the
job is not there, 2 bad arguments.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from zoo_operator import conditions as c
from zoo_operator import schema
from zoo_operator.ctl import views
from zoo_operator.spec import display_model  # spec.model, or custom:<script> for spec.command (issue 26)
from zoo_workloads import contract

FINISHED = c.FINISHED_PHASES
WATCH_RANKS = 32  # watch reads the log tails of at most this many ranks per redraw


class CtlError(Exception):
    """A failure to report in one line (exit 1)."""


class Kubectl:
    """Runs the kubectl binary with the user's --kubeconfig/--context/--namespace."""

    def __init__(self, kubeconfig: str | None, context: str | None, namespace: str | None) -> None:
        binary = os.environ.get("KUBECTL") or shutil.which("kubectl")
        if not binary:
            raise CtlError("kubectl not found on PATH (set KUBECTL to its path)")
        self.base = [binary]
        if kubeconfig:
            self.base += ["--kubeconfig", kubeconfig]
        if context:
            self.base += ["--context", context]
        if namespace:
            self.base += ["--namespace", namespace]

    def run(self, *args: str) -> str:
        proc = subprocess.run([*self.base, *args], capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise CtlError(proc.stderr.strip() or f"kubectl {' '.join(args)} failed")
        return proc.stdout

    def json(self, *args: str) -> Any:
        return json.loads(self.run(*args, "-o", "json"))

    def maybe(self, *args: str) -> str | None:
        """Output, or None when kubectl fails (a pod without logs yet, a ConfigMap not made yet)."""
        try:
            return self.run(*args)
        except CtlError:
            return None

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [*self.base, *args], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, bufsize=1
        )


def _job(k: Kubectl, name: str) -> dict[str, Any]:
    return k.json("get", f"{schema.PLURAL}.{schema.GROUP}", name)


def _workers(k: Kubectl, name: str) -> list[dict[str, Any]]:
    """The job's worker pods (not being deleted), by rank."""
    items = k.json("get", "pods", "-l", f"{c.LABEL_JOB}={name},{c.LABEL_ROLE}={c.ROLE_WORKER}")["items"]
    live = [p for p in items if not p["metadata"].get("deletionTimestamp")]
    return sorted(live, key=_rank_of)


def _rank_of(pod: dict[str, Any]) -> int:
    try:
        return int(pod["metadata"]["labels"].get(c.LABEL_RANK, -1))
    except (TypeError, ValueError):
        return -1


def _events(k: Kubectl, name: str) -> list[dict[str, Any]]:
    try:
        items = k.json(
            "get",
            "events",
            "--field-selector",
            f"involvedObject.name={name},involvedObject.kind={schema.KIND}",
        )["items"]
    except CtlError:
        return []
    return sorted(items, key=lambda e: str(e.get("lastTimestamp") or e.get("eventTime") or ""))


def _colour(stream: Any, mode: str) -> bool:
    if mode != "auto":
        return mode == "always"
    return bool(getattr(stream, "isatty", lambda: False)()) and not os.environ.get("NO_COLOR")


# ---- logs -------------------------------------------------------------------------------------------------------


def _kept_lines(job: dict[str, Any], live_pods: set[str], rank: int | None) -> list[list[views.LogLine]]:
    """Status lines of ranks whose pods are gone."""
    out = []
    for summary in (job.get("status") or {}).get("rankSummaries") or []:
        r = int(summary.get("rank", -1))
        if summary.get("pod") in live_pods or r < 0:
            continue
        # A server pod's kept lines name their rank (views.server_line); a device pod's are all its own.
        lines = [views.LogLine(None, *views.server_line(r, line)) for line in summary.get("lastLines") or []]
        out.append([ln for ln in lines if rank is None or ln.rank == rank])
    return out


def cmd_logs(k: Kubectl, args: argparse.Namespace) -> int:
    job = _job(k, args.job)
    # Server mode (issue 21): a pod holds several ranks, told apart line by line (views.server_line).
    server = _server_mode(job)
    pods = [p for p in _workers(k, args.job) if server or args.rank is None or _rank_of(p) == args.rank]
    width = len(
        str(max([_rank_of(p) for p in pods] + [0, int((job.get("spec") or {}).get("replicas") or 1) - 1]))
    )
    colour = _colour(sys.stdout, args.color)
    live = {p["metadata"]["name"] for p in pods}

    def show(lines: Sequence[views.LogLine]) -> None:
        for line in lines:
            if views.keep_line(line.text, args.events):
                sys.stdout.write(views.format_line(line, width, colour) + "\n")
        sys.stdout.flush()

    show(views.merge(_kept_lines(job, live, args.rank)))
    tail = ["--tail", str(args.tail)] if args.tail is not None else []
    if not args.follow:
        streams = []
        for pod in pods:
            text = k.maybe("logs", pod["metadata"]["name"], "-c", "worker", "--timestamps", *tail)
            lines = views.rank_lines(_rank_of(pod), text or "", server)
            streams.append([ln for ln in lines if args.rank is None or ln.rank == args.rank])
        show(views.merge(streams))
        return 0
    return _follow(k, args, tail, show, server)


def _server_mode(job: dict[str, Any]) -> bool:
    """Whether the job runs one pod per server (spec.device.podsPer server)."""
    device = (job.get("spec") or {}).get("device") or {}
    return device.get("podsPer") == contract.PODS_PER_SERVER


def _follow(k: Kubectl, args: argparse.Namespace, tail: list[str], show: Any, server: bool = False) -> int:
    """One `kubectl logs -f` per pod (new pods of a restarted gang are picked up); lines are printed in time order
    within short windows, so the backlog comes out merged and new lines come out within ~0.3 s."""
    lines: queue.Queue[views.LogLine] = queue.Queue()
    followed: dict[str, subprocess.Popen[str]] = {}
    readers: list[threading.Thread] = []

    def reader(proc: subprocess.Popen[str], rank: int) -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            ts, text = views.parse_timestamped(raw.rstrip("\n"))
            line_rank, text = views.server_line(rank, text) if server else (rank, text)
            if args.rank is None or line_rank == args.rank:
                lines.put(views.LogLine(ts, line_rank, text))

    last_list = 0.0
    try:
        while True:
            now = time.monotonic()
            if now - last_list >= 3.0:
                last_list = now
                job = _job(k, args.job)
                for pod in _workers(k, args.job):
                    uid, rank = pod["metadata"]["uid"], _rank_of(pod)
                    running = any(
                        "running" in (cs.get("state") or {}) or "terminated" in (cs.get("state") or {})
                        for cs in (pod.get("status") or {}).get("containerStatuses") or []
                    )
                    if uid in followed or not running or (not server and args.rank not in (None, rank)):
                        continue
                    proc = k.popen(
                        "logs", pod["metadata"]["name"], "-f", "-c", "worker", "--timestamps", *tail
                    )
                    followed[uid] = proc
                    readers.append(threading.Thread(target=reader, args=(proc, rank), daemon=True))
                    readers[-1].start()
                done = (job.get("status") or {}).get("phase") in FINISHED
                # A reader ends after its last line is queued, so this loses nothing.
                if done and not any(t.is_alive() for t in readers) and lines.empty():
                    return 0
            batch = []
            deadline = time.monotonic() + 0.3
            while time.monotonic() < deadline:
                try:
                    batch.append(lines.get(timeout=max(0.01, deadline - time.monotonic())))
                except queue.Empty:
                    break
            show(sorted(batch, key=lambda ln: (ln.ts or 0.0, ln.rank)))
    except KeyboardInterrupt:
        return 0
    finally:
        for proc in followed.values():
            if proc.poll() is None:
                proc.terminate()


# ---- watch ------------------------------------------------------------------------------------------------------


def _snapshot(k: Kubectl, name: str) -> tuple[dict[str, Any], list[dict[str, str]], list[dict[str, Any]]]:
    job = _job(k, name)
    st = job.get("status") or {}
    summaries = {s.get("pod"): s for s in st.get("rankSummaries") or []}
    rows = []
    server = _server_mode(job)
    per_pod = int(((job.get("spec") or {}).get("device") or {}).get("perNode") or 1) if server else 1
    for pod in _workers(k, name)[:WATCH_RANKS]:
        pod_name = pod["metadata"]["name"]
        text = k.maybe("logs", pod_name, "-c", "worker", "--tail", str(100 * per_pod)) or ""
        info = {
            "phase": (pod.get("status") or {}).get("phase"),
            "reason": (summaries.get(pod_name) or {}).get("reason"),
        }
        if server:  # issue 21: one row per rank of the server pod
            for rank, progress in views.server_progress(text).items():
                rows.append(views.rank_row(rank, info, progress, st.get("history") or []))
            continue
        rows.append(views.rank_row(_rank_of(pod), info, views.rank_progress(text), st.get("history") or []))
    return job, rows[:WATCH_RANKS], _events(k, name)[-6:]


def _render(job: dict[str, Any], rows: list[dict[str, str]], events: list[dict[str, Any]]) -> Any:
    from rich.console import Group
    from rich.progress_bar import ProgressBar
    from rich.table import Table
    from rich.text import Text

    st = job.get("status") or {}
    meta, spec = job.get("metadata") or {}, job.get("spec") or {}
    head = Text()
    head.append(f"{meta.get('namespace')}/{meta.get('name')}", style="bold")
    head.append(
        f"  {display_model(spec)} x{spec.get('replicas', 1)} {(spec.get('device') or {}).get('type', '')}  "
    )
    phase = str(st.get("phase") or "Pending")
    head.append(
        phase,
        style={
            "Running": "green",
            "Succeeded": "bold green",
            "Failed": "bold red",
            "Restarting": "yellow",
        }.get(phase, "cyan"),
    )
    head.append(
        "  " + views.plain_status_line(job).split(" ", 1)[-1] if " " in views.plain_status_line(job) else ""
    )
    table = Table(box=None, pad_edge=False)
    for col in ("RANK", "PHASE", "PROGRESS", "EPOCH", "STEP", "LOSS", "IMAGES/S", "ETA"):
        table.add_column(col, no_wrap=True, min_width=len(col))
    for row in rows:
        table.add_row(
            row["rank"],
            row["phase"],
            ProgressBar(total=1.0, completed=float(row["fraction"]), width=24),
            row["epoch"],
            row["step"],
            row["loss"],
            row["ips"],
            row["eta"],
        )
    ev_text = Text()
    for ev in events:
        ev_text.append(f"{ev.get('lastTimestamp') or ''} ", style="dim")
        ev_text.append(f"{ev.get('reason')}", style="yellow" if ev.get("type") == "Warning" else "blue")
        ev_text.append(f": {ev.get('message')}\n")
    return Group(head, Text(""), table, Text(""), Text("Events", style="bold"), ev_text)


def cmd_watch(k: Kubectl, args: argparse.Namespace) -> int:
    tty = sys.stdout.isatty() and not args.plain
    if not tty:
        last: list[str] = []
        while True:
            job, rows, _ = _snapshot(k, args.job)
            lines = [views.plain_status_line(job)] + [
                f"  rank {r['rank']}: {r['phase']} epoch {r['epoch']} step {r['step']} loss {r['loss']} "
                f"images/s {r['ips']} eta {r['eta']}"
                for r in rows
            ]
            if lines != last:
                stamp = time.strftime("%H:%M:%S")
                print("\n".join(f"{stamp} {ln}" for ln in lines), flush=True)
                last = lines
            if (job.get("status") or {}).get("phase") in FINISHED:
                return 0
            time.sleep(args.interval)
    from rich.console import Console
    from rich.live import Live

    console = Console()
    try:
        with Live(console=console, auto_refresh=False, screen=False) as live:
            while True:
                job, rows, events = _snapshot(k, args.job)
                live.update(_render(job, rows, events), refresh=True)
                if (job.get("status") or {}).get("phase") in FINISHED:
                    return 0
                time.sleep(args.interval)
    except KeyboardInterrupt:
        return 0


# ---- plot -------------------------------------------------------------------------------------------------------


def write_png(
    path: Path, title: str, history: list[dict[str, Any]], steps_per_epoch: int = 1, unit: str = "epoch"
) -> None:
    """Loss and top-1/top-5 against epoch, two panels, as a PNG (matplotlib's Agg backend: no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4), dpi=100)
    loss = views.series(history, "loss", steps_per_epoch)
    left.plot([p[0] for p in loss], [p[1] for p in loss], marker="o", markersize=3, color="tab:red")
    left.set(title="training loss", xlabel=unit, ylabel="loss")
    for key, colour in (("top1", "tab:blue"), ("top5", "tab:green")):
        points = views.series(history, key, steps_per_epoch)
        if points:
            right.plot(
                [p[0] for p in points],
                [p[1] for p in points],
                marker="o",
                markersize=3,
                color=colour,
                label=key.replace("top", "top-"),
            )
    right.set(title="evaluation accuracy", xlabel=unit, ylabel="accuracy")
    if right.get_legend_handles_labels()[0]:
        right.legend()
    for ax in (left, right):
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole numbers
    fig.suptitle(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def cmd_plot(k: Kubectl, args: argparse.Namespace) -> int:
    job = _job(k, args.job)
    st = job.get("status") or {}
    history = st.get("history") or []
    if not history:
        raise CtlError(f"{args.job}: no epoch has finished yet (status.history is empty)")
    spec = job.get("spec") or {}
    title = f"{args.job} ({display_model(spec)}, {spec.get('replicas', 1)} ranks)"
    spe = (st.get("progress") or {}).get("stepsPerEpoch") if args.by == "step" else 1
    if not isinstance(spe, int) or spe < 1:
        raise CtlError(f"{args.job}: steps per epoch not known yet; plot by epoch")
    unit = args.by
    print(views.text_chart(views.series(history, "loss", spe), title="loss", unit=unit))
    print(views.text_chart(views.series(history, "top1", spe), title="top-1", unit=unit))
    if args.output != "-":
        path = Path(args.output or f"{args.job}.png")
        write_png(path, title, history, spe, unit)
        print(f"wrote {path}")
    return 0


# ---- describe ---------------------------------------------------------------------------------------------------


def cmd_describe(k: Kubectl, args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    job = _job(k, args.job)
    events = _events(k, args.job)
    st, spec, meta = job.get("status") or {}, job.get("spec") or {}, job.get("metadata") or {}
    # Off a terminal (a pipe, a file) rich would wrap at 80 columns; a report reads better unwrapped.
    console = Console(highlight=False, width=None if sys.stdout.isatty() else 160)
    console.print(
        f"[bold]{meta.get('namespace')}/{meta.get('name')}[/]  model {display_model(spec)}, "
        f"{spec.get('replicas', 1)} x {(spec.get('device') or {}).get('type')}"
    )
    console.print(
        f"Phase: [bold]{st.get('phase', 'Pending')}[/] ({st.get('reason', '')}) {st.get('message', '')}",
        markup=True,
    )
    prog = st.get("progress") or {}
    if prog:
        console.print(
            f"Progress: stage {prog.get('stage', '-')}, epoch {prog.get('display', '-')}, step "
            f"{prog.get('stepDisplay', '-')}, loss {prog.get('loss', '-')}, eta {prog.get('eta', '-')}"
        )

    timeline = Table(title="Timeline", title_justify="left", box=None)
    for col in ("TIME", "WHAT", "DETAIL"):
        timeline.add_column(col)
    for row in views.timeline(job, events):
        timeline.add_row(*row)
    console.print(timeline)

    why = views.restarts(job, events)
    console.print("[bold]Restarts:[/] " + ("none" if not why else why[0]))
    for line in why[1:]:
        console.print("  " + line)

    ranks = Table(title="Ranks", title_justify="left", box=None)
    for col in ("RANK", "POD", "NODE", "PHASE", "REASON", "EXIT"):
        ranks.add_column(col, no_wrap=True)
    ranks.add_column("LAST LINE", no_wrap=True, overflow="ellipsis", max_width=70)
    for s in st.get("rankSummaries") or []:
        lines = s.get("lastLines") or []
        first, held = int(s.get("rank", -1)), int(s.get("ranks") or 1)
        ranks.add_row(
            f"{first}-{first + held - 1}" if held > 1 else str(first),
            str(s.get("pod")),
            str(s.get("node", "")),
            str(s.get("phase", "")),
            str(s.get("reason", "")),
            str(s.get("exitCode", "")),
            lines[-1] if lines else "",
        )
    console.print(ranks)

    result = st.get("result") or {}
    if result:
        console.print(
            f"[bold]Result:[/] top-1 {result.get('top1', '-')}, top-5 {result.get('top5', '-')}, "
            f"checkpoint {result.get('checkpoint', '-')}"
        )
        for key, value in sorted((result.get("metrics") or {}).items()):
            console.print(f"  {key}: {value}")
    table = st.get("rankTable") or {}
    if table.get("configMap"):
        text = k.maybe("get", "configmap", table["configMap"], "-o", "jsonpath={.data.ranks\\.json}")
        rows = views.rank_table_rows(json.loads(text)) if text else []
        rt = Table(
            title=f"Rank table ({table.get('status')}, version {table.get('version')})",
            title_justify="left",
            box=None,
        )
        for col in ("RANK", "POD", "SERVER", "DEVICE"):
            rt.add_column(col)
        for row in rows:
            rt.add_row(*row)
        console.print(rt)
    return 0


# ---- sweep and compare (issue 26; docs/sweeps.md) ----------------------------------------------------------------


def _namespace(k: Kubectl, args: argparse.Namespace) -> str:
    """-n, else the current context's namespace, else default (what kubectl itself would use)."""
    ns = getattr(args, "namespace", None) or k.maybe(
        "config", "view", "--minify", "-o", "jsonpath={..namespace}"
    )
    return (ns or "").strip() or "default"


def cmd_sweep(k: Kubectl, args: argparse.Namespace) -> int:
    import yaml

    from zoo_operator.client import runner, sweep
    from zoo_operator.client.api import ClientError, ZooClient
    from zoo_operator.spec import InvalidSpec

    try:
        template = (
            yaml.safe_load(Path(args.file).read_text()) if args.file != "-" else yaml.safe_load(sys.stdin)
        )
        if args.grid and args.random:
            raise sweep.SweepError("give --grid or --random, not both")
        if args.grid:
            points = sweep.grid(dict(sweep.parse_grid_flag(g) for g in args.grid))
        elif args.random:
            points = sweep.random_points(
                dict(sweep.parse_random_flag(r) for r in args.random), args.trials, args.seed
            )
        else:
            raise sweep.SweepError("give the space: --grid KEY=V1,V2 or --random KEY=MIN:MAX[:log]")
        stop = sweep.StopRule(args.metric, args.stop_after) if args.stop_after else None
        plan = runner.Sweep(args.name, template, points, parallel=args.parallel, stop=stop)
        bodies = plan.bodies()
        if args.dry_run:
            for body in bodies:
                print(body["metadata"]["name"], body["metadata"]["annotations"][sweep.ANNOTATION_PARAMS])
            return 0
        zc = ZooClient(
            _namespace(k, args),
            kubeconfig=getattr(args, "kubeconfig", None),
            context=getattr(args, "context", None),
        )
        print(
            f"sweep {args.name}: {len(bodies)} trials, "
            + ("queued through Kueue" if plan.queued else f"at most {args.parallel} at once")
        )
        runner.run(zc, plan, timeout=args.timeout, interval=args.interval)
    except (OSError, yaml.YAMLError, sweep.SweepError, InvalidSpec, ClientError, TimeoutError) as err:
        raise CtlError(str(err)) from None
    args.job = args.name
    args.output = args.output or f"{args.name}.png"
    return cmd_compare(k, args)


def cmd_compare(k: Kubectl, args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from zoo_operator.client import sweep

    name = args.job
    jobs = k.json("get", f"{schema.PLURAL}.{schema.GROUP}", "-l", f"{sweep.LABEL_SWEEP}={name}")["items"]
    if not jobs:
        raise CtlError(f"no ZooTrainingJobs with label {sweep.LABEL_SWEEP}={name}")
    header, rows = sweep.compare_rows(jobs, args.metric)
    table = Table(title=f"Sweep {name}: {len(rows)} trials, best {args.metric} first", title_justify="left")
    for col in header:
        table.add_column(col, justify="right" if col not in ("TRIAL", "PHASE") else "left")
    for row in rows:
        table.add_row(*row)
    Console(force_terminal=_colour(sys.stdout, args.color)).print(table)
    if args.output != "-":
        path = Path(args.output or f"{name}.png")
        curves = {j["metadata"]["name"]: (j.get("status") or {}).get("history") or [] for j in jobs}
        write_compare_png(path, f"sweep {name}", curves)
        print(f"wrote {path}")
    return 0


def write_compare_png(path: Path, title: str, curves: dict[str, list[dict[str, Any]]]) -> None:
    """Every trial's loss and top-1 against epoch, one line per trial, two panels (Agg backend)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4), dpi=100)
    for trial, history in sorted(curves.items()):
        for ax, key in ((left, "loss"), (right, "top1")):
            points = views.series(history, key)
            if points:
                ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", markersize=3, label=trial)
    left.set(title="training loss", xlabel="epoch", ylabel="loss")
    right.set(title="top-1 accuracy", xlabel="epoch", ylabel="top-1")
    for ax in (left, right):
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize="small")
    fig.suptitle(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def add_sweep_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    """`sweep` and `compare`."""
    sweep = sub.add_parser(
        "sweep", parents=[common], help="grid or random search: one labelled job per trial"
    )
    sweep.add_argument("-f", "--file", required=True, help="the job template (YAML; '-' = stdin)")
    sweep.add_argument(
        "--name", required=True, help="sweep name: label modelzoo.io/sweep, trials NAME-0, NAME-1.."
    )
    sweep.add_argument(
        "--grid",
        action="append",
        default=[],
        metavar="KEY=V1,V2",
        help="a hyperparameter and its values; every combination is a trial (repeatable)",
    )
    sweep.add_argument(
        "--random",
        action="append",
        default=[],
        metavar="KEY=MIN:MAX[:log][:int]|KEY=A,B",
        help="a hyperparameter's range or choices, sampled --trials times (repeatable)",
    )
    sweep.add_argument("--trials", type=int, default=8, help="random search: number of trials")
    sweep.add_argument("--seed", type=int, default=0, help="random search: seed (same seed, same trials)")
    sweep.add_argument(
        "--parallel",
        type=int,
        default=2,
        help="trials running at once (ignored when the template names spec.scheduling.queue)",
    )
    sweep.add_argument(
        "--stop-after",
        type=int,
        default=0,
        metavar="EPOCH",
        help="median stopping from this epoch on (0: off); see docs/sweeps.md",
    )
    sweep.add_argument("--metric", choices=["top1", "top5", "loss"], default="top1")
    sweep.add_argument("--timeout", type=float, default=6 * 3600.0, help="seconds for the whole sweep")
    sweep.add_argument("--interval", type=float, default=5.0, help="seconds between polls")
    sweep.add_argument("--dry-run", action="store_true", help="print the trials and create nothing")
    sweep.add_argument("-o", "--output", help="PNG of the trials' curves at the end (default NAME.png)")
    sweep.add_argument("--color", choices=["auto", "always", "never"], default="auto")
    sweep.set_defaults(func=cmd_sweep)
    compare = sub.add_parser("compare", parents=[common], help="a sweep's trials: table and curves (PNG)")
    compare.add_argument("job", metavar="SWEEP")
    compare.add_argument("--metric", choices=["top1", "top5", "loss"], default="top1")
    compare.add_argument("-o", "--output", help="PNG file (default SWEEP.png; '-' = table only)")
    compare.add_argument("--color", choices=["auto", "always", "never"], default="auto")
    compare.set_defaults(func=cmd_compare)


# ---- entry point -------------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The argument parser; kubectl's connection flags are accepted before or after the sub-command."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--kubeconfig", default=argparse.SUPPRESS, help="path to the kubeconfig file")
    common.add_argument("--context", default=argparse.SUPPRESS, help="kubeconfig context to use")
    common.add_argument("-n", "--namespace", default=argparse.SUPPRESS, help="namespace of the job")
    parser = argparse.ArgumentParser(
        prog="kubectl ztj",
        description=__doc__.splitlines()[0],
        parents=[common],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n".join(__doc__.splitlines()[2:9]),
    )
    sub = parser.add_subparsers(dest="command", required=True)
    logs = sub.add_parser("logs", parents=[common], help="all ranks' logs merged in time order")
    logs.add_argument("job")
    logs.add_argument("-f", "--follow", action="store_true", help="keep printing new lines")
    logs.add_argument("--rank", type=int, help="only this rank")
    logs.add_argument("--tail", type=int, help="last lines per rank")
    logs.add_argument("--events", action="store_true", help="include the JSON event lines")
    logs.add_argument("--color", choices=["auto", "always", "never"], default="auto")
    logs.set_defaults(func=cmd_logs)
    watch = sub.add_parser("watch", parents=[common], help="live per-rank progress until the job finishes")
    watch.add_argument("job")
    watch.add_argument("--interval", type=float, default=2.0, help="seconds between redraws")
    watch.add_argument("--plain", action="store_true", help="plain lines even on a terminal")
    watch.set_defaults(func=cmd_watch)
    plot = sub.add_parser("plot", parents=[common], help="loss and top-1 against epoch (from status.history)")
    plot.add_argument("job")
    plot.add_argument("-o", "--output", help="PNG file (default JOB.png; '-' = text chart only)")
    plot.add_argument(
        "--by",
        choices=["epoch", "step"],
        default="epoch",
        help="x axis: epoch, or the global step at each epoch's end",
    )
    plot.set_defaults(func=cmd_plot)
    describe = sub.add_parser(
        "describe", parents=[common], help="timeline, restarts, ranks, result, rank table"
    )
    describe.add_argument("job")
    describe.set_defaults(func=cmd_describe)
    add_sweep_parsers(sub, common)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of `kubectl-ztj`."""
    args = build_parser().parse_args(argv)
    try:
        k = Kubectl(
            getattr(args, "kubeconfig", None),
            getattr(args, "context", None),
            getattr(args, "namespace", None),
        )
        return int(args.func(k, args))
    except CtlError as err:
        print(f"kubectl ztj: {err}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # `kubectl ztj logs JOB | head`
        return 0
    except ModuleNotFoundError as err:
        if err.name and err.name.split(".")[0] in ("rich", "matplotlib"):
            print(
                f"kubectl ztj: {err.name} is missing; install the console extra: pip install "
                "'zoo-operator[console]'",
                file=sys.stderr,
            )
            return 1
        raise


if __name__ == "__main__":
    sys.exit(main())
