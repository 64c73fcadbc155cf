"""Run a ModelZoo seed's own train.py, unchanged, through a ZooTrainingJob (spec.command) on the local cluster.

    .venv/bin/python hack/modelzoo/run_seed.py --modelzoo ~/src/models [--seed research/cv/resnet50_bam]
        [--replicas 2] [--device CPU] [--data /tmp/zoo-data/digits] [--dry-run]

The ModelZoo (https://github.com/mindspore-ai/models) is not ours to copy into this repository, so this script
reads the checkout it is given: the seed's Python sources go into a ConfigMap (one key per file, mounted back at
their relative paths under /modelzoo), and the job runs `python train.py` there under
`python -m zoo_workloads.report`, which passes the output through and turns MindSpore's LossMonitor lines into
the zoo's step/epoch events (EPOCH, LOSS). What each seed's flags get from the spec is in SEEDS and the README
("A ModelZoo seed's own train.py"). With --dry-run it prints the ConfigMap and the job instead of applying them.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

# Per seed: the train.py flags set from the spec, the epochs its config trains (for the EPOCH column; the seed
# has no flag for it), and where its config expects the training set (no flag either).
SEEDS: dict[str, dict[str, Any]] = {
    "research/cv/resnet50_bam": {
        "name": "seed-resnet50-bam",
        # --is_distributed 1: the CPU/GPU branch calls init() (MindSpore's dynamic cluster, from the operator's
        # MS_* variables) and takes rank and size from it. On Ascend: --device_target Ascend and
        # --device_num N, DEVICE_NUM N (the script reads the env var, as its run_distribute_train.sh sets it),
        # DEVICE_ID and RANK_TABLE_FILE from the operator and zoo-launch.
        "flags": {
            "CPU": ["--is_distributed", "1"],
            "GPU": ["--device_target", "GPU", "--is_distributed", "1"],
            "Ascend910": ["--device_target", "Ascend", "--device_num", "{replicas}"],
        },
        "env": {"Ascend910": {"DEVICE_NUM": "{replicas}"}},
        "epochs": 160,  # src/config.py epoch_size
        "data_path": "/data/ILSVRC2012_train",  # src/config.py data_path
    },
}
SKIP_DIRS = {"ascend310_infer", "infer", "modelarts", "scripts", "__pycache__"}


def sources(seed_dir: Path) -> dict[str, str]:
    """The seed's Python sources, relative path -> text (inference and launcher directories left out)."""
    out = {}
    for path in sorted(seed_dir.rglob("*.py")):
        rel = path.relative_to(seed_dir)
        if not SKIP_DIRS & set(rel.parts[:-1]):
            out[rel.as_posix()] = path.read_text(encoding="utf-8")
    if "train.py" not in out:
        raise SystemExit(
            f"{seed_dir}: no train.py (is --modelzoo the root of a mindspore-ai/models checkout?)"
        )
    return out


def key(rel: str) -> str:
    """A ConfigMap key for a relative path (keys allow [-._a-zA-Z0-9]): src/config.py -> src__config.py."""
    return rel.replace("/", "__")


def config_map(name: str, files: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name},
        "data": {key(rel): text for rel, text in files.items()},
    }


def job(
    seed: str, files: dict[str, str], *, replicas: int, device: str, data: str, image: str
) -> dict[str, Any]:
    """The ZooTrainingJob that runs the seed's train.py as written, on `replicas` ranks."""
    info = SEEDS[seed]
    fill = {"replicas": str(replicas)}
    flags = [f.format(**fill) for f in info["flags"][device]]
    env = [{"name": k, "value": v.format(**fill)} for k, v in info.get("env", {}).get(device, {}).items()]
    workdir = "/modelzoo"
    return {
        "apiVersion": "modelzoo.io/v1alpha1",
        "kind": "ZooTrainingJob",
        "metadata": {"name": info["name"], "labels": {"modelzoo.io/seed": seed.rsplit("/", 1)[-1]}},
        "spec": {
            "image": image,
            "command": [
                "python",
                "-m",
                "zoo_workloads.report",
                "--epochs",
                str(info["epochs"]),
                "--",
                "python",
                "train.py",
            ],
            "args": flags,
            "workingDir": workdir,
            "device": {"type": device},
            "replicas": replicas,
            "runPolicy": {"backoffLimit": 0},
            "podTemplate": {
                "env": env,
                "volumes": [
                    {
                        "name": "seed",
                        "configMap": {
                            "name": info["name"],
                            "items": [{"key": key(rel), "path": rel} for rel in files],
                        },
                    },
                    # The seed's config names its data path and has no flag for it: the dataset goes there.
                    {"name": "seed-data", "hostPath": {"path": data, "type": "Directory"}},
                ],
                "volumeMounts": [
                    {"name": "seed", "mountPath": workdir, "readOnly": True},
                    {"name": "seed-data", "mountPath": info["data_path"], "readOnly": True},
                ],
            },
        },
    }


def kubectl(*args: str, body: dict[str, Any] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["kubectl", *args],
        input=json.dumps(body) if body else None,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--modelzoo", type=Path, required=True, help="root of a mindspore-ai/models checkout")
    p.add_argument("--seed", default="research/cv/resnet50_bam", choices=sorted(SEEDS))
    p.add_argument("--replicas", type=int, default=2)
    p.add_argument("--device", default="CPU", choices=["CPU", "GPU", "Ascend910"])
    p.add_argument("--data", default="/tmp/zoo-data/digits/train", help="ImageFolder on the node(s)")
    p.add_argument("--image", default="zoo-operator/workload-cpu:latest")
    p.add_argument("--namespace", default="default")
    p.add_argument("--timeout", type=float, default=900)
    p.add_argument("--dry-run", action="store_true")
    args = p.parse_args(argv)
    files = sources(args.modelzoo / args.seed)
    cm = config_map(SEEDS[args.seed]["name"], files)
    body = job(args.seed, files, replicas=args.replicas, device=args.device, data=args.data, image=args.image)
    if args.dry_run:
        print(json.dumps([cm, body], indent=1))
        return 0
    ns = ["-n", args.namespace]
    for obj in (cm, body):
        out = kubectl("apply", *ns, "-f", "-", body=obj)
        if out.returncode != 0:
            print(out.stderr, file=sys.stderr)
            return 1
    name, deadline, phase = body["metadata"]["name"], time.monotonic() + args.timeout, ""
    while time.monotonic() < deadline and phase not in ("Succeeded", "Failed"):
        time.sleep(5)
        phase = kubectl("get", "ztj", name, *ns, "-o", "jsonpath={.status.phase}").stdout
    print(kubectl("get", "ztj", name, *ns, "-o", "wide").stdout)
    print(kubectl("get", "ztj", name, *ns, "-o", "jsonpath={.status.message}").stdout)
    print(kubectl("logs", f"{name}-worker-0", *ns, "--tail=15").stdout)
    return 0 if phase == "Succeeded" else 1


if __name__ == "__main__":
    raise SystemExit(main())
