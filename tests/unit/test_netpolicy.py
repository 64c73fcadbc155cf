"""The job's NetworkPolicy (and the chart's, for the operator pod) judged by an evaluator of NetworkPolicy semantics.

The local cluster's CNI enforces no policy, so the test enforces it: `allowed` below implements the rules of
https://kubernetes.io/docs/concepts/services-networking/network-policies/ (a pod is isolated for a direction
when a policy selecting it has that policyType; then a connection needs one rule of one such policy that
admits the peer and the port; both ends' policies must admit it). The pods are the ones render.py builds.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest
from chart_render import env_of, one, template
from operator_jobs import ascend_job, job

from zoo_operator import conditions as c
from zoo_operator import netpolicy, render, spec
from zoo_operator.settings import Settings
from zoo_workloads import contract

SETTINGS = Settings(image_cpu="zoo-operator/workload-cpu:t", image_ascend="zoo-operator/workload-ascend:t")
ALL_PORTS = range(1, 65536)


@dataclass(frozen=True)
class Pod:
    name: str
    namespace: str
    labels: Mapping[str, str] = field(default_factory=dict)


def ns_labels(namespace: str) -> dict[str, str]:
    """The label the apiserver puts on every namespace (NamespaceDefaultLabelName, GA in 1.22)."""
    return {"kubernetes.io/metadata.name": namespace}


def selects(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """metav1.LabelSelector semantics: matchLabels AND every matchExpression; {} selects everything."""
    selector = selector or {}
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        ok = {
            "In": key in labels and labels[key] in values,
            "NotIn": labels.get(key) not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }[op]
        if not ok:
            return False
    return True


def peer_admits(peer: Mapping[str, Any], policy_ns: str, other: Pod) -> bool:
    assert "ipBlock" not in peer, "the evaluator judges pod peers only"
    if "namespaceSelector" in peer:
        if not selects(peer["namespaceSelector"], ns_labels(other.namespace)):
            return False
    elif other.namespace != policy_ns:  # a podSelector alone means the policy's own namespace
        return False
    return "podSelector" not in peer or selects(peer["podSelector"], other.labels)


def port_admits(ports: list[Mapping[str, Any]] | None, port: int, protocol: str) -> bool:
    if not ports:
        return True
    for p in ports:
        if p.get("protocol", "TCP") != protocol:
            continue
        if "port" not in p:
            return True
        assert isinstance(p["port"], int), "named ports are not used by our policies"
        if p["port"] <= port <= p.get("endPort", p["port"]):
            return True
    return False


def policy_types(policy: Mapping[str, Any]) -> list[str]:
    spec_ = policy["spec"]
    return spec_.get("policyTypes") or (["Ingress", "Egress"] if "egress" in spec_ else ["Ingress"])


def direction_admits(
    policies: Iterable[Mapping[str, Any]], pod: Pod, other: Pod, port: int, protocol: str, direction: str
) -> bool:
    """Whether `pod`'s policies of one direction admit the connection with `other` (peer) on `port`."""
    key, peers = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
    mine = [
        p
        for p in policies
        if p["metadata"]["namespace"] == pod.namespace
        and selects(p["spec"]["podSelector"], pod.labels)
        and direction in policy_types(p)
    ]
    if not mine:
        return True  # not isolated in this direction
    for policy in mine:
        for rule in policy["spec"].get(key) or []:
            who = rule.get(peers)
            if (not who or any(peer_admits(x, pod.namespace, other) for x in who)) and port_admits(
                rule.get("ports"), port, protocol
            ):
                return True
    return False


def allowed(policies: list[Mapping[str, Any]], src: Pod, dst: Pod, port: int, protocol: str = "TCP") -> bool:
    """Whether a connection src -> dst:port is allowed: dst's ingress and src's egress must both admit it."""
    return direction_admits(policies, dst, src, port, protocol, "Ingress") and direction_admits(
        policies, src, dst, port, protocol, "Egress"
    )


def admitted_ports(policies: list[Mapping[str, Any]], src: Pod, dst: Pod) -> set[int]:
    """Every TCP port src may reach dst on. Exact but fast: the answer is constant between the policies' port
    boundaries, so one port per segment is judged."""
    cuts = {ALL_PORTS.start, ALL_PORTS.stop}
    for policy in policies:
        for rule in [*(policy["spec"].get("ingress") or []), *(policy["spec"].get("egress") or [])]:
            for p in rule.get("ports") or []:
                if "port" in p:
                    cuts |= {p["port"], p.get("endPort", p["port"]) + 1}
    edges = sorted(cuts)
    out: set[int] = set()
    for start, stop in itertools.pairwise(edges):
        if allowed(policies, src, dst, start):
            out.update(range(start, stop))
    return out


