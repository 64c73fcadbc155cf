"""Names shared by the whole operator: phases, condition types, reasons, labels, annotations, paths.

One place, so status computation, policy, rendering and tests cannot drift apart.
"""

from __future__ import annotations

from zoo_workloads import contract

# Phases (status.phase).
PENDING = "Pending"
RUNNING = "Running"
RESTARTING = "Restarting"
SUCCEEDED = "Succeeded"
FAILED = "Failed"
SUSPENDED = "Suspended"
FINISHED_PHASES = frozenset({SUCCEEDED, FAILED})

# Condition types (status.conditions[].type).
CREATED = "Created"
RANK_TABLE_READY = "RankTableReady"
RUNNING_CONDITION = "Running"
RESTARTING_CONDITION = "Restarting"
SUCCEEDED_CONDITION = "Succeeded"
FAILED_CONDITION = "Failed"
SUSPENDED_CONDITION = "Suspended"
POD_GROUP_READY = "PodGroupReady"
# A warning, True while the job's checkpoints live on a volume that dies with its pods (emptyDir).
CHECKPOINTS_EPHEMERAL = "CheckpointsEphemeral"
PODS_ADMITTED = "PodsAdmitted"
# Issue 24: False while an object with a name the job would use belongs to someone else (guards.py).
OBJECTS_OWNED = "ObjectsOwned"
# Issue 24: False while spec.scheduling.queue names a LocalQueue the namespace lacks (Kueue served).
QUEUE_FOUND = "QueueFound"
CONDITION_TYPES = (
    CREATED,
    RANK_TABLE_READY,
    RUNNING_CONDITION,
    RESTARTING_CONDITION,
    SUCCEEDED_CONDITION,
    FAILED_CONDITION,
    SUSPENDED_CONDITION,
    POD_GROUP_READY,
    CHECKPOINTS_EPHEMERAL,
    PODS_ADMITTED,
    OBJECTS_OWNED,
    QUEUE_FOUND,
)

# Reasons (conditions, status.reason, Events).
REASON_INVALID_SPEC = "InvalidSpec"
REASON_JOB_CREATED = "JobCreated"
REASON_WAITING_FOR_DEVICES = "WaitingForDevices"
REASON_RANK_TABLE_COMPLETED = "RankTableCompleted"
REASON_NOT_RANK_TABLE_LAUNCH = "DynamicLaunch"
REASON_PODS_PENDING = "PodsPending"
REASON_ALL_RANKS_RUNNING = "AllRanksRunning"
REASON_RANK_FAILED = "RankFailed"
REASON_GANG_RESTART = "GangRestart"
REASON_BACKOFF_LIMIT = "BackoffLimitExceeded"
REASON_PERMANENT_ERROR = "PermanentError"
REASON_DEADLINE = "DeadlineExceeded"
REASON_SCHEDULING_TIMEOUT = "SchedulingTimeout"
REASON_IMAGE_PULL = "ImagePullFailed"
REASON_SUCCEEDED = "JobSucceeded"
REASON_SUSPENDED = "JobSuspended"
REASON_RESUMED = "JobResumed"
REASON_POD_GROUP_CREATED = "PodGroupCreated"
REASON_VOLCANO_MISSING = "VolcanoNotInstalled"
REASON_TTL_EXPIRED = "TTLExpired"
REASON_EPHEMERAL_VOLUME = "EmptyDirVolume"
REASON_WAITING_FOR_SOURCE = "WaitingForSource"
REASON_STOPPED = "StoppedGracefully"  # ranks checkpointed on SIGTERM and exited 79: restart, not counted
REASON_CHECKPOINT_INVALID = (
    "CheckpointInvalid"  # a damaged/partial checkpoint was skipped on resume (Warning)
)
REASON_TRAINING_RESUMED = "TrainingResumed"  # training continued from a checkpoint (Normal)
# Issue 11: spec changes and pods that cannot start.
REASON_SPEC_CHANGED = "SpecChanged"
REASON_SPEC_CHANGE_IGNORED = "SpecChangeIgnored"
REASON_POD_LOST = "PodLost"
# Issue 23: a lost worker of a dynamic launch recreated alone, the rest of the gang restarting in place.
REASON_POD_REPLACED = "PodReplaced"
# A pod of the gang stopped from outside (Kueue preemption, the scheduler's preemption, a drain): the gang restarts
# from its checkpoint once admitted again, not counted against backoffLimit (as a Job's podFailurePolicy Ignore on
# DisruptionTarget).
REASON_EVICTED = "Evicted"
# Issue 23 (faults.py): a rank on a node that is not Ready, or on an NPU the Ascend device plugin reports unhealthy
# (or its network link down): the gang restarts away from it, not counted against backoffLimit.
REASON_NODE_NOT_READY = "NodeNotReady"
REASON_NPU_UNHEALTHY = "NPUUnhealthy"
REASON_NPU_NETWORK_UNHEALTHY = "NPUNetworkUnhealthy"
FAULT_REASONS = (REASON_NODE_NOT_READY, REASON_NPU_UNHEALTHY, REASON_NPU_NETWORK_UNHEALTHY)
REASON_POD_START_FAILED = "PodStartFailed"
REASON_POD_START_BLOCKED = "PodStartBlocked"
REASON_POLICY_DENIED = "PolicyDenied"
REASON_ADMISSION_REFUSED = "AdmissionRefused"
REASON_QUOTA_EXCEEDED = "QuotaExceeded"
REASON_PODS_ADMITTED = "PodsAdmitted"
# Issue 24: a name the job would use is held by an object it does not own; and when that is over.
REASON_OBJECT_NOT_OWNED = "ObjectNotOwned"
REASON_OBJECTS_OWNED = "ObjectsOwned"
# Issue 24: spec.scheduling.queue names no LocalQueue of the namespace; and once it exists.
REASON_QUEUE_NOT_FOUND = "QueueNotFound"
REASON_QUEUE_FOUND = "QueueFound"

