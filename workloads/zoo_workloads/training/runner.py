"""One training run: build data, model, loss and optimizer, train with Model.train, evaluate, checkpoint, report.

Everything that talks to MindSpore's training loop lives here; what it prints is defined in zoo_workloads.events
and what it computes in the pure modules next to it (lr, metrics, checkpoints' retention, optim's grouping).
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import mindspore as ms
import numpy as np
from mindspore import nn
from mindspore.train import Callback, FixedLossScaleManager, Model

from zoo_workloads import config, contract, lastwords
from zoo_workloads.data import pipeline
from zoo_workloads.errors import ConfigError, Stopped
from zoo_workloads.events import EventLog, format_result_line, format_step_line
from zoo_workloads.models import create_model, model_kwargs, model_spec
from zoo_workloads.training import (
    ascend_check,
    checkpoints,
    distributed,
    lr,
    metrics,
    optim,
    results,
    sink,
    stepsave,
)


@dataclass
class RunArgs:
    """The command line of zoo-train, resolved."""

    model: str
    data_dir: str
    eval_dir: str | None
    num_classes: int
    output_dir: str
    device: str
    params: dict[str, Any] = field(default_factory=dict)
    resume: str | None = None


class NetWithLoss(nn.Cell):
    """Network + loss; the loss always runs in float32 (AMP O2/O3 would otherwise run softmax in float16)."""

    def __init__(self, net: nn.Cell, loss: nn.Cell) -> None:
        super().__init__(auto_prefix=False)  # keep the network's parameter names in checkpoints
        self.net = net
        self.loss = loss
        self.loss.to_float(ms.float32)

    def construct(self, data: ms.Tensor, label: ms.Tensor) -> ms.Tensor:
        return self.loss(self.net(data), label)


class Logits(nn.Cell):
    """Evaluation view of a network: logits only (multigrain also returns an embedding), as float32."""

    def __init__(self, net: nn.Cell, with_embedding: bool) -> None:
        super().__init__(auto_prefix=False)
        self.net = net
        self.with_embedding = with_embedding

    def construct(self, data: ms.Tensor) -> ms.Tensor:
        out = self.net(data)
        if self.with_embedding:
            out = out[0]
        return out.astype(ms.float32)


def resolve_amp(level: str, device: str) -> str:
    """auto -> O0 on CPU (float16 is slower there), else O2 (float16 with BatchNorm kept in float32, as the
    zoo's ResNets train on Ascend); O3 only when asked for."""
    if level != "auto":
        return level
    return "O0" if device == "CPU" else "O2"


def evaluate(
    net: nn.Cell, spec: pipeline.DataSpec, input_kind: str, on_batch: Any = None
) -> dict[str, float]:
    """Top-1/top-5 (and clip accuracy for videos) of net over an eval pipeline; on_batch(i, rows) after each."""
    net.set_train(False)
    logits, labels, videos = [], [], []
    for index, row in enumerate(spec.dataset.create_tuple_iterator(num_epochs=1), start=1):
        logits.append(net(row[0]).asnumpy())
        if on_batch is not None:
            on_batch(index, len(logits[-1]))
        labels.append(row[1].asnumpy())
        if input_kind == "video":
            videos.append(row[2].asnumpy())
    net.set_train(True)
    all_logits, all_labels = np.concatenate(logits), np.concatenate(labels)
    if input_kind == "video":
        return metrics.video_metrics(all_logits, all_labels, np.concatenate(videos))
    return metrics.image_metrics(all_logits, all_labels)


class StopRequest:
    """SIGTERM (a deletion, suspend, preemption or eviction) sets a flag; training checks it at every step
    boundary, writes a checkpoint and exits with EXIT_STOPPED within the pod's termination grace period."""

    def __init__(self) -> None:
        self.requested = False
        self.signal: int | None = None

    def request(self, signum: int = signal.SIGTERM, _frame: Any = None) -> None:
        """Ask training to stop at the next step boundary (the signal handler)."""
        self.requested, self.signal = True, signum

    def install(self) -> None:
        """Handle SIGTERM (only possible from the main thread; elsewhere the default action stays)."""
        try:
            signal.signal(signal.SIGTERM, self.request)
        except ValueError:
            pass

    def keep(self) -> None:
        """Install the handler again, every step: MindSpore's dataset iterator over a Python source replaces the
        process's SIGTERM action in C (Python's signal.getsignal still shows ours), which killed ranks before they
        could checkpoint. One sigaction per step costs microseconds."""
        self.install()


class ZooCallback(Callback):
    """Per-step and per-epoch log events, evaluation and checkpoints during Model.train.

    It counts the position itself (epoch, step within it) rather than trusting MindSpore's epoch counter: with a
    data sink (Ascend) MindSpore calls back once per sink of `per_call` steps and calls a sink an epoch. Real
    epochs end on sink boundaries (sink.sink_size divides the steps per epoch), so the epoch's end, its
    evaluation, checkpoints and a graceful stop all happen in step_end."""

    def __init__(
        self, run: Run, skip_steps: int = 0, start_epoch: int = 0, per_call: int = 1, replay: bool = False
    ) -> None:
        super().__init__()
        self.run = run
        # `replay`: the local cluster's simulated NPU (training.ascend_check) trains on CPU, where MindSpore calls
        # back every step whatever the sink mode; it reports only at each sink's end, as the hardware calls back.
        self.replay, self.in_sink = replay, 0
        self.step_start = self.epoch_start = time.time()
        self.losses: list[float] = []
        self.per_call = per_call
        self.epoch = start_epoch + 1  # the real epoch being trained (1-based)
        # A run resumed mid-epoch starts its first epoch after `skip_steps` steps (the sampler skips them too).
        self.step_in_epoch = skip_steps

    def on_train_step_begin(self, run_context: Any) -> None:
        self.run.stop.keep()

    def on_train_step_end(self, run_context: Any) -> None:
        if self.replay:
            self.in_sink += 1
            if self.in_sink < self.per_call:
                return  # inside a sink: the host hears nothing until it ends
            self.in_sink = 0
        cb = run_context.original_args()
        out = cb.net_outputs
        loss = float(
            (out[0] if isinstance(out, (tuple, list)) else out).asnumpy()
        )  # a sink's: its last step's
        self.losses.append(loss)
        now = time.time()
        r = self.run
        steps = r.train.steps
        self.step_in_epoch += self.per_call
        step, epoch = self.step_in_epoch, self.epoch
        ips = self.per_call * r.global_batch / max(now - self.step_start, 1e-9)
        self.step_start = now
        r.log.human(format_step_line(epoch, step, loss))
        r.log.emit(
            "step", epoch=epoch, step=step, steps_per_epoch=steps, loss=loss, images_per_second=round(ips, 2)
        )
        r.log.progress(step, steps, loss)
        if not np.isfinite(loss):
            raise FloatingPointError(f"loss became {loss} at epoch {epoch} step {step}")
        r.after_step(epoch, step, cb.train_network)
        if step < steps:
            if r.stop.requested:  # at an epoch's end, the checkpoint of the epoch serves the stop
                r.stop_now(epoch, step, cb.train_network)
            return
        r.end_epoch(epoch, self.losses, now - self.epoch_start, cb.train_network)
        self.epoch, self.step_in_epoch, self.losses = epoch + 1, 0, []
        self.epoch_start = self.step_start = time.time()
        if r.stop.requested and epoch < int(r.p["epochs"]):
            r.stop_now(epoch, steps, cb.train_network)


class Run:
    """State of one run; `execute` does it all and returns the termination-message fields."""

    def __init__(
        self,
        args: RunArgs,
        log: EventLog,
        rank: int,
        rank_size: int,
        stop: StopRequest | None = None,
        simulated_npu: bool = False,
    ) -> None:
        self.args, self.log, self.rank, self.rank_size = args, log, rank, rank_size
        # The local cluster's simulated NPU: trains on CPU (args.device CPU) but sinks as Ascend does (sink_size).
        self.simulated_npu = simulated_npu
        self.stop = stop or StopRequest()
        self.p = args.params
        self.spec = model_spec(args.model)
        # One copy of the weights: data-parallel ranks hold the same weights after every all-reduced step, so
        # rank 0 alone writes checkpoints, config.yaml and result.json into the run directory (the ModelZoo's
        # train.py scripts likewise save on rank 0 only). The others write nothing.
        # `save_every_rank` keeps a copy per rank (rank_<i>/) for runs whose ranks do differ.
        out = Path(args.output_dir)
        every_rank = bool(self.p.get("save_every_rank")) and rank_size > 1
        self.ckpt_dir = out / f"rank_{rank}" if every_rank else out
        self.writes = rank == 0 or every_rank
        self.ledger = results.Ledger()
        self.global_batch = int(self.p["batch_size"]) * rank_size
        self.best_top1, self.last_metrics, self.last_loss = -1.0, {}, float("nan")
        self.last_ckpt: str | None = None
        self.last_ckpt_position: checkpoints.Position | None = None
        # Step checkpoints (stepsave.py): the background writer, made on first use, and the position and
        # monotonic time of the last checkpoint of any kind, from which the next one is due.
        self.writer: stepsave.AsyncWriter | None = None
        self.saved_global_step, self.saved_time = 0, time.monotonic()
        # Last words (lastwords.py): under a supervisor that asks for them, a host copy of every completed step.
        self.last_words: lastwords.Watcher | None = None

    def build_data(self) -> None:
        """Train and eval pipelines (first, so a missing dataset fails before the model is built)."""
        kind = self.spec.input_kind
        self.train = pipeline.build(
            self.args.data_dir, self.p, kind, training=True, rank=self.rank, rank_size=self.rank_size
        )
        if len(self.train.classes) > self.args.num_classes:
            raise ConfigError(
                f"--num-classes {self.args.num_classes}: the dataset has {len(self.train.classes)} classes"
            )
        self.eval = None
        if self.args.eval_dir:
            self.eval = pipeline.build(
                self.args.eval_dir,
                self.p,
                kind,
                training=False,
                classes=self.train.classes if kind == "image" else None,
            )

    def build_model(self) -> None:
        """Network, loss, optimizer and the MindSpore Model (with AMP, loss scale or THOR)."""
        p, a = self.p, self.args
        problem = contract.optimizer_problem(p["optimizer"], a.device)
        if problem:
            raise ConfigError(f"optimizer {problem} (--set optimizer=momentum)")
        try:
            self.net = create_model(
                a.model,
                a.num_classes,
                image_size=int(p["image_size"]),
                width=int(p["width"]),
                layers=p.get("layers"),
                **model_kwargs(a.model, p),
            )
        except (ValueError, TypeError) as err:  # the model refuses a hyperparameter (e.g. an odd width)
            raise ConfigError(f"model {a.model}: {err}") from err
        if p.get("pretrained"):
            self._load_pretrained(str(p["pretrained"]))
        from zoo_workloads.losses import create_loss

        self.net_with_loss = NetWithLoss(self.net, create_loss(a.model, a.num_classes, p))
        schedule = lr.Schedule(
            p["lr_mode"],
            float(p["lr_init"]),
            float(p["lr_max"]),
            float(p["lr_end"]),
            int(p["warmup_epochs"]),
            int(p["epochs"]),
            self.train.steps,
            float(p.get("lr_power", 2.0)),
            int(p.get("cosine_epochs", 0)),
        )
        self.amp = resolve_amp(str(p["amp_level"]), a.device)
        scale = float(p["loss_scale"]) if self.amp != "O0" else 1.0
        opt = optim.build_optimizer(self.net_with_loss, p, lr.learning_rates(schedule), scale, a.device)
        manager = FixedLossScaleManager(scale, drop_overflow_update=False) if scale != 1.0 else None
        self.model = Model(self.net_with_loss, optimizer=opt, amp_level=self.amp, loss_scale_manager=manager)
        if p["optimizer"] == contract.THOR:
            from mindspore.train.train_thor import ConvertModelUtils

            self.model = ConvertModelUtils().convert_to_thor_model(
                model=self.model,
                network=self.net_with_loss,
                optimizer=opt,
                amp_level=self.amp,
                loss_scale_manager=manager,
            )
        self.eval_net = Logits(self.net, self.spec.outputs == "logits+embedding")

    def _load_pretrained(self, path: str) -> None:
        # Every parameter must match (ours or the ModelZoo reference's names): a partial load is an error.
        loaded = checkpoints.load_network(self.net, self.args.model, path, new_classifier=True)
        total = len(list(self.net.get_parameters()))
        if loaded < total:  # only the classifier can be left out: the checkpoint has another class count
            self.log.human(
                f"loaded {loaded} of {total} parameters from {path}; the classifier (fc) starts fresh: "
                f"the checkpoint's has another number of classes"
            )
        else:
            self.log.human(f"loaded all {loaded} parameters from {path}")

    def end_epoch(self, epoch: int, losses: list[float], seconds: float, train_net: nn.Cell) -> None:
        """Epoch event, evaluation when due, checkpoints when due."""
        p, epochs = self.p, int(self.p["epochs"])
        self.last_loss = float(np.mean(losses)) if losses else float("nan")
        steps = max(len(losses), 1)
        self.log.human(f"epoch time: {seconds * 1000:.3f} ms, per step time: {seconds * 1000 / steps:.3f} ms")
        self.log.emit(
            "epoch",
            epoch=epoch,
            epochs=epochs,
            loss=self.last_loss,
            epoch_seconds=round(seconds, 3),
            images_per_second=round(steps * self.global_batch / max(seconds, 1e-9), 2),
        )
        last = epoch == epochs
        interval = int(p["eval_interval"])
        improved = False
        self.ledger.trained(epoch, self.last_loss)
        if self.eval is not None and (last or (interval > 0 and epoch % interval == 0)):
            self.last_metrics = evaluate(self.eval_net, self.eval, self.spec.input_kind)
            self.log.human(format_result_line(self.last_metrics))
            self.log.emit("eval", epoch=epoch, metrics=self.last_metrics)
            better = self.ledger.evaluated(epoch, self.last_metrics)
            if better and self.last_metrics["top_1_accuracy"] > self.best_top1:
                self.best_top1, improved = self.last_metrics["top_1_accuracy"], True
        every = int(p["save_checkpoint_epochs"])
        steps = self.train.steps
        if last or self.stop.requested or (every > 0 and epoch % every == 0):
            self.write_checkpoint(
                train_net, checkpoints.epoch_path(self.ckpt_dir, self.args.model, epoch), epoch, steps
            )
        if improved:
            path = checkpoints.best_path(self.ckpt_dir, self.args.model)
            manifest = (
                checkpoints.save(train_net, path, self.position(epoch, steps), self.best_top1)
                if self.writes
                else {}
            )
            self._saved("best", epoch, path, step=steps, time=manifest.get("time"))

    def _saved(self, kind: str, epoch: int, path: Path, **extra: Any) -> None:
        """Pair a checkpoint with its epoch's metrics; the `checkpoint` event and result.json say so."""
        record = self.ledger.checkpointed(kind, epoch, str(path))
        if self.writes:  # other ranks know rank 0's files (for their own `done`) but did not write them
            self.log.emit(
                "checkpoint",
                epoch=epoch,
                path=str(path),
                kind=kind,
                metrics=record["metrics"],
                best=kind == "best",
                **extra,
            )
            results.write(self.ledger, self.ckpt_dir)

    def position(self, epoch: int, step: int) -> checkpoints.Position:
        """The training position after `step` steps of `epoch`."""
        steps = self.train.steps
        return checkpoints.Position((epoch - 1) * steps + step, epoch, step, steps)

    def keep_counts(self) -> tuple[int, int]:
        """(epoch checkpoints kept, step checkpoints kept) by retention."""
        keep, keep_steps = int(self.p["keep_checkpoint_max"]), int(self.p["keep_step_checkpoints"])
        if self.rank_size > 1:
            # a rank killed mid-save lags one checkpoint behind: keep the one every rank has
            keep, keep_steps = (2 if keep == 1 else keep), (2 if keep_steps == 1 else keep_steps)
        return keep, keep_steps

    def write_checkpoint(self, train_net: nn.Cell, path: Path, epoch: int, step: int) -> None:
        """Save atomically (rank 0, or every rank with save_every_rank), keep-N retention, the checkpoint event."""
        self.finish_step_checkpoints()  # in order, and no write in flight while retention deletes leftovers
        position = self.position(epoch, step)
        manifest: dict[str, Any] = {}
        if self.writes:
            manifest = checkpoints.save(train_net, path, position, self.best_top1)
            checkpoints.prune(self.ckpt_dir, self.args.model, *self.keep_counts())
        self.last_ckpt, self.last_ckpt_position = str(path), position
        self.saved_global_step, self.saved_time = position.global_step, time.monotonic()
        self._saved(
            "last", epoch, path, step=step, global_step=position.global_step, time=manifest.get("time")
        )

    def after_step(self, epoch: int, step: int, train_net: nn.Cell) -> None:
        """Report the step checkpoints written in the background since the last step; snapshot the train
        network for another when one is due (stepsave.step_checkpoint_due). Only the ranks that write."""
        self.collect_step_checkpoints()
        if not self.writes:
            return
        every_seconds = float(self.p["save_checkpoint_seconds"])
        if self.ckpt_dir != Path(self.args.output_dir):
            every_seconds = 0.0  # save_every_rank on several ranks: each clock would pick another step
        position, now = self.position(epoch, step), time.monotonic()
        due = stepsave.step_checkpoint_due(
            step=step,
            steps_per_epoch=self.train.steps,
            global_step=position.global_step,
            saved_global_step=self.saved_global_step,
            saved_time=self.saved_time,
            now=now,
            every_steps=int(self.p["save_checkpoint_steps"]),
            every_seconds=every_seconds,
        )
        if not due:
            self.hold_last_words(epoch, step, train_net, None)
            return
        self.saved_global_step, self.saved_time = position.global_step, now
        path = checkpoints.step_path(self.ckpt_dir, self.args.model, epoch, step)
        job = stepsave.Job(checkpoints.snapshot(train_net), path, position, self.best_top1)
        self.hold_last_words(epoch, step, train_net, job)
        if self.writer is None:
            self.writer = stepsave.AsyncWriter(self._write_step, self._prune_after_step)
        self.writer.submit(job)

    def hold_last_words(
        self, epoch: int, step: int, train_net: nn.Cell, periodic: stepsave.Job | None
    ) -> None:
        """Keep the host copy of the step just completed for last words (the periodic job's own copy when one
        was taken at this step). Not at an epoch's end: the epoch's checkpoint (written by this thread when due)
        has that position; otherwise the previous step's copy stays held, one step older."""
        if self.last_words is None or step >= self.train.steps:
            return
        position = self.position(epoch, step)
        job = periodic or stepsave.Job(
            checkpoints.snapshot(train_net),
            checkpoints.step_path(self.ckpt_dir, self.args.model, epoch, step),
            position,
            self.best_top1,
        )
        covered = periodic is not None or position.global_step <= self.saved_global_step
        self.last_words.hold(lastwords.Held(job, position.global_step, covered))

    def start_last_words(self) -> None:
        """A watcher for the supervisor's request (lastwords.ENV_DIR set by zoo-launch), on the ranks that write
        the run's checkpoints."""
        directory = os.environ.get(lastwords.ENV_DIR, "")
        if not directory or not self.writes or not Path(directory).is_dir():
            return

        def wait(timeout: float) -> bool:
            return self.writer is None or self.writer.drain(timeout)

        self.last_words = lastwords.Watcher(Path(directory), self._write_step, wait)

    def _write_step(self, job: stepsave.Job) -> dict[str, Any]:
        return checkpoints.save_snapshot(job.arrays, job.path, job.position, job.best_top1)

    def _prune_after_step(self, _job: stepsave.Job) -> None:
        # On the writer's thread; no other write is in flight, so no partial file is a leftover to delete.
        checkpoints.prune(self.ckpt_dir, self.args.model, *self.keep_counts(), leftovers=False)

    def collect_step_checkpoints(self) -> None:
        """The `checkpoint` events of finished background writes (on this thread); a write's error raised."""
        if self.writer is None:
            return
        self.writer.raise_error()
        for job, manifest in self.writer.finished():
            position = job.position
            self.last_ckpt, self.last_ckpt_position = str(job.path), position
            self._saved(
                "last",
                position.epoch,
                job.path,
                step=position.step,
                global_step=position.global_step,
                time=manifest.get("time"),
            )

    def finish_step_checkpoints(self) -> None:
        """Wait for the background write in flight (if any) and report it."""
        if self.writer is not None:
            self.writer.drain()
        self.collect_step_checkpoints()

    def stop_now(self, epoch: int, step: int, train_net: nn.Cell) -> None:
        """The graceful stop: checkpoint at this step boundary (unless this exact position is saved) and raise."""
        self.finish_step_checkpoints()
        position = self.position(epoch, step)
        if self.last_ckpt_position != position:
            path = (
                checkpoints.epoch_path(self.ckpt_dir, self.args.model, epoch)
                if step >= self.train.steps
                else checkpoints.step_path(self.ckpt_dir, self.args.model, epoch, step)
            )
            self.write_checkpoint(train_net, path, epoch, step)
        raise Stopped(
            f"stopped by signal {self.stop.signal} at epoch {epoch} step {step}; checkpoint "
            f"{self.last_ckpt} written, a restart resumes from it"
        )

    def rest_of_epoch(self, done_epochs: int, skip: int) -> pipeline.DataSpec:
        """The training pipeline of epoch done_epochs + 1 without its first `skip` steps."""
        batch = self.train.batch_size
        return pipeline.build(
            self.args.data_dir,
            self.p,
            self.spec.input_kind,
            training=True,
            rank=self.rank,
            rank_size=self.rank_size,
            classes=self.train.classes,
            window=(skip * batch, self.train.steps * batch),
            epoch=done_epochs,
        )

    def auto_resume(self) -> tuple[int, int]:
        """Load the newest complete checkpoint of the run directory; (epochs done, steps to skip).

        Rank 0 writes the one copy of the weights into the run directory, which every rank reads (the checkpoint
        storage must then be shared by the ranks: a PVC, or a hostPath on one node); with save_every_rank each
        rank has its own and a checkpoint counts only when every rank's copy is complete. Newer checkpoints that
        fail verification are skipped (a `checkpoint_invalid` event each, which the operator turns into a Warning
        Event); a `resume` event says where training continues.
        """
        out = Path(self.args.output_dir)
        every_rank = self.ckpt_dir != out
        peers = [out / f"rank_{r}" for r in range(self.rank_size) if r != self.rank] if every_rank else []
        found = checkpoints.newest_complete(self.ckpt_dir, self.args.model, [d for d in peers if d.is_dir()])
        for path, why in found.skipped:
            self.log.human(f"warning: skipping checkpoint {path}: {why}")
            self.log.emit("checkpoint_invalid", path=str(path), reason=why)
        if found.path is None or found.manifest is None:
            return 0, 0
        position = checkpoints.position_of(found.manifest)
        if position.steps_per_epoch != self.train.steps:
            self.log.human(
                f"warning: {found.path} was written with {position.steps_per_epoch} steps per epoch, "
                f"this run has {self.train.steps}: resuming at the next epoch boundary"
            )
            position = checkpoints.Position(
                position.global_step, position.epoch, self.train.steps, self.train.steps
            )
        _, self.best_top1 = checkpoints.restore(self.model.train_network, found.path, self.args.model)
        self.last_ckpt, self.last_ckpt_position = str(found.path), position
        self.saved_global_step = position.global_step
        done, skip = position.resume_point()
        # What the earlier attempts saved (best's epoch and metrics); epochs after `done` are redone.
        self.ledger = results.read(self.ckpt_dir)
        self.ledger.forget_after(done)
        self.log.human(f"resumed from {found.path} at epoch {position.epoch} step {position.step}")
        self.log.emit(
            "resume",
            epoch=position.epoch,
            step=position.step,
            global_step=position.global_step,
            path=str(found.path),
            time=found.manifest.get("time"),
        )
        return done, skip

    def execute(self) -> dict[str, Any]:
        """Train (from a resumed epoch if asked) and return {metrics, checkpoint, epochs}."""
        self.build_data()
        self.build_model()
        self.ckpt_dir.mkdir(parents=True, exist_ok=True)
        if self.writes:
            config.save_resolved(
                self.p, self.args.model, self.ckpt_dir / results.CONFIG_FILE, run=self.run_record()
            )
        # Automatic: the newest complete checkpoint in the output directory. An explicit one (--resume,
        # spec.checkpoint.resumeFrom; it must exist) only starts a run that has none yet, so a restart of a job
        # that began from it continues from its own newest checkpoint instead of going back.
        start, skip = self.auto_resume()
        self.start_last_words()
        resume = self.args.resume or self.p.get("resume")
        if resume and self.last_ckpt is None:
            start, self.best_top1 = checkpoints.restore(self.model.train_network, resume, self.args.model)
            self.log.human(f"resumed from {resume} at epoch {start}")
            # What the earlier attempt saved (best's epoch and metrics); epochs after `start` are redone.
            self.ledger = results.read(self.ckpt_dir)
            self.ledger.forget_after(start)
        epochs = int(self.p["epochs"])
        self.log.emit(
            "start",
            model=self.args.model,
            rank_size=self.rank_size,
            epochs=epochs,
            steps_per_epoch=self.train.steps,
            batch_size=int(self.p["batch_size"]),
            device=self.args.device,
        )
        self.saved_time = time.monotonic()  # the step-checkpoint clock counts training time from here
        if self.stop.requested:  # SIGTERM while loading data or the model: nothing new to save
            raise Stopped(f"stopped by signal {self.stop.signal} before training began")
        if skip and start < epochs:
            # Resumed mid-epoch: first the rest of that epoch (its own pipeline: same order, done steps left out),
            # step by step (a sink must divide it).
            rest = self.rest_of_epoch(start, skip)
            self.model.train(
                start + 1,
                rest.dataset,
                callbacks=[ZooCallback(self, skip, start)],
                dataset_sink_mode=False,
                initial_epoch=start,
            )
            start += 1
        if self.train.sampler is not None:
            self.train.sampler.epoch = (
                start  # data order is seeded per epoch: a resumed epoch sees its own order
            )
        if start < epochs:
            size = self.sink_size()
            if size and not self.simulated_npu:
                sinks, first = sink.train_epochs(epochs, start, self.train.steps, size)
                self.model.train(
                    sinks,
                    self.train.dataset,
                    callbacks=[ZooCallback(self, 0, start, size)],
                    dataset_sink_mode=True,
                    sink_size=size,
                    initial_epoch=first,
                )
            else:
                # Step by step; the simulated NPU's steps (MindSpore on CPU calls back every one) are reported
                # per sink, as the hardware calls back.
                self.model.train(
                    epochs,
                    self.train.dataset,
                    callbacks=[ZooCallback(self, 0, start, size or 1, replay=self.simulated_npu)],
                    dataset_sink_mode=False,
                    initial_epoch=start,
                )
        self.finish_step_checkpoints()
        # The metrics reported are those of the checkpoint reported (the best, else the last), never the last
        # epoch's paired with the best epoch's weights.
        summary = self.ledger.summary()
        if summary["checkpoint"] is None and not self.ledger.saved:
            summary["metrics"] = {**self.last_metrics, "loss": self.last_loss}
        self.log.emit("done", epochs=epochs, **summary)
        return {**summary, "epochs": epochs}

    def sink_size(self) -> int:
        """Steps per data sink on Ascend and on the local cluster's simulated NPU (sink.sink_size), 0 for
        step-by-step training elsewhere (MindSpore ignores sink mode on CPU)."""
        if self.args.device != "Ascend" and not self.simulated_npu:
            return 0
        requested = int(self.p["sink_size"])
        if not requested and self.p["optimizer"] == contract.THOR:
            # THOR's Model splits sinks by its own update frequency; the ModelZoo's THOR scripts (multigrain's,
            # resnet's) sink whole epochs, so the automatic size does too.
            requested = self.train.steps
        size = sink.sink_size(self.train.steps, float(self.p["ascend_step_ms"]), requested)
        how = " (simulated NPU: its CPU steps are reported per sink)" if self.simulated_npu else ""
        self.log.human(f"data sink: {size} steps per sink ({self.train.steps} per epoch){how}")
        return size

    def run_record(self) -> dict[str, Any]:
        """What config.yaml says about the run beyond hyperparameters: classes and data (zoo-eval --run reads it)."""
        return {
            "num_classes": self.args.num_classes,
            "data_dir": self.args.data_dir,
            "eval_dir": self.args.eval_dir,
            "device": self.args.device,
        }


def configure(device: str, mode: str, device_id: int) -> None:
    """Select the device and execution mode before anything else touches MindSpore."""
    ms.set_device(device, device_id)
    ms.set_context(mode=ms.GRAPH_MODE if mode == "graph" else ms.PYNATIVE_MODE)


def train(args: RunArgs, log_stream: Any = None) -> dict[str, Any]:
    """Run training for the command line `args`; raises ZooError subclasses for known failures."""
    problem = contract.optimizer_problem(args.params["optimizer"], args.device)
    if problem:
        raise ConfigError(f"optimizer {problem} (--set optimizer=momentum)")
    launch = distributed.detect(dict(os.environ))
    simulated_npu = args.device == "Ascend" and ascend_check.simulated(dict(os.environ))
    if simulated_npu:
        # Only the local cluster's kubelet sets the switch: check what HCCL would, then train on CPU without it.
        ascend_check.verify(dict(os.environ))
        print(
            "zoo-train: simulated Ascend NPU (ZOO_ASCEND_SIMULATE=1, local cluster only): the Ascend checks "
            "passed; training on CPU",
            flush=True,
        )
        args = replace(args, device="CPU")
        if (
            launch.kind == "ranktable"
        ):  # HCCL has no CPU form; the dynamic cluster runs over mccl on CPU as is
            launch = replace(launch, kind="simulated", device_id=0)
    # The scheduler only serves the dynamic cluster (over mccl): it needs no accelerator, and its pod has none.
    device = "CPU" if launch.role == "scheduler" else args.device
    configure(device, str(args.params["mode"]), launch.device_id)
    rank, size = distributed.init(launch)
    ms.set_seed(int(args.params["seed"]))  # identical initial weights on every rank
    log = EventLog(rank, log_stream)
    stop = StopRequest()
    stop.install()
    return Run(args, log, rank, size, stop, simulated_npu).execute()
