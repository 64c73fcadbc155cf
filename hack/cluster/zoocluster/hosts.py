"""Renders a pod's /etc/hosts: the cluster's name resolution without a DNS server.

Names follow Kubernetes DNS: a pod with hostname+subdomain is `<hostname>.<subdomain>.<ns>.svc.cluster.local`;
a Service is `<svc>.<ns>.svc.cluster.local`. ClusterIPs are not routable here, so every Service name (headless
or not) resolves to the IPs of its selected live pods; for a non-headless Service that only works when its
port equals the target port.
"""

from __future__ import annotations

from typing import Any

CLUSTER_DOMAIN = "cluster.local"


def pod_hostname(pod: dict[str, Any]) -> str:
    """The pod's hostname: spec.hostname, else its name (cut to 63 characters as Kubernetes does)."""
    return (pod["spec"].get("hostname") or pod["metadata"]["name"])[:63]


def _live_ip(pod: dict[str, Any]) -> str | None:
    """The pod's IP while it can answer: assigned and not finished or being deleted."""
    status = pod.get("status") or {}
    if status.get("phase") in ("Succeeded", "Failed") or pod["metadata"].get("deletionTimestamp"):
        return None
    return status.get("podIP") or None


def selects(selector: dict[str, str] | None, labels: dict[str, str] | None) -> bool:
    """Whether a Service's equality selector matches a pod's labels (an empty selector selects nothing)."""
    if not selector:
        return False
    labels = labels or {}
    return all(labels.get(k) == v for k, v in selector.items())


def _names(base: list[str], ns: str, own_ns: str) -> list[str]:
    """The fully qualified and shorter forms of `base` within namespace ns (short forms only in own_ns)."""
    joined = ".".join(base)
    names = [f"{joined}.{ns}.svc.{CLUSTER_DOMAIN}", f"{joined}.{ns}.svc", f"{joined}.{ns}"]
    if ns == own_ns:
        names.append(joined)
    return names


API_NAMES = [
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    f"kubernetes.default.svc.{CLUSTER_DOMAIN}",
]


def render_hosts(
    pod: dict[str, Any],
    pod_ip: str,
    pods: list[dict[str, Any]],
    services: list[dict[str, Any]],
    api_ip: str | None = None,
) -> str:
    """The /etc/hosts text for `pod` (whose IP is pod_ip), given every pod and Service of the cluster;
    api_ip (the API proxy, see apiproxy.py) answers for kubernetes.default.svc."""
    own_ns = pod["metadata"]["namespace"]
    lines = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback"]
    if api_ip:
        lines.append(f"{api_ip}\t{' '.join(API_NAMES)}")
    own = [pod_hostname(pod)]
    if pod["spec"].get("subdomain"):
        own = _names([pod_hostname(pod), pod["spec"]["subdomain"]], own_ns, own_ns) + own
    lines.append(f"{pod_ip}\t{' '.join(own)}")
    entries: list[tuple[str, str]] = []
    for other in pods:
        ip = _live_ip(other)
        sub = other["spec"].get("subdomain")
        if ip and sub and other["metadata"]["uid"] != pod["metadata"]["uid"]:
            for name in _names([pod_hostname(other), sub], other["metadata"]["namespace"], own_ns):
                entries.append((ip, name))
    for svc in services:
        ns = svc["metadata"]["namespace"]
        selector = svc.get("spec", {}).get("selector")
        for other in pods:
            ip = _live_ip(other)
            if (
                ip
                and other["metadata"]["namespace"] == ns
                and selects(selector, other["metadata"].get("labels"))
            ):
                for name in _names([svc["metadata"]["name"]], ns, own_ns):
                    entries.append((ip, name))
    for ip, name in sorted(set(entries), key=lambda e: (e[1], e[0])):
        lines.append(f"{ip}\t{name}")
    return "\n".join(lines) + "\n"