# Exit codes (docs/contracts.md).
# Exit codes and their classes are a fact of the border: zoo_workloads.contract.
EXIT_CONFIG_ERROR = contract.EXIT_CONFIG
EXIT_DATASET_MISSING = contract.EXIT_DATASET_MISSING
EXIT_RETRYABLE = contract.EXIT_RETRYABLE
# The workload stopped on SIGTERM after checkpointing: restarted, and the restart is not counted against
# backoffLimit.
EXIT_STOPPED = contract.EXIT_STOPPED
PERMANENT_EXIT_CODES = contract.PERMANENT_EXIT_CODES

# Labels and annotations (docs/contracts.md).
LABEL_JOB = "modelzoo.io/job-name"
LABEL_RANK = "modelzoo.io/rank"
LABEL_ROLE = "modelzoo.io/role"
LABEL_SERVER_GROUP = "modelzoo.io/server-group"  # worker index // spec.device.perNode: one group per node
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGED_BY = "zoo-operator"
ROLE_WORKER = "worker"
ROLE_SCHEDULER = "scheduler"
# Which whole-gang attempt a pod belongs to: pods of an older attempt are deleted, never reused.
ANNOTATION_ATTEMPT = "modelzoo.io/attempt"
# The launch ConfigMap's key (a file next to hccl.json) naming the attempt whose pods the table lists; a pod of
# attempt N (env ZOO_ATTEMPT, from its annotation) takes no rank from a table of another attempt, which the kubelet
# may still show it for a minute (ConfigMap volumes refresh every 60-90 s; ../shared/ASCEND.md).
RANKTABLE_ATTEMPT_KEY = contract.ATTEMPT_FILE
# Hash of the spec fields that define the gang (spec.gang_hash): a pod of another spec is never kept in the gang.
ANNOTATION_SPEC_HASH = "modelzoo.io/spec-hash"
ASCEND_ANNOTATION = (
    "ascend.kubectl.kubernetes.io/ascend-910-configuration"  # huawei.com/Ascend910 (910, 910B, A3)
)
ASCEND_NPU_ANNOTATION = (
    "ascend.kubectl.kubernetes.io/ascend-npu-configuration"  # huawei.com/npu (newer chips)
)
VOLCANO_GROUP_ANNOTATION = "scheduling.k8s.io/group-name"
KUEUE_QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
KUEUE_GROUP_LABEL = "kueue.x-k8s.io/pod-group-name"
KUEUE_GROUP_COUNT_ANNOTATION = "kueue.x-k8s.io/pod-group-total-count"
# Kueue's finalizer on the pods it manages (pkg/controller/jobs/pod: it keeps it on a pod group's deleted or failed
# pods until replacement pods exist, which for our fixed pod names never happens unless we release it).
KUEUE_FINALIZER = "kueue.x-k8s.io/managed"
# Kueue counts a pod group finished only when all its pods succeeded, or none is active and a pod carries this
# annotation (pod_controller.go Finished, isUnretriableGroup). A finished job's scheduler pod deleted by
# cleanPodPolicy never succeeds, so without it the workload would hold its quota forever.
KUEUE_RETRIABLE_ANNOTATION = "kueue.x-k8s.io/retriable-in-group"

