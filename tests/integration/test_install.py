"""Installing the operator like a platform team: helm install / upgrade / uninstall, kubectl apply -k, and the
example jobs, against the real kube-apiserver of the local cluster (tests/conftest.py).

Every release gets a unique fullnameOverride (its cluster-scoped RBAC must not clash with another release) and
watches only its test namespace. The CRD is cluster-wide and shared with other tests: a release adopts it for
the duration of a test and hands it back as it found it; `helm.sh/resource-policy: keep` means no test ever
deletes it.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
CHART = str(REPO / "charts" / "zoo-operator")
CRD = "customresourcedefinition/zootrainingjobs.modelzoo.io"
EXAMPLES = sorted((REPO / "manifests" / "examples").glob("*.yaml"))
OWNER_KEYS = ("meta.helm.sh/release-name", "meta.helm.sh/release-namespace")


def wait_for(what: str, check: Callable[[], bool], timeout: float = 60, every: float = 0.5) -> None:
    """Poll `check` until it is true; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}", pytrace=False)
        time.sleep(every)


def ensure_crd(cluster) -> None:
    """The CRD exists and is established (applied from manifests/base when no one installed it yet)."""
    if cluster.kubectl("get", CRD, check=False).returncode != 0:
        cluster.kubectl("apply", "-f", str(REPO / "manifests" / "base" / "crd.yaml"))
    cluster.kubectl("wait", "--for=condition=Established", CRD, "--timeout=60s")


@pytest.fixture
def adopt_crd(cluster) -> Iterator[Callable[[str, str], None]]:
    """Lets a release take over an existing CRD (Helm's adoption labels), restoring its owner afterwards."""
    before = None
    if cluster.kubectl("get", CRD, check=False).returncode == 0:
        before = json.loads(cluster.kubectl("get", CRD, "-o", "json").stdout)["metadata"]

    def adopt(release: str, namespace: str) -> None:
        if before is not None:
            cluster.kubectl("label", CRD, "app.kubernetes.io/managed-by=Helm", "--overwrite")
            cluster.kubectl(
                "annotate", CRD, f"{OWNER_KEYS[0]}={release}", f"{OWNER_KEYS[1]}={namespace}", "--overwrite"
            )

    yield adopt
    if cluster.kubectl("get", CRD, check=False).returncode != 0:
        return
    annotations = (before or {}).get("annotations", {})
    restore = [f"{k}={annotations[k]}" if k in annotations else f"{k}-" for k in OWNER_KEYS]
    cluster.kubectl("annotate", CRD, *restore, "--overwrite", check=False)
    managed = (before or {}).get("labels", {}).get("app.kubernetes.io/managed-by")
    label = f"app.kubernetes.io/managed-by={managed}" if managed else "app.kubernetes.io/managed-by-"
    cluster.kubectl("label", CRD, label, "--overwrite", check=False)


def release_args(namespace: str, *extra: str) -> list[str]:
    """Values every test release uses: unique names, only its namespace, a health port no other pod uses."""
    return [
        "--set",
        f"fullnameOverride=zoo-{namespace}",
        "--set",
        f"watchNamespaces={{{namespace}}}",
        "--set",
        f"health.port={random.randint(20000, 29999)}",
        *extra,
    ]


def get_json(cluster, *args: str) -> dict:
    """`kubectl get ... -o json` parsed."""
    return json.loads(cluster.kubectl("get", *args, "-o", "json").stdout)


def tiny_job(name: str, replicas: int = 1) -> str:
    """The cpu-tiny example renamed, as YAML text."""
    job = yaml.safe_load((REPO / "manifests" / "examples" / "cpu-tiny.yaml").read_text())
    job["metadata"]["name"] = name
    job["spec"]["replicas"] = replicas
    return yaml.safe_dump(job)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_examples_pass_server_side_validation(cluster, namespace, path):
    ensure_crd(cluster)
    out = cluster.kubectl("apply", "--dry-run=server", "-n", namespace, "-f", str(path)).stdout
    assert "(server dry run)" in out


