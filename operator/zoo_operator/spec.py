"""Parse and validate a ZooTrainingJob into a plain, fully defaulted `JobSpec`.

Checks everything the CRD checks (so `zoo-operator render` refuses what the apiserver refuses) plus what CEL
cannot: hyperparameter keys and types against the model's defaults, name lengths, static device maps.
Errors are `InvalidSpec` with one line per problem, each starting with the field path.
"""

from __future__ import annotations

import dataclasses
import hashlib
import ipaddress
import json
import posixpath
import re
from collections.abc import Mapping, Sequence
from typing import Any

from zoo_operator import ascend, inputlimits, platform_policy, schema
from zoo_operator import conditions as c
from zoo_operator.settings import Settings
from zoo_workloads import config as model_config
from zoo_workloads import contract
from zoo_workloads.config import quote

DEFAULT_RESOURCE = {"Ascend910": "huawei.com/Ascend910", "GPU": "nvidia.com/gpu"}
DEFAULT_SCHED_PORT = 8118
_DNS_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_VOLUME_SOURCES = ("persistentVolumeClaim", "hostPath", "nfs", "emptyDir")
# Seconds a rank gets on SIGTERM to finish its step and write a checkpoint (spec.checkpoint.stopGracePeriodSeconds).
DEFAULT_STOP_GRACE_SECONDS = schema.STOP_GRACE_SECONDS


class InvalidSpec(ValueError):
    """A ZooTrainingJob the operator refuses; `problems` are one-line messages starting with the field path."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__(bounded_message(problems))
        self.problems = problems


# Bounds of InvalidSpec's message (it becomes status.message, a condition and an Event): each problem is cut to
# PROBLEM_CHARS, at most MAX_PROBLEMS are listed, so a 900 KB value never reaches status.
PROBLEM_CHARS = 600
MAX_PROBLEMS = 10
# Longest string field the operator accepts where the CRD sets no smaller bound.
MAX_STRING = 1024


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def bounded_message(problems: list[str]) -> str:
    """The one-line message of a list of problems, at most ~6 KB whatever the input."""
    shown = [_cut(" ".join(p.split()), PROBLEM_CHARS) for p in problems[:MAX_PROBLEMS]]
    more = len(problems) - len(shown)
    return "; ".join(shown) + (f"; and {more} more problem(s)" if more > 0 else "")


@dataclasses.dataclass(frozen=True)
class StaticDevice:
    """The device of one worker, given in spec.rankTable.staticDevices."""

    pod_index: int
    server_id: str
    device_id: str
    device_ip: str
    super_device_id: str | None = None


@dataclasses.dataclass(frozen=True, kw_only=True)
class JobSpec:
    """A validated job with every default applied."""

    name: str
    namespace: str
    uid: str
    generation: int
    model: str
    image: str
    device_type: str
    resource_name: str | None
    per_node: int | None
    replicas: int
    launch: str
    dataset_volume: dict[str, Any]
    train_path: str
    eval_path: str | None
    num_classes: int
    hyperparameters: dict[str, Any]
    checkpoint_volume: dict[str, Any]
    checkpoint_path: str
    resume_from: str | None
    checkpoint_keep: int | None = None
    stop_grace_seconds: int = DEFAULT_STOP_GRACE_SECONDS
    resources: dict[str, Any]
    rank_table_version: str
    static_devices: tuple[StaticDevice, ...]
    backoff_limit: int
    process_restarts: int | None = None  # spec.runPolicy.processRestarts; None: zoo-launch's default
    active_deadline_seconds: int | None
    ttl_seconds_after_finished: int | None
    clean_pod_policy: str
    scheduling_timeout_seconds: int
    suspend: bool
    scheduler_name: str | None
    gang: bool
    gang_backend: str
    queue: str | None
    priority_class_name: str | None
    node_selector: dict[str, str]
    tolerations: list[dict[str, Any]]
    env: list[dict[str, Any]]
    volumes: list[dict[str, Any]]
    volume_mounts: list[dict[str, Any]]
    ascend: ascend.AscendPod | None = None
    """The Ascend parts of the worker pods (chip, node selector, mounts); None on GPU and CPU."""
    # issue 13: what the pods do (train | evaluate | export) and the finished job they start from.
    task: str = c.TASK_TRAIN
    from_job: str | None = None
    from_checkpoint: str = "best"
    checkpoint_volume_set: bool = False  # spec.checkpoint names storage (else the emptyDir default)
    source: Any = None  # results.Source once spec.from is resolved against the named job (reconcile)
    # The workload containers' ids (Settings.pod_*): non-root so pods pass Pod Security `restricted`.
    run_as_user: int = 1000
    run_as_group: int = 1000
    fs_group: int = 1000
    supplemental_groups: tuple[int, ...] = ()
    # spec.image as written (None: the operator's default, which is not part of the gang's identity, so an
    # operator upgrade with a new default image does not restart running jobs).
    spec_image: str | None = None
    # issue 26: your own command instead of a built-in model (spec.command, spec.args, spec.workingDir); model is
    # then schema.CUSTOM_MODEL. Empty for a built-in model.
    user_command: tuple[str, ...] = ()
    user_args: tuple[str, ...] = ()
    working_dir: str | None = None
    # issue 21: spec.device.podsPer: one pod per device (contract.PODS_PER_DEVICE) or per server (PODS_PER_SERVER).
    pods_per: str = contract.PODS_PER_DEVICE

    @property
    def custom(self) -> bool:
        """Whether the job runs the user's own command (spec.command) rather than a built-in model."""
        return bool(self.user_command)

    @property
    def devices_per_pod(self) -> int:
        """Devices (ranks, training processes) in one worker pod: perNode in server mode, else 1."""
        return (self.per_node or 1) if self.pods_per == contract.PODS_PER_SERVER else 1

    @property
    def workers(self) -> int:
        """Worker pods of one attempt: one per rank, or one per server (replicas / perNode) in server mode."""
        return self.replicas // self.devices_per_pod

    @property
    def pod_count(self) -> int:
        """Pods of one attempt: the workers plus the scheduler of a dynamic launch."""
        return self.workers + (1 if self.launch == "dynamic" else 0)


