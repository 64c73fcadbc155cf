"""Two operator replicas: exactly one acts (Lease), the other takes over within seconds when it dies."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from kubehelpers import wait_for
from operator_fixtures import OperatorProcess, apply, cpu_job, items, wait_phase

from zoo_operator import leader

pytestmark = pytest.mark.integration
NO_NODE = {"nodeSelector": {"zoo-test/no-such-node": "true"}}


def holder(cluster: Any, ns: str) -> str | None:
    out = cluster.kubectl("get", "lease", "zoo-operator", "-n", ns, "-o", "json", check=False)
    return json.loads(out.stdout)["spec"].get("holderIdentity") if out.returncode == 0 else None


def pods_of(cluster: Any, ns: str, job: str) -> list[dict[str, Any]]:
    return items(cluster, ns, "pods", f"modelzoo.io/job-name={job}")


@pytest.mark.slow  # about a minute: two operator starts and a lease expiry
def test_the_standby_takes_over_when_the_leader_dies_without_duplicating_pods(
    ztj_crd: Any, namespace: str, tmp_path: Path
) -> None:
    env = {"ZOO_LEADER_ELECTION_NAMESPACE": namespace}
    a = OperatorProcess(ztj_crd, namespace, tmp_path / "a.log", {**env, "ZOO_POD_NAME": "op-a"})
    b = OperatorProcess(ztj_crd, namespace, tmp_path / "b.log", {**env, "ZOO_POD_NAME": "op-b"})
    try:
        a.start()
        wait_for("op-a leads", lambda: holder(ztj_crd, namespace) == "op-a", timeout=30)
        b.start()
        apply(ztj_crd, namespace, cpu_job("ha", podTemplate=NO_NODE))
        first = wait_for("3 pods", lambda: (p := pods_of(ztj_crd, namespace, "ha")) and len(p) == 3 and p)
        uids = sorted(p["metadata"]["uid"] for p in first)
        wait_phase(ztj_crd, namespace, "ha", {"Pending"})
        assert "leads" not in b.log_tail(400) and holder(ztj_crd, namespace) == "op-a"

        a.kill()  # no release: op-b waits out the lease
        killed = time.monotonic()
        wait_for("op-b leads", lambda: holder(ztj_crd, namespace) == "op-b", timeout=30)
        took = time.monotonic() - killed
        assert took < leader.LEASE_SECONDS + 3 * leader.RETRY_SECONDS + 5
        # The new leader adopts the pods (same uids, none added) and acts on the job.
        time.sleep(3)
        assert sorted(p["metadata"]["uid"] for p in pods_of(ztj_crd, namespace, "ha")) == uids
        ztj_crd.kubectl(
            "patch",
            "ztj",
            "ha",
            "-n",
            namespace,
            "--type=merge",
            "-p",
            '{"spec": {"runPolicy": {"suspend": true}}}',
        )
        wait_phase(ztj_crd, namespace, "ha", {"Suspended"}, timeout=60)
        wait_for("pods deleted", lambda: pods_of(ztj_crd, namespace, "ha") == [], timeout=60)

        # A graceful stop releases the lease: the next replica takes over at once, not after the lease expiry.
        a.start()
        b.stop()
        wait_for(
            "op-a leads again", lambda: holder(ztj_crd, namespace) == "op-a", timeout=leader.LEASE_SECONDS - 1
        )
    finally:
        for op in (a, b):
            op.stop()
            print(f"--- {op.log_path.name} ---\n{op.log_tail()}")
