"""The border between the operator and the workload: every fact both sides must agree on, written once.

Owned by the workload package and imported by the operator (zoo_operator.conditions, render, logparse, results,
ranktable, spec, schema). Why here and not in a third package: the operator already depends on the workload
package's pure-Python base install (the model table), and the workload must run in images that hold no operator
code, so the facts live on the side that cannot import the other. Pure Python, no imports beyond the standard
library: the operator image has no MindSpore. docs/contracts.md explains each fact for people.
"""

from __future__ import annotations

# Exit codes of a rank's main process, and what the operator does with each class.
EXIT_OK = 0
EXIT_UNEXPECTED = 1  # an error of no known class: restarted within backoffLimit
EXIT_CONFIG = 64  # bad configuration (EX_USAGE): permanent, the job fails at once
EXIT_DATASET_MISSING = 66  # the dataset is not there (EX_NOINPUT): permanent
EXIT_RETRYABLE = 75  # a peer lost, a collective or the rank table timed out (EX_TEMPFAIL): restart the gang
# A graceful stop (SIGTERM from a deletion, suspend, preemption or eviction) after a checkpoint was written at a
# step boundary: restarted, and not counted against backoffLimit.
EXIT_STOPPED = 79
EXIT_INTERRUPTED = 130  # SIGINT (128 + 2)
PERMANENT_EXIT_CODES = frozenset({EXIT_CONFIG, EXIT_DATASET_MISSING})

# The JSON log events one rank prints, one object per line (docs/contracts.md "Logs").
EVENT_START = "start"
EVENT_STEP = "step"
EVENT_EPOCH = "epoch"
EVENT_EVAL = "eval"
EVENT_CHECKPOINT = "checkpoint"
EVENT_DONE = "done"
EVENT_RESUME = "resume"
EVENT_CHECKPOINT_INVALID = "checkpoint_invalid"
# zoo-launch restarted the training process inside its pod (issue 23): fields code, restart, limit.
EVENT_PROCESS_RESTART = "process_restart"
EVENTS = (
    EVENT_START,
    EVENT_STEP,
    EVENT_EPOCH,
    EVENT_EVAL,
    EVENT_CHECKPOINT,
    EVENT_DONE,
    EVENT_RESUME,
    EVENT_CHECKPOINT_INVALID,
    EVENT_PROCESS_RESTART,
)

# Environment the operator sets on every rank (docs/contracts.md "Environment").
ENV_JOB_NAME = "ZOO_JOB_NAME"
ENV_JOB_NAMESPACE = "ZOO_JOB_NAMESPACE"
ENV_MODEL = "ZOO_MODEL"
ENV_POD_NAME = "POD_NAME"
ENV_POD_NAMESPACE = "POD_NAMESPACE"
ENV_POD_IP = "POD_IP"
ENV_HOST_IP = "HOST_IP"
ENV_TERMINATION_LOG = "ZOO_TERMINATION_LOG"
ENV_ATTEMPT = "ZOO_ATTEMPT"  # the whole-gang attempt the pod belongs to (its modelzoo.io/attempt annotation)
# How many times zoo-launch restarts a crashed training process inside its pod before the pod fails (issue 23).
ENV_PROCESS_RESTARTS = "ZOO_PROCESS_RESTARTS"
# On by default again since the gang fault channel (below): the survivors restart within a second of a crash
# instead of after MindSpore's node timeout, and in place measured faster than a whole-gang restart (README
# "Recovery"). 0 execs the command as before.
DEFAULT_PROCESS_RESTARTS = 3
# The gang's fault channel (zoo_workloads.gangchannel): every supervisor listens on this UDP port of its pod IP, and
# ZOO_GANG_HUB names the pod that keeps the gang's restart generation (the scheduler's or worker 0's DNS name).
# Next to MS_SCHED_PORT's 8118, outside HCCL's host ports 60000-60015; netpolicy.py admits it between the gang.
GANG_CHANNEL_PORT = 8119
ENV_GANG_HUB = "ZOO_GANG_HUB"
# HCCL rank-table launch (Ascend).
ENV_RANK_TABLE_FILE = "RANK_TABLE_FILE"
ENV_RANK_ID = "RANK_ID"
ENV_RANK_SIZE = "RANK_SIZE"
ENV_DEVICE_ID = "DEVICE_ID"
# MindSpore's dynamic cluster (CPU, GPU, msrun-style Ascend).
ENV_MS_ROLE = "MS_ROLE"
ENV_MS_SCHED_HOST = "MS_SCHED_HOST"
ENV_MS_SCHED_PORT = "MS_SCHED_PORT"
ENV_MS_WORKER_NUM = "MS_WORKER_NUM"
ENV_MS_NODE_ID = "MS_NODE_ID"
# A server pod of the dynamic launch (spec.device.podsPer server): msrun's --node_rank and --local_worker_num. Each
# of its local_worker_num processes is the dynamic cluster's node node_rank * local_worker_num + i (zoo-server-launch
# sets that MS_NODE_ID and RANK_ID per process); the pod itself carries no MS_NODE_ID.
ENV_NODE_RANK = "ZOO_NODE_RANK"
ENV_LOCAL_WORKER_NUM = "ZOO_LOCAL_WORKER_NUM"
MS_ROLE_SCHEDULER = "MS_SCHED"
MS_ROLE_WORKER = "MS_WORKER"

