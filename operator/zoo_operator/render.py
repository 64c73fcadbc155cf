"""Builders of every object the operator creates for a job: plain dicts, no API calls.

Service (headless), the launch ConfigMap (`<job>-ranktable` with hccl.json, or `<job>-launch` with the
scheduler address), worker pods `<job>-worker-<i>`, the scheduler pod `<job>-sched` (dynamic launch) and the
Volcano PodGroup (gang scheduling). Names, labels and environment follow docs/contracts.md.
"""

from __future__ import annotations

import dataclasses
import json
import posixpath
from typing import Any

from zoo_operator import ascend, memlimits, schema
from zoo_operator import conditions as c
from zoo_operator.spec import DEFAULT_SCHED_PORT, JobSpec, gang_hash
from zoo_workloads import config as model_config
from zoo_workloads import contract

CONFIG_FILE = contract.CONFIG_FILE  # a run's saved config

Obj = dict[str, Any]
_DEVICE_FLAG = {"Ascend910": "Ascend", "GPU": "GPU", "CPU": "CPU"}


def worker_name(job: JobSpec, index: int) -> str:
    """Pod name of worker `index`."""
    return f"{job.name}-worker-{index}"


def pod_name(job: JobSpec, index: int | None) -> str:
    """Pod name of worker `index`, or of the scheduler when index is None."""
    return scheduler_name(job) if index is None else worker_name(job, index)


def scheduler_name(job: JobSpec) -> str:
    """Pod name of the dynamic-launch scheduler."""
    return f"{job.name}-sched"


def ranktable_config_map_name(job: JobSpec) -> str:
    """Name of the ConfigMap that holds hccl.json."""
    return f"{job.name}-ranktable"


def launch_config_map_name(job: JobSpec) -> str:
    """Name of the job's launch ConfigMap (rank table, or scheduler address for dynamic launch)."""
    return ranktable_config_map_name(job) if job.launch == "ranktable" else f"{job.name}-launch"


def dra_device_class(job: JobSpec) -> str:
    """The DeviceClass the job's worker pods claim their NPUs from, or "" (the extended resource)."""
    return job.ascend.dra_device_class if job.ascend is not None else ""


def claim_template_name(job: JobSpec) -> str:
    """Name of the job's ResourceClaimTemplate (NPUs through DRA)."""
    return f"{job.name}-npu"


def resource_claim_template(job: JobSpec) -> Obj:
    """The job's ResourceClaimTemplate: each worker pod claims its devices_per_pod NPUs of the configured class
    (perNode in server mode, 1 in device mode); owned by the job, so it goes with it."""
    return ascend.claim_template(
        claim_template_name(job),
        _meta(job, claim_template_name(job)),
        dra_device_class(job),
        job.devices_per_pod,
    )


def scheduler_host(job: JobSpec) -> str:
    """DNS name of the scheduler pod through the headless Service."""
    return f"{scheduler_name(job)}.{job.name}.{job.namespace}.svc.cluster.local"


def gang_hub_host(job: JobSpec) -> str:
    """DNS name of the pod that is the hub of the gang's fault channel (zoo_workloads.gangchannel): the
    scheduler of a dynamic launch, worker 0 otherwise."""
    if job.launch == "dynamic":
        return scheduler_host(job)
    return f"{worker_name(job, 0)}.{job.name}.{job.namespace}.svc.cluster.local"


def labels(job: JobSpec) -> dict[str, str]:
    """Labels every object of the job carries."""
    return {c.LABEL_JOB: job.name, c.LABEL_MANAGED_BY: c.MANAGED_BY}


