"""Issue 24 in the chart: readiness and liveness probes, image digests for every image rendered."""

from __future__ import annotations

from chart_render import CHART, container, env_of, helm, set_args, template

DIGEST = "sha256:" + "ab" * 32
OTHER = "sha256:" + "cd" * 32


def test_probes_use_kopfs_health_endpoint() -> None:
    c = container(template({"health.port": "8181"}))
    for probe in ("livenessProbe", "readinessProbe"):
        assert c[probe]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert {"name": "health", "containerPort": 8181, "protocol": "TCP"} in c["ports"]


def test_digests_pin_every_image() -> None:
    objects = template(
        {
            "image.digest": DIGEST,
            "images.workload.cpuDigest": DIGEST,
            "images.workload.gpuDigest": OTHER,
            "images.workload.ascendChipsDigest.chip910b": DIGEST,
            "images.workload.ascendChips.chipA3": "r/a3:1",
            "images.workload.ascendChipsDigest.chipA3": OTHER,
        }
    )
    c = container(objects)
    assert c["image"].startswith("zoo-operator/operator:") and c["image"].endswith(f"@{DIGEST}")
    env = env_of(objects)
    assert env["ZOO_IMAGE_CPU"].startswith("zoo-operator/workload-cpu:") and env["ZOO_IMAGE_CPU"].endswith(
        DIGEST
    )
    assert env["ZOO_IMAGE_GPU"].endswith("@" + OTHER)
    assert env["ZOO_IMAGE_ASCEND_910B"].startswith("zoo-operator/workload-ascend:")
    assert env["ZOO_IMAGE_ASCEND_910B"].endswith("-910b@" + DIGEST)
    assert env["ZOO_IMAGE_ASCEND_A3"] == f"r/a3:1@{OTHER}"
    assert env["ZOO_IMAGE_ASCEND_910"] == ""  # no digest: the operator's per-chip default as before


def test_no_digest_leaves_tags_alone() -> None:
    c = container(template())
    assert "@" not in c["image"] and all("@" not in v for k, v in env_of(template()).items() if "IMAGE" in k)


def test_a_malformed_digest_fails_install() -> None:
    proc = helm("template", "x", str(CHART), *set_args({"image.digest": "sha256:short"}), check=False)
    assert proc.returncode != 0 and "digest" in proc.stderr
