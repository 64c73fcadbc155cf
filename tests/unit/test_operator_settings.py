"""Operator settings from the environment (contracts.md's table)."""

from __future__ import annotations

import pytest

from zoo_operator import settings


def test_defaults() -> None:
    s = settings.from_env({})
    assert s.watch_namespaces == () and s.status_interval_seconds == 5.0 and s.log_tail_lines == 20
    assert s.metrics_port == 0 and s.health_port == 8080 and s.listen_host == "0.0.0.0"
    assert s.listen_url(8080, "/healthz") == "http://0.0.0.0:8080/healthz"
    assert s.image_cpu == f"zoo-operator/workload-cpu:{settings.VERSION}"
    assert s.image_for("Ascend910") == f"zoo-operator/workload-ascend:{settings.VERSION}-910b"
    assert s.image_for("Ascend910", "A3") == f"zoo-operator/workload-ascend:{settings.VERSION}-a3"
    assert s.ascend_chip == "910B" and s.ascend_host_arch == "huawei-arm" and s.ascend_driver_mounts
    assert not s.ascend_volcano and s.ascend_shm_size == ""


def test_ascend_settings_from_environment() -> None:
    s = settings.from_env(
        {
            "ZOO_IMAGE_ASCEND": "r/any:1",
            "ZOO_IMAGE_ASCEND_910": "r/a910:1",
            "ZOO_ASCEND_CHIP": "910",
            "ZOO_ASCEND_HOST_ARCH": "none",
            "ZOO_ASCEND_ACCELERATOR_TYPE_910B": "card-910b-2",
            "ZOO_ASCEND_DRIVER_MOUNTS": "false",
            "ZOO_ASCEND_SHM_SIZE": "16Gi",
            "ZOO_ASCEND_VOLCANO": "true",
        }
    )
    assert s.image_for("Ascend910") == "r/a910:1" and s.image_for("Ascend910", "910B") == "r/any:1"
    assert s.ascend_host_arch == "" and s.accelerator_type("910B", "module-910b-8") == "card-910b-2"
    assert s.accelerator_type("A3", "module-a3-16-super-pod") == "module-a3-16-super-pod"
    assert not s.ascend_driver_mounts and s.ascend_shm_size == "16Gi" and s.ascend_volcano
    for bad in (
        {"ZOO_ASCEND_CHIP": "310P"},
        {"ZOO_ASCEND_HOST_ARCH": "arm64"},
        {"ZOO_ASCEND_VOLCANO": "yes"},
    ):
        with pytest.raises(ValueError, match=next(iter(bad))):
            settings.from_env(bad)
    assert s.image_for("GPU").startswith("zoo-operator/workload-gpu:")


def test_listen_host_from_environment() -> None:
    assert settings.from_env({"ZOO_LISTEN_HOST": "127.3.0.7"}).listen_url(81) == "http://127.3.0.7:81"
    assert settings.from_env({"ZOO_LISTEN_HOST": "fd00::7"}).listen_url(81, "/m") == "http://[fd00::7]:81/m"


def test_values_from_environment() -> None:
    s = settings.from_env(
        {
            "ZOO_WATCH_NAMESPACES": " a, b ,,",
            "ZOO_STATUS_INTERVAL_SECONDS": "0.5",
            "ZOO_LOG_TAIL_LINES": "3",
            "ZOO_IMAGE_CPU": "me/cpu:1",
            "ZOO_METRICS_PORT": "9090",
            "ZOO_HEALTH_PORT": "0",
        }
    )
    assert s.watch_namespaces == ("a", "b") and s.status_interval_seconds == 0.5 and s.log_tail_lines == 3
    assert s.image_for("CPU") == "me/cpu:1" and s.metrics_port == 9090 and s.health_port == 0


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("ZOO_STATUS_INTERVAL_SECONDS", "soon"),
        ("ZOO_STATUS_INTERVAL_SECONDS", "0"),
        ("ZOO_LOG_TAIL_LINES", "-1"),
        ("ZOO_HEALTH_PORT", "http"),
    ],
)
def test_bad_values_name_the_variable(name: str, value: str) -> None:
    with pytest.raises(ValueError, match=name):
        settings.from_env({name: value})
