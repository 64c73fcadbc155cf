"""Brings the local cluster up and down: etcd, kube-apiserver, kube-controller-manager, kube-scheduler and
the process kubelet, each started in its own session with its PID recorded, so `down` stops exactly these."""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from zoocluster import nodes, pki
from zoocluster.config import HERE, REPO, ClusterConfig, k8s_version

ORDER = ["etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet"]
# Started on request after `up` (`zoo-cluster kueue`); stopped by `down` like the others.
OPTIONAL = ["kueue"]
ISSUER = "https://kubernetes.default.svc.cluster.local"


class ClusterError(Exception):
    """The cluster could not be brought up; the message says what to do."""


# Native gang scheduling (k8s.io/kubernetes v1.36 pkg/features: GenericWorkload for the scheduling.k8s.io/v1alpha2
# PodGroup API and pod.spec.schedulingGroup, GangScheduling for the kube-scheduler's gang plugin: PreEnqueue
# until minCount pods exist, Permit until minCount are placed, so a gang that cannot fit whole binds no pod).
FEATURE_GATES = "--feature-gates=GenericWorkload=true,GangScheduling=true"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie is dead for our purposes.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"
    except (OSError, IndexError):
        return False


def recorded(cfg: ClusterConfig) -> dict[str, int]:
    """The processes this cluster started that are still running (name -> PID)."""
    out = {}
    for name in [*ORDER, *OPTIONAL]:
        path = cfg.pids / f"{name}.pid"
        if not path.exists():
            continue
        pid_text, _, marker = path.read_text().partition("\n")
        pid = int(pid_text)
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if _pid_alive(pid) and marker.strip() in cmdline:  # guards against a recycled PID
            out[name] = pid
    return out


def _start(
    cfg: ClusterConfig, name: str, argv: list[str], marker: str, env: dict[str, str] | None = None
) -> None:
    log = (cfg.logs / f"{name}.log").open("ab")
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env=env,
        cwd=cfg.state_dir,
    )
    (cfg.pids / f"{name}.pid").write_text(f"{proc.pid}\n{marker}\n")
    _STARTED[name] = proc


def _https_get(cfg: ClusterConfig, path: str) -> tuple[int, str]:
    ctx = ssl.create_default_context(cafile=str(cfg.pki / "ca.crt"))
    ctx.load_cert_chain(str(cfg.pki / "admin.crt"), str(cfg.pki / "admin.key"))
    url = f"https://127.0.0.1:{cfg.apiserver_port}{path}"
    try:
        with urllib.request.urlopen(url, context=ctx, timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")
    except OSError as exc:
        return 0, str(exc)


# The processes `up` started in this process, so a failure can say how one ended (exit code or signal).
_STARTED: dict[str, subprocess.Popen[bytes]] = {}


def _exited(cfg: ClusterConfig, name: str) -> str | None:
    """How a component ended ("exit code N", "killed by signal N"), or None while it runs.

    A process `up` started itself is asked directly (its exit status); reading /proc for the recorded PID and
    its command line instead gave false "exited" reports while etcd was starting (seen in CI)."""
    proc = _STARTED.get(name)
    if proc is not None:
        code = proc.poll()
        if code is None:
            return None
        return f"killed by signal {-code}" if code < 0 else f"exit code {code}"
    return None if name in recorded(cfg) else "not running"


def _wait(what: str, check: Callable[[], bool], timeout: float, cfg: ClusterConfig, log_name: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        ended = _exited(cfg, log_name) if log_name else None
        if ended is not None:
            tail = (cfg.logs / f"{log_name}.log").read_text(errors="replace").splitlines()[-15:]
            raise ClusterError(f"{log_name} exited ({ended}) while waiting for {what}:\n" + "\n".join(tail))
        time.sleep(0.5)
    raise ClusterError(f"timed out after {timeout:.0f}s waiting for {what}; see {cfg.logs}")


def write_kubeconfig(cfg: ClusterConfig, path: Path, user: str, embed: bool) -> None:
    """A kubeconfig for the API server with the user's client certificate (embedded, or by file path)."""

    def field(kind: str, file: Path) -> dict[str, str]:
        if embed:
            return {f"{kind}-data": base64.b64encode(file.read_bytes()).decode()}
        return {kind: str(file)}

    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "zoo-local",
                "cluster": {
                    "server": f"https://127.0.0.1:{cfg.apiserver_port}",
                    **field("certificate-authority", cfg.pki / "ca.crt"),
                },
            }
        ],
        "users": [
            {
                "name": user,
                "user": {
                    **field("client-certificate", cfg.pki / f"{user}.crt"),
                    **field("client-key", cfg.pki / f"{user}.key"),
                },
            }
        ],
        "contexts": [{"name": "zoo-local", "context": {"cluster": "zoo-local", "user": user}}],
        "current-context": "zoo-local",
    }
    path.write_text(json.dumps(doc, indent=2))
    path.chmod(0o600)


