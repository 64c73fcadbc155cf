"""The one schema source of the ZooTrainingJob CRD, as plain Python data.

`crd()` returns the CustomResourceDefinition; `zoo-operator generate` writes it into manifests/ and charts/.
Everything the apiserver can check lives here (types, enums, minimums, CEL rules with messages that name the
field); what it cannot check (hyperparameter keys, static device maps) is checked by `zoo_operator.spec`.
"""

from __future__ import annotations

import functools
from typing import Any

from zoo_operator import conditions
from zoo_workloads import config as model_config
from zoo_workloads import contract

GROUP = "modelzoo.io"
VERSION = "v1alpha1"
KIND = "ZooTrainingJob"
PLURAL = "zootrainingjobs"
SINGULAR = "zootrainingjob"
SHORT_NAMES = ["ztj"]
CRD_NAME = f"{PLURAL}.{GROUP}"

DEVICE_TYPES = ["Ascend910", "GPU", "CPU"]
LAUNCH_MODES = ["ranktable", "dynamic"]
RANK_TABLE_VERSIONS = ["1.0", "1.2"]
ASCEND_CHIPS = ["910", "910B", "A3"]  # zoo_operator.ascend.CHIPS
GANG_BACKENDS = ["volcano", "kubernetes"]
CLEAN_POD_POLICIES = ["All", "Running", "None"]
TASKS = ["train", "evaluate", "export"]
CHECKPOINT_KINDS = ["best", "last"]
PHASES = ["Pending", "Running", "Restarting", "Succeeded", "Failed", "Suspended"]
# status.progress.stage values (zoo_operator.status) and the bound of status.history (zoo_operator.history).
PROGRESS_STAGES = ["Starting", "Compiling", "Training", "Done"]
HISTORY_MAX = 200

Schema = dict[str, Any]

# Length bounds of free strings (the operator's spec.py checks the same numbers): no field can carry a value that
# ends up as a huge argument, env entry or status message.
MAX_IMAGE = 512
MAX_NAME = 253
MAX_PATH = 1024
MAX_ENV_VALUE = 32768
# spec.command / spec.args (your own command instead of a built-in model): bounds of the lists and of one item.
MAX_COMMAND_ITEMS = 64
MAX_ARGS_ITEMS = 1024
MAX_ARG = 4096
# What the MODEL column (status.model) shows for a job that runs spec.command.
CUSTOM_MODEL = "custom"
# spec.checkpoint.stopGracePeriodSeconds' default: a checkpoint of the seeds' largest models at the slowest
# storage we met takes well under a minute; twice that leaves room for the step in flight.
STOP_GRACE_SECONDS = 120


def _str(description: str, **extra: Any) -> Schema:
    return {"type": "string", "description": description, **extra}


def _int(description: str, **extra: Any) -> Schema:
    return {"type": "integer", "format": "int32", "description": description, **extra}


def _obj(description: str, properties: dict[str, Schema], **extra: Any) -> Schema:
    return {"type": "object", "description": description, "properties": properties, **extra}


def _free(description: str) -> Schema:
    """An object kept as written (a Kubernetes type this CRD does not re-describe)."""
    return {"type": "object", "description": description, "x-kubernetes-preserve-unknown-fields": True}


def _relative_path(description: str) -> Schema:
    """A path inside a volume: CEL refuses absolute paths and `..` components."""
    return _str(
        description,
        minLength=1,
        maxLength=MAX_PATH,
        **{
            "x-kubernetes-validations": [
                {
                    "rule": "!self.startsWith('/')",
                    "message": "must be a relative path inside the volume (no leading /)",
                },
                {"rule": "!self.matches('(^|/)[.][.](/|$)')", "message": "must not contain '..' components"},
            ]
        },
    )