def _map(value: Any, path: str, problems: list[str]) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        problems.append(f"{path}: must be an object")
        return {}
    return dict(value)


def _list(value: Any, path: str, problems: list[str]) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        problems.append(f"{path}: must be a list")
        return []
    return value


_NO_DEFAULT = object()


def _int(
    value: Any,
    path: str,
    problems: list[str],
    *,
    minimum: int | None = None,
    maximum: int | None = None,
    default: Any = _NO_DEFAULT,
) -> int | None:
    """An integer field; bounds and default come from the CRD's schema (schema.field) unless given here (only
    bounds the schema cannot state, such as a pod index below spec.replicas)."""
    declared = schema.field(path) if minimum is None else {}
    minimum = int(declared.get("minimum", 0)) if minimum is None else minimum
    maximum = declared.get("maximum") if maximum is None else maximum
    default = declared.get("default") if default is _NO_DEFAULT else default
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        problems.append(f"{path}: must be an integer, got {quote(value)}")
        return default
    if value < minimum or (maximum is not None and value > maximum):
        bound = f">= {minimum}" if maximum is None else f"between {minimum} and {maximum}"
        problems.append(f"{path}: must be {bound}, got {value}")
        return default
    return value


def _enum(
    value: Any, path: str, allowed: Sequence[str] | None, problems: list[str], default: Any = _NO_DEFAULT
) -> str | None:
    """A choice; the allowed values and the default come from the CRD's schema unless given here (spec.model's
    come from the workload's model table, which the schema reads too)."""
    declared = schema.field(path)
    allowed = list(declared["enum"]) if allowed is None else list(allowed)
    default = declared.get("default") if default is _NO_DEFAULT else default
    if value is None:
        return default
    if value not in allowed:
        problems.append(f"{path}: must be one of {', '.join(allowed)}; got {quote(value)}")
        return default
    return str(value)


def _str(value: Any, path: str, problems: list[str], max_length: int = MAX_STRING) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        problems.append(f"{path}: must be a non-empty string")
        return None
    if len(value) > max_length:
        problems.append(
            f"{path}: too long ({len(value)} characters): must be at most {max_length}, "
            f"got {quote(value, 60)}"
        )
        return None
    return value


def _relative_path(value: Any, path: str, problems: list[str]) -> str | None:
    text = _str(value, path, problems)
    if text is None:
        return None
    if text.startswith("/"):
        problems.append(
            f"{path}: must be a relative path inside the volume (no leading /), got {quote(text)}"
        )
    elif ".." in text.split("/"):
        problems.append(f"{path}: must not contain '..' components, got {quote(text)}")
    return text


