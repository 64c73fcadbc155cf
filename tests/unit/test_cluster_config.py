"""The test suite's own cluster: never the state directory or ports of the cluster `make demo` leaves up."""

from __future__ import annotations

import os

import pytest

from zoocluster import config


def _cfg(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> config.ClusterConfig:
    for key in list(os.environ):
        if key.startswith("ZOO_CLUSTER_"):
            monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return config.from_env()


def test_suite_cluster_shares_nothing_with_the_default_cluster(monkeypatch: pytest.MonkeyPatch) -> None:
    default = _cfg(monkeypatch, {})
    suite = _cfg(monkeypatch, {k: v for k, v in config.suite_env({}).items() if k.startswith("ZOO_CLUSTER_")})
    assert suite.state_dir != default.state_dir
    assert suite.etcd_dir != default.etcd_dir
    assert suite.pod_prefix != default.pod_prefix
    assert suite.node_subnet != default.node_subnet
    default_ports = {
        default.apiserver_port,
        default.etcd_port,
        default.etcd_port + 1,
        default.controller_manager_port,
        default.scheduler_port,
        default.kubelet_port,
    }
    suite_ports = {
        suite.apiserver_port,
        suite.etcd_port,
        suite.etcd_port + 1,
        suite.controller_manager_port,
        suite.scheduler_port,
        suite.kubelet_port,
    }
    assert len(suite_ports) == 6 and not suite_ports & default_ports


def test_a_users_cluster_settings_never_leak_into_the_suites_cluster() -> None:
    user = {
        "ZOO_CLUSTER_STATE_DIR": "/home/me/cluster",
        "ZOO_CLUSTER_APISERVER_PORT": "7443",
        "ZOO_CLUSTER_POD_PREFIX": "127.99",
        "PATH": "/bin",
    }
    env = config.suite_env(user)
    assert env["ZOO_CLUSTER_STATE_DIR"] == config.TEST_PROFILE["STATE_DIR"]
    assert env["ZOO_CLUSTER_APISERVER_PORT"] == config.TEST_PROFILE["APISERVER_PORT"]
    assert "ZOO_CLUSTER_POD_PREFIX" not in env
    assert env["PATH"] == "/bin"


def test_the_suites_cluster_can_be_moved_for_a_second_worktree() -> None:
    env = config.suite_env(
        {
            "ZOO_TEST_CLUSTER_APISERVER_PORT": "26443",
            "ZOO_TEST_CLUSTER_STATE_DIR": "/tmp/t",
            "ZOO_TEST_CLUSTER_POD_PREFIX": "127.77",
        }
    )
    assert env["ZOO_CLUSTER_APISERVER_PORT"] == "26443"
    assert env["ZOO_CLUSTER_STATE_DIR"] == "/tmp/t"
    assert env["ZOO_CLUSTER_POD_PREFIX"] == "127.77"
    assert env["ZOO_CLUSTER_ETCD_PORT"] == config.TEST_PROFILE["ETCD_PORT"]
