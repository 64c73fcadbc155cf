"""Installing the operator like a platform team: helm install / upgrade / uninstall, kubectl apply -k, and the
example jobs, against the real kube-apiserver of the local cluster (tests/conftest.py).

Every release gets a unique fullnameOverride (its cluster-scoped RBAC must not clash with another release) and
watches only its test namespace. The CRD is cluster-wide and shared with other tests: a release adopts it for
the duration of a test and hands it back as it found it; `helm.sh/resource-policy: keep` means no test ever
deletes it.
"""

from __future__ import annotations

import json
import os
import random
import re
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml
from kubehelpers import wait_for

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
CHART = str(REPO / "charts" / "zoo-operator")
CRD = "customresourcedefinition/zootrainingjobs.modelzoo.io"
EXAMPLES = sorted((REPO / "manifests" / "examples").glob("*.yaml"))
OWNER_KEYS = ("meta.helm.sh/release-name", "meta.helm.sh/release-namespace")


def ensure_crd(cluster) -> None:
    """The CRD exists and is established (applied from manifests/base when no one installed it yet)."""
    if cluster.kubectl("get", CRD, check=False).returncode != 0:
        cluster.kubectl("apply", "-f", str(REPO / "manifests" / "base" / "crd.yaml"))
    cluster.kubectl("wait", "--for=condition=Established", CRD, "--timeout=60s")
    # Established comes a moment before discovery serves the new kind; a dry-run apply in that gap fails.
    wait_for(
        "the ztj kind in discovery",
        lambda: cluster.kubectl("get", "zootrainingjobs", "-A", check=False).returncode == 0,
        timeout=60,
    )


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


