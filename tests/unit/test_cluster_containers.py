"""A container's base environment and bind mounts in the local kubelet."""

from pathlib import Path

from zoocluster.containers import base_env, mounts
from zoocluster.images import Image

POD = {
    "metadata": {"name": "job-worker-0", "namespace": "ns"},
    "spec": {
        "hostname": "w0",
        "volumes": [
            {"name": "rt", "configMap": {"name": "rt"}},
            {"name": "data", "hostPath": {"path": "/data"}},
        ],
    },
}


def test_base_env_points_at_the_image_and_the_real_api_server():
    env = base_env(Image(Path("/repo/.venv"), env={"PYTHONUNBUFFERED": "1"}), POD, "127.0.0.1", 6443, [2, 3])
    assert env["PATH"].startswith("/repo/.venv/bin:")
    assert env["HOSTNAME"] == "w0"
    assert (env["KUBERNETES_SERVICE_HOST"], env["KUBERNETES_SERVICE_PORT"]) == ("127.0.0.1", "6443")
    assert env["ASCEND_VISIBLE_DEVICES"] == "2,3" and env["PYTHONUNBUFFERED"] == "1"
    assert "ASCEND_VISIBLE_DEVICES" not in base_env(Image(Path("/r")), POD, "h", 1, [])
    assert env["ZOO_ASCEND_SIMULATE"] == "1"
    # A node configured without the simulated NPU: the plugin's variables only, never the switch.
    real = base_env(Image(Path("/r")), POD, "h", 1, [2, 3], simulate=False)
    assert real["ASCEND_VISIBLE_DEVICES"] == "2,3" and not any(k.startswith("ZOO_ASCEND") for k in real)


def test_mounts_cover_hosts_termination_log_volumes_and_subpaths(tmp_path: Path):
    (tmp_path / "rt").mkdir()
    (tmp_path / "rt" / "hccl.json").write_text("{}")
    container = {
        "terminationMessagePath": "/tmp/msg",
        "volumeMounts": [
            {"name": "rt", "mountPath": "/etc/zoo/ranktable"},
            {"name": "rt", "mountPath": "/etc/hccl.json", "subPath": "hccl.json", "readOnly": True},
            {"name": "data", "mountPath": "/mnt/data"},
        ],
    }

    def volume_path(volume: dict) -> Path:
        return Path(volume["hostPath"]["path"]) if "hostPath" in volume else tmp_path / volume["name"]

    got = mounts(POD, container, volume_path, tmp_path / "hosts", tmp_path / "msg")
    assert [(m["target"], m["file"], m["readOnly"]) for m in got] == [
        ("/etc/hosts", True, False),
        ("/tmp/msg", True, False),
        ("/etc/hccl.json", True, True),
        ("/mnt/data", False, False),
        ("/etc/zoo/ranktable", False, False),  # parents before children: a deeper mount comes later
    ]
    assert got[2]["source"] == str(tmp_path / "rt" / "hccl.json")
    assert got[3]["source"] == "/data"
