"""Where the local cluster keeps its state and which ports it uses, from the environment.

Every setting has a default that works for one cluster per worktree; two worktrees can run clusters at once by
setting other ports (the state directory already differs per worktree).
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent  # hack/cluster
REPO = HERE.parent.parent


def k8s_version(go_mod: Path = HERE / "k8s" / "go.mod") -> str:
    """The pinned Kubernetes version, read from hack/cluster/k8s/go.mod."""
    m = re.search(r"^\s*k8s\.io/kubernetes (v\S+)", go_mod.read_text(), re.MULTILINE)
    if not m:
        raise ValueError(f"{go_mod}: no k8s.io/kubernetes requirement")
    return m.group(1)


def _port(name: str, default: int) -> int:
    raw = os.environ.get(name, str(default))
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise ValueError(f"{name}={raw!r}: must be a TCP port number (1-65535)")
    return int(raw)


@dataclass(frozen=True)
class ClusterConfig:
    """All settings of one local cluster."""

    state_dir: Path
    bin_dir: Path
    etcd_dir: Path
    nodes_file: Path
    images_file: Path
    apiserver_port: int
    etcd_port: int
    controller_manager_port: int
    scheduler_port: int
    kubelet_port: int
    node_subnet: str
    pod_prefix: str

    @property
    def kubeconfig(self) -> Path:
        """The admin kubeconfig for tests and people."""
        return self.state_dir / "kubeconfig"

    @property
    def pki(self) -> Path:
        """Certificates and keys."""
        return self.state_dir / "pki"

    @property
    def logs(self) -> Path:
        """Control-plane and kubelet logs."""
        return self.state_dir / "logs"

    @property
    def pids(self) -> Path:
        """One file per process the cluster started, holding its PID."""
        return self.state_dir / "pids"


def from_env() -> ClusterConfig:
    """Read the configuration: ZOO_CLUSTER_* and ZOO_K8S_BIN_DIR variables over the defaults."""
    env = os.environ
    state = Path(env.get("ZOO_CLUSTER_STATE_DIR", REPO / ".cache" / "cluster")).resolve()
    version = k8s_version()
    bin_dir = Path(env.get("ZOO_K8S_BIN_DIR", Path.home() / ".cache" / "zoo-operator" / f"k8s-{version}"))
    # etcd fsyncs a lot; in memory it is fast and a throwaway cluster loses nothing it needs.
    shm = Path("/dev/shm")
    tag = hashlib.sha256(str(state).encode()).hexdigest()[:10]
    etcd_default = shm / f"zoo-cluster-etcd-{tag}" if shm.is_dir() else state / "etcd"
    return ClusterConfig(
        state_dir=state,
        bin_dir=bin_dir,
        etcd_dir=Path(env.get("ZOO_CLUSTER_ETCD_DIR", etcd_default)),
        nodes_file=Path(env.get("ZOO_CLUSTER_NODES", HERE / "nodes.yaml")),
        images_file=Path(env.get("ZOO_CLUSTER_IMAGES", HERE / "images.yaml")),
        apiserver_port=_port("ZOO_CLUSTER_APISERVER_PORT", 6443),
        etcd_port=_port("ZOO_CLUSTER_ETCD_PORT", 2379),
        controller_manager_port=_port("ZOO_CLUSTER_CONTROLLER_MANAGER_PORT", 10257),
        scheduler_port=_port("ZOO_CLUSTER_SCHEDULER_PORT", 10259),
        kubelet_port=_port("ZOO_CLUSTER_KUBELET_PORT", 10250),
        node_subnet=env.get("ZOO_CLUSTER_NODE_SUBNET", "127.0.2"),
        # Clusters of different worktrees share the host's loopback: give each its own /16 of pod IPs.
        pod_prefix=env.get("ZOO_CLUSTER_POD_PREFIX", f"127.{10 + int(tag, 16) % 240}"),
    )


# The test suite's own cluster: its state directory and ports differ from the defaults that `make demo` and
# `make cluster-up` use, so a test run neither sees nor disturbs a cluster a person (or the demo) left running.
# Each setting can be moved with the same name under ZOO_TEST_CLUSTER_* (e.g. two worktrees testing at once).
TEST_PROFILE = {
    "STATE_DIR": str(REPO / ".cache" / "test-cluster"),
    "APISERVER_PORT": "16443",
    "ETCD_PORT": "12379",
    "CONTROLLER_MANAGER_PORT": "20257",
    "SCHEDULER_PORT": "20259",
    "KUBELET_PORT": "20250",
    "NODE_SUBNET": "127.0.3",
    "KUEUE_PORT": "29443",
}


def suite_env(env: dict[str, str]) -> dict[str, str]:
    """`env` with ZOO_CLUSTER_* set for the test suite's own cluster (ZOO_TEST_CLUSTER_* override each one).

    A ZOO_CLUSTER_* value already in `env` describes the user's cluster and is deliberately not used.
    """
    out = {k: v for k, v in env.items() if not k.startswith("ZOO_CLUSTER_")}
    for key, default in TEST_PROFILE.items():
        out[f"ZOO_CLUSTER_{key}"] = env.get(f"ZOO_TEST_CLUSTER_{key}", default)
    for key in ("ETCD_DIR", "POD_PREFIX", "NODES", "IMAGES"):
        if f"ZOO_TEST_CLUSTER_{key}" in env:
            out[f"ZOO_CLUSTER_{key}"] = env[f"ZOO_TEST_CLUSTER_{key}"]
    return out
