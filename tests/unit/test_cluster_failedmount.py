"""The local kubelet words a volume that cannot be set up as a real kubelet does (issue 11): the FailedMount
Event text `MountVolume.SetUp failed for volume "<name>" : <plugin error>`, with the hostPath plugin's
`hostPath <path> doesn't exist` and the API's `configmap "<name>" not found`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from zoocluster.envvars import ConfigError
from zoocluster.volumes import PodVolumes


def pod(*volumes: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"name": "p", "namespace": "ns", "uid": "u"}, "spec": {"volumes": list(volumes)}}


def volumes(tmp_path: Path) -> PodVolumes:
    return PodVolumes(
        tmp_path / "pod",
        client=None,
        configmaps=lambda ns, name: None,  # type: ignore[arg-type]
        secrets=lambda ns, name: None,
    )


def test_missing_host_path_of_a_checked_type(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-dir"
    with pytest.raises(ConfigError) as info:
        volumes(tmp_path).sync(
            pod({"name": "zoo-data", "hostPath": {"path": str(missing), "type": "Directory"}}),
            "10.0.0.2",
            "10.0.0.1",
        )
    assert (
        str(info.value)
        == f'MountVolume.SetUp failed for volume "zoo-data" : hostPath {missing} doesn\'t exist'
    )


def test_missing_config_map(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        volumes(tmp_path).sync(
            pod({"name": "cfg", "configMap": {"name": "settings"}}), "10.0.0.2", "10.0.0.1"
        )
    assert str(info.value) == 'MountVolume.SetUp failed for volume "cfg" : configmap "settings" not found'