def _check_ports(cfg: ClusterConfig) -> None:
    ports = {
        "ZOO_CLUSTER_APISERVER_PORT": cfg.apiserver_port,
        "ZOO_CLUSTER_ETCD_PORT": cfg.etcd_port,
        "ZOO_CLUSTER_ETCD_PORT+1 (etcd peer)": cfg.etcd_port + 1,
        "ZOO_CLUSTER_CONTROLLER_MANAGER_PORT": cfg.controller_manager_port,
        "ZOO_CLUSTER_SCHEDULER_PORT": cfg.scheduler_port,
        "ZOO_CLUSTER_KUBELET_PORT": cfg.kubelet_port,
    }
    for var, port in ports.items():
        with socket.socket() as s:
            # As the servers themselves do: connections of a previous cluster in TIME_WAIT do not block a bind.
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                raise ClusterError(
                    f"port {port} is in use (another cluster?); choose another with {var}"
                ) from None


def _ready(cfg: ClusterConfig) -> bool:
    """Nodes registered and Ready, the default service account and kube-root-ca.crt published."""
    code, body = _https_get(cfg, "/api/v1/nodes")
    if code != 200:
        return False
    items = json.loads(body)["items"]
    want = {n.name for n in nodes.load_nodes(cfg.nodes_file.read_text())}
    ready = {
        n["metadata"]["name"]
        for n in items
        if any(c["type"] == "Ready" and c["status"] == "True" for c in n["status"].get("conditions", []))
    }
    return want <= ready and all(
        _https_get(cfg, p)[0] == 200
        for p in (
            "/api/v1/namespaces/default/serviceaccounts/default",
            "/api/v1/namespaces/default/configmaps/kube-root-ca.crt",
        )
    )


NODE_MONITOR_GRACE_SECONDS = 40