# Paths inside the pods, and the names of the files the two sides share.
DATA_DIR = "/zoo/data"  # the dataset volume, read-only
CHECKPOINT_DIR = "/zoo/checkpoint"  # the checkpoint volume
FROM_DIR = "/zoo/from"  # spec.from: the named job's checkpoint volume
RANKTABLE_DIR = "/etc/zoo/ranktable"  # the rank-table ConfigMap, mounted as a directory (never subPath)
RANKTABLE_FILE = "hccl.json"  # its key holding the HCCL rank table
ATTEMPT_FILE = "attempt"  # its key naming the attempt whose pods the table lists
RANK_TABLE_PATH = f"{RANKTABLE_DIR}/{RANKTABLE_FILE}"
TERMINATION_LOG = "/dev/termination-log"  # the kubelet's default terminationMessagePath
# A read-only root file system (readOnlyRootFilesystem: true, checkov CKV_K8S_22; issue 24): every path a rank
# writes outside the checkpoint volume lies in one of these emptyDirs, and the variables below point the tools
# that would write elsewhere into them. Sources: MindSpore writes its compile cache (graph_cache, kernel_meta,
# somas_meta) under the working directory unless MS_COMPILER_CACHE_PATH names another, and the files a failed
# graph compile or task dumps (analyze_fail.ir) under MS_OM_PATH (mindspore.cn, "Environment Variables"); CANN
# writes its logs to $HOME/ascend/log and traces to $HOME/ascend/atrace when ASCEND_PROCESS_LOG_PATH is unset, and
# its build files (kernel_meta, FE/<pid>/fusion_result.json) to ASCEND_WORK_PATH, else the working directory
# (hiascend.com, CANN environment variables, ASCEND_WORK_PATH); Python's tempfile (zoo-launch's server launch)
# uses TMPDIR, else /tmp; caches of other libraries go to $HOME/.cache (XDG).
TMP_DIR = "/tmp"
HOME_DIR = "/zoo/home"
SCRATCH_VOLUMES = (("zoo-tmp", TMP_DIR), ("zoo-home", HOME_DIR))  # (emptyDir volume name, mount path)
SCRATCH_ENV = (
    ("HOME", HOME_DIR),
    ("TMPDIR", TMP_DIR),
    ("MS_COMPILER_CACHE_PATH", f"{HOME_DIR}/mindspore/cache"),
    ("MS_OM_PATH", f"{HOME_DIR}/mindspore/om"),
    ("ASCEND_WORK_PATH", f"{HOME_DIR}/ascend/work"),
)
TERMINATION_LIMIT = 4096  # bytes of a termination message the kubelet keeps
CONFIG_FILE = "config.yaml"  # a run directory's resolved configuration
RESULT_FILE = "result.json"  # a run directory's final record

# Devices, and what runs on which.
DEVICE_ASCEND = "Ascend"
DEVICE_GPU = "GPU"
DEVICE_CPU = "CPU"
DEVICES = (DEVICE_ASCEND, DEVICE_GPU, DEVICE_CPU)
# MindSpore ships THOR's kernels for Ascend and GPU only (mindspore.nn.thor; ../shared/DESIGN.md).
THOR = "thor"
THOR_DEVICES = frozenset({DEVICE_ASCEND, DEVICE_GPU})


def optimizer_problem(optimizer: object, device: str, how: str = "") -> str | None:
    """Why `optimizer` cannot train on `device` (one of DEVICES), or None when it can; `how` says where the
    optimizer came from (e.g. "set", "multigrain's default")."""
    if optimizer == THOR and device not in THOR_DEVICES:
        where = f" ({how})" if how else ""
        return f"{THOR}{where} has no {device} kernels; use momentum or nesterov on {device}"
    return None


THOR_ON_CPU: str = optimizer_problem(THOR, DEVICE_CPU) or ""


def exit_class(code: int | None) -> str:
    """What the operator does with a rank's exit code: ok, permanent (fail), stopped (restart, not counted)
    or retryable (restart within backoffLimit)."""
    if code == EXIT_OK:
        return "ok"
    if code in PERMANENT_EXIT_CODES:
        return "permanent"
    if code == EXIT_STOPPED:
        return "stopped"
    return "retryable"


# Issue 21, server mode (spec.device.podsPer): one pod per server holds all its NPUs and zoo-server-launch runs one
# training process per NPU inside (MindCluster's AscendJob and the ModelZoo's run_distribute_train.sh do the same).
PODS_PER_DEVICE = "device"  # one pod per NPU (default)
PODS_PER_SERVER = "server"  # one pod per server, perNode NPUs, one process per NPU
PODS_PER = (PODS_PER_DEVICE, PODS_PER_SERVER)
SERVER_LAUNCH = "zoo-server-launch"  # the multi-process launcher's command (zoo_workloads.server_launch)
# How a server pod's log keeps its ranks apart: JSON event lines pass through unchanged (their `rank` field names
# the rank); every other line of a process gets this prefix with its global RANK_ID.
RANK_LINE_PREFIX = "[rank {rank}] "


def rank_line(rank: int, line: str) -> str:
    """One process's human line as its server pod prints it (`RANK_LINE_PREFIX`); event lines unchanged."""
    return line if line.lstrip().startswith("{") else RANK_LINE_PREFIX.format(rank=rank) + line


def line_rank(line: str) -> tuple[int | None, str]:
    """(rank, line without the prefix) of a server pod's human line; (None, line) for a line without it."""
    head, close, rest = line.partition("] ")
    if close and head.startswith("[rank ") and head[6:].isdigit():
        return int(head[6:]), rest
    return None, line