def _volume_source(description: str) -> Schema:
    """A subset of core/v1 VolumeSource: exactly one of PVC, hostPath, NFS or emptyDir."""
    return _obj(
        description + " Exactly one of persistentVolumeClaim, hostPath, nfs, emptyDir.",
        {
            "persistentVolumeClaim": _obj(
                "An existing PersistentVolumeClaim in the job's namespace.",
                {
                    "claimName": _str("Name of the claim.", minLength=1, maxLength=MAX_NAME),
                    "readOnly": {"type": "boolean", "description": "Mount the claim read-only."},
                },
                required=["claimName"],
            ),
            "hostPath": _obj(
                "A directory on the node.",
                {
                    "path": _str("Absolute path on the node.", pattern="^/", maxLength=MAX_PATH),
                    "type": _str("hostPath type.", maxLength=64),
                },
                required=["path"],
            ),
            "nfs": _obj(
                "An NFS export.",
                {
                    "server": _str("NFS server.", minLength=1, maxLength=MAX_NAME),
                    "path": _str("Exported path.", pattern="^/", maxLength=MAX_PATH),
                    "readOnly": {"type": "boolean", "description": "Mount the export read-only."},
                },
                required=["server", "path"],
            ),
            "emptyDir": _obj(
                "A scratch directory that lives as long as the pod.",
                {
                    "medium": _str("'' or Memory.", maxLength=16),
                    "sizeLimit": {
                        "x-kubernetes-int-or-string": True,
                        "description": "Size limit, a quantity (e.g. 10Gi).",
                    },
                },
            ),
        },
        minProperties=1,
        maxProperties=1,
    )