def _volume(value: Any, path: str, problems: list[str]) -> dict[str, Any]:
    vol = _map(value, path, problems)
    if len(vol) != 1 or next(iter(vol)) not in _VOLUME_SOURCES:
        problems.append(f"{path}: must set exactly one of {', '.join(_VOLUME_SOURCES)}")
        return vol
    kind, source = next(iter(vol.items()))
    source = source if isinstance(source, Mapping) else {}
    for key in ("claimName", "path", "server"):
        if key in source:
            _str(source[key], f"{path}.{kind}.{key}", problems)
    return vol


def _checkpoint_volume(ckpt: Mapping[str, Any], problems: list[str]) -> dict[str, Any]:
    """The checkpoint storage: claimName (a PVC), hostPath (a node directory, created if missing), a volume
    source, or an emptyDir (not durable: it goes with the pods)."""
    given = [key for key in ("claimName", "hostPath", "volume") if key in ckpt]
    if len(given) > 1:
        problems.append(
            f"spec.checkpoint: set at most one of claimName, hostPath and volume (got {', '.join(given)})"
        )
    claim, host = ckpt.get("claimName"), ckpt.get("hostPath")
    if "claimName" in ckpt:
        if not isinstance(claim, str) or not claim:
            problems.append("spec.checkpoint.claimName: must be a non-empty PersistentVolumeClaim name")
        return {"persistentVolumeClaim": {"claimName": str(claim)}}
    if "hostPath" in ckpt:
        if not isinstance(host, str) or not host.startswith("/"):
            problems.append(f"spec.checkpoint.hostPath: must be an absolute path, got {host!r}")
        return {"hostPath": {"path": str(host), "type": "DirectoryOrCreate"}}
    if "volume" in ckpt:
        return _volume(ckpt["volume"], "spec.checkpoint.volume", problems)
    return {"emptyDir": {}}


def default_checkpoint_path(meta: Mapping[str, Any]) -> str:
    """<namespace>/<name>-<uid[:8]>: one directory per job object, so a restart, suspend or operator restart
    finds the job's checkpoints and a new job that reuses the name (or the storage) does not."""
    name = str(meta.get("name") or "job")
    uid = str(meta.get("uid") or "")
    return (
        f"{meta.get('namespace') or 'default'}/{name}-{uid[:8]}"
        if uid
        else f"{meta.get('namespace') or 'default'}/{name}"
    )


def _hyperparameters(
    raw: Any, model: str | None, device_type: str | None, problems: list[str]
) -> dict[str, Any]:
    params = _map(raw, "spec.hyperparameters", problems)
    if model is None:
        return params
    defaults = model_config.default_hyperparameters(model)
    known: dict[str, Any] = {}
    for key, value in params.items():
        if key not in defaults:
            problems.append(
                f"spec.hyperparameters.{_cut(str(key), 80)}: unknown hyperparameter for "
                f"{model}; allowed: {', '.join(sorted(defaults))}"
            )
            continue
        # The one declaration of type and range (zoo_workloads.config.PARAMS), the same check the workload makes.
        problem = model_config.check(key, value)
        if problem is not None:
            problems.append(f"spec.hyperparameters.{problem}")
        else:
            known[key] = value
    # The effective optimizer, default included: multigrain defaults to THOR, which has no CPU kernels.
    optimizer = {**defaults, **known}.get("optimizer")
    how = "set" if params.get("optimizer") == optimizer else f"{model}'s default"
    problem = contract.optimizer_problem(
        optimizer, contract.DEVICE_ASCEND if device_type == "Ascend910" else device_type or "", how
    )
    if problem:
        problems.append(f"spec.hyperparameters.optimizer: {problem}")
    return params


def _static_devices(raw: Any, replicas: int, problems: list[str]) -> tuple[StaticDevice, ...]:
    items = _list(raw, "spec.rankTable.staticDevices", problems)
    devices: list[StaticDevice] = []
    seen_index: set[int] = set()
    seen_device: set[tuple[str, str]] = set()
    for i, item in enumerate(items):
        path = f"spec.rankTable.staticDevices[{i}]"
        entry = _map(item, path, problems)
        index = _int(entry.get("podIndex"), f"{path}.podIndex", problems, minimum=0, maximum=replicas - 1)
        server, device, ip = (entry.get(k) for k in ("serverId", "deviceId", "deviceIp"))
        if index is None or not all(isinstance(v, str) and v for v in (server, device, ip)):
            problems.append(f"{path}: needs podIndex < spec.replicas and string serverId, deviceId, deviceIp")
            continue
        if not str(device).isdigit():
            problems.append(f"{path}.deviceId: must be a number as a string, got {quote(device)}")
            continue
        if not is_ipv4(str(ip)):
            problems.append(f"{path}.deviceIp: must be an IPv4 address like 192.168.100.101, got {quote(ip)}")
            continue
        if index in seen_index:
            problems.append(f"{path}.podIndex: {index} is listed twice")
        if (server, device) in seen_device:
            problems.append(f"{path}: device {device} of server {server} is assigned to two pods")
        seen_index.add(index)
        seen_device.add((str(server), str(device)))
        sdid = entry.get("superDeviceId")
        devices.append(
            StaticDevice(index, str(server), str(device), str(ip), None if sdid is None else str(sdid))
        )
    missing = sorted(set(range(replicas)) - seen_index)
    if devices and missing:
        shown = ", ".join(map(str, missing[:8])) + (" ..." if len(missing) > 8 else "")
        problems.append(
            f"spec.rankTable.staticDevices: must list every worker index 0..{replicas - 1}; missing {shown}"
        )
    return tuple(sorted(devices, key=lambda d: d.pod_index))


