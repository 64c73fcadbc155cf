"""Kueue (sigs.k8s.io/kueue) in the local cluster: `zoo-cluster kueue` starts the manager built by
hack/cluster/build-kueue.sh as one more process of the cluster (its PID recorded, so `down` stops it).

The manager runs outside the cluster with the admin kubeconfig (so no RBAC is installed), its CRDs come from the
Go module (config/components/crd/bases), and its admission webhooks are registered with a `url:` clientConfig
pointing at 127.0.0.1 and a serving certificate signed by the cluster's CA (Kueue's own certificate management
off). Only the `pod` integration is on, and only for namespaces labelled MANAGED_LABEL=true, so pods anywhere
else are never gated by Kueue (nor slowed by its webhook).
"""

from __future__ import annotations

import base64
import copy
import json
import os
import re
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from zoocluster import controlplane, pki
from zoocluster.config import HERE, REPO, ClusterConfig

NAMESPACE = "kueue-system"
# Namespaces where Kueue manages pods (Configuration.managedJobsNamespaceSelector and the pod webhook's selector).
MANAGED_LABEL = "modelzoo.io/kueue-managed"
# Webhook paths kept: Kueue's own objects and plain pods. The manifest also lists the webhooks of every other
# integration (batch/v1 Job, JobSet, ...); with only `pod` enabled their handlers are not served, and a
# failurePolicy: Fail webhook without a handler would reject every Job in the cluster.
METRICS_CERTS = Path("/etc/kueue/metrics/certs")
_KEPT_PATH = re.compile(r"^/(mutate|validate)-(kueue-x-k8s-io-.*|-v1-pod)$")


def version(go_mod: Path = HERE / "kueue" / "go.mod") -> str:
    """The pinned Kueue version, read from hack/cluster/kueue/go.mod."""
    m = re.search(r"^\s*sigs\.k8s\.io/kueue (v\S+)", go_mod.read_text(), re.MULTILINE)
    if not m:
        raise ValueError(f"{go_mod}: no sigs.k8s.io/kueue requirement")
    return m.group(1)


def binary(env: dict[str, str] | None = None) -> Path:
    """Where build-kueue.sh caches the manager (ZOO_KUEUE_BIN_DIR, else ~/.cache/zoo-operator/kueue-<version>)."""
    env = os.environ if env is None else env
    default = Path.home() / ".cache" / "zoo-operator" / f"kueue-{version()}"
    return Path(env.get("ZOO_KUEUE_BIN_DIR", default)) / "kueue"


def module_dir() -> Path:
    """Kueue's module source in the Go module cache (downloaded by the build); its config/ holds the manifests."""
    gomodcache = os.environ.get("GOMODCACHE") or str(
        Path(os.environ.get("GOPATH", Path.home() / "go")) / "pkg/mod"
    )
    return Path(gomodcache) / "sigs.k8s.io" / f"kueue@{version()}"


def ports(cfg: ClusterConfig) -> tuple[int, int]:
    """(webhook, health probe) ports: ZOO_CLUSTER_KUEUE_PORT and the next one."""
    raw = os.environ.get("ZOO_CLUSTER_KUEUE_PORT", "9443")
    if not raw.isdigit() or not 0 < int(raw) < 65535:
        raise ValueError(f"ZOO_CLUSTER_KUEUE_PORT={raw!r}: must be a TCP port number")
    return int(raw), int(raw) + 1