def _spec() -> Schema:
    device = _obj(
        "The accelerator every rank gets: one device per pod.",
        {
            "type": _str("Device kind.", enum=DEVICE_TYPES),
            "resourceName": _str(
                "Extended resource requested per pod (default huawei.com/Ascend910 or nvidia.com/gpu; none on CPU).",
                maxLength=253,
            ),
            "perNode": _int(
                "Devices per node: workers i*perNode..(i+1)*perNode-1 share one node, different groups "
                "different nodes; replicas must be a multiple of it.",
                minimum=1,
                maximum=64,
            ),
            "chip": _str(
                "Ascend chip generation (node selector, image, rank table version); default from the "
                "operator settings.",
                enum=ASCEND_CHIPS,
            ),
            "podsPer": _str(
                "device: one pod per device (default). server: one pod per server holding perNode NPUs, one "
                "training process per NPU inside (Ascend910 with perNode only; rank-table or dynamic launch).",
                enum=list(contract.PODS_PER),
                default=contract.PODS_PER_DEVICE,
            ),
        },
        required=["type"],
    )
    dataset = _obj(
        "Where the data lives. The volume is mounted read-only at /zoo/data.",
        {
            "volume": _volume_source("Volume holding the dataset."),
            "trainPath": _relative_path("Training set, relative to the volume root."),
            "evalPath": _relative_path("Evaluation set, relative to the volume root."),
            "numClasses": _int("Number of classes.", minimum=2, maximum=1000000),
        },
        required=["volume", "trainPath", "numClasses"],
    )
    checkpoint = _obj(
        "Where checkpoints go, and how they are kept. The storage is mounted at /zoo/checkpoint: a PVC "
        "(claimName), a node directory (hostPath, for single-node and local use), any volume, or (default, "
        "not durable) an emptyDir. Every start resumes from the newest complete checkpoint in the job's "
        "directory.",
        {
            "claimName": _str(
                "A PersistentVolumeClaim in the job's namespace (ReadWriteMany for several nodes).",
                minLength=1,
                maxLength=253,
            ),
            "hostPath": _str(
                "An absolute directory on the node (created if missing).", pattern="^/", maxLength=1024
            ),
            "volume": _volume_source("Volume for checkpoints."),
            "path": _relative_path(
                "Output directory, relative to the storage root (default: "
                "<namespace>/<name>-<first 8 characters of the job's uid>, so a restarted job "
                "finds its checkpoints and a new job of the same name does not)."
            ),
            "resumeFrom": _relative_path("Checkpoint file to resume from, relative to the volume root."),
            "keep": _int(
                "Checkpoints kept (the newest; 0 = all); sets the keep_checkpoint_max hyperparameter.",
                minimum=0,
                maximum=10000,
            ),
            "stopGracePeriodSeconds": _int(
                "The pods' terminationGracePeriodSeconds: on SIGTERM (deletion, suspend, preemption) a rank "
                "finishes its step and writes a checkpoint within this time.",
                minimum=1,
                maximum=86400,
                default=STOP_GRACE_SECONDS,
            ),
        },
        **{
            "x-kubernetes-validations": [
                {
                    "rule": "(has(self.claimName) ? 1 : 0) + (has(self.hostPath) ? 1 : 0) + (has(self.volume) ? 1 : 0) <= 1",
                    "message": "spec.checkpoint: set at most one of claimName, hostPath and volume",
                }
            ]
        },
    )
    source = _obj(
        "A finished job to start from: its checkpoint volume is mounted at /zoo/from and the checkpoint its "
        "status.result names is used, with the settings of its saved config.yaml.",
        {
            "job": _str("Name of a Succeeded ZooTrainingJob in this namespace.", minLength=1, maxLength=253),
            "checkpoint": _str(
                "Which of its checkpoints: best (highest top-1) or last.",
                enum=CHECKPOINT_KINDS,
                default="best",
            ),
        },
        required=["job"],
    )
    hyperparameters = {
        "type": "object",
        "description": "Overrides of the model's default hyperparameters; keys and types are checked by the operator "
        "against the model's defaults. Keys with a fixed set of values are checked here too.",
        "maxProperties": 64,
        # Typed properties make these keys visible to CEL; every other key is kept as written.
        "properties": {
            **{
                key: _str(f"One of {', '.join(values)}.", enum=list(values))
                for key, values in sorted(model_config.CHOICES.items())
            },
            # Free strings (checkpoint paths) are bounded here, so a huge value never reaches a pod's arguments.
            **{
                key: _str(
                    f"{param.meaning[:1].upper()}{param.meaning[1:]}.",
                    maxLength=param.max_length,
                    nullable=param.nullable,
                )
                for key, param in sorted(model_config.PARAMS.items())
                if param.kind in ("str", "path")
            },
        },
        "x-kubernetes-preserve-unknown-fields": True,
    }
    static_device = _obj(
        "The device of one rank, when no device plugin annotates pods.",
        {
            "podIndex": _int("Worker index (0..replicas-1).", minimum=0, maximum=4095),
            "serverId": _str("Server id (usually the node IP).", minLength=1, maxLength=64),
            "deviceId": _str("Device id on the server.", pattern="^[0-9]+$", maxLength=4),
            "deviceIp": _str(
                "Device (NIC) IPv4 address.",
                minLength=7,
                maxLength=15,
                **{
                    "x-kubernetes-validations": [
                        {
                            # CEL's IP library (Kubernetes 1.31+); spec.py checks the same with ipaddress.IPv4Address.
                            "rule": "isIP(self) && ip(self).family() == 4",
                            "message": "must be an IPv4 address like 192.168.100.101",
                        }
                    ]
                },
            ),
            "superDeviceId": _str("Super device id (rank table 1.2).", maxLength=16),
        },
        required=["podIndex", "serverId", "deviceId", "deviceIp"],
    )
    rank_table = _obj(
        "HCCL rank table options (launch: ranktable).",
        {
            "version": _str(
                "Rank table format; HCCL refuses one that does not match the chip (default: 1.0 "
                "on 910 and 910B, 1.2 on A3).",
                enum=RANK_TABLE_VERSIONS,
            ),
            "staticDevices": {
                "type": "array",
                "description": "Fixed device assignment per worker index, instead of device-plugin annotations.",
                "maxItems": 4096,
                "items": static_device,
                "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["podIndex"],
            },
        },
    )
    run_policy = _obj(
        "What happens on failure, and when things are cleaned up.",
        {
            "backoffLimit": _int(
                "Whole-gang restarts allowed on retryable failures.", minimum=0, maximum=100, default=3
            ),
            "processRestarts": _int(
                "Times zoo-launch restarts a crashed training process inside its running pod before the pod "
                "fails and the whole gang restarts (issue 23; unset: zoo-launch's default, 3; 0: never, the whole gang "
                "restarts). With it on, a lost worker pod of a dynamic launch is recreated alone. Not counted against "
                "backoffLimit.",
                minimum=0,
                maximum=100,
            ),
            "activeDeadlineSeconds": _int("Fail the job when it has run this long (s).", minimum=1),
            "ttlSecondsAfterFinished": _int("Delete the job this long after it finished (s).", minimum=0),
            "cleanPodPolicy": _str(
                "Pods deleted when the job finishes: All, the still Running ones, or None.",
                enum=CLEAN_POD_POLICIES,
                default="Running",
            ),
            "schedulingTimeoutSeconds": _int(
                "Fail the job when a rank stays unscheduled or cannot pull its image this long (s).",
                minimum=1,
                default=600,
            ),
            "suspend": {
                "type": "boolean",
                "default": False,
                "description": "Delete the pods and keep the status; recreate them when set back to false.",
            },
        },
    )
    scheduling = _obj(
        "Scheduler, gang scheduling (Volcano) and queueing (Kueue).",
        {
            "schedulerName": _str("Pod scheduler (gang: volcano).", maxLength=253),
            "gang": {
                "type": "boolean",
                "description": "All pods or none: a PodGroup with all pods as its minimum (default false; "
                "true for Ascend jobs where the operator settings say the cluster runs "
                "Volcano).",
            },
            "gangBackend": _str(
                "Who schedules the gang: volcano (Volcano PodGroup, schedulerName volcano) or "
                "kubernetes (the kube-scheduler's own gang scheduling, Kubernetes >= 1.35 with the "
                "GenericWorkload and GangScheduling feature gates: scheduling.k8s.io/v1alpha2 "
                "PodGroup); default from the operator settings.",
                enum=GANG_BACKENDS,
            ),
            "queue": _str("Kueue LocalQueue name.", maxLength=253),
            "priorityClassName": _str("PriorityClass of the pods.", maxLength=253),
        },
        **{
            "x-kubernetes-validations": [
                {
                    "rule": "!has(self.gang) || !self.gang || !has(self.schedulerName) || self.schedulerName == 'volcano'",
                    "message": "spec.scheduling.schedulerName must be 'volcano' (or unset) when spec.scheduling.gang is true",
                }
            ]
        },
    )
    pod_template = _obj(
        "Additions to every pod the operator creates.",
        {
            "nodeSelector": {
                "type": "object",
                "maxProperties": 64,
                "additionalProperties": {"type": "string", "maxLength": 63},
                "description": "Node labels every pod's node must have.",
            },
            "tolerations": {
                "type": "array",
                "maxItems": 64,
                "items": _free("A core/v1 Toleration."),
                "description": "Tolerations of every pod (core/v1 Toleration).",
            },
            "env": {
                "type": "array",
                "maxItems": 256,
                "description": "Environment variables added to the worker container.",
                "items": _obj(
                    "A core/v1 EnvVar.",
                    {
                        "name": _str("Variable name.", minLength=1, maxLength=MAX_NAME),
                        "value": _str("Value.", maxLength=MAX_ENV_VALUE),
                        "valueFrom": _free("A core/v1 EnvVarSource."),
                    },
                    required=["name"],
                ),
            },
            "volumes": {
                "type": "array",
                "maxItems": 64,
                "items": _free("A core/v1 Volume."),
                "description": "Extra volumes of every pod (core/v1 Volume).",
            },
            "volumeMounts": {
                "type": "array",
                "maxItems": 64,
                "items": _free("A core/v1 VolumeMount (worker container)."),
                "description": "Extra mounts of the worker container (core/v1 VolumeMount).",
            },
        },
    )
    resources = _obj(
        "Container resources of every rank (the device is added by the operator).",
        {
            "requests": {
                "type": "object",
                "additionalProperties": {"x-kubernetes-int-or-string": True},
                "description": "Resource requests (cpu, memory, ...) of the worker container.",
            },
            "limits": {
                "type": "object",
                "additionalProperties": {"x-kubernetes-int-or-string": True},
                "description": "Resource limits (cpu, memory, ...) of the worker container.",
            },
        },
    )
    return _obj(
        "What to train, on what, and how.",
        {
            "model": _str(
                "ModelZoo model (or spec.command: your own command instead).", enum=model_config.model_names()
            ),
            "image": _str(
                "Workload image (default from the operator settings by device type; required with "
                "spec.command).",
                maxLength=MAX_IMAGE,
            ),
            "command": {
                "type": "array",
                "description": "Your own command instead of a built-in model (with spec.image): run on every rank "
                "(and the dynamic launch's scheduler) through zoo-launch when the image has it, "
                "with the rank table or dynamic-launch environment set (docs/contracts.md "
                '"Your own command"). Not with spec.model.',
                "minItems": 1,
                "maxItems": MAX_COMMAND_ITEMS,
                "items": {"type": "string", "minLength": 1, "maxLength": MAX_ARG},
            },
            "args": {
                "type": "array",
                "description": "Arguments appended to spec.command.",
                "maxItems": MAX_ARGS_ITEMS,
                "items": {"type": "string", "maxLength": MAX_ARG},
            },
            "workingDir": _str(
                "Working directory of spec.command (default: the image's).", pattern="^/", maxLength=MAX_PATH
            ),
            "device": device,
            "replicas": _int(
                "Ranks = devices = worker pods (replicas/perNode pods with device.podsPer server).",
                minimum=1,
                maximum=4096,
                default=1,
            ),
            "launch": _str(
                "How ranks find each other (default: ranktable on Ascend910, dynamic elsewhere).",
                enum=LAUNCH_MODES,
            ),
            "task": _str(
                "What the pods do: train (default; with `from`: fine-tune), evaluate or export the "
                "checkpoint of the job named in `from`.",
                enum=TASKS,
                default="train",
            ),
            "from": source,
            "dataset": dataset,
            "hyperparameters": hyperparameters,
            "checkpoint": checkpoint,
            "resources": resources,
            "rankTable": rank_table,
            "runPolicy": run_policy,
            "scheduling": scheduling,
            "podTemplate": pod_template,
        },
        required=["device"],
        **{"x-kubernetes-validations": _spec_rules() + _command_rules()},
    )


