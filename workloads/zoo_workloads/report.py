"""The reporting contract for your own command (spec.command): one call per thing worth showing.

    from zoo_workloads.report import report
    report.start(epochs=10, steps_per_epoch=50, batch_size=32)
    report.step(epoch=1, step=5, loss=0.71)          # LOSS, STEP, the console's live view
    report.epoch(epoch=1, loss=0.65, seconds=12.5)   # EPOCH, status.history (the console's curve)
    report.eval(epoch=1, top1=0.91)                  # TOP-1 of that epoch in status.history
    report.done(top1=0.93, checkpoint="/zoo/checkpoint/run/net.ckpt")   # status.result, the TOP-1 column

Each call prints one JSON line that the operator already reads from the built-in workload (docs/contracts.md
"Log lines"), so EPOCH, LOSS, TOP-1 and `kubectl ztj` work for any script. A script that cannot import this
module may print the same lines itself: `{"event": "step", "ts": <unix s>, "rank": 0, "epoch": 1, "step": 5,
"loss": 0.71}`. Without any of them the job still runs, and succeeds when every rank exits 0.

A script that must stay unchanged (a ModelZoo train.py) can be run under `python -m zoo_workloads.report
[--epochs N] -- python train.py ...`: its output passes through, and MindSpore's LossMonitor lines
(`epoch: 1 step: 5, loss is 0.71`) become `step` and `epoch` events.
Pure Python, standard library only: it works in any image where zoo_workloads is importable.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from zoo_workloads import contract
from zoo_workloads.events import format_event, success_message, write_termination


def _env_rank() -> int:
    """This process's rank before MindSpore's init(): RANK_ID (rank-table launch, set by zoo-launch), else the
    dynamic launch's MS_NODE_ID (the worker index), else 0."""
    for name in (contract.ENV_RANK_ID, contract.ENV_MS_NODE_ID):
        value = os.environ.get(name, "")
        if value.isdigit():
            return int(value)
    return 0


def _metrics(metrics: dict[str, Any] | None, top1: float | None, top5: float | None) -> dict[str, Any]:
    out = dict(metrics or {})
    if top1 is not None:
        out["top_1_accuracy"] = (
            top1  # the names the operator maps to TOP-1 / top5 (logparse.result_from_metrics)
        )
    if top5 is not None:
        out["top_5_accuracy"] = top5
    return out


class Reporter:
    """Prints the contract's JSON lines for one rank (flushed one by one: the operator follows logs live)."""

    def __init__(self, rank: int | None = None, stream: TextIO | None = None) -> None:
        self.rank = _env_rank() if rank is None else rank
        self.stream = stream
        self.epochs: int | None = None

    def _emit(self, event: str, **fields: Any) -> None:
        stream = self.stream if self.stream is not None else sys.stdout
        stream.write(
            format_event(event, self.rank, {k: v for k, v in fields.items() if v is not None}) + "\n"
        )
        stream.flush()

    def start(
        self,
        *,
        epochs: int,
        steps_per_epoch: int | None = None,
        batch_size: int | None = None,
        rank_size: int | None = None,
        **extra: Any,
    ) -> None:
        """Training begins: EPOCH shows `?/epochs`, the ETA uses batch_size x rank_size images per step."""
        self.epochs = epochs
        size = rank_size if rank_size is not None else int(os.environ.get(contract.ENV_RANK_SIZE, "1") or 1)
        self._emit(
            contract.EVENT_START,
            epochs=epochs,
            steps_per_epoch=steps_per_epoch,
            batch_size=batch_size,
            rank_size=size,
            **extra,
        )

    def step(
        self,
        *,
        epoch: int,
        step: int,
        loss: float | None = None,
        steps_per_epoch: int | None = None,
        images_per_second: float | None = None,
    ) -> None:
        """One training step (epoch and step 1-based): the LOSS and STEP columns."""
        self._emit(
            contract.EVENT_STEP,
            epoch=epoch,
            step=step,
            steps_per_epoch=steps_per_epoch,
            loss=loss,
            images_per_second=images_per_second,
        )

    def epoch(
        self,
        *,
        epoch: int,
        loss: float | None = None,
        epochs: int | None = None,
        seconds: float | None = None,
        images_per_second: float | None = None,
    ) -> None:
        """An epoch ended (1-based): the EPOCH column and one entry of status.history."""
        self._emit(
            contract.EVENT_EPOCH,
            epoch=epoch,
            epochs=epochs or self.epochs,
            loss=loss,
            epoch_seconds=seconds,
            images_per_second=images_per_second,
        )

    def eval(
        self,
        *,
        epoch: int,
        top1: float | None = None,
        top5: float | None = None,
        metrics: dict[str, Any] | None = None,
    ) -> None:
        """An evaluation after `epoch`: its top-1/top-5 (0..1) join that epoch in status.history."""
        self._emit(contract.EVENT_EVAL, epoch=epoch, metrics=_metrics(metrics, top1, top5))

    def done(
        self,
        *,
        top1: float | None = None,
        top5: float | None = None,
        metrics: dict[str, Any] | None = None,
        checkpoint: str | None = None,
        epochs: int | None = None,
        termination: bool = True,
    ) -> None:
        """Training finished: status.result (TOP-1 column) from the metrics of `checkpoint` (a path in the pod,
        e.g. under $ZOO_OUTPUT_DIR; shown relative to its volume). Also writes the termination message, so the
        result survives the pod's logs."""
        values = _metrics(metrics, top1, top5)
        total = epochs or self.epochs
        self._emit(contract.EVENT_DONE, epochs=total, metrics=values, checkpoint=checkpoint)
        if termination and os.environ.get(contract.ENV_TERMINATION_LOG):  # set in the operator's pods only
            write_termination(success_message(values, checkpoint, total or 0))