def up(cfg: ClusterConfig) -> None:
    """Start the cluster (a no-op when it is already running) and wait until it can run pods."""
    running = recorded(cfg)
    if len(running) == len(ORDER) and _https_get(cfg, "/readyz")[0] == 200:
        return
    if running or cfg.state_dir.exists():
        down(cfg)
    bins = {b: cfg.bin_dir / b for b in ("kube-apiserver", "kube-controller-manager", "kube-scheduler")}
    missing = [str(p) for p in bins.values() if not os.access(p, os.X_OK)]
    if missing:
        raise ClusterError(f"control plane not built ({', '.join(missing)}); run hack/cluster/build.sh")
    etcd = shutil.which("etcd") or "/usr/bin/etcd"
    if not os.access(etcd, os.X_OK):
        raise ClusterError("etcd not found; run hack/cluster/build.sh (installs Debian's etcd-server)")
    _check_ports(cfg)
    for d in (cfg.state_dir, cfg.logs, cfg.pids, cfg.etcd_dir):
        d.mkdir(parents=True, exist_ok=True)
    specs = nodes.load_nodes(cfg.nodes_file.read_text())
    pki.make_all(cfg.pki, [nodes.node_ip(cfg.node_subnet, i) for i in range(1, len(specs) + 1)])
    write_kubeconfig(cfg, cfg.kubeconfig, "admin", embed=True)
    for user in ("controller-manager", "scheduler"):
        write_kubeconfig(cfg, cfg.state_dir / f"{user}.kubeconfig", user, embed=False)
    p = cfg.pki
    peer = f"http://127.0.0.1:{cfg.etcd_port + 1}"
    client_url = f"http://127.0.0.1:{cfg.etcd_port}"
    _start(
        cfg,
        "etcd",
        [
            etcd,
            "--name",
            "zoo",
            "--data-dir",
            str(cfg.etcd_dir / "data"),
            "--listen-client-urls",
            client_url,
            "--advertise-client-urls",
            client_url,
            "--listen-peer-urls",
            peer,
            "--initial-advertise-peer-urls",
            peer,
            "--initial-cluster",
            f"zoo={peer}",
            "--log-level",
            "warn",
        ],
        "etcd",
    )
    _wait("etcd", lambda: _etcd_healthy(client_url), 30, cfg, "etcd")
    _start(cfg, "kube-apiserver", apiserver_argv(cfg), "kube-apiserver")
    _wait("kube-apiserver /readyz", lambda: _https_get(cfg, "/readyz")[0] == 200, 120, cfg, "kube-apiserver")
    common = ["--bind-address=127.0.0.1", "--leader-elect=false", "--profiling=false", FEATURE_GATES]
    cm_kc = cfg.state_dir / "controller-manager.kubeconfig"
    _start(
        cfg,
        "kube-controller-manager",
        [
            str(bins["kube-controller-manager"]),
            f"--kubeconfig={cm_kc}",
            f"--authentication-kubeconfig={cm_kc}",
            f"--authorization-kubeconfig={cm_kc}",
            f"--secure-port={cfg.controller_manager_port}",
            *common,
            f"--service-account-private-key-file={p / 'sa.key'}",
            f"--root-ca-file={p / 'ca.crt'}",
            "--use-service-account-credentials=true",
            # Issue 23: the node-lifecycle controller runs, so a node whose kubelet stops renewing its Lease
            # (zoo-cluster node-down) turns Unknown after the grace period, as on a real cluster. 40 s: the
            # twin's Lease duration (nodes.LEASE_SECONDS), four missed 10 s heartbeats; Kubernetes' default is
            # 50 s since v1.32 (kube-controller-manager --node-monitor-grace-period).
            f"--node-monitor-grace-period={NODE_MONITOR_GRACE_SECONDS}s",
        ],
        "kube-controller-manager",
    )
    sc_kc = cfg.state_dir / "scheduler.kubeconfig"
    _start(
        cfg,
        "kube-scheduler",
        [
            str(bins["kube-scheduler"]),
            f"--kubeconfig={sc_kc}",
            f"--authentication-kubeconfig={sc_kc}",
            f"--authorization-kubeconfig={sc_kc}",
            f"--secure-port={cfg.scheduler_port}",
            *common,
        ],
        "kube-scheduler",
    )
    env = {**os.environ, "PYTHONPATH": str(HERE), "PYTHONUNBUFFERED": "1"}
    _start(cfg, "kubelet", [sys.executable, "-m", "zoocluster", "kubelet"], "zoocluster", env=env)
    _wait("nodes Ready and the default service account", lambda: _ready(cfg), 120, cfg, "kubelet")


def apiserver_argv(cfg: ClusterConfig) -> list[str]:
    """The kube-apiserver's command line (one place, for `up` and `restart-apiserver`)."""
    p = cfg.pki
    client_url = f"http://127.0.0.1:{cfg.etcd_port}"
    return [
        str(cfg.bin_dir / "kube-apiserver"),
        f"--etcd-servers={client_url}",
        "--bind-address=127.0.0.1",
        "--advertise-address=127.0.0.1",
        f"--secure-port={cfg.apiserver_port}",
        f"--tls-cert-file={p / 'apiserver.crt'}",
        f"--tls-private-key-file={p / 'apiserver.key'}",
        f"--client-ca-file={p / 'ca.crt'}",
        "--authorization-mode=Node,RBAC",
        f"--service-account-issuer={ISSUER}",
        f"--service-account-key-file={p / 'sa.pub'}",
        f"--service-account-signing-key-file={p / 'sa.key'}",
        "--service-cluster-ip-range=10.96.0.0/16",
        f"--kubelet-client-certificate={p / 'apiserver-kubelet-client.crt'}",
        f"--kubelet-client-key={p / 'apiserver-kubelet-client.key'}",
        f"--kubelet-certificate-authority={p / 'ca.crt'}",
        "--kubelet-preferred-address-types=InternalIP",
        "--disable-admission-plugins=TaintNodesByCondition",
        # The kubernetes Service's endpoints would be 127.0.0.1, which Endpoints validation refuses.
        "--endpoint-reconciler-type=none",
        "--allow-privileged=true",
        "--profiling=false",
        FEATURE_GATES,
        # The kube-scheduler's native gang scheduling API (PodGroup, Workload): alpha, off by default.
        "--runtime-config=scheduling.k8s.io/v1alpha2=true",
    ]