@functools.cache
def _spec_tree() -> Schema:
    return {"type": "object", "properties": {"spec": _spec()}}


def field(path: str) -> Schema:
    """The OpenAPI schema of one field by its path (`spec.runPolicy.backoffLimit`): the one source of its type,
    bounds, enum and default, which spec.py reads instead of repeating them. KeyError for an unknown path."""
    node = _spec_tree()
    for part in path.split("."):
        node = node["properties"][part]
    return node


def _thor_default_models() -> list[str]:
    return [
        m
        for m in model_config.model_names()
        if model_config.default_hyperparameters(m).get("optimizer") == contract.THOR
    ]


def _spec_rules() -> list[Schema]:
    """Cross-field rules; each message names the field and what is allowed."""
    return [
        {
            "rule": "!has(self.device.perNode) || self.replicas % self.device.perNode == 0",
            "message": "spec.replicas must be a multiple of spec.device.perNode",
        },
        {
            "rule": "!has(self.launch) || self.launch != 'ranktable' || self.device.type == 'Ascend910'",
            "message": "spec.launch: ranktable requires spec.device.type Ascend910; use dynamic for GPU and CPU",
        },
        {
            "rule": "self.device.type != 'CPU' || !has(self.device.resourceName)",
            "message": "spec.device.resourceName: CPU jobs request no device resource; remove it",
        },
        {
            "rule": "self.device.type != 'CPU' || !has(self.hyperparameters) || !has(self.hyperparameters.optimizer)"
            f" || self.hyperparameters.optimizer != '{contract.THOR}'",
            "message": f"spec.hyperparameters.optimizer: {contract.THOR_ON_CPU}",
        },
        {
            # A model whose default optimizer is THOR (the workload's table) must name another one on CPU.
            "rule": "self.device.type != 'CPU' || !has(self.model) || !(self.model in "
            f"{_thor_default_models()}) || (has(self.hyperparameters) && has(self.hyperparameters.optimizer))",
            "message": f"spec.hyperparameters.optimizer: the model's default optimizer {contract.THOR_ON_CPU}",
        },
        {
            "rule": "!has(self.device.podsPer) || self.device.podsPer != 'server' || (self.device.type == "
            "'Ascend910' && has(self.device.perNode))",
            "message": "spec.device.podsPer: server needs spec.device.type Ascend910 and spec.device.perNode "
            "(one pod per server holds perNode NPUs)",
        },
        {
            "rule": "!has(self.device.chip) || self.device.type == 'Ascend910'",
            "message": "spec.device.chip: only for spec.device.type Ascend910",
        },
        {
            "rule": "has(self.dataset) || (has(self.task) && self.task == 'export') || has(self.command)",
            "message": "spec.dataset: required (volume, trainPath, numClasses) unless spec.task is export",
        },
        {
            "rule": "!has(self.task) || self.task == 'train' || has(self.from)",
            "message": "spec.from: required for spec.task evaluate and export (the job whose checkpoint to use)",
        },
        {
            "rule": "!has(self.task) || self.task == 'train' || self.replicas == 1",
            "message": "spec.replicas: spec.task evaluate and export run one process; set 1",
        },
        {
            "rule": "!has(self.from) || !has(self.checkpoint) || !has(self.checkpoint.resumeFrom)",
            "message": "spec.checkpoint.resumeFrom and spec.from: choose one",
        },
        {
            "rule": "!has(self.rankTable) || !has(self.rankTable.staticDevices) || self.device.type == 'Ascend910'",
            "message": "spec.rankTable.staticDevices is only allowed with spec.device.type Ascend910",
        },
        {
            "rule": "!has(self.rankTable) || !has(self.rankTable.staticDevices)"
            " || self.rankTable.staticDevices.all(d, d.podIndex < self.replicas)",
            "message": "spec.rankTable.staticDevices[].podIndex must be less than spec.replicas",
        },
    ]