def as_pod(obj: Mapping[str, Any]) -> Pod:
    return Pod(obj["metadata"]["name"], obj["metadata"]["namespace"], dict(obj["metadata"]["labels"]))


def parse(body: dict) -> spec.JobSpec:
    return spec.parse(body, SETTINGS)


def gang(job_spec: spec.JobSpec) -> list[Pod]:
    return [as_pod(p) for p in render.pods(job_spec, attempt=0)]


# Pods that are not the job's: the same namespace, another job, a forged label in another namespace.
def strangers(job_spec: spec.JobSpec) -> list[Pod]:
    return [
        Pod("jupyter", job_spec.namespace, {"app": "notebook"}),
        Pod(
            "other-worker-0", job_spec.namespace, {c.LABEL_JOB: f"{job_spec.name}-2", c.LABEL_ROLE: "worker"}
        ),
        Pod("forged", "attacker", {c.LABEL_JOB: job_spec.name, c.LABEL_ROLE: "worker"}),
        Pod("prometheus", "monitoring", {"app": "prometheus"}),
    ]


HCCL_PORTS = set(range(60000, 60016))


def test_hccl_port_range_is_cann_default():
    """HCCL_IF_BASE_PORT unset: ports 60000-60015 (CANN envvar reference, netpolicy's docstring)."""
    assert (netpolicy.HCCL_HOST_PORT_BASE, netpolicy.HCCL_HOST_PORT_COUNT) == (60000, 16)


def test_ranktable_gang_reaches_each_other_on_exactly_the_hccl_ports():
    j = parse(ascend_job(replicas=3))
    policies = [netpolicy.network_policy(j)]
    pods = gang(j)
    assert len(pods) == 3
    for src in pods:
        for dst in pods:
            assert admitted_ports(policies, src, dst) == HCCL_PORTS, (src.name, dst.name)


def test_dynamic_gang_reaches_the_scheduler_port_and_each_other():
    j = parse(job(replicas=2))
    assert j.launch == "dynamic"
    policies = [netpolicy.network_policy(j)]
    pods = gang(j)
    sched = next(p for p in pods if p.labels[c.LABEL_ROLE] == c.ROLE_SCHEDULER)
    for worker in pods:
        assert allowed(policies, worker, sched, spec.DEFAULT_SCHED_PORT)
        for peer in pods:  # collectives bind OS-chosen ports between workers
            assert allowed(policies, worker, peer, 40123) and allowed(policies, worker, peer, 60001)


@pytest.mark.parametrize("body", [ascend_job(replicas=2), job(replicas=2)], ids=["ranktable", "dynamic"])
def test_nobody_else_reaches_any_port_of_the_gang(body):
    j = parse(body)
    policies = [netpolicy.network_policy(j)]
    for stranger in strangers(j):
        for dst in gang(j):
            assert not admitted_ports(policies, stranger, dst), (stranger, dst.name)


@pytest.mark.parametrize("body", [ascend_job(replicas=2), job(replicas=2)], ids=["ranktable", "dynamic"])
@pytest.mark.parametrize("restrict_egress", [False, True])
def test_the_gang_fault_channel_is_udp_between_the_gang_only(body, restrict_egress):
    """zoo-launch's fault channel (issue 23): every pod of the gang reaches every other on the UDP port, a
    stranger reaches none, and no other UDP port is open."""
    j = parse(body)
    policies = [netpolicy.network_policy(j, restrict_egress=restrict_egress)]
    port = contract.GANG_CHANNEL_PORT
    for src in gang(j):
        for dst in gang(j):
            assert allowed(policies, src, dst, port, "UDP"), (src.name, dst.name)
            assert not allowed(policies, src, dst, port + 1, "UDP"), (src.name, dst.name)
    for stranger in strangers(j):
        for dst in gang(j):
            assert not allowed(policies, stranger, dst, port, "UDP"), (stranger, dst.name)


