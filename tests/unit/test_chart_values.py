"""values.yaml is documented and camelCase; values.schema.json refuses bad values, naming them."""

from __future__ import annotations

import json
import re

import jsonschema
import pytest
import yaml
from chart_render import CHART, helm, set_args

_KEY = re.compile(r"^(?P<indent> *)(?P<key>[A-Za-z0-9_.-]+):")


def documented_keys(text: str) -> dict[str, bool]:
    """Dotted path of every key in a values file -> whether the comment block right above it starts with
    "# <path>" or "# <key>" (the Helm convention: the comment names the value it documents)."""
    result: dict[str, bool] = {}
    stack: list[tuple[int, str]] = []
    comment: list[str] = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            comment.append(stripped.lstrip("# "))
            continue
        match = _KEY.match(line)
        if not match:
            if not stripped:
                comment = []
            continue
        indent = len(match["indent"])
        while stack and stack[-1][0] >= indent:
            stack.pop()
        path = ".".join([k for _, k in stack] + [match["key"]])
        first = comment[0] if comment else ""
        result[path] = first.startswith((path + " ", match["key"] + " "))
        stack.append((indent, match["key"]))
        comment = []
    return result


def leaf_paths(values: dict, prefix: str = "") -> list[str]:
    """Dotted paths of the values a user sets (a non-empty mapping is a group, not a value)."""
    out = []
    for key, value in values.items():
        path = f"{prefix}{key}"
        out += leaf_paths(value, path + ".") if isinstance(value, dict) and value else [path]
    return out


def test_every_value_has_a_comment_starting_with_its_name():
    text = (CHART / "values.yaml").read_text()
    documented = documented_keys(text)
    for path in leaf_paths(yaml.safe_load(text)):
        parts = path.split(".")
        # A value is documented by its own comment or by the one on the group it belongs to (e.g. resources).
        covered = any(documented.get(".".join(parts[:i])) for i in range(len(parts), 0, -1))
        assert covered, f"{path} in values.yaml has no comment starting with its name"


def test_values_keys_are_camel_case():
    def keys(node):
        if isinstance(node, dict):
            for key, value in node.items():
                yield key
                yield from keys(value)

    values = yaml.safe_load((CHART / "values.yaml").read_text())
    # resources/securityContext hold Kubernetes field names, camelCase too: no exception needed.
    bad = [k for k in keys(values) if not re.fullmatch(r"[a-z][A-Za-z0-9]*", k)]
    assert bad == []


def test_default_values_satisfy_the_schema():
    schema = json.loads((CHART / "values.schema.json").read_text())
    jsonschema.validate(yaml.safe_load((CHART / "values.yaml").read_text()), schema)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"statusIntervalSeconds": "0"}, "/statusIntervalSeconds"),
        ({"logTailLines": "-1"}, "/logTailLines"),
        ({"logTailLines": "lots"}, "/logTailLines"),
        ({"image.pullPolicy": "Sometimes"}, "/image/pullPolicy"),
        ({"watchNamespaces": "{Team_A}"}, "/watchNamespaces/0"),
        ({"metrics.port": "70000"}, "/metrics/port"),
        ({"health.port": "0"}, "/health/port"),
        ({"metrics.service.type": "Ingress"}, "/metrics/service/type"),
        ({"gang.enabled": "maybe"}, "/gang/enabled"),
        ({"crds.enable": "false"}, "'enable' not allowed"),
        ({"statusIntervalSecond": "5"}, "'statusIntervalSecond' not allowed"),
        ({"images.workload.npu": "x"}, "'npu' not allowed"),
    ],
)
def test_schema_rejects_bad_values(values, message):
    proc = helm("template", "zoo-operator", str(CHART), *set_args(values), check=False)
    assert proc.returncode != 0, f"helm accepted {values}"
    assert message in proc.stderr, proc.stderr


def test_schema_accepts_a_full_custom_configuration():
    values = {
        "watchNamespaces": "{ml-team,research}",
        "statusIntervalSeconds": "30",
        "logTailLines": "0",
        "images.workload.ascend": "swr.example.com/zoo/workload-ascend:0.1.0",
        "metrics.enabled": "true",
        "metrics.service.type": "NodePort",
        "gang.enabled": "true",
        "crds.enabled": "false",
        "serviceAccount.create": "false",
        "serviceAccount.name": "existing-sa",
    }
    assert helm("template", "zoo-operator", str(CHART), *set_args(values)).returncode == 0


def test_existing_service_account_needs_a_name():
    proc = helm("template", "zoo-operator", str(CHART), "--set", "serviceAccount.create=false", check=False)
    assert proc.returncode != 0
    assert "serviceAccount.name is required" in proc.stderr