report = Reporter()
"""The process's reporter (rank from the environment); `Reporter(rank=get_rank())` after init() for another."""


# mindspore.train.LossMonitor's line (also the built-in workload's human line): "epoch: 1 step: 5, loss is 0.71".
LOSS_LINE = re.compile(r"epoch:\s*(\d+)\s+step:\s*(\d+),\s*loss is\s*([-+0-9.eE]+|nan|inf)")


class LineFollower:
    """Turns LossMonitor lines into step events, and a finished epoch (the next epoch's first line, or the end)
    into an epoch event with the mean loss of its lines."""

    def __init__(self, reporter: Reporter, epochs: int | None = None) -> None:
        self.reporter, self.epochs = reporter, epochs
        self.epoch: int | None = None
        self.losses: list[float] = []

    def line(self, text: str) -> None:
        match = LOSS_LINE.search(text)
        if match is None:
            return
        epoch, step, loss = int(match.group(1)), int(match.group(2)), float(match.group(3))
        if self.epoch is not None and epoch != self.epoch:
            self.end_epoch()
        self.epoch = epoch
        self.losses.append(loss)
        self.reporter.step(epoch=epoch, step=step, loss=loss)

    def end_epoch(self) -> None:
        if self.epoch is not None and self.losses:
            self.reporter.epoch(
                epoch=self.epoch, epochs=self.epochs, loss=sum(self.losses) / len(self.losses)
            )
        self.losses = []


def main(argv: Sequence[str] | None = None) -> int:
    """python -m zoo_workloads.report [--epochs N] -- COMMAND...: run COMMAND, pass its output through and
    report its LossMonitor lines; exits with COMMAND's exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    if "--" not in args or args.index("--") == len(args) - 1:
        print("usage: python -m zoo_workloads.report [--epochs N] -- COMMAND [ARGS...]", file=sys.stderr)
        return contract.EXIT_CONFIG
    own, command = args[: args.index("--")], args[args.index("--") + 1 :]
    epochs = int(own[own.index("--epochs") + 1]) if "--epochs" in own else None
    reporter = Reporter()
    follower = LineFollower(reporter, epochs)
    if epochs is not None:
        reporter.start(epochs=epochs)
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
    # SIGTERM (deletion, suspend, preemption) goes to the command, which decides how to stop.
    signal.signal(signal.SIGTERM, lambda signum, _frame: child.send_signal(signum))
    assert child.stdout is not None
    for text in child.stdout:
        sys.stdout.write(text)
        sys.stdout.flush()
        follower.line(text)
    code = child.wait()
    follower.end_epoch()
    if code == 0:
        reporter.done(epochs=follower.epoch)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
