"""The local kubelet's ConfigMap/Secret update timing (zoocluster/propagation.py), as a real kubelet's: the first
mount fresh, an update at the pod's next resync (--sync-frequency stretched by the pod worker's jitter) plus the
Cache strategy's TTL."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from zoocluster import nodes, propagation, volumes
from zoocluster.propagation import Propagation, VolumeClock

NODES_YAML = Path(__file__).resolve().parents[2] / "hack" / "cluster" / "nodes.yaml"


def test_defaults_are_the_real_kubelets_on_ascend_nodes_and_the_fast_path_elsewhere() -> None:
    real = propagation.parse(None, ascend=True)
    assert (real.sync_seconds, real.jitter, real.cache_ttl_seconds) == (60.0, 0.5, 0.0)
    assert real.worst_case_seconds == 90.0  # ../shared/ASCEND.md: typically 60-90 s
    assert propagation.parse({}, ascend=False) == propagation.FAST
    ttl = propagation.parse({"cacheTtlSeconds": 30}, ascend=True)
    assert ttl.worst_case_seconds == 120.0 and ttl.sync_seconds == 60.0


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        ({"syncSeconds": 0}, "configMapSync.syncSeconds: must be > 0"),
        ({"jitter": -1}, "configMapSync.jitter: must be a number of seconds >= 0"),
        ({"cacheTtlSeconds": "30s"}, "configMapSync.cacheTtlSeconds"),
        ({"syncSecond": 1}, "unknown keys ['syncSecond']"),
    ],
)
def test_bad_settings_name_the_field(raw: dict, words: str) -> None:
    with pytest.raises(ValueError, match=words.replace("[", r"\[").replace("]", r"\]")):
        propagation.parse(raw, ascend=True)


def test_interval_is_within_the_jitter_window_fixed_per_pod_and_spread_over_pods() -> None:
    timing = Propagation()
    intervals = [timing.interval(f"uid-{i}") for i in range(16)]
    assert all(60.0 <= s < 90.0 for s in intervals)
    assert timing.interval("uid-3") == intervals[3]  # reproducible
    assert max(intervals) - min(intervals) > 10  # one gang's pods do not all refresh at once
    assert Propagation(60.0, 0.0, 0.0).interval("any") == 60.0


def test_first_mount_is_fresh_and_an_update_waits_for_the_next_resync() -> None:
    clock = VolumeClock(Propagation(60.0, 0.0, 0.0), "uid", admitted=100.0)
    assert clock.offer("table", "attempt 0", 100.0) == "attempt 0"
    assert clock.offer("table", "attempt 1", 101.0) is None  # changed at 101
    assert clock.offer("table", "attempt 1", 159.9) is None  # still the old table: the stale window
    assert clock.offer("table", "attempt 1", 160.2) == "attempt 1"  # the tick at 160 delivers it
    assert clock.offer("table", "attempt 1", 161.0) is None  # written once


def test_a_change_after_a_tick_waits_for_the_following_one() -> None:
    clock = VolumeClock(Propagation(60.0, 0.0, 0.0), "uid", admitted=0.0)
    clock.offer("v", "a", 0.0)
    assert clock.offer("v", "b", 60.5) is None  # seen just after the tick at 60
    assert clock.offer("v", "b", 119.0) is None
    assert clock.offer("v", "b", 120.0) == "b"  # almost a whole interval later


def test_the_cache_ttl_holds_back_a_change_newer_than_it_and_serves_an_older_one() -> None:
    clock = VolumeClock(Propagation(60.0, 0.0, 30.0), "uid", admitted=0.0)
    clock.offer("v", "a", 0.0)
    clock.offer("v", "b", 10.0)
    clock.offer("v", "c", 40.0)  # within the TTL of the tick at 60
    assert clock.offer("v", "c", 60.0) == "b"  # the cache still serves b
    assert clock.offer("v", "c", 119.0) is None
    assert clock.offer("v", "c", 120.0) == "c"


def test_every_volume_of_the_pod_is_checked_on_the_same_tick() -> None:
    clock = VolumeClock(Propagation(60.0, 0.0, 0.0), "uid", admitted=0.0)
    for name in ("x", "y"):
        clock.offer(name, "old", 0.0)
    assert clock.offer("x", "new", 5.0) is None and clock.offer("y", "new", 5.0) is None
    assert clock.offer("x", "new", 61.0) == "new" and clock.offer("y", "new", 61.0) == "new"


def test_a_change_undone_before_the_tick_is_not_written() -> None:
    clock = VolumeClock(Propagation(60.0, 0.0, 0.0), "uid", admitted=0.0)
    clock.offer("v", "a", 0.0)
    clock.offer("v", "b", 5.0)
    clock.offer("v", "a", 6.0)
    assert clock.offer("v", "a", 60.0) is None


def test_pod_volumes_keep_the_old_file_on_disk_until_the_resync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [1000.0]
    monkeypatch.setattr(volumes.time, "monotonic", lambda: now[0])
    data = {"attempt": "0"}
    cms = {("ns", "t"): {"data": data}}
    clock = VolumeClock(Propagation(60.0, 0.0, 0.0), "uid", admitted=1000.0)
    vols = volumes.PodVolumes(
        tmp_path,
        None,
        lambda ns, n: cms.get((ns, n)),  # type: ignore[arg-type]
        lambda ns, n: None,
        None,
        clock,
    )
    pod = {
        "metadata": {"namespace": "ns", "name": "p", "uid": "uid"},
        "spec": {"volumes": [{"name": "table", "configMap": {"name": "t"}}]},
    }
    vols.sync(pod, "10.0.0.1", "10.0.0.2")
    mounted = tmp_path / "volumes" / "table" / "attempt"
    assert mounted.read_text() == "0"
    data["attempt"] = "1"
    now[0] = 1030.0
    vols.sync(pod, "10.0.0.1", "10.0.0.2")
    assert mounted.read_text() == "0"  # the old attempt's table is still what the pod reads
    now[0] = 1060.0
    vols.sync(pod, "10.0.0.1", "10.0.0.2")
    assert mounted.read_text() == "1"


def test_nodes_yaml_ascend_nodes_say_which_timing_they_use() -> None:
    specs = nodes.load_nodes(NODES_YAML.read_text())
    raw = {n["name"]: n for n in yaml.safe_load(NODES_YAML.read_text())["nodes"]}
    for spec in specs:
        timing = propagation.parse(spec.config_map_sync, ascend="huawei.com/Ascend910" in spec.capacity)
        if "huawei.com/Ascend910" in spec.capacity and "configMapSync" not in raw[spec.name]:
            assert timing == Propagation()  # realistic unless nodes.yaml opts out (and says why there)
    slow = [s for s in specs if s.labels.get("zoo.local/configmap-sync") == "kubelet-default"]
    assert len(slow) >= 2 and all(not s.config_map_sync for s in slow)
