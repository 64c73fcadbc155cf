"""Atomic volume updates, image mapping and the nodes config of the local cluster."""

import os
from pathlib import Path

import pytest

from zoocluster.images import parse_images, repository, resolve
from zoocluster.nodes import IpPool, parse_nodes
from zoocluster.volumes import write_payload


def test_payload_update_swaps_data_link_and_keeps_names(tmp_path: Path):
    assert write_payload(tmp_path, {"hccl.json": b"v1", "ranks.json": b"r"})
    first = os.readlink(tmp_path / "..data")
    assert (tmp_path / "hccl.json").read_bytes() == b"v1"
    assert not write_payload(tmp_path, {"hccl.json": b"v1", "ranks.json": b"r"})  # unchanged: no new dir
    assert write_payload(tmp_path, {"hccl.json": b"v2"})
    assert os.readlink(tmp_path / "..data") != first
    assert (tmp_path / "hccl.json").read_bytes() == b"v2"
    assert not (tmp_path / "ranks.json").exists()  # a removed key disappears
    assert not (tmp_path / first).exists()  # the old generation is cleaned up


def test_image_repository_ignores_tag_digest_and_docker_hub_prefix():
    assert repository("zoo-operator/workload-cpu:0.1.0") == "zoo-operator/workload-cpu"
    assert repository("localhost:5000/zoo-operator/operator") == "localhost:5000/zoo-operator/operator"
    assert repository("docker.io/zoo-operator/operator@sha256:abc") == "zoo-operator/operator"
    images = parse_images(
        {"images": {"zoo-operator/operator": {"root": ".venv", "entrypoint": ["x"]}}}, Path("/r")
    )
    assert resolve(images, "zoo-operator/operator:dev").root == Path("/r/.venv")
    assert resolve(images, "busybox:1.36") is None


def test_bad_configs_name_the_field():
    with pytest.raises(ValueError, match=r"images.x.root"):
        parse_images({"images": {"x": {}}}, Path("/r"))
    with pytest.raises(ValueError, match="unique"):
        parse_nodes({"nodes": [{"name": "a"}, {"name": "a"}]})
    with pytest.raises(ValueError, match=r"nodes\[0\].name"):
        parse_nodes({"nodes": [{}]})


def test_pod_ips_are_distinct_and_stable():
    pool = IpPool("127.1")
    a, b = pool.allocate("a"), pool.allocate("b")
    assert a != b and pool.allocate("a") == a
    assert a.startswith("127.1.")
    pool.release("a")
    assert pool.allocate("c") not in (b,)
