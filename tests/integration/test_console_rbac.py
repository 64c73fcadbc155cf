"""The chart's aggregated ClusterRoles: a user bound to the built-in `edit` role creates a ZooTrainingJob, a user
bound to `view` reads it and cannot create one (the kube-controller-manager aggregates the rules)."""

from __future__ import annotations

import json

import pytest
import yaml
from kubehelpers import wait_for
from test_install import CHART, ensure_crd, release_args, tiny_job

pytestmark = pytest.mark.integration


def _job(name: str) -> str:
    job = yaml.safe_load(tiny_job(name))
    job["spec"].setdefault("runPolicy", {})["suspend"] = True  # no operator runs here: no pods are needed
    return yaml.safe_dump(job)


def test_edit_and_view_users_get_job_rights(cluster, namespace):
    release = f"zoo-{namespace}"
    ensure_crd(cluster)
    # The operator image is one the kubelet cannot pull: this test is about the users' roles only.
    values = release_args(
        namespace,
        "--set",
        "crds.enabled=false",
        "--set",
        "image.repository=zoo-operator/not-pulled-in-this-test",
    )
    cluster.helm("install", release, CHART, "-n", namespace, *values)
    try:
        for user, role in (("alice", "edit"), ("bob", "view")):
            cluster.kubectl("create", "serviceaccount", user, "-n", namespace)
            cluster.kubectl(
                "create",
                "rolebinding",
                f"{user}-{role}",
                "-n",
                namespace,
                f"--clusterrole={role}",
                f"--serviceaccount={namespace}:{user}",
            )

        def as_user(user: str, *args: str, **kw):
            return cluster.kubectl(
                f"--as=system:serviceaccount:{namespace}:{user}", "-n", namespace, *args, check=False, **kw
            )

        def aggregated() -> bool:
            rules = json.loads(cluster.kubectl("get", "clusterrole", "edit", "-o", "json").stdout)["rules"]
            return any(
                "zootrainingjobs" in r.get("resources", []) and "create" in r.get("verbs", []) for r in rules
            )

        wait_for("the edit role to aggregate the job rules", aggregated, timeout=60)
        assert as_user("bob", "apply", "-f", "-", input=_job("by-bob")).returncode != 0  # view cannot create
        created = as_user("alice", "apply", "-f", "-", input=_job("by-alice"))
        assert created.returncode == 0, created.stderr
        seen = as_user("bob", "get", "ztj", "by-alice", "-o", "jsonpath={.metadata.name}")
        assert seen.returncode == 0 and seen.stdout == "by-alice", seen.stderr
        assert as_user("bob", "delete", "ztj", "by-alice").returncode != 0
        assert as_user("alice", "delete", "ztj", "by-alice").returncode == 0
    finally:
        cluster.kubectl("delete", "ztj", "--all", "-n", namespace, "--wait=false", check=False)
        cluster.helm("uninstall", release, "-n", namespace, check=False)