# The JobSpec fields that define a running gang: a change to any of them is applied as a whole-gang restart, never
# as a pod added to (or recreated into) the running gang. Run-policy fields (backoffLimit, deadlines, suspend...)
# apply live.
GANG_FIELDS = (
    "model",
    "spec_image",
    "device_type",
    "resource_name",
    "per_node",
    "replicas",
    "launch",
    "dataset_volume",
    "train_path",
    "eval_path",
    "num_classes",
    "hyperparameters",
    "checkpoint_volume",
    "checkpoint_path",
    "resume_from",
    "resources",
    "rank_table_version",
    "static_devices",
    "node_selector",
    "tolerations",
    "env",
    "volumes",
    "volume_mounts",
    "scheduler_name",
    "priority_class_name",
    "queue",
    "gang",
)


# spec.command's fields: part of the gang only when set, so the hash of every built-in job stays what it was (an
# operator upgrade must not restart running gangs).
COMMAND_GANG_FIELDS = ("user_command", "user_args", "working_dir")


def gang_hash(job: JobSpec) -> str:
    """A short, stable hash of the gang-defining fields (pods carry it as an annotation)."""
    fields = {name: getattr(job, name) for name in GANG_FIELDS}
    fields.update({name: getattr(job, name) for name in COMMAND_GANG_FIELDS if getattr(job, name)})
    if (
        job.pods_per != contract.PODS_PER_DEVICE
    ):  # issue 21: only when set, so device-mode hashes stay as they were
        fields["pods_per"] = job.pods_per
    text = json.dumps(fields, sort_keys=True, default=lambda o: dataclasses.asdict(o))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def is_ipv4(text: str) -> bool:
    """Whether text is a dotted-quad IPv4 address (what HCCL's rank table needs for device_ip)."""
    try:
        ipaddress.IPv4Address(text)
    except ValueError:
        return False
    return True


DRA_NO_RANKTABLE = (
    "spec.launch: ranktable is not available with NPUs through DRA (operator setting "
    "ZOO_ASCEND_DRA_DEVICE_CLASS): hccl.json needs every NPU's device IP, and MindCluster's Ascend DRA driver "
    "publishes none (its ResourceSlice devices carry only type, physicId and chipName) and writes no pod "
    "annotation; use spec.launch: dynamic (the default there; HCCL finds the device IPs itself), with "
    "spec.device.podsPer device or server"
)
"""Why the rank-table launch is refused where NPUs come through DRA (server mode runs the dynamic launch there): a
table that can never complete would hold every pod for ZOO_RANKTABLE_TIMEOUT and then fail it, attempt after
attempt. Sources in docs/contracts.md "NPUs through DRA" (Ascend/mind-cluster
component/ascend-dynamic-resource-allocation internal/device/generation_910.go DeviceAttributes;
component/ascend-common/cdi/spec.go)."""


def _pods_per(
    device: Mapping[str, Any],
    device_type: str | None,
    per_node: int | None,
    static: bool,
    problems: list[str],
) -> str:
    """spec.device.podsPer (issue 21). Server mode is for Ascend jobs with perNode: the pod requests perNode NPUs
    and zoo-server-launch starts one process per NPU, finding each one's rank in hccl.json (rank-table launch:
    the device plugin's annotation of the whole server; a static map names one device per pod index, so it does
    not apply) or numbering them as msrun does (dynamic launch: rank = server index x perNode + local index)."""
    pods_per = _enum(device.get("podsPer"), "spec.device.podsPer", None, problems) or contract.PODS_PER_DEVICE
    if pods_per != contract.PODS_PER_SERVER:
        return pods_per
    need = []
    if device_type != "Ascend910":
        need.append(f"spec.device.type Ascend910 (got {device_type})")
    if not per_node:
        need.append("spec.device.perNode (the NPUs of one server)")
    if need:
        problems.append("spec.device.podsPer: server needs " + ", ".join(need))
    if static:
        problems.append(
            "spec.rankTable.staticDevices: not with spec.device.podsPer server (it names one device per pod); "
            "use the device plugin's annotations or podsPer device"
        )
    return pods_per