def restart_apiserver(cfg: ClusterConfig, down_seconds: float = 0.0) -> int:
    """Stop the running kube-apiserver (SIGTERM, then SIGKILL), leave it down for `down_seconds`, start it
    again with the same command line and wait for /readyz; returns the new PID. etcd and every other component
    keep running, as when a control-plane node reboots its apiserver (chaos tests use this)."""
    running = recorded(cfg)
    if "kube-apiserver" not in running:
        raise ClusterError(f"kube-apiserver of {cfg.state_dir} is not running; start the cluster with `up`")
    _stop(running["kube-apiserver"], 10.0)
    time.sleep(max(down_seconds, 0.0))
    _start(cfg, "kube-apiserver", apiserver_argv(cfg), "kube-apiserver")
    _wait("kube-apiserver /readyz", lambda: _https_get(cfg, "/readyz")[0] == 200, 120, cfg, "kube-apiserver")
    return _STARTED["kube-apiserver"].pid


def _etcd_healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as resp:
            return b"true" in resp.read()
    except OSError:
        return False


def _stop(pid: int, grace: float) -> None:
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while _pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def mount_points_in_use(proc: Path = Path("/proc")) -> set[str]:
    """Mount points of every process's mount namespace (from /proc/<pid>/mountinfo), as host paths.

    Containers of clusters in other worktrees bind their volumes onto the same host paths (e.g.
    /var/run/secrets/kubernetes.io/serviceaccount); since Linux 3.18 removing such a directory detaches the
    mounts on it in every other mount namespace, so `down` must leave a path alone while anything is mounted there.
    """
    points: set[str] = set()
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            text = (entry / "mountinfo").read_text()
        except OSError:
            continue
        for line in text.splitlines():
            fields = line.split()
            if len(fields) > 4:
                points.add(fields[4].replace("\\040", " "))
    return points


def mounted_at_or_below(path: str, in_use: set[str]) -> bool:
    """Whether anything is mounted at `path` or below it.

    mountinfo names mount points by their resolved path (/run/secrets/..., where Debian's /var/run is a link to
    /run), while the created-paths log has them as the pod spec wrote them (/var/run/secrets/...): compare both.
    """
    for candidate in {path, os.path.realpath(path)}:
        if candidate in in_use or any(m.startswith(candidate.rstrip("/") + "/") for m in in_use):
            return True
    return False


def down(cfg: ClusterConfig) -> None:
    """Stop what this cluster started (kubelet first, so it stops its pods) and remove all its state."""
    running = recorded(cfg)
    for name in [*OPTIONAL, *reversed(ORDER)]:
        if name in running:
            _stop(running[name], 20.0 if name == "kubelet" else 10.0)
    kubelet_dir = cfg.state_dir / "kubelet"
    pid_dir = kubelet_dir / "kubelet-pids"
    if pid_dir.is_dir():
        for entry in pid_dir.iterdir():  # containers of a kubelet that could not clean up itself
            pid = int(entry.name)
            if _pid_alive(pid) and os.getpgid(pid) == pid:
                _stop(pid, 2.0)
    created = kubelet_dir / "created-paths"
    if created.exists():
        # Mount points containers needed on the host (e.g. /etc/zoo/ranktable); deepest first, only if empty.
        in_use = mount_points_in_use()
        for raw in sorted(set(created.read_text().split()), key=len, reverse=True):
            path = Path(raw)
            if mounted_at_or_below(raw, in_use):
                continue  # another cluster's container has a mount there: removing it would detach that mount
            try:
                if path.is_dir():
                    path.rmdir()
                elif path.is_file() and path.stat().st_size == 0:
                    path.unlink()
            except OSError:
                pass
    shutil.rmtree(cfg.etcd_dir, ignore_errors=True)
    shutil.rmtree(cfg.state_dir, ignore_errors=True)


def describe(cfg: ClusterConfig) -> str:
    """How to use the running cluster."""
    return (
        f"local cluster up: Kubernetes {k8s_version()}, state in {cfg.state_dir}\n"
        f"  export KUBECONFIG={cfg.kubeconfig}\n"
        f"  export PATH={REPO / '.cache' / 'bin'}:$PATH\n"
        f"  kubectl get nodes"
    )
