"""The Dockerfiles, checked without a container engine: hadolint, COPY sources, entry points, version pins.

Nothing here builds an image (no engine on the build machines); these checks catch what a build would only
reveal later: a renamed file, an entry point that no longer matches the chart or the operator, a version that
drifted from uv.lock, a base image MindSpore does not support.
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
IMAGES = REPO / "images"
DOCKERFILES = sorted(IMAGES.glob("*/Dockerfile"))
HADOLINT = REPO / ".venv" / "bin" / "hadolint"
WORKLOADS = ["workload-cpu", "workload-gpu", "workload-ascend"]


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined and comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for line in path.read_text().splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        full = pending + line
        pending = ""
        word, _, rest = full.strip().partition(" ")
        out.append((word.upper(), rest.strip()))
    return out


def args_of(path: Path) -> dict[str, str]:
    """ARG defaults."""
    return dict(a.split("=", 1) for i, a in instructions(path) if i == "ARG" and "=" in a)


def exec_form(path: Path, instruction: str) -> list[str]:
    """The last ENTRYPOINT or CMD, which must be in exec (JSON) form."""
    values = [a for i, a in instructions(path) if i == instruction]
    assert values, f"{path} has no {instruction}"
    return json.loads(values[-1])


def base_images(path: Path) -> list[str]:
    """The image of every FROM, with ARG defaults substituted."""
    defaults = args_of(path)
    images = []
    for i, a in instructions(path):
        if i == "FROM":
            image = a.split()[0]
            images.append(re.sub(r"\$\{?(\w+)\}?", lambda m: defaults[m.group(1)], image))
    return images


def locked_version(package: str) -> str:
    """The version of `package` in uv.lock."""
    lock = tomllib.loads((REPO / "uv.lock").read_text())
    (version,) = {p["version"] for p in lock["package"] if p["name"] == package}
    return version


def mindspore_file(*parts: str) -> Path:
    """A file inside the installed (locked) mindspore package."""
    spec = importlib.util.find_spec("mindspore")  # locate without importing (the import takes seconds)
    assert spec is not None and spec.submodule_search_locations, "mindspore is not installed (make setup)"
    return Path(spec.submodule_search_locations[0]).joinpath(*parts)


def test_every_image_has_a_dockerfile():
    assert sorted(p.parent.name for p in DOCKERFILES) == sorted(["operator", *WORKLOADS])


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.parent.name)
def test_hadolint_clean(dockerfile):
    proc = subprocess.run(
        [str(HADOLINT), str(dockerfile)], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.parent.name)
def test_multi_stage_with_pinned_bases(dockerfile):
    bases = base_images(dockerfile)
    assert len(bases) >= 2, "build and runtime stages"
    for image in bases:
        name, _, tag = image.rpartition(":")
        assert name and tag and tag != "latest" and re.search(r"\d", tag), f"unpinned base image {image}"


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.parent.name)
def test_copy_sources_exist_and_are_in_the_build_context(dockerfile):
    ignored = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for instruction, arguments in instructions(dockerfile):
        if instruction != "COPY" or "--from=" in arguments:
            continue
        *sources, _dest = arguments.split()
        for source in sources:
            assert (REPO / source).exists(), f"{dockerfile.parent.name}: COPY {source}: no such file"
            top = source.rstrip("/").split("/")[0]
            assert top not in ignored, f"{dockerfile.parent.name}: COPY {source} is excluded by .dockerignore"


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.parent.name)
def test_installs_from_the_lock(dockerfile):
    syncs = [a for i, a in instructions(dockerfile) if i == "RUN" and "uv sync" in a]
    assert syncs and all("--frozen" in s and "--no-dev" in s for s in syncs)
    uv_copies = [a for i, a in instructions(dockerfile) if i == "COPY" and "astral-sh/uv:" in a]
    makefile_uv = re.search(r"^UV_VERSION := (\S+)", (REPO / "Makefile").read_text(), re.MULTILINE).group(1)
    assert uv_copies and all(f"astral-sh/uv:{makefile_uv} " in c for c in uv_copies)


def test_operator_entry_point_is_the_charts_command():
    dockerfile = IMAGES / "operator" / "Dockerfile"
    image_command = exec_form(dockerfile, "ENTRYPOINT") + exec_form(dockerfile, "CMD")
    deployment = yaml.safe_load(
        (REPO / "manifests" / "base" / "deployment.yaml").read_text().split("---", 1)[1]
    )
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert image_command == container["command"] == ["zoo-operator", "run"]
    scripts = tomllib.loads((REPO / "operator" / "pyproject.toml").read_text())["project"]["scripts"]
    assert "zoo-operator" in scripts


def test_operator_image_user_is_the_charts_uid():
    dockerfile = IMAGES / "operator" / "Dockerfile"
    users = [a for i, a in instructions(dockerfile) if i == "USER"]
    values = yaml.safe_load((REPO / "charts" / "zoo-operator" / "values.yaml").read_text())
    assert (
        users[-1]
        == f"{values['podSecurityContext']['runAsUser']}:{values['podSecurityContext']['runAsGroup']}"
    )


@pytest.mark.parametrize("image", WORKLOADS)
def test_workload_entry_point_is_zoo_launch(image):
    dockerfile = IMAGES / image / "Dockerfile"
    assert exec_form(dockerfile, "ENTRYPOINT") == ["zoo-launch"]
    scripts = tomllib.loads((REPO / "workloads" / "pyproject.toml").read_text())["project"]["scripts"]
    assert {"zoo-launch", "zoo-train"} <= scripts.keys()
    # The contract's pod command starts with the same launcher.
    contracts = (REPO / "docs" / "contracts.md").read_text()
    assert "Container command: `zoo-launch -- zoo-train" in contracts


def test_kopf_pin_equals_the_lock():
    assert args_of(IMAGES / "operator" / "Dockerfile")["KOPF_VERSION"] == locked_version("kopf")


@pytest.mark.parametrize("image", WORKLOADS)
def test_mindspore_pin_equals_the_lock(image):
    assert args_of(IMAGES / image / "Dockerfile")["MINDSPORE_VERSION"] == locked_version("mindspore")


def test_python_versions_agree_with_the_lock():
    lock = tomllib.loads((REPO / "uv.lock").read_text())
    minor = re.fullmatch(r"==(\d+\.\d+)\.\*", lock["requires-python"]).group(1)
    found = set()
    for dockerfile in DOCKERFILES:
        for image in base_images(dockerfile):
            if image.startswith("python:"):
                found.add(re.match(r"python:(\d+\.\d+\.\d+)-", image).group(1))
            elif "-py" in image:  # CANN images name their Python: ...-py3.11
                assert re.search(r"-py(\d+\.\d+)$", image).group(1) == minor
        found |= set(re.findall(r"uv python install (\S+)", dockerfile.read_text()))
    assert len(found) == 1, f"one Python patch version across images, found {found}"
    assert found.pop().startswith(minor + ".")


def test_ascend_base_is_named_once_and_supported_by_mindspore():
    dockerfile = IMAGES / "workload-ascend" / "Dockerfile"
    text = dockerfile.read_text()
    args = args_of(dockerfile)
    cann_image = args["CANN_IMAGE"]
    assert text.count("ascendai/cann:") == 1, "the CANN base image is pinned in one place (ARG CANN_IMAGE)"
    assert all(i == cann_image for i in base_images(dockerfile))
    # One image per chip generation: the chip is a build argument of the base's tag.
    assert "-${CHIP}-" in cann_image and args["CHIP"] == "910b"
    cann = re.match(r"ascendai/cann:(\d+\.\d+)\.\d+-", cann_image).group(1)
    checker = mindspore_file("run_check", "_check_version.py").read_text()
    ascend_section = checker.split("class AscendEnvChecker", 1)[1]
    supported = json.loads(re.search(r"self\.version = (\[.*?\])", ascend_section).group(1).replace("'", '"'))
    assert cann in supported, f"CANN {cann} not in MindSpore's supported {supported}"


def test_gpu_base_cuda_is_one_mindspore_ships_a_plugin_for():
    dockerfile = IMAGES / "workload-gpu" / "Dockerfile"
    cudas = {re.match(r"nvidia/cuda:(\d+\.\d+)\.\d+-cudnn", i).group(1) for i in base_images(dockerfile)}
    assert len(cudas) == 1
    cuda = cudas.pop()
    assert mindspore_file("lib", "plugin", f"gpu{cuda}").is_dir(), f"MindSpore has no plugin for CUDA {cuda}"


def test_local_cluster_knows_every_image_with_the_same_entry_point():
    """The local kubelet stands in for these images (hack/cluster/images.yaml): same names, same entry point."""
    local = yaml.safe_load((REPO / "hack" / "cluster" / "images.yaml").read_text())["images"]
    assert set(local) == {f"zoo-operator/{p.parent.name}" for p in DOCKERFILES}
    operator = IMAGES / "operator" / "Dockerfile"
    assert local["zoo-operator/operator"]["entrypoint"] == exec_form(operator, "ENTRYPOINT") + exec_form(
        operator, "CMD"
    )