def _check_name(name: str, replicas: int, problems: list[str]) -> None:
    # Pod names are hostnames (<= 63 chars) and the job name is a Service name (DNS-1035 label).
    longest = f"{name}-worker-{replicas - 1}"
    if not _DNS_LABEL.match(name):
        problems.append(
            f"metadata.name: {quote(name)} must be a DNS-1035 label (a-z, 0-9, '-', starting with a letter)"
        )
    elif len(longest) > 63:
        problems.append(f"metadata.name: too long; pod name {quote(longest)} must be at most 63 characters")


def _string_list(
    value: Any, path: str, problems: list[str], *, max_items: int, non_empty: bool
) -> tuple[str, ...]:
    """A list of strings (spec.command, spec.args), each bounded like the CRD bounds it."""
    if value is None:
        return ()
    if not isinstance(value, list):
        problems.append(f"{path}: must be a list of strings, got {quote(value, 60)}")
        return ()
    if non_empty and not value:
        problems.append(f"{path}: must not be empty (the program to run, then its arguments)")
    if len(value) > max_items:
        problems.append(f"{path}: at most {max_items} items, got {len(value)}")
        return ()
    out: list[str] = []
    for i, item in enumerate(value):
        if not isinstance(item, str) or (non_empty and not item):
            problems.append(f"{path}[{i}]: must be a non-empty string, got {quote(item, 60)}")
        elif len(item) > schema.MAX_ARG:
            problems.append(
                f"{path}[{i}]: too long ({len(item)} characters): must be at most {schema.MAX_ARG}"
            )
        else:
            out.append(item)
    return tuple(out)


def user_command(
    spec: Mapping[str, Any], problems: list[str]
) -> tuple[tuple[str, ...], tuple[str, ...], str | None]:
    """spec.command, spec.args and spec.workingDir checked against each other and spec.model (the CRD's
    _command_rules, said the same way): (command, args, workingDir), command empty for a built-in model."""
    given = "command" in spec and spec.get("command") is not None
    command = _string_list(
        spec.get("command"), "spec.command", problems, max_items=schema.MAX_COMMAND_ITEMS, non_empty=True
    )
    args = _string_list(
        spec.get("args"), "spec.args", problems, max_items=schema.MAX_ARGS_ITEMS, non_empty=False
    )
    working_dir = _str(spec.get("workingDir"), "spec.workingDir", problems, schema.MAX_PATH)
    if working_dir is not None and not working_dir.startswith("/"):
        problems.append(f"spec.workingDir: must be an absolute path, got {quote(working_dir)}")
    if not given:
        if "args" in spec or "workingDir" in spec:
            problems.append("spec.args and spec.workingDir: only with spec.command")
        return (), (), None
    if spec.get("model") is not None:
        problems.append(
            "spec.model and spec.command are mutually exclusive: a built-in model, or your own command"
        )
    if not spec.get("image"):
        problems.append("spec.image: required with spec.command (the image that holds your command)")
    if spec.get("hyperparameters") is not None:
        problems.append(
            "spec.hyperparameters: only for a built-in spec.model; pass your own flags in spec.args"
        )
    if spec.get("task") not in (None, c.TASK_TRAIN) or spec.get("from") is not None:
        problems.append(
            "spec.task and spec.from: only for a built-in spec.model (spec.command runs as written)"
        )
    return command, args, working_dir


def display_model(spec: Mapping[str, Any]) -> str:
    """What the MODEL column (status.model) shows: spec.model, or `custom:<basename of spec.command[0]>`."""
    model = spec.get("model")
    if isinstance(model, str) and model:
        return model
    command = spec.get("command")
    if isinstance(command, list) and command and isinstance(command[0], str) and command[0]:
        # `python train.py`: the script says more than the interpreter.
        shown = next((a for a in command[1:] if isinstance(a, str) and a.endswith(".py")), command[0])
        return f"{schema.CUSTOM_MODEL}:{posixpath.basename(shown.rstrip('/'))}"[:64]
    return schema.CUSTOM_MODEL if command else ""


