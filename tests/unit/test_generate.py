"""The generated CRD copies match the schema source, and the schema accepts and refuses what it should."""

from __future__ import annotations

import copy
from pathlib import Path

import jsonschema
import pytest
import yaml

from zoo_operator import cli, generate, schema
from zoo_workloads import config

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("rel", sorted(generate.outputs(), key=str))
def test_generated_copy_is_fresh(rel: Path) -> None:
    on_disk = (REPO / rel).read_text(encoding="utf-8")
    assert on_disk == generate.outputs()[rel], f"{rel} is stale: run `make generate`"


def test_generate_check_detects_stale_copy(tmp_path: Path) -> None:
    assert cli.main(["generate", "--root", str(tmp_path)]) == 0
    assert cli.main(["generate", "--root", str(tmp_path), "--check"]) == 0
    crd_file = tmp_path / generate.MANIFEST_PATH
    crd_file.write_text(crd_file.read_text() + "# edited\n")
    assert cli.main(["generate", "--root", str(tmp_path), "--check"]) == 1


def test_chart_copy_is_behind_the_crds_toggle() -> None:
    text = generate.chart_crd_yaml().splitlines()
    assert text[1] == "{{- if .Values.crds.enabled }}"
    assert text[-1] == "{{- end }}"


def test_crd_identity_and_columns() -> None:
    crd = yaml.safe_load(generate.crd_yaml())
    assert crd["metadata"]["name"] == "zootrainingjobs.modelzoo.io"
    assert crd["spec"]["names"]["shortNames"] == ["ztj"]
    assert crd["spec"]["scope"] == "Namespaced"
    version = crd["spec"]["versions"][0]
    assert version["name"] == "v1alpha1" and version["subresources"] == {"status": {}}
    names = [c["name"].upper() for c in version["additionalPrinterColumns"]]
    assert names == [
        "MODEL",
        "DEVICES",
        "PHASE",
        "STAGE",
        "EPOCH",
        "STEP",
        "LOSS",
        "TOP-1",
        "ETA",
        "AGE",
        "RESTARTS",
        "REASON",
        "IMAGES/S",
        "COMMAND",
    ]


def test_model_enum_comes_from_the_model_defaults() -> None:
    spec = schema.crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    assert spec["properties"]["model"]["enum"] == config.model_names()


def _openapi() -> dict:
    return schema.crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


GOOD = {
    "apiVersion": "modelzoo.io/v1alpha1",
    "kind": "ZooTrainingJob",
    "metadata": {"name": "j"},
    "spec": {
        "model": "glore_res50",
        "device": {"type": "Ascend910", "perNode": 8},
        "replicas": 16,
        "dataset": {
            "volume": {"persistentVolumeClaim": {"claimName": "imagenet"}},
            "trainPath": "train",
            "evalPath": "val",
            "numClasses": 1000,
        },
        "hyperparameters": {"lr_max": 0.6, "autoaugment": True, "epochs": 2},
        "rankTable": {"version": "1.0"},
        "runPolicy": {"backoffLimit": 2, "cleanPodPolicy": "All"},
    },
}


def test_openapi_accepts_a_good_job() -> None:
    jsonschema.validate(GOOD, _openapi())


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("spec", "model"), "vgg16"),
        (("spec", "device", "type"), "TPU"),
        (("spec", "replicas"), 0),
        (("spec", "dataset", "volume"), {}),
        (("spec", "dataset", "volume"), {"emptyDir": {}, "hostPath": {"path": "/d"}}),
        (("spec", "runPolicy", "cleanPodPolicy"), "Sometimes"),
        (("spec", "rankTable", "version"), "2.0"),
        (("spec", "dataset", "numClasses"), 1),
    ],
)
def test_openapi_refuses_bad_fields(path: tuple[str, ...], value: object) -> None:
    bad = copy.deepcopy(GOOD)
    node = bad
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, _openapi())
