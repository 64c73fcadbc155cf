"""A small MindSpore training script written the way a user would, run by a ZooTrainingJob's spec.command.

It trains a two-layer perceptron on the digits (ImageFolder train/ and val/, as `zoo-data digits` writes them),
data-parallel over the job's ranks, and reports through the zoo's reporting contract so that EPOCH, LOSS, TOP-1
and `kubectl ztj` work. Nothing here is specific to the operator except the four `report.*` calls; the same
script runs alone on a laptop (`python train.py --data-dir DIR`).

    python train.py --data-dir /zoo/data/train --eval-dir /zoo/data/val --epochs 2 --output-dir /tmp/out
"""

from __future__ import annotations

import argparse
import os
import time

import mindspore as ms
import mindspore.dataset as ds
from mindspore import nn
from mindspore.communication import get_group_size, get_rank, init
from mindspore.dataset import vision
from mindspore.train import Callback, Model

from zoo_workloads.report import Reporter


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", required=True, help="ImageFolder of training images")
    p.add_argument("--eval-dir", default=None, help="ImageFolder of validation images")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--image-size", type=int, default=16)
    p.add_argument("--output-dir", default=os.environ.get("ZOO_OUTPUT_DIR", "output"))
    return p.parse_args()


def distributed() -> tuple[int, int]:
    """(rank, size): MindSpore's dynamic cluster when the operator set MS_ROLE, else one process."""
    if not os.environ.get("MS_ROLE"):
        return 0, 1
    ms.set_auto_parallel_context(parallel_mode=ms.ParallelMode.DATA_PARALLEL, gradients_mean=True)
    init()  # in the scheduler pod (MS_ROLE=MS_SCHED) this serves the cluster and ends the process
    return get_rank(), get_group_size()


def dataset(path: str, size: int, batch: int, rank: int, ranks: int, shuffle: bool) -> ds.Dataset:
    data = ds.ImageFolderDataset(path, num_shards=ranks, shard_id=rank, shuffle=shuffle, decode=True)
    data = data.map([vision.Resize((size, size)), vision.Rescale(1 / 255.0, 0.0), vision.HWC2CHW()], "image")
    return data.batch(batch, drop_remainder=shuffle)


class Reporting(Callback):
    """Per step and per epoch: loss (and accuracy when there is a validation set) to the zoo's reporter."""

    def __init__(self, report: Reporter, model: Model, val: ds.Dataset | None) -> None:
        self.report, self.model, self.val = report, model, val
        self.started = time.time()
        self.losses: list[float] = []
        self.top1: float | None = None

    def on_train_epoch_begin(self, run_context) -> None:
        self.started, self.losses = time.time(), []

    def on_train_step_end(self, run_context) -> None:
        cb = run_context.original_args()
        loss = float(cb.net_outputs.asnumpy())
        self.losses.append(loss)
        step = (cb.cur_step_num - 1) % cb.batch_num + 1
        self.report.step(epoch=cb.cur_epoch_num, step=step, loss=loss, steps_per_epoch=cb.batch_num)

    def on_train_epoch_end(self, run_context) -> None:
        epoch = run_context.original_args().cur_epoch_num
        mean = sum(self.losses) / max(len(self.losses), 1)
        print(f"epoch {epoch}: loss {mean:.4f}", flush=True)
        self.report.epoch(epoch=epoch, loss=mean, seconds=time.time() - self.started)
        if self.val is not None:
            self.top1 = float(self.model.eval(self.val, dataset_sink_mode=False)["acc"])
            print(f"epoch {epoch}: accuracy {self.top1:.4f}", flush=True)
            self.report.eval(epoch=epoch, top1=self.top1)


def main() -> None:
    args = parse_args()
    ms.set_context(mode=ms.PYNATIVE_MODE)  # tiny network: no graph compile
    ms.set_device(os.environ.get("ZOO_DEVICE", "CPU"))
    ms.set_seed(1)
    rank, ranks = distributed()
    report = Reporter(rank=rank)
    train = dataset(args.data_dir, args.image_size, args.batch_size, rank, ranks, shuffle=True)
    val = dataset(args.eval_dir, args.image_size, args.batch_size, 0, 1, shuffle=False) if args.eval_dir else None
    classes = len([d for d in os.listdir(args.data_dir) if os.path.isdir(os.path.join(args.data_dir, d))])
    net = nn.SequentialCell(nn.Flatten(), nn.Dense(3 * args.image_size ** 2, 64), nn.ReLU(), nn.Dense(64, classes))
    loss = nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean")
    model = Model(net, loss, nn.Momentum(net.trainable_params(), args.lr, 0.9), metrics={"acc"})
    report.start(epochs=args.epochs, steps_per_epoch=train.get_dataset_size(), batch_size=args.batch_size,
                 rank_size=ranks)
    callback = Reporting(report, model, val)
    model.train(args.epochs, train, callbacks=[callback], dataset_sink_mode=False)
    checkpoint = None
    if rank == 0:
        os.makedirs(args.output_dir, exist_ok=True)
        checkpoint = os.path.join(args.output_dir, "mlp.ckpt")
        ms.save_checkpoint(net, checkpoint)
    report.done(top1=callback.top1, checkpoint=checkpoint, epochs=args.epochs)


if __name__ == "__main__":
    main()