def scrape(url: str) -> str:
    """The body at `url`, or "" while nothing answers there."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.read().decode()
    except OSError:
        return ""


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
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["ZOO_WATCH_NAMESPACES"] == namespace and env["ZOO_LOG_TAIL_LINES"] == "20"
    assert get_json(cluster, "role", release, "-n", namespace)["rules"]
    crd = get_json(cluster, CRD)
    assert crd["metadata"]["annotations"]["meta.helm.sh/release-name"] == release

    # A user's job, created while the operator is installed, must survive the uninstall.
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=_suspended(tiny_job("survivor")))

    cluster.helm("upgrade", release, CHART, "-n", namespace, "--reuse-values", "--set", "logTailLines=50")
    deployment = get_json(cluster, "deployment", release, "-n", namespace)
    env = {e["name"]: e.get("value") for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
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


@pytest.mark.parametrize("mode", ["namespaced", "cluster-wide-gang"])
def test_chart_rbac_grants_what_the_operator_needs_and_no_more(cluster, namespace, mode):
    """Access reviews as the chart's ServiceAccount: every grant the operator uses, nothing else. The
    image is one the kubelet cannot pull, so no operator runs (a cluster-wide one would see other tests' jobs)."""
    release = f"zoo-{namespace}"
    ensure_crd(cluster)
    values = ["--set", "crds.enabled=false", "--set", "image.repository=zoo-operator/not-pulled-in-this-test"]
    if mode == "namespaced":
        values = release_args(namespace, *values)
    else:
        values = ["--set", f"fullnameOverride={release}", "--set", "gang.enabled=true", *values]
    cluster.helm("install", release, CHART, "-n", namespace, *values)
    sa = f"system:serviceaccount:{namespace}:{release}"
    other = "default"  # a namespace the release does not watch in namespaced mode
    # (verb, resource[/subresource][.group], namespace or None for cluster scope) -> expected answer.
    expected = {(v, "zootrainingjobs.modelzoo.io", namespace): True for v in JOB_VERBS}
    expected |= {
        (v, "zootrainingjobs/status.modelzoo.io", namespace): True for v in ("get", "patch", "update")
    }
    expected |= {(v, r, namespace): True for r in ("pods", "services", "configmaps") for v in CHILD_VERBS}
    # Each job's NetworkPolicy (issue 24, networkPolicy.enabled by default).
    expected |= {(v, "networkpolicies.networking.k8s.io", namespace): True for v in CHILD_VERBS}
    expected |= {
        ("get", "pods/log", namespace): True,
        ("create", "events", namespace): True,
        ("patch", "events.events.k8s.io", namespace): True,
        ("list", "customresourcedefinitions.apiextensions.k8s.io", None): True,
        ("watch", "namespaces", None): True,
        # Least privilege: no secrets, no job creation, no CRD changes, no kopf peering (standalone).
        ("get", "secrets", namespace): False,
        ("create", "zootrainingjobs.modelzoo.io", namespace): False,
        ("delete", "customresourcedefinitions.apiextensions.k8s.io", None): False,
        ("create", "kopfpeerings.kopf.dev", namespace): False,
        ("create", "deployments.apps", namespace): False,
        ("update", "pods", namespace): False,
        # Outside the watched namespaces only when watching all; Volcano only with gang.enabled.
        ("create", "pods", other): mode != "namespaced",
        ("list", "zootrainingjobs.modelzoo.io", other): mode != "namespaced",
        ("create", "podgroups.scheduling.volcano.sh", namespace): mode != "namespaced",
    }
    try:
        answers = access_reviews(cluster, sa, list(expected))
        wrong = {k: answers[k] for k, want in expected.items() if answers[k] != want}
        assert not wrong, f"RBAC answers that differ from the operator's needs: {wrong}"
    finally:
        cluster.helm("uninstall", release, "-n", namespace, check=False)


JOB_VERBS = ("get", "list", "watch", "patch", "update", "delete")
CHILD_VERBS = ("get", "list", "watch", "create", "delete", "patch")


def access_reviews(cluster, user: str, checks: list[tuple[str, str, str | None]]) -> dict:
    """Ask the authorizer, in one call, whether `user` (a ServiceAccount) may do each (verb, resource, ns).
    SubjectAccessReviews need no discovery, unlike `kubectl auth can-i`, so they also answer for resources the
    cluster does not serve (Volcano's podgroups)."""
    reviews = []
    for verb, resource, ns in checks:
        name, _, group = resource.partition(".")
        name, _, sub = name.partition("/")
        attrs = {"verb": verb, "group": group, "resource": name, "subresource": sub, "namespace": ns or ""}
        reviews.append(
            {
                "apiVersion": "authorization.k8s.io/v1",
                "kind": "SubjectAccessReview",
                "spec": {"user": user, "groups": ["system:serviceaccounts"], "resourceAttributes": attrs},
            }
        )
    text = "\n---\n".join(json.dumps(r) for r in reviews)
    out = cluster.kubectl("create", "-o", "json", "-f", "-", input=text).stdout
    items, pos, decoder = [], 0, json.JSONDecoder()
    while out[pos:].strip():  # kubectl prints one JSON object per created review, back to back
        pos += len(out[pos:]) - len(out[pos:].lstrip())
        item, pos = decoder.raw_decode(out, pos)
        items.append(item)
    assert len(items) == len(checks)
    return {check: bool(item["status"].get("allowed")) for check, item in zip(checks, items, strict=True)}


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
    # kubectl warns (and applies) when an earlier test created the CRD without client-side apply's annotation.
    errors = [line for line in out.stderr.splitlines() if line.strip() and not line.startswith("Warning:")]
    assert all("not found" in line for line in errors), out.stderr


def test_chart_installed_operator_reconciles_a_job(cluster, namespace):
    """The operator pod the chart creates runs (the kubelet maps its image to .venv) and, with only the chart's
    RBAC, turns a job into its pods, headless Service and status, and serves the metrics the chart exposes."""
    release = f"zoo-{namespace}"
    ensure_crd(cluster)
    metrics_port = random.randint(30000, 39999)
    values = [
        "--set",
        "crds.enabled=false",
        "--set",
        "metrics.enabled=true",
        "--set",
        f"metrics.port={metrics_port}",
    ]
    cluster.helm("install", release, CHART, "-n", namespace, *release_args(namespace, *values))
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
            return (
                "tiny-worker-0" in names and service and launch.returncode == 0 and bool(status.get("phase"))
            )

        wait_for(
            "the operator to create the job's pods, Service and status", reconciled, timeout=120, interval=1
        )
        pod = get_json(cluster, "pod", "tiny-worker-0", "-n", namespace)
        assert pod["metadata"]["labels"]["modelzoo.io/job-name"] == "tiny"
        assert pod["metadata"]["ownerReferences"][0]["kind"] == "ZooTrainingJob"
        logs = cluster.kubectl("logs", "-n", namespace, "-l", selector, "--tail=-1", check=False).stdout
        assert "forbidden" not in logs.lower(), logs[-3000:]
        # The metrics Service targets the operator pod's metrics port; scrape that pod directly (the local
        # cluster has no Service proxy).
        service = get_json(cluster, "service", f"{release}-metrics", "-n", namespace)
        assert service["spec"]["ports"][0]["port"] == metrics_port
        (operator_pod,) = get_json(cluster, "pods", "-n", namespace, "-l", selector)["items"]
        url = f"http://{operator_pod['status']['podIP']}:{metrics_port}/metrics"
        created = re.compile(r"^zoo_jobs_created_total [1-9]", re.MULTILINE)  # a sample, not just # HELP
        wait_for(f"{url} to count the created job", lambda: bool(created.search(scrape(url))), timeout=30)
    finally:
        cluster.kubectl("delete", "ztj", "--all", "-n", namespace, "--wait=false", check=False)
        cluster.helm("uninstall", release, "-n", namespace, check=False)


def test_kubectl_apply_k_overlay_runs_the_operator(cluster, namespace, tmp_path):
    """What a platform team does with the plain manifests: an overlay over manifests/base (own namespace, name
    suffix), `kubectl apply -k`, and the operator reconciles a job; `kubectl delete -k` removes it again. The
    overlay drops the CRD (shared by the whole test session; deleting it would delete every job)."""
    ensure_crd(cluster)
    health = random.randint(20000, 29999)
    base = os.path.relpath(REPO / "manifests" / "base", tmp_path)
    (tmp_path / "kustomization.yaml").write_text(f"""\
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namespace: {namespace}
nameSuffix: -{namespace}
resources:
  - {base}
patches:
  - patch: |-
      $patch: delete
      apiVersion: apiextensions.k8s.io/v1
      kind: CustomResourceDefinition
      metadata:
        name: zootrainingjobs.modelzoo.io
  - target: {{kind: Deployment}}
    patch: |-
      - {{op: replace, path: /spec/template/spec/containers/0/ports/0/containerPort, value: {health}}}
  # Watch only this namespace, and a health port no other operator pod uses.
  - patch: |-
      apiVersion: apps/v1
      kind: Deployment
      metadata:
        name: zoo-operator
        namespace: zoo-system
      spec:
        template:
          spec:
            containers:
              - name: operator
                env:
                  - {{name: ZOO_WATCH_NAMESPACES, value: "{namespace}"}}
                  - {{name: ZOO_HEALTH_PORT, value: "{health}"}}
""")
    deployment = f"zoo-operator-{namespace}"
    cluster.kubectl("apply", "-k", str(tmp_path))
    try:
        cluster.kubectl("rollout", "status", f"deployment/{deployment}", "-n", namespace, "--timeout=120s")
        spec = get_json(cluster, "deployment", deployment, "-n", namespace)["spec"]["template"]["spec"]
        assert spec["serviceAccountName"] == deployment  # the suffix reached the reference too
        env = {e["name"]: e.get("value") for e in spec["containers"][0]["env"]}
        assert env["ZOO_WATCH_NAMESPACES"] == namespace and env["ZOO_HEALTH_PORT"] == str(health)
        cluster.kubectl("apply", "-n", namespace, "-f", "-", input=tiny_job("kustomized"))
        wait_for(
            "the operator to create the job's Service",
            lambda: (
                cluster.kubectl("get", "service", "kustomized", "-n", namespace, check=False).returncode == 0
            ),
            timeout=120,
            interval=1,
        )
    finally:
        cluster.kubectl("delete", "ztj", "--all", "-n", namespace, "--wait=false", check=False)
        cluster.kubectl("delete", "-k", str(tmp_path), "--wait=false", "--ignore-not-found", check=False)
    assert cluster.kubectl("get", CRD, check=False).returncode == 0
    assert cluster.kubectl("get", "clusterrole", deployment, check=False).returncode != 0