# Paths inside the pods.
# Paths inside the pods (zoo_workloads.contract).
RANKTABLE_DIR = contract.RANKTABLE_DIR
RANKTABLE_FILE = contract.RANKTABLE_FILE
DATA_DIR = contract.DATA_DIR
CHECKPOINT_DIR = contract.CHECKPOINT_DIR
TERMINATION_LOG = contract.TERMINATION_LOG
# spec.from: the named job's checkpoint volume (read-only, except for export, which writes next to it).
FROM_DIR = contract.FROM_DIR

# Volumes and mount paths the operator itself puts into the pods it renders (render.py, ascend.py): the platform
# policy reserves exactly these for the operator, and tests/unit/test_reserved_names.py renders every kind of job
# to prove that nothing render emits is missing here (the apiserver refuses a pod with a duplicate name or path).
SHM_DIR = "/dev/shm"
ASCEND_DRIVER_DIR = "/usr/local/Ascend/driver"
NPU_SMI_FILE = "/usr/local/bin/npu-smi"
OWN_VOLUMES = (
    "zoo-data",
    "zoo-checkpoint",
    "zoo-ranktable",
    "zoo-from",
    "zoo-dshm",
    "zoo-ascend-driver",
    "zoo-npu-smi",
    *(name for name, _ in contract.SCRATCH_VOLUMES),
)
OWN_MOUNT_PATHS = (DATA_DIR, CHECKPOINT_DIR, RANKTABLE_DIR, FROM_DIR, TERMINATION_LOG) + tuple(
    path for _, path in contract.SCRATCH_VOLUMES
)  # the emptyDirs of the read-only root file system (contract.SCRATCH_VOLUMES)
ASCEND_MOUNT_PATHS = (SHM_DIR, ASCEND_DRIVER_DIR, NPU_SMI_FILE)  # only Ascend pods get these (ascend.volumes)

# spec.task: what the pods run (docs/contracts.md).
TASK_TRAIN = "train"
TASK_EVALUATE = "evaluate"
TASK_EXPORT = "export"
TASKS = (TASK_TRAIN, TASK_EVALUATE, TASK_EXPORT)
CHECKPOINT_KINDS = ("best", "last")
# Evaluate and export run one process: no scheduler pod, no rank table.
LAUNCH_SINGLE = "single"

# Waiting reasons that mean the image will not arrive by itself.
IMAGE_PULL_REASONS = frozenset({"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull"})
# Waiting reasons that say a container cannot be created as specified (a missing ConfigMap/Secret/key, a bad
# command): reported at once, failed after schedulingTimeoutSeconds (they may heal, e.g. a Secret created late).
START_PROBLEM_REASONS = frozenset(
    {
        "CreateContainerConfigError",
        "CreateContainerError",
        "RunContainerError",
        "PreCreateHookError",
        "PostStartHookError",
    }
)
