"""Every example job is valid against the generated CRD's schema and uses only known hyperparameters.

The CEL rules need an apiserver: tests/integration/test_install.py applies the examples with --dry-run=server.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from zoo_operator import cli
from zoo_workloads import config

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "manifests" / "examples"
EXAMPLE_FILES = sorted(EXAMPLES.glob("*.yaml"))
SEED_MODELS = {"glore_res50", "resnet50_bam", "genet_res50", "multigrain", "resnet3d"}


def to_json_schema(node: Any) -> Any:
    """A Kubernetes structural schema as plain JSON Schema: int-or-string becomes a type union, the other
    x-kubernetes-* extensions (CEL rules, list types, unknown-field preservation) are dropped."""
    if isinstance(node, list):
        return [to_json_schema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: to_json_schema(v) for k, v in node.items() if not k.startswith("x-kubernetes-")}
    if node.get("x-kubernetes-int-or-string"):
        out["type"] = ["integer", "string"]
    return out


def crd_schema() -> dict[str, Any]:
    """The openAPIV3Schema of the CRD that `zoo-operator generate` wrote."""
    crd = yaml.safe_load((REPO / "manifests" / "base" / "crd.yaml").read_text())
    (version,) = crd["spec"]["versions"]
    return to_json_schema(version["schema"]["openAPIV3Schema"])


def load(path: Path) -> dict[str, Any]:
    """The one ZooTrainingJob in an example file."""
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
    assert len(docs) == 1, f"{path.name}: one job per file"
    return docs[0]


def test_one_example_per_seed_model_and_a_cpu_one():
    jobs = {p.name: load(p) for p in EXAMPLE_FILES}
    ascend = {j["spec"]["model"] for j in jobs.values() if j["spec"]["device"]["type"] == "Ascend910"}
    assert ascend == SEED_MODELS
    assert jobs["cpu-tiny.yaml"]["spec"]["device"]["type"] == "CPU"


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: p.name)
def test_example_matches_crd_schema(path):
    job = load(path)
    assert job["apiVersion"] == "modelzoo.io/v1alpha1" and job["kind"] == "ZooTrainingJob"
    assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", job["metadata"]["name"])
    jsonschema.validate(job, crd_schema())


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: p.name)
def test_example_hyperparameters_are_known_keys(path):
    spec = load(path)["spec"]
    known = config.default_hyperparameters(spec["model"])
    unknown = set(spec.get("hyperparameters", {})) - set(known)
    assert not unknown, f"{path.name}: unknown hyperparameters {sorted(unknown)}"


@pytest.mark.parametrize(
    "path", [p for p in EXAMPLE_FILES if not p.name.startswith("cpu-tiny")], ids=lambda p: p.name
)
def test_ascend_examples_use_whole_servers_and_the_rank_table(path):
    spec = load(path)["spec"]
    assert spec["device"]["type"] == "Ascend910"
    assert spec["replicas"] in (8, 16)
    assert spec["replicas"] % spec["device"]["perNode"] == 0
    assert spec.get("launch", "ranktable") == "ranktable"  # ranktable is the default on Ascend910
    assert "persistentVolumeClaim" in spec["dataset"]["volume"]


def test_cpu_tiny_is_reduced_and_reads_the_digits_hostpath():
    spec = load(EXAMPLES / "cpu-tiny.yaml")["spec"]
    hp = spec["hyperparameters"]
    assert (spec["model"], hp["width"], hp["image_size"]) == ("resnet50_bam", 8, 32)
    assert hp["steps_per_epoch"] * hp["epochs"] <= 20, "a few steps: it must finish in minutes on 2 cores"
    assert spec["dataset"]["volume"]["hostPath"]["path"] == "/tmp/zoo-data/digits"
    assert spec["dataset"]["numClasses"] == 10
    assert spec["launch"] == "dynamic"


def test_schema_check_catches_a_bad_job():
    job = load(EXAMPLES / "cpu-tiny.yaml")
    job["spec"]["device"]["type"] = "TPU"
    with pytest.raises(jsonschema.ValidationError, match="TPU"):
        jsonschema.validate(job, crd_schema())


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: p.name)
def test_operator_renders_the_example(path, capsys):
    """The operator's own validation and renderer (`zoo-operator render -f`) accept the job and produce one
    worker pod per rank, each running the workload image's entry point."""
    assert cli.main(["render", "-f", str(path)]) == 0, capsys.readouterr().err
    rendered = capsys.readouterr().out
    spec = load(path)["spec"]
    objects = [o for o in yaml.safe_load_all(rendered) if o]
    workers = [
        o
        for o in objects
        if o["kind"] == "Pod" and o["metadata"]["labels"].get("modelzoo.io/role") == "worker"
    ]
    assert len(workers) == spec.get("replicas", 1)
    entry = {"train": "zoo-train", "evaluate": "zoo-eval", "export": "zoo-export"}[spec.get("task", "train")]
    for pod in workers:
        (worker,) = [c for c in pod["spec"]["containers"] if c["name"] == "worker"]
        assert worker["command"][:3] == ["zoo-launch", "--", entry]
        # With no image in the job, the operator's default for the device: the image built from images/.
        kind = {"Ascend910": "ascend", "GPU": "gpu", "CPU": "cpu"}[spec["device"]["type"]]
        assert worker["image"].rsplit(":", 1)[0] == f"zoo-operator/workload-{kind}"
