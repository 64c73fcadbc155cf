"""The local kubelet's /etc/hosts rendering: pod hostnames with subdomains and Service names."""

from zoocluster.hosts import render_hosts, selects


def pod(name, ns="t", ip="", phase="Running", labels=None, subdomain=None, hostname=None, uid=None):
    spec = {"subdomain": subdomain} if subdomain else {}
    if hostname:
        spec["hostname"] = hostname
    meta = {"name": name, "namespace": ns, "uid": uid or f"uid-{ns}-{name}", "labels": labels or {}}
    return {"metadata": meta, "spec": spec, "status": {"phase": phase, "podIP": ip}}


def svc(name, ns="t", selector=None):
    return {"metadata": {"name": name, "namespace": ns}, "spec": {"selector": selector, "clusterIP": "None"}}


def lines(text):
    return {tuple(line.split("\t")) for line in text.splitlines()}


def test_own_name_and_subdomain_peers_resolve_in_all_forms():
    me = pod("job-worker-0", ip="127.1.0.1", subdomain="job", labels={"job": "j"})
    peer = pod("job-worker-1", ip="127.1.0.2", subdomain="job", labels={"job": "j"})
    text = render_hosts(me, "127.1.0.1", [me, peer], [svc("job", selector={"job": "j"})])
    got = lines(text)
    own = "job-worker-0.job.t.svc.cluster.local job-worker-0.job.t.svc job-worker-0.job.t job-worker-0.job"
    assert ("127.1.0.1", own + " job-worker-0") in got
    for name in ("job-worker-1.job.t.svc.cluster.local", "job-worker-1.job.t.svc", "job-worker-1.job"):
        assert ("127.1.0.2", name) in got
    # The headless Service resolves to both pods.
    assert {("127.1.0.1", "job"), ("127.1.0.2", "job"), ("127.1.0.2", "job.t.svc.cluster.local")} <= got


def test_other_namespaces_get_no_short_names_and_dead_pods_vanish():
    me = pod("a", ns="one", ip="127.1.0.1")
    other = pod("b", ns="two", ip="127.1.0.3", subdomain="s")
    done = pod("c", ns="one", ip="127.1.0.4", subdomain="s", phase="Succeeded")
    got = lines(render_hosts(me, "127.1.0.1", [me, other, done], []))
    assert ("127.1.0.3", "b.s.two.svc.cluster.local") in got
    assert ("127.1.0.3", "b.s") not in got
    assert not any(ip == "127.1.0.4" for ip, *_ in got)


def test_empty_selector_selects_nothing():
    assert not selects({}, {"a": "b"})
    assert not selects(None, {"a": "b"})
    assert selects({"a": "b"}, {"a": "b", "c": "d"})
    assert not selects({"a": "b"}, {"a": "x"})


def test_api_proxy_answers_for_the_kubernetes_service_names():
    me = pod("a", ip="127.1.0.1")
    got = lines(render_hosts(me, "127.1.0.1", [me], [], api_ip="127.1.255.254"))
    assert (
        "127.1.255.254",
        "kubernetes kubernetes.default kubernetes.default.svc kubernetes.default.svc.cluster.local",
    ) in got