def test_server_refuses_an_invalid_job_with_a_clear_message(cluster, namespace):
    ensure_crd(cluster)
    job = yaml.safe_load((REPO / "manifests" / "examples" / "glore_res50-imagenet-8p.yaml").read_text())
    job["spec"]["replicas"] = 12  # not a multiple of perNode 8
    proc = cluster.kubectl(
        "apply", "--dry-run=server", "-n", namespace, "-f", "-", input=yaml.safe_dump(job), check=False
    )
    assert proc.returncode != 0
    assert "spec.replicas must be a multiple of spec.device.perNode" in proc.stderr


def test_helm_install_upgrade_uninstall(cluster, namespace, adopt_crd):
    release = f"zoo-{namespace}"
    adopt_crd(release, namespace)
    cluster.helm("install", release, CHART, "-n", namespace, *release_args(namespace))
    cluster.kubectl("wait", "--for=condition=Established", CRD, "--timeout=60s")
    deployment = get_json(cluster, "deployment", release, "-n", namespace)
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "zoo-operator/operator:0.1.0"
    assert container["command"] == ["zoo-operator", "run"]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["ZOO_WATCH_NAMESPACES"] == namespace and env["ZOO_LOG_TAIL_LINES"] == "20"
    assert get_json(cluster, "role", release, "-n", namespace)["rules"]
    crd = get_json(cluster, CRD)
    assert crd["metadata"]["annotations"]["meta.helm.sh/release-name"] == release

    # A user's job, created while the operator is installed, must survive the uninstall.
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=_suspended(tiny_job("survivor")))

    cluster.helm("upgrade", release, CHART, "-n", namespace, "--reuse-values", "--set", "logTailLines=50")
    deployment = get_json(cluster, "deployment", release, "-n", namespace)
    env = {e["name"]: e["value"] for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["ZOO_LOG_TAIL_LINES"] == "50"
    history = json.loads(cluster.helm("history", release, "-n", namespace, "-o", "json").stdout)
    assert [h["revision"] for h in history] == [1, 2]
    manifest = cluster.helm("get", "manifest", release, "-n", namespace).stdout
    assert "kind: CustomResourceDefinition" in manifest  # the upgrade applies the CRD too

    cluster.helm("uninstall", release, "-n", namespace, "--wait")
    assert cluster.kubectl("get", "deployment", release, "-n", namespace, check=False).returncode != 0
    assert cluster.kubectl("get", "clusterrole", f"{release}-discovery", check=False).returncode != 0
    assert cluster.kubectl("get", CRD, check=False).returncode == 0, "helm uninstall deleted the CRD"
    assert cluster.kubectl("get", "ztj", "survivor", "-n", namespace, check=False).returncode == 0


def _suspended(job_yaml: str) -> str:
    """A job the operator leaves without pods (spec.runPolicy.suspend)."""
    job = yaml.safe_load(job_yaml)
    job["spec"]["runPolicy"]["suspend"] = True
    return yaml.safe_dump(job)


def test_chart_rbac_grants_what_the_operator_needs_and_no_more(cluster, namespace):
    release = f"zoo-{namespace}"
    ensure_crd(cluster)
    cluster.helm(
        "install", release, CHART, "-n", namespace, *release_args(namespace, "--set", "crds.enabled=false")
    )
    sa = f"system:serviceaccount:{namespace}:{release}"

    def can(verb: str, resource: str, ns: str | None = namespace) -> bool:
        where = ["-n", ns] if ns else []
        proc = cluster.kubectl("auth", "can-i", verb, resource, "--as", sa, *where, check=False)
        return proc.stdout.strip() == "yes"

    try:
        for verb in ("get", "list", "watch", "patch", "update", "delete"):
            assert can(verb, "zootrainingjobs.modelzoo.io"), verb
        assert can("patch", "zootrainingjobs.modelzoo.io/status")
        for verb in ("create", "delete", "patch", "list", "watch"):
            assert can(verb, "pods") and can(verb, "services") and can(verb, "configmaps"), verb
        assert can("get", "pods/log")
        assert can("create", "events") and can("create", "events.events.k8s.io")
        assert can("list", "customresourcedefinitions.apiextensions.k8s.io", None)
        # Least privilege: nothing outside the watched namespace, no secrets, no job creation, no podgroups.
        assert not can("create", "pods", "default")
        assert not can("list", "zootrainingjobs.modelzoo.io", "default")
        assert not can("get", "secrets")
        assert not can("create", "zootrainingjobs.modelzoo.io")
        assert not can("create", "podgroups.scheduling.volcano.sh")
        assert not can("delete", "customresourcedefinitions.apiextensions.k8s.io", None)
        assert not can("create", "kopfpeerings.kopf.dev")
    finally:
        cluster.helm("uninstall", release, "-n", namespace, check=False)


def test_kubectl_apply_k_installs_the_same_operator(cluster):
    """`kubectl apply -k manifests/base` is accepted as is by the apiserver (server-side dry run: the base's
    fixed names would clash with a real install elsewhere in the cluster)."""
    out = cluster.kubectl("apply", "--dry-run=server", "-k", str(REPO / "manifests" / "base"), check=False)
    # The namespace does not exist yet in a dry run, so its namespaced objects may be refused for that reason
    # alone; everything cluster-scoped must be accepted.
    accepted = out.stdout
    for obj in (
        "namespace/zoo-system",
        "clusterrole.rbac.authorization.k8s.io/zoo-operator",
        "clusterrolebinding.rbac.authorization.k8s.io/zoo-operator",
        "customresourcedefinition.apiextensions.k8s.io/zootrainingjobs.modelzoo.io",
    ):
        assert obj in accepted, out.stdout + out.stderr
    assert all("not found" in line for line in out.stderr.splitlines() if line.strip()), out.stderr


def test_chart_installed_operator_reconciles_a_job(cluster, namespace):
    """The operator pod the chart creates runs (the kubelet maps its image to .venv) and, with only the chart's
    RBAC, turns a job into its pods, headless Service and status."""
    release = f"zoo-{namespace}"
    ensure_crd(cluster)
    cluster.helm(
        "install", release, CHART, "-n", namespace, *release_args(namespace, "--set", "crds.enabled=false")
    )
    try:
        selector = f"app.kubernetes.io/instance={release}"

        def operator_running() -> bool:
            pods = get_json(cluster, "pods", "-n", namespace, "-l", selector)["items"]
            return any(p["status"].get("phase") == "Running" for p in pods)

        wait_for("the operator pod to be Running", operator_running, timeout=120)
        cluster.kubectl("apply", "-n", namespace, "-f", "-", input=tiny_job("tiny", replicas=1))

        def reconciled() -> bool:
            names = {p["metadata"]["name"] for p in get_json(cluster, "pods", "-n", namespace)["items"]}
            service = cluster.kubectl("get", "service", "tiny", "-n", namespace, check=False).returncode == 0
            status = get_json(cluster, "ztj", "tiny", "-n", namespace).get("status", {})
            launch = cluster.kubectl("get", "configmap", "tiny-launch", "-n", namespace, check=False)
            return "tiny-worker-0" in names and service and launch.returncode == 0 and bool(status.get("phase"))

        wait_for(
            "the operator to create the job's pods, Service and status", reconciled, timeout=120, every=1
        )
        pod = get_json(cluster, "pod", "tiny-worker-0", "-n", namespace)
        assert pod["metadata"]["labels"]["modelzoo.io/job-name"] == "tiny"
        assert pod["metadata"]["ownerReferences"][0]["kind"] == "ZooTrainingJob"
        logs = cluster.kubectl("logs", "-n", namespace, "-l", selector, "--tail=-1", check=False).stdout
        assert "forbidden" not in logs.lower(), logs[-3000:]
    finally:
        cluster.kubectl("delete", "ztj", "--all", "-n", namespace, "--wait=false", check=False)
        cluster.helm("uninstall", release, "-n", namespace, check=False)
