"""Container environment and command resolution of the local kubelet."""

import base64

import pytest

from zoocluster.envvars import ConfigError, command_line, container_env, expand

POD = {
    "metadata": {"name": "p", "namespace": "ns", "uid": "u1", "labels": {"app": "zoo"}},
    "spec": {"nodeName": "ascend-node-1"},
}


def lookup(objects):
    return lambda ns, name: objects.get((ns, name))


def test_env_resolves_fieldrefs_configmaps_secrets_and_references():
    cms = lookup({("ns", "cm"): {"data": {"k": "from-cm"}}})
    secrets = lookup({("ns", "s"): {"data": {"pw": base64.b64encode(b"hunter2").decode()}}})
    container = {
        "envFrom": [{"configMapRef": {"name": "cm"}, "prefix": "CM_"}],
        "env": [
            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
            {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
            {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
            {"name": "K", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "k"}}},
            {"name": "PW", "valueFrom": {"secretKeyRef": {"name": "s", "key": "pw"}}},
            {"name": "OPT", "valueFrom": {"configMapKeyRef": {"name": "gone", "key": "x", "optional": True}}},
            {"name": "GREETING", "value": "$(POD_NAME)@$(POD_IP) $$(POD_NAME) $(UNKNOWN)"},
        ],
    }
    env = container_env(POD, container, {"PATH": "/bin"}, "127.1.0.9", "127.0.2.2", cms, secrets)
    assert env["POD_NAME"] == "p" and env["POD_IP"] == "127.1.0.9" and env["NODE"] == "ascend-node-1"
    assert (
        env["APP"] == "zoo" and env["K"] == "from-cm" and env["CM_k"] == "from-cm" and env["PW"] == "hunter2"
    )
    assert "OPT" not in env
    assert env["GREETING"] == "p@127.1.0.9 $(POD_NAME) $(UNKNOWN)"


def test_missing_required_key_is_a_config_error_naming_it():
    container = {"env": [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "nope"}}}]}
    with pytest.raises(ConfigError, match="nope"):
        container_env(POD, container, {}, "", "", lookup({("ns", "cm"): {"data": {}}}), lookup({}))


def test_command_line_uses_entrypoint_only_without_command():
    env = {"N": "3"}
    assert command_line({"args": ["--n", "$(N)"]}, ["zoo-operator", "run"], env) == [
        "zoo-operator",
        "run",
        "--n",
        "3",
    ]
    assert command_line({"command": ["python3"], "args": ["-c", "x"]}, ["ep"], env) == ["python3", "-c", "x"]
    assert expand("$(N)$(N)", env) == "33"