def parse(body: Mapping[str, Any], settings: Settings) -> JobSpec:
    """A validated, defaulted JobSpec from a ZooTrainingJob object; raises InvalidSpec listing every problem."""
    problems: list[str] = []
    meta = _map(body.get("metadata"), "metadata", problems)
    spec = _map(body.get("spec"), "spec", problems)
    model = _enum(spec.get("model"), "spec.model", model_config.model_names(), problems, None)
    command, args, working_dir = user_command(spec, problems)
    if command or (spec.get("command") is not None and "model" not in spec):
        model = schema.CUSTOM_MODEL
    elif "model" not in spec:
        problems.append(f"spec.model: required; one of {', '.join(model_config.model_names())}")
    device = _map(spec.get("device"), "spec.device", problems)
    device_type = _enum(device.get("type"), "spec.device.type", None, problems)
    if device_type is None and "type" not in device:
        problems.append(f"spec.device.type: required; one of {', '.join(schema.DEVICE_TYPES)}")
    resource_name = _str(device.get("resourceName"), "spec.device.resourceName", problems)
    if device_type == "CPU" and resource_name:
        problems.append("spec.device.resourceName: CPU jobs request no device resource; remove it")
    resource_name = None if device_type == "CPU" else resource_name or DEFAULT_RESOURCE.get(device_type or "")
    per_node = _int(device.get("perNode"), "spec.device.perNode", problems)
    replicas = _int(spec.get("replicas"), "spec.replicas", problems) or 1
    if per_node and replicas % per_node:
        problems.append(
            f"spec.replicas must be a multiple of spec.device.perNode ({replicas} % {per_node} != 0)"
        )
    # NPUs through DRA (issue 21): no rank table there (DRA_NO_RANKTABLE), so the dynamic launch is the default.
    dra = device_type == "Ascend910" and bool(settings.ascend_dra_device_class)
    default_launch = "ranktable" if device_type == "Ascend910" and not dra else "dynamic"
    launch = _enum(spec.get("launch"), "spec.launch", None, problems, default_launch)
    if dra and launch == "ranktable":
        problems.append(DRA_NO_RANKTABLE)
    task = _enum(spec.get("task"), "spec.task", None, problems) or c.TASK_TRAIN
    source = _map(spec.get("from"), "spec.from", problems)
    from_job = _str(source.get("job"), "spec.from.job", problems)
    if source and from_job is None and "job" not in source:
        problems.append("spec.from.job: required, the name of a Succeeded ZooTrainingJob in this namespace")
    from_checkpoint = _enum(source.get("checkpoint"), "spec.from.checkpoint", None, problems) or "best"
    if task != c.TASK_TRAIN:
        if not source:
            problems.append(f"spec.from: required for spec.task {task} (the job whose checkpoint to use)")
        if replicas != 1:
            problems.append(f"spec.replicas: spec.task {task} runs one process; set 1, got {replicas}")
        launch = c.LAUNCH_SINGLE  # one process: no scheduler pod, no rank table
    if model == schema.CUSTOM_MODEL and replicas == 1 and spec.get("launch") is None:
        # One process of your own: no cluster to join, so no scheduler pod (whose early exit would leave the
        # worker resolving its name) and no rank table.
        launch = c.LAUNCH_SINGLE
    if launch == "ranktable" and device_type not in (None, "Ascend910"):
        problems.append(
            "spec.launch: ranktable requires spec.device.type Ascend910; use dynamic for GPU and CPU"
        )

    dataset = _map(spec.get("dataset"), "spec.dataset", problems)
    if not dataset and task != c.TASK_EXPORT and model != schema.CUSTOM_MODEL:
        problems.append("spec.dataset: required (volume, trainPath, numClasses)")
    dataset_volume = _volume(dataset.get("volume"), "spec.dataset.volume", problems) if dataset else {}
    train_path = _relative_path(dataset.get("trainPath"), "spec.dataset.trainPath", problems)
    if dataset and train_path is None and "trainPath" not in dataset:
        problems.append("spec.dataset.trainPath: required, a path relative to the volume root")
    eval_path = _relative_path(dataset.get("evalPath"), "spec.dataset.evalPath", problems)
    num_classes = _int(dataset.get("numClasses"), "spec.dataset.numClasses", problems)
    if dataset and num_classes is None and "numClasses" not in dataset:
        problems.append("spec.dataset.numClasses: required, an integer >= 2")
    if task == c.TASK_EXPORT and not dataset:
        dataset_volume, train_path, num_classes = (
            {"emptyDir": {}},
            ".",
            0,
        )  # export reads classes from the run
    if model == schema.CUSTOM_MODEL and not dataset:
        dataset_volume, train_path, num_classes = {"emptyDir": {}}, ".", 0  # your command reads what it reads

    hyper = _hyperparameters(
        spec.get("hyperparameters"), None if model == schema.CUSTOM_MODEL else model, device_type, problems
    )
    ckpt = _map(spec.get("checkpoint"), "spec.checkpoint", problems)
    ckpt_volume = _checkpoint_volume(ckpt, problems)
    if source and ckpt.get("resumeFrom"):
        problems.append(
            "spec.checkpoint.resumeFrom and spec.from: choose one (resume continues a run, from starts "
            "a new one from a finished job's weights)"
        )
    ckpt_path = _relative_path(ckpt.get("path"), "spec.checkpoint.path", problems) or default_checkpoint_path(
        meta
    )
    resume_from = _relative_path(ckpt.get("resumeFrom"), "spec.checkpoint.resumeFrom", problems)
    ckpt_keep = _int(ckpt.get("keep"), "spec.checkpoint.keep", problems)
    stop_grace = _int(ckpt.get("stopGracePeriodSeconds"), "spec.checkpoint.stopGracePeriodSeconds", problems)

    chip = _enum(device.get("chip"), "spec.device.chip", None, problems)
    if chip is not None and device_type != "Ascend910":
        problems.append("spec.device.chip: only for spec.device.type Ascend910")
    chip = (chip or settings.ascend_chip) if device_type == "Ascend910" else None
    rank_table = _map(spec.get("rankTable"), "spec.rankTable", problems)
    chip_version = ascend.CHIPS[chip].rank_table_version if chip in ascend.CHIPS else "1.0"
    rt_version = _enum(rank_table.get("version"), "spec.rankTable.version", None, problems, chip_version)
    if chip in ascend.CHIPS and rt_version != chip_version:
        # HCCL rejects a rank table whose version does not match the chip.
        problems.append(
            f"spec.rankTable.version: chip {chip} needs rank table {chip_version}, got {rt_version}"
        )
    static = _static_devices(rank_table.get("staticDevices"), replicas, problems)
    pods_per = _pods_per(device, device_type, per_node, bool(static), problems)
    if static and device_type != "Ascend910":
        problems.append("spec.rankTable.staticDevices is only allowed with spec.device.type Ascend910")

    policy = _map(spec.get("runPolicy"), "spec.runPolicy", problems)
    sched = _map(spec.get("scheduling"), "spec.scheduling", problems)
    # Ascend jobs default to Volcano where the chart says the cluster runs it (its device plugin then serves only
    # pods Volcano placed); spec.scheduling.gang: false opts out.
    volcano_default = device_type == "Ascend910" and settings.ascend_volcano
    gang = bool(sched.get("gang", volcano_default))
    backend = _enum(
        sched.get("gangBackend"),
        "spec.scheduling.gangBackend",
        None,
        problems,
        "volcano" if volcano_default else settings.gang_backend,
    )
    scheduler_name = _str(sched.get("schedulerName"), "spec.scheduling.schedulerName", problems)
    if gang and backend == "volcano" and scheduler_name not in (None, "volcano"):
        problems.append(
            "spec.scheduling.schedulerName must be 'volcano' (or unset) when spec.scheduling.gang is true"
        )
    if gang and backend == "kubernetes" and scheduler_name is not None:
        problems.append(
            "spec.scheduling.schedulerName: leave it unset with gangBackend kubernetes (the "
            "kube-scheduler schedules the gang)"
        )
    run = {
        # Bounds, choices and defaults: the CRD's schema (schema.field), never repeated here.
        "backoff_limit": _int(policy.get("backoffLimit"), "spec.runPolicy.backoffLimit", problems),
        "process_restarts": _int(policy.get("processRestarts"), "spec.runPolicy.processRestarts", problems),
        "active_deadline_seconds": _int(
            policy.get("activeDeadlineSeconds"), "spec.runPolicy.activeDeadlineSeconds", problems
        ),
        "ttl_seconds_after_finished": _int(
            policy.get("ttlSecondsAfterFinished"), "spec.runPolicy.ttlSecondsAfterFinished", problems
        ),
        "clean_pod_policy": _enum(
            policy.get("cleanPodPolicy"), "spec.runPolicy.cleanPodPolicy", None, problems
        ),
        "scheduling_timeout_seconds": _int(
            policy.get("schedulingTimeoutSeconds"), "spec.runPolicy.schedulingTimeoutSeconds", problems
        ),
        "suspend": bool(policy.get("suspend", False)),
    }
    template = _map(spec.get("podTemplate"), "spec.podTemplate", problems)
    pod_extras = {
        "node_selector": {
            str(k): str(v)
            for k, v in _map(template.get("nodeSelector"), "spec.podTemplate.nodeSelector", problems).items()
        },
        "tolerations": _list(template.get("tolerations"), "spec.podTemplate.tolerations", problems),
        "env": _list(template.get("env"), "spec.podTemplate.env", problems),
        "volumes": _list(template.get("volumes"), "spec.podTemplate.volumes", problems),
        "volume_mounts": _list(template.get("volumeMounts"), "spec.podTemplate.volumeMounts", problems),
    }
    for i, var in enumerate(pod_extras["env"]):
        if not isinstance(var, Mapping) or not isinstance(var.get("name"), str) or not var.get("name"):
            problems.append(f"spec.podTemplate.env[{i}]: must be an object with a non-empty name")
    image = spec.get("image")
    if image is not None and (not isinstance(image, str) or not image):
        problems.append("spec.image: must be a non-empty image reference")
    elif image is not None and len(image) > schema.MAX_IMAGE:
        problems.append(f"spec.image: too long ({len(image)} characters): must be at most {schema.MAX_IMAGE}")
        image = None
    resources = _map(spec.get("resources"), "spec.resources", problems)
    problems[:0] = inputlimits.problems(
        spec
    )  # issue 24: sizes, YAML shapes, paths, references (listed first)
    queue = _str(sched.get("queue"), "spec.scheduling.queue", problems)
    priority = _str(sched.get("priorityClassName"), "spec.scheduling.priorityClassName", problems)
    name = str(meta.get("name") or "")
    _check_name(name, replicas, problems)
    # The platform team's policy (chart values -> Settings.policy_*), checked before any pod exists.
    problems += platform_policy.problems(
        dataset_volume=dataset_volume,
        checkpoint_volume=ckpt_volume,
        volumes=pod_extras["volumes"],
        volume_mounts=pod_extras["volume_mounts"],
        env=pod_extras["env"],
        tolerations=pod_extras["tolerations"],
        priority_class_name=priority,
        settings=settings,
        ascend=device_type == "Ascend910",
    )
    if problems:
        raise InvalidSpec(problems)
    assert (
        model is not None and device_type is not None and train_path is not None and num_classes is not None
    )
    return JobSpec(
        name=name,
        namespace=str(meta.get("namespace") or "default"),
        uid=str(meta.get("uid") or ""),
        generation=int(meta.get("generation") or 0),
        model=model,
        image=image or settings.image_for(device_type, chip),
        device_type=device_type,
        resource_name=resource_name,
        per_node=per_node,
        pods_per=pods_per,
        replicas=replicas,
        launch=str(launch),
        dataset_volume=dataset_volume,
        train_path=train_path,
        eval_path=eval_path,
        num_classes=num_classes,
        hyperparameters=hyper,
        checkpoint_volume=ckpt_volume,
        checkpoint_path=ckpt_path,
        resume_from=resume_from,
        checkpoint_keep=ckpt_keep,
        stop_grace_seconds=stop_grace or DEFAULT_STOP_GRACE_SECONDS,
        resources=resources,
        rank_table_version=str(rt_version),
        static_devices=static,
        scheduler_name="volcano" if gang and backend == "volcano" else scheduler_name,
        gang=gang,
        gang_backend=str(backend),
        queue=queue,
        priority_class_name=priority,
        **run,  # type: ignore[arg-type]  # typed per key in JobSpec
        **pod_extras,  # type: ignore[arg-type]  # typed per key in JobSpec
        ascend=None
        if chip is None
        else ascend.AscendPod(
            chip=chip,
            accelerator_type=settings.accelerator_type(chip, ascend.CHIPS[chip].accelerator_type),
            host_arch=settings.ascend_host_arch,
            driver_mounts=settings.ascend_driver_mounts,
            shm_size=settings.ascend_shm_size,
            dra_device_class=settings.ascend_dra_device_class,
        ),
        task=task,
        from_job=from_job,
        from_checkpoint=from_checkpoint,
        checkpoint_volume_set=any(key in ckpt for key in ("claimName", "hostPath", "volume")),
        run_as_user=settings.pod_run_as_user,
        run_as_group=settings.pod_run_as_group,
        fs_group=settings.pod_fs_group,
        supplemental_groups=settings.pod_supplemental_groups,
        spec_image=image or None,
        user_command=command,
        user_args=args,
        working_dir=working_dir,
    )