def test_policy_selects_every_rendered_pod_and_no_other():
    j = parse(job(replicas=3))
    policy = netpolicy.network_policy(j)
    assert all(selects(policy["spec"]["podSelector"], p.labels) for p in gang(j))
    assert not any(
        selects(policy["spec"]["podSelector"], p.labels) for p in strangers(j) if p.namespace == j.namespace
    )
    assert policy["metadata"]["namespace"] == j.namespace


def test_egress_is_open_unless_restricted():
    j = parse(job(replicas=2))
    worker = gang(j)[1]
    outside = Pod("s3-gateway", "storage", {"app": "minio"})
    open_ = [netpolicy.network_policy(j)]
    assert allowed(open_, worker, outside, 9000)
    closed = [netpolicy.network_policy(j, restrict_egress=True)]
    assert not allowed(closed, worker, outside, 9000)
    dns = Pod("coredns-1", "kube-system", {"k8s-app": "kube-dns"})
    assert allowed(closed, worker, dns, 53, "UDP") and allowed(closed, worker, dns, 53, "TCP")
    assert not allowed(closed, worker, dns, 8080)
    sched = gang(j)[0]
    assert allowed(closed, worker, sched, spec.DEFAULT_SCHED_PORT)


def test_two_jobs_do_not_reach_each_other():
    a, b = parse(job("a", replicas=2)), parse(job("a-b", replicas=2))
    policies = [netpolicy.network_policy(a), netpolicy.network_policy(b)]
    for src in gang(a):
        for dst in gang(b):
            assert not admitted_ports(policies, src, dst)
            assert not admitted_ports(policies, dst, src)


def test_policy_is_owned_by_the_job_like_its_other_objects():
    j = parse(job())
    policy = netpolicy.network_policy(j)
    assert policy["metadata"]["ownerReferences"] == [render.owner_reference(j)]
    assert policy["metadata"]["labels"] == render.labels(j)
    assert policy["metadata"]["name"] == j.name and policy["kind"] == "NetworkPolicy"


# The chart's policy for the operator pod: metrics only from the monitoring namespace, probes from anywhere.
def operator_pod(objects: list[dict[str, Any]]) -> Pod:
    tmpl = one(objects, "Deployment")["spec"]["template"]
    return Pod("zoo-operator-abc", "zoo-system", dict(tmpl["metadata"]["labels"]))


def test_chart_policy_admits_metrics_only_from_the_monitoring_namespace():
    objects = template(
        {
            "metrics.enabled": "true",
            "metrics.port": "9191",
            "networkPolicy.monitoringNamespace": "observability",
        }
    )
    policies = [one(objects, "NetworkPolicy")]
    op = operator_pod(objects)
    prom = Pod("prometheus-0", "observability", {"app": "prometheus"})
    user = Pod("notebook", "team-a", {"app": "prometheus"})
    assert allowed(policies, prom, op, 9191)
    assert not allowed(policies, user, op, 9191)
    assert allowed(policies, user, op, 8080)  # /healthz: the kubelet's probes
    assert admitted_ports(policies, prom, op) == {8080, 9191}
    assert admitted_ports(policies, user, op) == {8080}


def test_chart_policy_and_job_policies_follow_the_value():
    assert not [o for o in template({"networkPolicy.enabled": "false"}) if o["kind"] == "NetworkPolicy"]
    assert len(one(template(), "NetworkPolicy")["spec"]["ingress"]) == 1  # metrics off: the probes only
    assert env_of(template({"networkPolicy.enabled": "false"}))["ZOO_NETWORK_POLICY"] == "false"
    rules = one(template({"networkPolicy.enabled": "false"}), "ClusterRole", "zoo-operator")["rules"]
    assert not [r for r in rules if "networkpolicies" in r["resources"]]


def test_settings_read_the_chart_values() -> None:
    from zoo_operator import settings

    assert settings.from_env({}).network_policy and not settings.from_env({}).network_policy_restrict_egress
    cfg = settings.from_env({"ZOO_NETWORK_POLICY": "false", "ZOO_NETWORK_POLICY_RESTRICT_EGRESS": "true"})
    assert not cfg.network_policy and cfg.network_policy_restrict_egress
    with pytest.raises(ValueError, match="ZOO_NETWORK_POLICY"):
        settings.from_env({"ZOO_NETWORK_POLICY": "maybe"})
    env = env_of(template({"networkPolicy.restrictEgress": "true"}))
    assert settings.from_env(
        {k: v for k, v in env.items() if not v.startswith("fieldRef:")}
    ).network_policy_restrict_egress