def _command_rules() -> list[Schema]:
    """spec.command (your own command) against spec.model and what only a built-in model understands."""
    return [
        {
            "rule": "has(self.model) || has(self.command)",
            "message": "spec.model: required (a built-in model), or spec.command with spec.image to run your own",
        },
        {
            "rule": "!has(self.model) || !has(self.command)",
            "message": "spec.model and spec.command are mutually exclusive: a built-in model, or your own command",
        },
        {
            "rule": "!has(self.command) || has(self.image)",
            "message": "spec.image: required with spec.command (the image that holds your command)",
        },
        {
            "rule": "has(self.command) || (!has(self.args) && !has(self.workingDir))",
            "message": "spec.args and spec.workingDir: only with spec.command",
        },
        {
            "rule": "!has(self.command) || !has(self.hyperparameters)",
            "message": "spec.hyperparameters: only for a built-in spec.model; pass your own flags in spec.args",
        },
        {
            "rule": "!has(self.command) || ((!has(self.task) || self.task == 'train') && !has(self.from))",
            "message": "spec.task and spec.from: only for a built-in spec.model (spec.command runs as written)",
        },
    ]


def _condition() -> Schema:
    return _obj(
        "A condition of the job.",
        {
            "type": _str(
                "Created, RankTableReady, Running, Restarting, Succeeded, Failed, Suspended, PodGroupReady."
            ),
            "status": _str("True, False or Unknown.", enum=["True", "False", "Unknown"]),
            "reason": _str("CamelCase reason."),
            "message": _str("Human-readable detail."),
            "lastTransitionTime": _str("When status last changed.", format="date-time"),
            "observedGeneration": {
                "type": "integer",
                "format": "int64",
                "description": "metadata.generation of the spec this condition was set from.",
            },
        },
        required=["type", "status"],
    )