def configuration(webhook_port: int, health_port: int, cert_dir: Path) -> dict[str, Any]:
    """Kueue's Configuration (config.kueue.x-k8s.io/v1beta2; apis/config/v1beta2/configuration_types.go)."""
    return {
        "apiVersion": "config.kueue.x-k8s.io/v1beta2",
        "kind": "Configuration",
        "namespace": NAMESPACE,
        # controller-runtime's webhook server reads tls.crt/tls.key from certDir.
        "webhook": {"host": "127.0.0.1", "port": webhook_port, "certDir": str(cert_dir)},
        "health": {"healthProbeBindAddress": f"127.0.0.1:{health_port}"},
        # "0" turns controller-runtime's metrics server off: no port to collide with another cluster's.
        "metrics": {"bindAddress": "0"},
        "leaderElection": {"leaderElect": False},
        # The certificates are ours (the cluster CA); Kueue's cert-controller would want a Secret and a Service.
        "internalCertManagement": {"enable": False},
        "manageJobsWithoutQueueName": False,
        # Pod-based integrations are managed only in matching namespaces (configuration_types.go,
        # ManagedJobsNamespaceSelector: "a strong exemption for the Pod-based integrations").
        "managedJobsNamespaceSelector": {"matchLabels": {MANAGED_LABEL: "true"}},
        "integrations": {"frameworks": ["pod"]},
    }


def local_webhooks(docs: list[dict[str, Any]], port: int, ca_bundle: str) -> list[dict[str, Any]]:
    """Kueue's webhook configurations (config/components/webhook/manifests.yaml) rewritten for a manager on
    127.0.0.1:port: kept webhooks only, each with `url:` and our caBundle; the pod webhook limited to
    MANAGED_LABEL namespaces (the kustomize overlay limits it by namespace too)."""
    out = []
    for doc in docs:
        if not doc or doc.get("kind") not in (
            "MutatingWebhookConfiguration",
            "ValidatingWebhookConfiguration",
        ):
            continue
        body = copy.deepcopy(doc)
        body["metadata"] = {"name": f"kueue-{doc['metadata']['name']}"}
        hooks = []
        for hook in body.get("webhooks") or []:
            path = hook["clientConfig"]["service"]["path"]
            if not _KEPT_PATH.match(path):
                continue
            hook["clientConfig"] = {"url": f"https://127.0.0.1:{port}{path}", "caBundle": ca_bundle}
            if path.endswith("-v1-pod"):
                hook["namespaceSelector"] = {"matchLabels": {MANAGED_LABEL: "true"}}
            hooks.append(hook)
        body["webhooks"] = hooks
        if hooks:
            out.append(body)
    return out


def _kubectl(cfg: ClusterConfig, *args: str, input: str | None = None) -> str:
    env = {
        **os.environ,
        "KUBECONFIG": str(cfg.kubeconfig),
        "PATH": f"{REPO / '.cache' / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    proc = subprocess.run(
        ["kubectl", *args], check=False, input=input, capture_output=True, text=True, env=env, timeout=120
    )
    if proc.returncode != 0:
        raise controlplane.ClusterError(
            f"kubectl {' '.join(args)}: {proc.stderr.strip() or proc.stdout.strip()}"
        )
    return proc.stdout


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=3) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _wait_ready(cfg: ClusterConfig, health_port: int, timeout: float = 120) -> None:
    """Wait for /readyz; fail when the manager is gone (seen three times in a row: right after the start its
    /proc cmdline can be read mid-exec, through unshare and sh)."""
    deadline, missing = time.monotonic() + timeout, 0
    while time.monotonic() < deadline:
        if _healthy(health_port):
            return
        missing = 0 if "kueue" in controlplane.recorded(cfg) else missing + 1
        if missing >= 3:
            tail = (cfg.logs / "kueue.log").read_text(errors="replace").splitlines()[-15:]
            raise controlplane.ClusterError("kueue exited while starting:\n" + "\n".join(tail))
        time.sleep(0.5)
    raise controlplane.ClusterError(f"kueue not ready after {timeout:.0f}s; see {cfg.logs / 'kueue.log'}")


