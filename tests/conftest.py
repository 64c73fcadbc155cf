"""Fixtures shared by every test tier: the local cluster (session) and a fresh namespace per test.

`cluster` starts a local cluster of the test suite's own (hack/cluster/zoo-cluster with the state directory
.cache/test-cluster and ports of its own, zoocluster.config.TEST_PROFILE), fresh for every session, and tears it
down at the end (unless ZOO_TEST_KEEP_CLUSTER=1). A cluster that `make demo`, `make cluster-up` or a person left
running uses the default state directory and ports: the tests never see it and never touch it. With
ZOO_TEST_KUBECONFIG set, the tests use that cluster instead.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
CLUSTER_CLI = REPO / "hack" / "cluster" / "zoo-cluster"
# The local cluster's pure logic (hack/cluster/zoocluster) is unit-tested too.
sys.path.insert(0, str(REPO / "hack" / "cluster"))


_TIER_ORDER = {"unit": 0, "integration": 1, "e2e": 2}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the tiers in order of cost: unit, integration, then end-to-end (pytest would sort e2e first)."""

    def tier(item: pytest.Item) -> int:
        parts = (
            item.path.relative_to(REPO / "tests").parts if item.path.is_relative_to(REPO / "tests") else ()
        )
        return _TIER_ORDER.get(parts[0], 1) if len(parts) > 1 else 1

    items.sort(key=tier)  # stable: the order within a tier is kept


class CommandError(subprocess.CalledProcessError):
    """A failed kubectl/helm call whose message includes what the tool printed."""

    def __str__(self) -> str:
        return (
            f"{' '.join(map(str, self.cmd))} exited {self.returncode}: {self.stderr or self.stdout}".strip()
        )


@dataclass
class Cluster:
    """A running cluster and the tools to talk to it."""

    kubeconfig: str
    env: dict[str, str]
    repo: Path

    def _run(
        self, tool: str, args: tuple[str, ...], input: str | None, check: bool, timeout: float
    ) -> subprocess.CompletedProcess[str]:
        cmd = [tool, *args]
        proc = subprocess.run(
            cmd, check=False, input=input, capture_output=True, text=True, env=self.env, timeout=timeout
        )
        if check and proc.returncode != 0:
            raise CommandError(proc.returncode, cmd, proc.stdout, proc.stderr)
        return proc

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        """Run kubectl against the cluster."""
        return self._run("kubectl", args, input, check, timeout)

    def helm(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        """Run helm against the cluster."""
        return self._run("helm", args, input, check, timeout)


def _tool_env(kubeconfig: str) -> dict[str, str]:
    env = dict(os.environ)
    env["KUBECONFIG"] = kubeconfig
    env["PATH"] = f"{REPO / '.cache' / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return env


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    """The local cluster (or the one ZOO_TEST_KUBECONFIG names)."""
    external = os.environ.get("ZOO_TEST_KUBECONFIG")
    if external:
        yield Cluster(external, _tool_env(external), REPO)
        return
    from zoocluster import config as cluster_config

    env = cluster_config.suite_env(dict(os.environ))

    def cli(command: str, timeout: float) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(CLUSTER_CLI), command], check=False, capture_output=True, text=True, timeout=timeout, env=env
        )

    # A test cluster left by an interrupted run is replaced: no test may depend on what an earlier one left.
    # A start that fails is tried once more from scratch (and says why it failed the first time).
    for attempt in (1, 2):
        cli("down", 180)
        up = cli("up", 600)
        if up.returncode == 0:
            break
        print(f"local test cluster: start {attempt} failed:\n{up.stdout}\n{up.stderr}", file=sys.stderr)
    else:
        pytest.fail(f"local test cluster did not come up:\n{up.stdout}\n{up.stderr}", pytrace=False)
    kubeconfig = next(
        line.split("=", 1)[1]
        for line in up.stdout.splitlines()
        if line.strip().startswith("export KUBECONFIG=")
    )
    try:
        yield Cluster(kubeconfig, _tool_env(kubeconfig), REPO)
    finally:
        if os.environ.get("ZOO_TEST_KEEP_CLUSTER") != "1":
            cli("down", 180)


@pytest.fixture
def namespace(cluster: Cluster) -> Iterator[str]:
    """A fresh namespace t-<random>, deleted (without waiting) after the test."""
    name = f"t-{secrets.token_hex(4)}"
    cluster.kubectl("create", "namespace", name)
    # Pods are refused until the service-account controller has created the namespace's default account.
    deadline = time.monotonic() + 30
    while cluster.kubectl("get", "serviceaccount", "default", "-n", name, check=False).returncode != 0:
        if time.monotonic() > deadline:
            pytest.fail(f"namespace {name}: no default service account after 30 s", pytrace=False)
        time.sleep(0.2)
    try:
        yield name
    finally:
        cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)