def _num(description: str) -> Schema:
    return {"type": "number", "description": description}


def _saved(description: str) -> Schema:
    """A checkpoint with the epoch it holds and the metrics of THAT epoch."""
    return _obj(
        description,
        {
            "epoch": _int("The epoch whose weights it holds."),
            "checkpoint": _str("The file, relative to `volume`."),
            "volume": _str("The volume holding it, as named in the spec."),
            "metrics": {
                "type": "object",
                "additionalProperties": {"type": "number"},
                "description": "Metrics of that epoch (eval metrics and its training loss).",
            },
        },
    )


def _status() -> Schema:
    def number(description: str) -> Schema:
        return {"type": "number", "description": description}

    rank = _obj(
        "Summary of one rank (bounded).",
        {
            "rank": _int(
                "Worker index, or -1 for the scheduler; a server pod's lowest rank (from its log; before "
                "its first line, index x perNode)."
            ),
            "ranks": _int("Ranks the pod holds, when more than one (spec.device.podsPer server)."),
            "pod": _str("Pod name."),
            "node": _str("Node the pod ran on."),
            "phase": _str("Pod phase."),
            "reason": _str("Why the container waits or ended."),
            "exitCode": _int("Container exit code."),
            "lastLines": {
                "type": "array",
                "items": {"type": "string"},
                "description": "Last human log lines (no JSON event lines, no MindSpore INFO/WARNING "
                "banners); kept after the pod is gone.",
            },
        },
    )
    return _obj(
        "What the operator observed.",
        {
            "model": _str(f"spec.model, or for spec.command `{CUSTOM_MODEL}:` and the command's basename."),
            "phase": _str("Pending, Running, Restarting, Succeeded, Failed or Suspended.", enum=PHASES),
            "reason": _str("Reason of the current phase."),
            "message": _str("Detail of the current phase."),
            "conditions": {
                "type": "array",
                "description": "Created, RankTableReady, Running, Restarting, Succeeded, Failed, Suspended, "
                "PodGroupReady.",
                "items": _condition(),
                "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["type"],
            },
            "observedGeneration": {
                "type": "integer",
                "format": "int64",
                "description": "metadata.generation of the spec this status was computed from.",
            },
            "ranks": _obj(
                "Worker pod counts.",
                {k: _int(f"{k} workers.") for k in ["total", "pending", "active", "succeeded", "failed"]},
            ),
            "rankTable": _obj(
                "The HCCL rank table.",
                {
                    "configMap": _str("ConfigMap holding hccl.json."),
                    "version": _str("Format version."),
                    "status": _str("initializing or completed."),
                    "devicesKnown": _int("Ranks whose device is known."),
                },
            ),
            "progress": _obj(
                "Training progress (rank 0).",
                {
                    "epoch": _int("Current epoch (1-based)."),
                    "epochs": _int("Epochs to train."),
                    "step": _int("Step within the epoch (1-based)."),
                    "stepsPerEpoch": _int("Steps per epoch."),
                    "loss": number("Loss of the last step or epoch."),
                    "imagesPerSecond": number("Training throughput of all ranks together (images/s)."),
                    "globalBatchSize": _int("Images per step, all ranks together (for the ETA)."),
                    "stage": _str(
                        "What a Running job does: Starting (before the workload's first log event), "
                        "Compiling (graph compilation, before the first step), Training; Done once "
                        "Succeeded.",
                        enum=PROGRESS_STAGES,
                    ),
                    "display": _str("Epoch as `epoch/epochs` (the EPOCH column)."),
                    "stepDisplay": _str("Step as `step/stepsPerEpoch` (the STEP column)."),
                    "eta": _str(
                        "Estimated time left (e.g. 3m05s), from the last epoch's duration or images/s."
                    ),
                    "updateTime": _str("When progress last changed.", format="date-time"),
                },
            ),
            "history": {
                "type": "array",
                "description": f"Per-epoch history of rank 0, kept for the job's life: at most {HISTORY_MAX} "
                "entries, thinned evenly beyond (first and latest epoch always kept).",
                "maxItems": HISTORY_MAX,
                "items": _obj(
                    "One epoch.",
                    {
                        "epoch": _int("Epoch (1-based)."),
                        "loss": number("Mean training loss of the epoch."),
                        "top1": number("Top-1 accuracy of the evaluation after this epoch (0..1)."),
                        "top5": number("Top-5 accuracy of the evaluation after this epoch (0..1)."),
                        "imagesPerSecond": number("Training throughput of the epoch, all ranks (images/s)."),
                        "seconds": number("Duration of the epoch (s)."),
                        "time": _str("When the epoch ended.", format="date-time"),
                    },
                    required=["epoch"],
                ),
            },
            "rankSummaries": {
                "type": "array",
                "items": rank,
                "maxItems": 4097,
                "description": "One summary per pod (ranks and the scheduler).",
            },
            "result": _obj(
                "Final result from rank 0's termination message; paths are relative to the volume named "
                "next to them.",
                {
                    "top1": _num("Top-1 accuracy of the checkpoint named in `checkpoint`."),
                    "top5": _num("Top-5 accuracy of the checkpoint named in `checkpoint`."),
                    "metrics": {
                        "type": "object",
                        "additionalProperties": {"type": "number"},
                        "description": "Every metric of the checkpoint named in `checkpoint`.",
                    },
                    "checkpoint": _str(
                        "The checkpoint to use (the best, else the last), relative to checkpointVolume."
                    ),
                    "checkpointVolume": _str(
                        "The volume holding it, as named in the spec (e.g. "
                        "persistentVolumeClaim/NAME, hostPath:/PATH, emptyDir)."
                    ),
                    "epoch": _int("evaluate/export: the epoch of the checkpoint used."),
                    "best": _saved("The checkpoint with the highest top-1."),
                    "last": _saved("The checkpoint of the last epoch saved."),
                    "artifact": _str("export: the exported model file, relative to artifactVolume."),
                    "artifactVolume": _str("export: the volume holding the artifact."),
                },
            ),
            "source": _obj(
                "spec.from, resolved when the job started.",
                {
                    "job": _str("The job started from."),
                    "checkpoint": _str("best or last."),
                    "model": _str("Its model."),
                    "volume": _str("Its checkpoint volume, as named in its spec."),
                    "volumeSource": _free("Its checkpoint volume source (mounted at /zoo/from)."),
                    "path": _str("The checkpoint, relative to that volume."),
                    "epoch": _int("The epoch the checkpoint holds."),
                    "metrics": {
                        "type": "object",
                        "additionalProperties": {"type": "number"},
                        "description": "What the source job reported for that checkpoint.",
                    },
                },
            ),
            "restarts": _int("Whole-gang restarts so far."),
            "stoppedRestarts": _int(
                "Restarts after a graceful stop (exit 79: a checkpoint was written on "
                "SIGTERM); they do not count against backoffLimit."
            ),
            "processRestarts": _int(
                "Times the training processes restarted inside their running pods (zoo-launch's in-place "
                "recovery after a crash; no pod recreated, not counted against backoffLimit)."
            ),
            "lastCheckpoint": _obj(
                "The newest checkpoint rank 0 wrote.",
                {
                    "epoch": _int("Epoch (1-based) it was written in."),
                    "step": _int("Steps done within that epoch (= steps per epoch at an epoch's end)."),
                    "path": _str("Path inside the checkpoint volume."),
                    "time": _str("When it was written.", format="date-time"),
                },
            ),
            "resumes": {
                "type": "array",
                "description": "Where training resumed from, per start that found a checkpoint (the last 20).",
                "maxItems": 20,
                "items": _obj(
                    "One resume.",
                    {
                        "restart": _int("The whole-gang restart (status.restarts) it belongs to."),
                        "epoch": _int("Epoch of the checkpoint resumed from."),
                        "step": _int("Steps done within that epoch."),
                        "path": _str("The checkpoint."),
                        "lostSteps": _int("Steps trained before the restart that had to be done again."),
                        "inPlace": {
                            "type": "boolean",
                            "description": "The processes restarted inside their pods (no pod recreated).",
                        },
                        "time": _str("When training resumed.", format="date-time"),
                    },
                ),
            },
            "faults": {
                "type": "array",
                "description": "Hardware faults met by the job's ranks (issue 23): a node that was not Ready, an NPU "
                "the Ascend device plugin reported unhealthy (the last 20). Each restarted the gang away from it, "
                "not counted against spec.runPolicy.backoffLimit.",
                "maxItems": 20,
                "items": _obj(
                    "One fault of one rank.",
                    {
                        "time": _str("When the operator detected it.", format="date-time"),
                        "reason": _str("What kind of fault.", enum=list(conditions.FAULT_REASONS)),
                        "node": _str("The node the rank ran on."),
                        "device": _int("The physical NPU id (NPU faults)."),
                        "pod": _str("The rank's pod."),
                        "restart": _int("The whole-gang restart (status.restarts) the pod belonged to."),
                        "message": _str("What was seen."),
                    },
                ),
            },
            "restartTime": _str(
                "When the last whole-gang restart began (pods come back after a backoff).", format="date-time"
            ),
            "startTime": _str("When the operator first created pods.", format="date-time"),
            "completionTime": _str("When the job succeeded or failed.", format="date-time"),
        },
    )


