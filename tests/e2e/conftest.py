"""The end-to-end tier's session fixture: the operator installed with the real Helm chart, and the datasets.

`e2e` (session): `helm install` of charts/zoo-operator into its own namespace; the operator pod runs on the
local cluster's process kubelet (image zoo-operator/operator -> the repo's .venv) with only the chart's RBAC,
watching exactly one namespace in which every e2e test creates its jobs (so it never meets the jobs of other
test tiers, which run their own operators). The chart installs the CRD unless the cluster already has it (then
`crds.enabled=false`, as the chart documents for a CRD managed elsewhere). Datasets are written once, on the
host, and reach the pods through hostPath volumes: digits (`zoo-data digits`) for the demo job, and tiny
synthetic ImageFolder and video datasets (`zoo-data synth`) for the per-model jobs.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from e2e_helpers import E2E, REPO, wait_for

CHART = REPO / "charts" / "zoo-operator"
CRD = "customresourcedefinition/zootrainingjobs.modelzoo.io"
# The local cluster's CPU node (hack/cluster/nodes.yaml): no test injects a fault into it.
OPERATOR_NODE = "cpu-node-1"
BIN = Path(sys.executable).parent
# The chart's defaults (charts/zoo-operator/values.yaml = zoo_operator.settings.Settings).
POLICY_VOLUME_KINDS = ["emptyDir", "configMap", "persistentVolumeClaim", "downwardAPI", "ephemeral"]
POLICY_DENIED_ENV = [
    "LD_PRELOAD",
    "LD_LIBRARY_PATH",
    "LD_AUDIT",
    "PATH",
    "PYTHONPATH",
    "PYTHONHOME",
    "PYTHONSTARTUP",
    "PYTHONINSPECT",
    "BASH_ENV",
    "ENV",
]


def _free_port() -> int:
    # The operator pod is a host process: its /healthz port must not clash with anything on this machine.
    with socket.socket() as s:
        s.bind(("0.0.0.0", 0))
        return int(s.getsockname()[1])


def _zoo_data(*args: str) -> None:
    proc = subprocess.run(
        [str(BIN / "zoo-data"), *args], capture_output=True, text=True, timeout=600, check=False
    )
    if proc.returncode != 0:
        pytest.fail(f"zoo-data {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}", pytrace=False)


def _namespace(cluster: Any, name: str) -> None:
    cluster.kubectl("create", "namespace", name)
    wait_for(
        f"the default service account of {name}",
        lambda: cluster.kubectl("get", "serviceaccount", "default", "-n", name, check=False).returncode == 0,
        timeout=30,
        interval=0.2,
    )


@pytest.fixture(scope="session")
def e2e_data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Datasets on the host: digits (demo), synthetic images and video clips (per-model jobs)."""
    root = tmp_path_factory.mktemp("e2e-data")
    _zoo_data("digits", "--out", str(root / "digits"))
    _zoo_data(
        "synth",
        "--layout",
        "imagefolder",
        "--out",
        str(root / "images"),
        "--classes",
        "3",
        "--per-class",
        "8",
        "--size",
        "32",
    )
    _zoo_data(
        "synth",
        "--layout",
        "video",
        "--out",
        str(root / "video"),
        "--classes",
        "3",
        "--per-class",
        "4",
        "--size",
        "32",
    )
    return {"digits": root / "digits", "images": root / "images", "video": root / "video"}


@pytest.fixture(scope="session")
def e2e(cluster: Any, e2e_data: dict[str, Path]) -> Iterator[E2E]:
    """The chart-installed operator watching a fresh namespace; uninstalled at the end of the session."""
    tag = secrets.token_hex(3)
    env = E2E(cluster, f"e2e-{tag}", f"zoo-e2e-{tag}", f"zoo-e2e-{tag}-system", e2e_data)
    _namespace(cluster, env.namespace)
    has_crd = cluster.kubectl("get", CRD, check=False).returncode == 0
    # On the local cluster the operator runs on the CPU node, as a real one runs off the accelerator servers: a
    # test that loses an Ascend node (zoo-cluster node-down) must not lose the operator with it (its pod would
    # stay Running on the lost node until the taint manager evicts it, 300 s later).
    pin = (
        []
        if os.environ.get("ZOO_TEST_KUBECONFIG")
        else ["--set", f"nodeSelector.kubernetes\\.io/hostname={OPERATOR_NODE}"]
    )
    started = time.monotonic()
    cluster.helm(
        "install",
        env.release,
        str(CHART),
        "-n",
        env.release_namespace,
        "--create-namespace",
        "--set",
        f"fullnameOverride={env.release}",
        "--set",
        f"watchNamespaces={{{env.namespace}}}",
        "--set",
        f"health.port={_free_port()}",
        "--set",
        f"crds.enabled={str(not has_crd).lower()}",
        "--set",
        "gang.enabled=true",
        # The chart's default platform policy, plus what test_ascend's rankcheck needs (a hostPath
        # volume in podTemplate and PATH): test_safe_by_default checks the rest is still refused.
        "--set-json",
        f"policy.volumeKinds={json.dumps([*POLICY_VOLUME_KINDS, 'hostPath'])}",
        "--set-json",
        f"policy.deniedEnv={json.dumps([n for n in POLICY_DENIED_ENV if n != 'PATH'])}",
        # /metrics on, so tests scrape what a Prometheus would (test_console.py).
        "--set",
        "metrics.enabled=true",
        "--set",
        f"metrics.port={_free_port()}",
        *pin,
        "--wait",
        "--timeout",
        "5m",
    )
    try:
        cluster.kubectl("wait", "--for=condition=Established", CRD, "--timeout=60s")
        cluster.kubectl(
            "-n", env.release_namespace, "rollout", "status", f"deployment/{env.release}", "--timeout=180s"
        )
        # The apiserver serves a new CRD's discovery a moment after Established; kubectl needs it.
        wait_for("ztj discovery", lambda: env.kubectl("get", "ztj", check=False).returncode == 0, timeout=30)
        print(f"e2e: operator {env.release} installed and running in {time.monotonic() - started:.1f}s")
        yield env
    finally:
        _print_operator_log(env)
        cluster.kubectl("delete", "ztj", "--all", "-n", env.namespace, "--wait=false", check=False)
        cluster.helm("uninstall", env.release, "-n", env.release_namespace, check=False)
        for ns in (env.namespace, env.release_namespace):
            cluster.kubectl("delete", "namespace", ns, "--wait=false", check=False)


def _print_operator_log(env: E2E) -> None:
    out = env.cluster.kubectl(
        "logs", "-n", env.release_namespace, f"deployment/{env.release}", "--tail=40", check=False
    )
    print(f"--- operator log (last lines) ---\n{out.stdout}{out.stderr}")


def operator_pods(env: E2E) -> list[dict[str, Any]]:
    """The operator's pods (from the Helm release's Deployment)."""
    out = env.cluster.kubectl(
        "get",
        "pods",
        "-n",
        env.release_namespace,
        "-l",
        f"app.kubernetes.io/instance={env.release}",
        "-o",
        "json",
    )
    return list(json.loads(out.stdout)["items"])