def owner_reference(job: JobSpec) -> Obj:
    """The controller reference that makes the job own (and garbage-collect) an object."""
    return {
        "apiVersion": f"{schema.GROUP}/{schema.VERSION}",
        "kind": schema.KIND,
        "name": job.name,
        "uid": job.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def _meta(job: JobSpec, name: str, extra_labels: dict[str, str] | None = None) -> Obj:
    return {
        "name": name,
        "namespace": job.namespace,
        "labels": {**labels(job), **(extra_labels or {})},
        "ownerReferences": [owner_reference(job)],
    }


def service(job: JobSpec) -> Obj:
    """Headless Service `<job>`: gives every pod the DNS name <pod>.<job>.<ns>.svc.cluster.local."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(job, job.name),
        "spec": {
            "clusterIP": "None",
            # Ranks must resolve each other before they are Ready (they never report readiness).
            "publishNotReadyAddresses": True,
            "selector": {c.LABEL_JOB: job.name},
            "ports": [{"name": "ms-sched", "port": DEFAULT_SCHED_PORT, "targetPort": DEFAULT_SCHED_PORT}],
        },
    }


def launch_config_map(job: JobSpec, ranktable_data: dict[str, str] | None = None) -> Obj:
    """The ConfigMap of the launch: hccl.json (ranktable) or scheduler.json (dynamic)."""
    if job.launch == "ranktable":
        data = ranktable_data or {}
    else:
        data = {
            "scheduler.json": json.dumps(
                {"host": scheduler_host(job), "port": DEFAULT_SCHED_PORT, "worker_num": job.replicas},
                indent=2,
            )
        }
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _meta(job, launch_config_map_name(job)),
        "data": data,
    }


NATIVE_POD_GROUP_API = "scheduling.k8s.io/v1alpha2"


def pod_group(job: JobSpec) -> Obj:
    """The gang's PodGroup: none of the job's pods start until all of them can.

    Volcano: scheduling.volcano.sh/v1beta1 PodGroup (spec.minMember, queue, priorityClassName), pods with
    schedulerName volcano and the group-name annotation. kubernetes: the kube-scheduler's own PodGroup
    (k8s.io/api scheduling/v1alpha2 in v1.36: spec.schedulingPolicy.gang.minCount), pods linked by
    spec.schedulingGroup.podGroupName.
    """
    if job.gang_backend == "kubernetes":
        return {
            "apiVersion": NATIVE_POD_GROUP_API,
            "kind": "PodGroup",
            "metadata": _meta(job, job.name),
            "spec": {
                "schedulingPolicy": {"gang": {"minCount": job.pod_count}},
                **({"priorityClassName": job.priority_class_name} if job.priority_class_name else {}),
            },
        }
    return {
        "apiVersion": "scheduling.volcano.sh/v1beta1",
        "kind": "PodGroup",
        "metadata": _meta(job, job.name),
        "spec": {
            "minMember": job.pod_count,
            **({"queue": job.queue} if job.queue else {}),
            **({"priorityClassName": job.priority_class_name} if job.priority_class_name else {}),
        },
    }


def gang_missing_hint(job: JobSpec) -> str:
    """What to do when the cluster does not serve the gang backend's PodGroup."""
    if job.gang_backend == "kubernetes":
        return (
            "enable the kube-scheduler's gang scheduling (feature gates GenericWorkload and GangScheduling, "
            "--runtime-config=scheduling.k8s.io/v1alpha2=true) or set spec.scheduling.gangBackend to volcano"
        )
    return "install Volcano or set spec.scheduling.gang to false"


def set_value(value: Any) -> str:
    """A hyperparameter as the `value` of `--set key=value`: JSON that the workload reads back exactly
    (zoo_workloads.config.encode_value / parse_value, the one encoding on both sides)."""
    return model_config.encode_value(value)


def _from_path(relative: str) -> str:
    """A path on the spec.from job's checkpoint volume, as the pod sees it."""
    return c.FROM_DIR if relative in ("", ".") else f"{c.FROM_DIR}/{relative}"


# Hyperparameters naming a checkpoint: a relative path is on the checkpoint volume, like spec.checkpoint.resumeFrom
# (an absolute one is a path inside the image, e.g. weights baked into it).
CHECKPOINT_HYPERPARAMETERS = ("pretrained", "resume")


def _overrides(job: JobSpec) -> list[str]:
    cmd: list[str] = []
    for key in sorted(job.hyperparameters):
        value = job.hyperparameters[key]
        if (
            key in CHECKPOINT_HYPERPARAMETERS
            and isinstance(value, str)
            and value
            and not value.startswith("/")
        ):
            value = f"{c.CHECKPOINT_DIR}/{value}"
        if key in CHECKPOINT_HYPERPARAMETERS and isinstance(value, str) and value:
            value = posixpath.normpath(value)  # issue 24: `a//b/./c` as `a/b/c` (spec.parse refused `..`)
        cmd += ["--set", f"{key}={set_value(value)}"]
    return cmd


def task_command(job: JobSpec) -> list[str]:
    """evaluate/export of the spec.from job's checkpoint (resolved into job.source): `zoo-eval|zoo-export --run`
    on its run directory, so model and architecture settings come from its saved config.yaml."""
    src = job.source
    if src is None:
        raise ValueError(f"{job.name}: spec.from is not resolved")  # reconcile resolves it before rendering
    run = [
        "--run",
        _from_path(src.run_dir),
        "--checkpoint",
        _from_path(src.checkpoint),
        "--device",
        _DEVICE_FLAG[job.device_type],
    ]
    if job.task == c.TASK_EVALUATE:
        cmd = [
            "zoo-launch",
            "--",
            "zoo-eval",
            *run,
            "--data-dir",
            f"{c.DATA_DIR}/{job.eval_path or job.train_path}",
            "--num-classes",
            str(job.num_classes),
        ]
    else:
        stem = f"{job.model}-{src.kind}"
        # Next to the source checkpoint, unless the job names a checkpoint volume of its own.
        out = (
            f"{c.CHECKPOINT_DIR}/{job.checkpoint_path}/{stem}"
            if job.checkpoint_volume_set
            else _from_path(posixpath.join(src.run_dir, stem))
        )
        # MINDIR everywhere (loaded back and run once); on Ascend also AIR, as the seeds' export.py scripts do.
        fmt = "MINDIR,AIR" if job.device_type == "Ascend910" else "MINDIR"
        cmd = ["zoo-launch", "--", "zoo-export", *run, "--output", out, "--format", fmt]
    return cmd + _overrides(job)


# spec.command runs through zoo-launch when the image has it (the rank-table wait, RANK_ID/DEVICE_ID, the attempt
# check, MS_SCHED_HOST resolved). An image without it: a rank-table launch fails at once (exit 64, permanent: only
# zoo-launch can find the pod's rank in hccl.json); a dynamic launch resolves MS_SCHED_HOST with getent (workers
# may start before the scheduler's DNS name exists) and runs the command. Needs /bin/sh in the image. The
# command and its arguments are the shell's positional parameters ("$@"), never parsed by the shell. No `$(` in
# it: the kubelet expands $(VAR) in a container's command (backquotes and expr instead).
LAUNCH_PREAMBLE = (
    'if command -v zoo-launch >/dev/null 2>&1; then exec zoo-launch -- "$@"; fi; '
    'if [ -n "$RANK_TABLE_FILE" ]; then echo "zoo: the image has no zoo-launch, which the rank-table launch '
    'needs (pip install zoo-workloads in the image)" >&2; exit 64; fi; '
    'if [ -n "$MS_SCHED_HOST" ]; then n=0; until a=`getent hosts "$MS_SCHED_HOST"`; do n=`expr $n + 1`; '
    'if [ "$n" -ge 300 ]; then echo "zoo: cannot resolve MS_SCHED_HOST $MS_SCHED_HOST" >&2; exit 75; fi; '
    "sleep 1; done; MS_SCHED_HOST=${a%% *}; export MS_SCHED_HOST; fi; "
    'exec "$@"'
)


def user_command(job: JobSpec) -> list[str]:
    """The container command of a spec.command job: the launch preamble, then the user's command and args."""
    return ["/bin/sh", "-c", LAUNCH_PREAMBLE, "zoo-launch", *job.user_command, *job.user_args]


def user_env(job: JobSpec) -> list[Obj]:
    """What a spec.command job's script can read instead of the built-in models' flags (docs/contracts.md
    "Your own command"); Kubernetes expands $(ZOO_DATA_DIR) etc. in spec.args."""
    out: list[Obj] = [
        {"name": "ZOO_DEVICE", "value": _DEVICE_FLAG[job.device_type]},
        {"name": "ZOO_OUTPUT_DIR", "value": f"{c.CHECKPOINT_DIR}/{job.checkpoint_path}"},
    ]
    if job.num_classes:  # a dataset was given
        out += [
            {"name": "ZOO_DATA_DIR", "value": f"{c.DATA_DIR}/{job.train_path}"},
            {"name": "ZOO_NUM_CLASSES", "value": str(job.num_classes)},
        ]
    if job.eval_path:
        out.append({"name": "ZOO_EVAL_DIR", "value": f"{c.DATA_DIR}/{job.eval_path}"})
    return out


def command(job: JobSpec) -> list[str]:
    """The container command of every rank (contracts.md); in server mode zoo-server-launch runs it once per NPU."""
    if job.pods_per == contract.PODS_PER_SERVER:
        return server_command(_command(job))
    return _command(job)


def server_command(cmd: list[str]) -> list[str]:
    """A device-mode command for a server pod (issue 21): `zoo-launch --` becomes `zoo-server-launch --`, in the
    argument list or in the shell preamble of a spec.command job."""
    if cmd[:2] == ["zoo-launch", "--"]:
        return [contract.SERVER_LAUNCH, *cmd[1:]]
    if cmd[:3] == ["/bin/sh", "-c", LAUNCH_PREAMBLE]:
        preamble = (
            f'if command -v {contract.SERVER_LAUNCH} >/dev/null 2>&1; then exec {contract.SERVER_LAUNCH} -- "$@"; '
            f'fi; echo "zoo: the image has no {contract.SERVER_LAUNCH}, which spec.device.podsPer server needs '
            '(pip install zoo-workloads in the image)" >&2; exit 64'
        )
        return [*cmd[:2], preamble, *cmd[3:]]
    raise ValueError(f"server mode: cannot run {cmd[:2]} under {contract.SERVER_LAUNCH}")


def _command(job: JobSpec) -> list[str]:
    if job.custom:
        return user_command(job)
    if job.task != c.TASK_TRAIN:
        return task_command(job)
    cmd = [
        "zoo-launch",
        "--",
        "zoo-train",
        "--model",
        job.model,
        "--data-dir",
        f"{c.DATA_DIR}/{job.train_path}",
    ]
    if job.eval_path:
        cmd += ["--eval-dir", f"{c.DATA_DIR}/{job.eval_path}"]
    cmd += [
        "--num-classes",
        str(job.num_classes),
        "--output-dir",
        f"{c.CHECKPOINT_DIR}/{job.checkpoint_path}",
        "--device",
        _DEVICE_FLAG[job.device_type],
    ]
    if job.source is not None:
        # Fine-tune: the source run's settings (its saved config) under this job's overrides, its weights as
        # `pretrained` (network weights only: a new run, epochs from 1, new optimizer state).
        cmd += ["--config", _from_path(posixpath.join(job.source.run_dir, CONFIG_FILE))]
    cmd += _overrides(job)
    if (
        job.checkpoint_keep is not None
    ):  # spec.checkpoint.keep wins over the hyperparameter of the same meaning
        cmd += ["--set", f"keep_checkpoint_max={job.checkpoint_keep}"]
    if job.source is not None:
        # A new run: the source's own `resume` (if it was resumed) must not carry over.
        cmd += ["--set", f"pretrained={set_value(_from_path(job.source.checkpoint))}", "--set", "resume=null"]
    if job.resume_from:
        cmd += ["--set", f"resume={set_value(posixpath.normpath(f'{c.CHECKPOINT_DIR}/{job.resume_from}'))}"]
    return cmd


def _field_env(name: str, path: str) -> Obj:
    return {"name": name, "valueFrom": {"fieldRef": {"fieldPath": path}}}


def env(job: JobSpec, role: str, index: int | None) -> list[Obj]:
    """Environment of one pod: identity, launch variables, then the job's own podTemplate.env."""
    out: list[Obj] = [
        {"name": contract.ENV_JOB_NAME, "value": job.name},
        {"name": contract.ENV_JOB_NAMESPACE, "value": job.namespace},
        {"name": contract.ENV_MODEL, "value": job.model},
        _field_env(contract.ENV_POD_NAME, "metadata.name"),
        _field_env(contract.ENV_POD_NAMESPACE, "metadata.namespace"),
        _field_env(contract.ENV_POD_IP, "status.podIP"),
        {"name": contract.ENV_RANK_SIZE, "value": str(job.replicas)},
        {"name": contract.ENV_TERMINATION_LOG, "value": c.TERMINATION_LOG},
        # The root file system is read-only: HOME, TMPDIR and the tools' caches point into the scratch emptyDirs.
        *({"name": name, "value": value} for name, value in contract.SCRATCH_ENV),
    ]
    if job.process_restarts is not None:  # zoo-launch's in-place restarts (issue 23)
        out.append({"name": contract.ENV_PROCESS_RESTARTS, "value": str(job.process_restarts)})
    if job.launch == "ranktable":
        # zoo-launch finds its rank in hccl.json by (node IP, physical NPU): HOST_IP here, ASCEND_VISIBLE_DEVICES
        # from the device plugin, or the static map's server and device (docs/contracts.md).
        out += [
            {"name": contract.ENV_RANK_TABLE_FILE, "value": f"{c.RANKTABLE_DIR}/hccl.json"},
            _field_env(contract.ENV_HOST_IP, "status.hostIP"),
            # The pod's attempt: it waits for the table of its own attempt (c.RANKTABLE_ATTEMPT_KEY).
            _field_env(contract.ENV_ATTEMPT, f"metadata.annotations['{c.ANNOTATION_ATTEMPT}']"),
        ]
        # spec.parse sorts a static map by index and refuses one that misses a worker: entry i is worker i.
        static = job.static_devices[index] if job.static_devices and index is not None else None
        if static is not None:
            out += [
                {"name": "ZOO_ASCEND_SERVER_ID", "value": static.server_id},
                {"name": "ZOO_ASCEND_DEVICE_ID", "value": static.device_id},
            ]
    elif job.launch == "dynamic":
        out += [
            {
                "name": contract.ENV_MS_ROLE,
                "value": contract.MS_ROLE_SCHEDULER if role == c.ROLE_SCHEDULER else contract.MS_ROLE_WORKER,
            },
            {"name": contract.ENV_MS_SCHED_HOST, "value": scheduler_host(job)},
            {"name": contract.ENV_MS_SCHED_PORT, "value": str(DEFAULT_SCHED_PORT)},
            {"name": contract.ENV_MS_WORKER_NUM, "value": str(job.replicas)},
        ]
        if index is not None and job.pods_per == contract.PODS_PER_SERVER:
            # A server pod is one msrun node (--node_rank, --local_worker_num): zoo-server-launch gives each of
            # its processes MS_NODE_ID = RANK_ID = node rank x perNode + local index.
            out += [
                {"name": contract.ENV_NODE_RANK, "value": str(index)},
                {"name": contract.ENV_LOCAL_WORKER_NUM, "value": str(job.devices_per_pod)},
            ]
        else:
            out.append({"name": contract.ENV_MS_NODE_ID, "value": "sched" if index is None else str(index)})
    if job.launch == "dynamic" or (job.launch == "ranktable" and job.replicas > 1):
        out.append({"name": contract.ENV_GANG_HUB, "value": gang_hub_host(job)})  # issue 23's fault channel
    if job.ascend is not None and role == c.ROLE_WORKER:
        out += ascend.env()
    if job.custom:
        out += user_env(job)
    return out + [dict(var) for var in job.env]


def _resources(job: JobSpec, with_device: bool) -> Obj:
    res = {
        k: dict(v) for k, v in job.resources.items() if k in ("requests", "limits") and isinstance(v, dict)
    }
    if with_device and job.resource_name and not dra_device_class(job):
        # Server mode (issue 21): the pod holds its server's perNode NPUs.
        res.setdefault("limits", {})[job.resource_name] = job.devices_per_pod
        res.setdefault("requests", {})[job.resource_name] = job.devices_per_pod
    # Issue 24: memory on every container, so one job cannot starve a node (memlimits; spec.resources wins).
    request, limit = _memory(job, scheduler=not with_device)
    res.setdefault("requests", {})["memory"] = request
    res.setdefault("limits", {})["memory"] = limit
    return res


def _memory(job: JobSpec, scheduler: bool = False) -> tuple[str, str]:
    request, limit = memlimits.container_memory(
        job.model, job.device_type, job.resources, scheduler=scheduler
    )
    own = any(
        isinstance(job.resources.get(p), dict) and "memory" in job.resources[p]
        for p in ("requests", "limits")
    )
    if job.devices_per_pod > 1 and not scheduler and not own:
        # Server mode (issue 21): the table's memory is one rank's; a server pod runs perNode of them. Memory the
        # user wrote in spec.resources is the pod's, as written.
        n = job.devices_per_pod
        request, limit = (memlimits.format_bytes(memlimits.parse_quantity(q) * n) for q in (request, limit))
    return request, limit


def _volumes(job: JobSpec, worker: bool = True) -> tuple[list[Obj], list[Obj]]:
    volumes: list[Obj] = [
        {"name": "zoo-data", **job.dataset_volume},
        {"name": "zoo-checkpoint", **job.checkpoint_volume},
    ]
    mounts: list[Obj] = [
        {"name": "zoo-data", "mountPath": c.DATA_DIR, "readOnly": True},
        {"name": "zoo-checkpoint", "mountPath": c.CHECKPOINT_DIR},
    ]
    # Every path written outside the checkpoint volume (the root file system is read-only): contract.SCRATCH_VOLUMES.
    volumes += [{"name": name, "emptyDir": {}} for name, _ in contract.SCRATCH_VOLUMES]
    mounts += [{"name": name, "mountPath": path} for name, path in contract.SCRATCH_VOLUMES]
    if job.source is not None:
        # spec.from: the named job's checkpoint volume; export writes its artifact next to the checkpoint.
        volumes.append({"name": "zoo-from", **job.source.volume})
        mounts.append(
            {
                "name": "zoo-from",
                "mountPath": c.FROM_DIR,
                "readOnly": not (job.task == c.TASK_EXPORT and not job.checkpoint_volume_set),
            }
        )
    if job.launch == "ranktable":
        # A directory mount, never subPath: subPath mounts do not see ConfigMap updates.
        volumes.append({"name": "zoo-ranktable", "configMap": {"name": ranktable_config_map_name(job)}})
        mounts.append({"name": "zoo-ranktable", "mountPath": c.RANKTABLE_DIR, "readOnly": True})
    if job.ascend is not None and worker:
        # /dev/shm is memory-backed: sized within the container's memory limit (memlimits.shm_size).
        shm = memlimits.shm_size(job.ascend.shm_size, _memory(job)[1])
        more_volumes, more_mounts = ascend.volumes(dataclasses.replace(job.ascend, shm_size=shm))
        volumes += more_volumes
        mounts += more_mounts
    return volumes + [dict(v) for v in job.volumes], mounts + [dict(m) for m in job.volume_mounts]


def pod_security_context(job: JobSpec) -> Obj:
    """The pod's securityContext: Pod Security `restricted` (non-root, RuntimeDefault seccomp) with the
    configured ids. Source of the rules: https://kubernetes.io/docs/concepts/security/pod-security-standards/"""
    ctx: Obj = {
        "runAsUser": job.run_as_user,
        "runAsGroup": job.run_as_group,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    if job.run_as_user != 0:
        ctx["runAsNonRoot"] = True
    if job.fs_group:
        ctx["fsGroup"] = job.fs_group
    if job.supplemental_groups:
        ctx["supplementalGroups"] = list(job.supplemental_groups)
    return ctx


def container_security_context(job: JobSpec) -> Obj:
    """The worker container's securityContext: no privilege escalation, every capability dropped, and a read-only
    root file system (writes go to the volumes: the checkpoint volume and contract.SCRATCH_VOLUMES)."""
    ctx: Obj = {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "readOnlyRootFilesystem": True,
    }
    if job.run_as_user != 0:
        ctx["runAsNonRoot"] = True
    return ctx


def pod(job: JobSpec, index: int | None, attempt: int) -> Obj:
    """Worker pod `index` (or the scheduler pod when index is None) of whole-gang attempt `attempt`."""
    role = c.ROLE_SCHEDULER if index is None else c.ROLE_WORKER
    name = pod_name(job, index)
    extra_labels = {c.LABEL_ROLE: role}
    if index is not None:
        extra_labels[c.LABEL_RANK] = str(index)
    annotations = {c.ANNOTATION_ATTEMPT: str(attempt), c.ANNOTATION_SPEC_HASH: gang_hash(job)}
    if job.queue:
        extra_labels.update({c.KUEUE_QUEUE_LABEL: job.queue, c.KUEUE_GROUP_LABEL: job.name})
        annotations[c.KUEUE_GROUP_COUNT_ANNOTATION] = str(job.pod_count)
    if job.gang and job.gang_backend == "volcano":
        annotations[c.VOLCANO_GROUP_ANNOTATION] = job.name
    if index is not None and job.per_node:
        # Server mode: each pod is a server group of its own (perNode NPUs in one pod).
        extra_labels[c.LABEL_SERVER_GROUP] = str(ascend.group_of(index, job.per_node // job.devices_per_pod))
    volumes, mounts = _volumes(job, worker=index is not None)
    container: Obj = {
        "name": "worker",
        "image": job.image,
        "imagePullPolicy": "IfNotPresent",
        # The scheduler of a dynamic launch is one process under zoo-launch in either mode (issue 21).
        "command": command(job) if index is not None else _command(job),
        "env": env(job, role, index),
        "volumeMounts": mounts,
        "terminationMessagePath": c.TERMINATION_LOG,
        "terminationMessagePolicy": "File",
        "securityContext": container_security_context(job),
    }
    if job.working_dir:
        container["workingDir"] = job.working_dir
    resources = _resources(job, with_device=index is not None)
    if resources:
        container["resources"] = resources
    pod_claims: list[Obj] = []
    if index is not None and dra_device_class(job):
        # NPUs through DRA (issue 21): the pod's own claim from the job's template, instead of the extended resource.
        pod_claims, container_claims = ascend.pod_claims(claim_template_name(job))
        container.setdefault("resources", {})["claims"] = container_claims
    spec: Obj = {
        "restartPolicy": "Never",  # the operator restarts the whole gang, never a single rank
        "hostname": name,
        "subdomain": job.name,
        "enableServiceLinks": False,
        # On SIGTERM a rank finishes its step and writes a checkpoint before it exits (exit 79).
        "terminationGracePeriodSeconds": job.stop_grace_seconds,
        # The workload never calls the API: no service-account token in its pods.
        "automountServiceAccountToken": False,
        "securityContext": pod_security_context(job),
        "containers": [container],
        "volumes": volumes,
    }
    if pod_claims:
        spec["resourceClaims"] = pod_claims
    selector = dict(job.node_selector)
    if job.ascend is not None and index is not None:
        selector = {**ascend.node_selector(job.ascend), **selector}  # the job's own nodeSelector wins
    if index is not None and job.per_node:
        # perNode: one server group per node, different groups on different nodes.
        spec["affinity"] = ascend.placement(
            {c.LABEL_JOB: job.name, c.LABEL_ROLE: c.ROLE_WORKER},
            c.LABEL_SERVER_GROUP,
            int(extra_labels[c.LABEL_SERVER_GROUP]),
        )
    node_affinity = npu_node_exclusion(job)
    if node_affinity:
        spec["affinity"] = {**spec.get("affinity", {}), "nodeAffinity": node_affinity}
    optional = {
        "nodeSelector": selector,
        "tolerations": tolerations(job),
        "schedulerName": job.scheduler_name,
        "priorityClassName": job.priority_class_name,
    }
    spec.update({k: v for k, v in optional.items() if v})
    if job.gang and job.gang_backend == "kubernetes":
        spec["schedulingGroup"] = {"podGroupName": job.name}
    metadata = _meta(job, name, extra_labels)
    metadata["annotations"] = annotations
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec}


# Scheduling hygiene on clusters that mix CPU/GPU and Ascend nodes (docs/contracts.md "Node placement").
# The node labels MindCluster puts on NPU nodes: `accelerator` (huawei-Ascend910 | huawei-Ascend310 |
# huawei-Ascend310P, the Ascend device plugin's DaemonSet selects nodes by it) and `node.kubernetes.io/npu.chip.name`
# (the chip the device plugin reports, e.g. 910B3); MindCluster docs, "Kubernetes identifiers" / "Native Kubernetes
# Objects", node label table.
NPU_ACCELERATOR_LABEL = "accelerator"
NPU_ACCELERATOR_VALUES = ("huawei-Ascend910", "huawei-Ascend310", "huawei-Ascend310P")
NPU_CHIP_LABEL = "node.kubernetes.io/npu.chip.name"
NPU_NODE_LABELS = (NPU_ACCELERATOR_LABEL, NPU_CHIP_LABEL, ascend.ACCELERATOR_TYPE_LABEL)
# Taints of NPU nodes that Ascend pods tolerate: `huawei.com/Ascend910` (NoSchedule; MindCluster's own device-plugin
# DaemonSet tolerates it, ascend-device-plugin build/ascendplugin-910.yaml, the extended resource's name as the
# taint key, as Kubernetes' ExtendedResourceToleration admission does for any extended resource) and
# `npu.huawei.com/NPU` (NoSchedule; tolerated by ascend-device-plugin's Volcano-mode DaemonSets).
NPU_TOLERATIONS: tuple[Obj, ...] = (
    {"key": "huawei.com/Ascend910", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "npu.huawei.com/NPU", "operator": "Exists", "effect": "NoSchedule"},
)


def npu_node_exclusion(job: JobSpec) -> Obj | None:
    """A required node affinity keeping a CPU or GPU job's pods off nodes that advertise Ascend NPUs, or None.

    None for Ascend jobs, and when the user asked for NPU nodes: their podTemplate.nodeSelector names one of the NPU
    node labels (NPU_NODE_LABELS), e.g. `accelerator: huawei-Ascend910` for a CPU job that should run there. Both
    requirements sit in one term (ANDed); a node without either label matches, as NotIn and DoesNotExist match
    a missing label."""
    if job.device_type == "Ascend910":
        return None
    if any(key in job.node_selector for key in NPU_NODE_LABELS):
        return None
    term = {
        "matchExpressions": [
            {"key": NPU_ACCELERATOR_LABEL, "operator": "NotIn", "values": list(NPU_ACCELERATOR_VALUES)},
            {"key": NPU_CHIP_LABEL, "operator": "DoesNotExist"},
        ]
    }
    return {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [term]}}


def tolerations(job: JobSpec) -> list[Obj]:
    """The pod's tolerations: an Ascend job's NPU_TOLERATIONS (those the user's podTemplate.tolerations do not
    already list), then the user's own, unchanged."""
    own = list(job.tolerations)
    if job.device_type != "Ascend910":
        return own
    return [dict(t) for t in NPU_TOLERATIONS if t not in own] + own


def pods(job: JobSpec, attempt: int) -> list[Obj]:
    """Every pod of one attempt: the scheduler first (dynamic launch), then workers by index."""
    out = [pod(job, None, attempt)] if job.launch == "dynamic" else []
    return out + [pod(job, i, attempt) for i in range(job.workers)]


def all_objects(job: JobSpec, ranktable_data: dict[str, str] | None = None, attempt: int = 0) -> list[Obj]:
    """Everything the operator creates for the job, in creation order (the dry run prints these)."""
    objs = [service(job), launch_config_map(job, ranktable_data)]
    if job.gang:
        objs.append(pod_group(job))
    if dra_device_class(job):
        objs.append(resource_claim_template(job))
    return objs + pods(job, attempt)