def up(cfg: ClusterConfig) -> str:
    """Install Kueue's CRDs and webhooks into the running cluster and start its manager (a no-op when running).
    Returns a one-line description."""
    webhook_port, health_port = ports(cfg)
    exe = binary()
    if not exe.is_file():
        raise controlplane.ClusterError(f"{exe} is missing: run hack/cluster/build-kueue.sh")
    src = module_dir()
    if not (src / "config").is_dir():
        raise controlplane.ClusterError(
            f"{src} is missing: run hack/cluster/build-kueue.sh (it downloads it)"
        )
    if "kueue" in controlplane.recorded(cfg) and _healthy(health_port):
        return f"kueue {version()} already running (webhook 127.0.0.1:{webhook_port})"
    home = cfg.state_dir / "kueue"
    certs = home / "certs"
    certs.mkdir(parents=True, exist_ok=True)
    if not (certs / "tls.crt").exists():
        pki.make_cert(
            cfg.pki, "kueue-webhook", "kueue-webhook", server=True, ips=("127.0.0.1",), dns=("localhost",)
        )
        (certs / "tls.key").write_bytes((cfg.pki / "kueue-webhook.key").read_bytes())
        (certs / "tls.key").chmod(0o600)
        (certs / "tls.crt").write_bytes((cfg.pki / "kueue-webhook.crt").read_bytes())
    config_file = home / "config.yaml"
    config_file.write_text(json.dumps(configuration(webhook_port, health_port, certs), indent=1) + "\n")

    # CRDs first (server-side: some are larger than client-side apply's last-applied annotation allows).
    crds = sorted((src / "config" / "components" / "crd" / "bases").glob("*.yaml"))
    _kubectl(cfg, "apply", "--server-side", "--force-conflicts", *(a for f in crds for a in ("-f", str(f))))
    _kubectl(
        cfg,
        "wait",
        "--for=condition=Established",
        "--timeout=60s",
        *(f"crd/{yaml.safe_load(f.read_text())['metadata']['name']}" for f in crds),
    )
    _kubectl(
        cfg,
        "apply",
        "-f",
        "-",
        input=json.dumps({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}),
    )

    # The manager before its webhooks: a registered webhook with nobody serving it would reject pod creations.
    # Without internal cert management the manager loads its metrics certificate from the fixed path
    # /etc/kueue/metrics/certs (cmd/kueue/main.go) even with the metrics server off: it gets ours there, bound in a
    # mount namespace of its own, so nothing is written into the host's /etc but that empty mount point.
    METRICS_CERTS.mkdir(parents=True, exist_ok=True)
    # A manager that `down` just killed may hold its ports for a moment.
    controlplane._wait(
        f"ports {webhook_port} and {health_port} free",
        lambda: _port_free(webhook_port) and _port_free(health_port),
        30,
        cfg,
        "",
    )
    argv = [str(exe), f"--config={config_file}", "--feature-gates=VisibilityOnDemand=false"]
    script = 'mount --bind "$0" "$1" && shift && exec "$@"'
    controlplane._start(
        cfg,
        "kueue",
        [
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            script,
            str(certs),
            str(METRICS_CERTS),
            *argv,
        ],
        marker=str(exe),
        env={**os.environ, "KUBECONFIG": str(cfg.kubeconfig)},
    )
    _wait_ready(cfg, health_port)
    ca = base64.b64encode((cfg.pki / "ca.crt").read_bytes()).decode()
    docs = list(
        yaml.safe_load_all((src / "config" / "components" / "webhook" / "manifests.yaml").read_text())
    )
    hooks = local_webhooks(docs, webhook_port, ca)
    _kubectl(
        cfg,
        "apply",
        "--server-side",
        "--force-conflicts",
        "-f",
        "-",
        input=json.dumps({"apiVersion": "v1", "kind": "List", "items": hooks}),
    )
    time.sleep(1)  # the apiserver's webhook informers pick the configurations up within a moment
    return (
        f"kueue {version()} running (webhook 127.0.0.1:{webhook_port}); it manages pods in namespaces "
        f"labelled {MANAGED_LABEL}=true"
    )
