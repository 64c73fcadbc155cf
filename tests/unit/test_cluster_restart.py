"""`zoo-cluster restart-apiserver`: the apiserver's command line is built once for `up` and the restart, and a
restart of a cluster that is not running says so instead of starting a lone apiserver."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from zoocluster import __main__ as cli
from zoocluster import config, controlplane


def _cfg(monkeypatch: pytest.MonkeyPatch, state: Path) -> config.ClusterConfig:
    for key in list(os.environ):
        if key.startswith("ZOO_CLUSTER_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("ZOO_CLUSTER_STATE_DIR", str(state))
    monkeypatch.setenv("ZOO_CLUSTER_APISERVER_PORT", "17111")
    monkeypatch.setenv("ZOO_CLUSTER_ETCD_PORT", "17222")
    return config.from_env()


def test_apiserver_argv_names_this_clusters_ports_and_certificates(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    cfg = _cfg(monkeypatch, tmp_path / "state")
    argv = controlplane.apiserver_argv(cfg)
    assert argv[0] == str(cfg.bin_dir / "kube-apiserver")
    assert "--secure-port=17111" in argv and "--etcd-servers=http://127.0.0.1:17222" in argv
    assert f"--tls-cert-file={cfg.pki / 'apiserver.crt'}" in argv
    assert controlplane.FEATURE_GATES in argv
    assert len(argv) == len(set(argv)), "a flag given twice"


def test_restart_of_a_stopped_cluster_fails_naming_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = _cfg(monkeypatch, tmp_path / "state")
    (cfg.pids).mkdir(parents=True)
    # A PID file of a process that is not an apiserver (this test process): a recycled PID is not restarted.
    (cfg.pids / "kube-apiserver.pid").write_text(f"{os.getpid()}\nkube-apiserver-not-me\n")
    assert cli.main(["restart-apiserver", "--down-seconds", "0"]) == 1
    err = capsys.readouterr().err
    assert "kube-apiserver of" in err and str(cfg.state_dir) in err and "`up`" in err
    assert not (cfg.logs / "kube-apiserver.log").exists(), "a lone apiserver was started"