def printer_columns() -> list[Schema]:
    """The columns `kubectl get ztj` shows."""
    return [
        {"name": "Model", "type": "string", "jsonPath": ".status.model"},
        {"name": "Devices", "type": "integer", "jsonPath": ".spec.replicas"},
        {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
        {
            "name": "Stage",
            "type": "string",
            "jsonPath": ".status.progress.stage",
            "description": "Starting, Compiling, Training or Done.",
        },
        {
            "name": "Epoch",
            "type": "string",
            "jsonPath": ".status.progress.display",
            "description": "epoch/epochs",
        },
        {
            "name": "Step",
            "type": "string",
            "jsonPath": ".status.progress.stepDisplay",
            "description": "step/stepsPerEpoch",
        },
        {"name": "Loss", "type": "number", "jsonPath": ".status.progress.loss"},
        {"name": "Top-1", "type": "number", "jsonPath": ".status.result.top1"},
        {"name": "ETA", "type": "string", "jsonPath": ".status.progress.eta"},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
        # -o wide only (priority 1).
        {"name": "Restarts", "type": "integer", "jsonPath": ".status.restarts", "priority": 1},
        {"name": "Reason", "type": "string", "jsonPath": ".status.reason", "priority": 1},
        {"name": "Images/s", "type": "number", "jsonPath": ".status.progress.imagesPerSecond", "priority": 1},
        {
            "name": "Command",
            "type": "string",
            "jsonPath": ".spec.command[0]",
            "priority": 1,
            "description": "spec.command's program (jobs that run your own command).",
        },
    ]


def crd() -> Schema:
    """The complete CustomResourceDefinition object."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": CRD_NAME, "labels": {"app.kubernetes.io/part-of": "zoo-operator"}},
        "spec": {
            "group": GROUP,
            "names": {
                "kind": KIND,
                "listKind": f"{KIND}List",
                "plural": PLURAL,
                "singular": SINGULAR,
                "shortNames": SHORT_NAMES,
                "categories": ["all", "modelzoo"],
            },
            "scope": "Namespaced",
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": printer_columns(),
                    "schema": {
                        "openAPIV3Schema": _obj(
                            "A MindSpore ModelZoo training job: one pod per device, an HCCL rank table, progress in status.",
                            {
                                "apiVersion": _str("Versioned schema of this object: modelzoo.io/v1alpha1."),
                                "kind": _str("ZooTrainingJob."),
                                # The apiserver refuses anything but type here (metadata is implicitly specified).
                                "metadata": {"type": "object"},
                                "spec": _spec(),
                                "status": _status(),
                            },
                            required=["spec"],
                        )
                    },
                }
            ],
        },
    }
