"""Pods on the process kubelet: environment, volumes, logs, exit status, deletion, image mapping."""

from __future__ import annotations

import json
import os
import subprocess
import time

import pytest
from kubehelpers import CPU_IMAGE, Kube, python_pod, wait_for

pytestmark = pytest.mark.integration

REPORT = """
import json, os, socket, time
sa = "/var/run/secrets/kubernetes.io/serviceaccount"
print(json.dumps({
    "env": {k: os.environ.get(k) for k in ("POD_NAME", "POD_NAMESPACE", "POD_IP", "HOST_IP", "NODE", "GREETING",
                                           "KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT")},
    "hostname": socket.gethostname(), "cwd": os.getcwd(), "pid": os.getpid(),
    "token": os.path.getsize(sa + "/token"), "ca": open(sa + "/ca.crt").read().startswith("-----BEGIN"),
    "sa_namespace": open(sa + "/namespace").read(), "secret": open("/etc/secret/pw").read(),
}), flush=True)
while True:
    print("greeting=" + open("/etc/zoo/cfg/greeting").read(), flush=True)
    time.sleep(0.3)
"""


def field(name: str, path: str) -> dict:
    return {"name": name, "valueFrom": {"fieldRef": {"fieldPath": path}}}


def test_env_volumes_and_configmap_updates_reach_the_running_process(kube: Kube) -> None:
    kube.apply(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"}, "data": {"greeting": "hello"}},
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "sec"}, "stringData": {"pw": "s3cret"}},
        python_pod(
            "reporter",
            REPORT,
            volumes=[
                {"name": "cfg", "configMap": {"name": "cfg"}},
                {"name": "sec", "secret": {"secretName": "sec"}},
                {"name": "scratch", "emptyDir": {}},
            ],
            container={
                "workingDir": "/scratch",
                "env": [
                    field("POD_NAME", "metadata.name"),
                    field("POD_NAMESPACE", "metadata.namespace"),
                    field("POD_IP", "status.podIP"),
                    field("HOST_IP", "status.hostIP"),
                    field("NODE", "spec.nodeName"),
                    {
                        "name": "GREETING",
                        "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "greeting"}},
                    },
                ],
                "volumeMounts": [
                    {"name": "cfg", "mountPath": "/etc/zoo/cfg"},
                    {"name": "sec", "mountPath": "/etc/secret", "readOnly": True},
                    {"name": "scratch", "mountPath": "/scratch"},
                ],
            },
        ),
    )
    wait_for("pod running", lambda: kube.pod_phase("reporter") == "Running")
    line = wait_for("report line", lambda: kube.logs("reporter").split("\n", 1)[0].strip())
    report = json.loads(line)
    pod = kube.get("pod", "reporter")
    env = report["env"]
    assert env["POD_NAME"] == "reporter" and env["POD_NAMESPACE"] == kube.ns
    assert env["POD_IP"] == pod["status"]["podIP"] and env["POD_IP"].startswith("127.")
    assert env["HOST_IP"] == pod["status"]["hostIP"] and env["NODE"] == pod["spec"]["nodeName"]
    assert env["GREETING"] == "hello"
    assert env["KUBERNETES_SERVICE_HOST"] == "127.0.0.1"
    assert report["hostname"] == "reporter" and report["cwd"] == "/scratch"
    assert report["token"] > 100 and report["ca"] and report["sa_namespace"] == kube.ns
    assert report["secret"] == "s3cret"
    assert os.path.exists(f"/proc/{report['pid']}")  # a real local process
    assert kube.logs("reporter", "--tail=1").startswith("greeting=hello")

    changed_at = time.monotonic()
    kube.cluster.kubectl(
        "patch", "configmap", "cfg", "-n", kube.ns, "-p", '{"data": {"greeting": "updated"}}'
    )
    wait_for(
        "updated config map in the pod", lambda: "greeting=updated" in kube.logs("reporter", "--tail=2"), 15
    )
    assert time.monotonic() - changed_at < 15


def test_logs_follow_and_termination_message_and_exit_code(kube: Kube) -> None:
    code = (
        "import sys\n"
        "for i in range(3): print(f'line {i}', flush=True)\n"
        'open(\'/dev/termination-log\', \'w\').write(\'{"status": "failed", "reason": "DatasetMissing"}\')\n'
        "sys.exit(66)\n"
    )
    kube.apply(python_pod("failing", code))
    wait_for("pod failed", lambda: kube.pod_phase("failing") == "Failed")
    # -f returns once the container has ended, with everything it printed.
    assert kube.logs("failing", "-f").splitlines() == ["line 0", "line 1", "line 2"]
    stamped = kube.logs("failing", "--timestamps", "--tail=1")
    assert stamped.split(" ", 1)[1].strip() == "line 2" and stamped[:4].isdigit()
    state = kube.get("pod", "failing")["status"]["containerStatuses"][0]["state"]["terminated"]
    assert state["exitCode"] == 66 and state["reason"] == "Error"
    assert json.loads(state["message"]) == {"status": "failed", "reason": "DatasetMissing"}


def test_restart_on_failure_counts_restarts_and_keeps_previous_log(kube: Kube) -> None:
    code = (
        "import os\n"
        "marker = '/scratch/ran'\n"
        "first = not os.path.exists(marker)\n"
        "open(marker, 'a').write('x')\n"
        "print('first run' if first else 'second run', flush=True)\n"
        "raise SystemExit(1 if first else 0)\n"
    )
    kube.apply(
        python_pod(
            "retry",
            code,
            restart="OnFailure",
            volumes=[{"name": "scratch", "emptyDir": {}}],
            container={"volumeMounts": [{"name": "scratch", "mountPath": "/scratch"}]},
        )
    )
    wait_for("pod succeeded after a restart", lambda: kube.pod_phase("retry") == "Succeeded", 60)
    status = kube.get("pod", "retry")["status"]["containerStatuses"][0]
    assert status["restartCount"] == 1
    assert status["lastState"]["terminated"]["exitCode"] == 1
    assert kube.logs("retry").strip() == "second run"
    assert kube.logs("retry", "--previous").strip() == "first run"


def test_init_containers_run_first_in_order(kube: Kube) -> None:
    def init(name: str) -> dict:
        cmd = f"open('/steps/order', 'a').write('{name} ')"
        mounts = [{"name": "work", "mountPath": "/steps"}]
        return {"name": name, "image": CPU_IMAGE, "command": ["python3", "-c", cmd], "volumeMounts": mounts}

    kube.apply(
        python_pod(
            "ordered",
            "print(open('/steps/order').read().strip(), flush=True)",
            initContainers=[init("one"), init("two")],
            volumes=[{"name": "work", "emptyDir": {}}],
            container={"volumeMounts": [{"name": "work", "mountPath": "/steps"}]},
        )
    )
    # Three containers start one after another (each an unshare, the shim and a Python interpreter): on an
    # idle machine that takes ~2 s, but on a starved one each start can take many seconds, so allow for it.
    wait_for(
        "pod succeeded",
        lambda: kube.pod_phase("ordered") == "Succeeded",
        timeout=180,
        explain=lambda: kube.pod_summary("ordered"),
    )
    assert kube.logs("ordered").strip() == "one two"
    inits = kube.get("pod", "ordered")["status"]["initContainerStatuses"]
    assert [s["state"]["terminated"]["reason"] for s in inits] == ["Completed", "Completed"]


def test_deleting_a_pod_kills_its_process_and_removes_the_object(kube: Kube) -> None:
    kube.apply(python_pod("sleeper", "import os, time\nprint(os.getpid(), flush=True)\ntime.sleep(3600)"))
    pid = int(wait_for("pid in log", lambda: kube.logs("sleeper").strip()))
    assert os.path.exists(f"/proc/{pid}")
    kube.cluster.kubectl("delete", "pod", "sleeper", "-n", kube.ns, "--wait=true", timeout=60)
    assert kube.get("pod", "sleeper") is None
    wait_for("process gone", lambda: not os.path.exists(f"/proc/{pid}"), 10)


def test_unknown_image_fails_the_pull_and_stays_pending(kube: Kube) -> None:
    pod = python_pod("nope", "print(1)")
    pod["spec"]["containers"][0]["image"] = "registry.example/not-mapped:1.0"
    kube.apply(pod)

    def waiting_reason() -> str | None:
        statuses = (kube.get("pod", "nope") or {}).get("status", {}).get("containerStatuses") or []
        return statuses and statuses[0]["state"].get("waiting", {}).get("reason")

    assert wait_for("ErrImagePull", lambda: waiting_reason() == "ErrImagePull" and "ErrImagePull")
    assert kube.pod_phase("nope") == "Pending"
    events = kube.cluster.kubectl(
        "get", "events", "-n", kube.ns, "--field-selector", "involvedObject.name=nope", "-o", "json"
    ).stdout
    assert any(e["reason"] == "Failed" and e["type"] == "Warning" for e in json.loads(events)["items"])


def test_logs_follow_streams_lines_while_the_container_runs(kube: Kube) -> None:
    kube.apply(
        python_pod(
            "ticker",
            "import time\nfor i in range(600):\n    print(f'tick {i}', flush=True)\n    time.sleep(0.2)",
        )
    )
    wait_for("ticker running", lambda: kube.pod_phase("ticker") == "Running")
    cmd = ["kubectl", "logs", "-f", "--tail=1", "-n", kube.ns, "ticker"]
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=kube.cluster.env) as follow:
        assert follow.stdout is not None
        lines = [follow.stdout.readline().strip() for _ in range(15)]
        follow.kill()
    numbers = [int(line.split()[1]) for line in lines]
    # With --tail=1 only the first line existed before; 14 more arrived while following: the stream is live.
    assert numbers == list(range(numbers[0], numbers[0] + 15))
    assert kube.pod_phase("ticker") == "Running"


IN_CLUSTER = """
import json, os, ssl, urllib.request
sa = "/var/run/secrets/kubernetes.io/serviceaccount"
ctx = ssl.create_default_context(cafile=sa + "/ca.crt")
url = "https://%s:%s/apis/authentication.k8s.io/v1/selfsubjectreviews" % (
    os.environ["KUBERNETES_SERVICE_HOST"], os.environ["KUBERNETES_SERVICE_PORT"])
body = json.dumps({"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}).encode()
req = urllib.request.Request(url, data=body, method="POST", headers={
    "Authorization": "Bearer " + open(sa + "/token").read(), "Content-Type": "application/json"})
print(json.load(urllib.request.urlopen(req, context=ctx))["status"]["userInfo"]["username"], flush=True)
"""


def test_in_cluster_client_reaches_the_api_server_with_its_service_account_token(kube: Kube) -> None:
    kube.apply(python_pod("whoami", IN_CLUSTER))
    wait_for("pod done", lambda: kube.pod_phase("whoami") in ("Succeeded", "Failed"))
    assert kube.logs("whoami").strip() == f"system:serviceaccount:{kube.ns}:default"


SHADOW = """
import json, os, sys, zoo_operator
mounts = json.loads(sys.argv[1])
for m in mounts:
    open(os.path.join(m, sys.argv[2]), "w").write(m)
os.makedirs("/tmp/status", exist_ok=True)
open("/tmp/status/message", "w").write("done")
print(json.dumps({"prefix": sys.prefix, "exe": sys.executable, "operator": zoo_operator.__file__,
                  "listing": {m: sorted(os.listdir(m)) for m in mounts}}), flush=True)
"""


def test_volumes_over_a_parent_of_the_repo_do_not_hide_the_image(kube: Kube) -> None:
    # e.g. the operator's emptyDir at /tmp while CI cloned the repo under /tmp: the image must stay visible.
    repo = kube.cluster.repo.resolve()
    targets = sorted({str(repo.parent), "/tmp"} - {"/"})
    marker = f"seen-{kube.ns}"
    volumes = [{"name": f"v{i}", "emptyDir": {}} for i in range(len(targets))]
    vms = [{"name": f"v{i}", "mountPath": t} for i, t in enumerate(targets)]
    kube.apply(
        python_pod(
            "shadowed",
            SHADOW,
            volumes=volumes,
            container={
                "args": [json.dumps(targets), marker],
                "volumeMounts": vms,
                "terminationMessagePath": "/tmp/status/message",  # a kubelet file inside a volume, too
            },
        )
    )
    wait_for("pod done", lambda: kube.pod_phase("shadowed") in ("Succeeded", "Failed"))
    status = kube.get("pod", "shadowed")["status"]["containerStatuses"][0]["state"]["terminated"]
    out = kube.logs("shadowed")
    assert status["exitCode"] == 0, out
    assert status["message"] == "done"
    got = json.loads(out)
    assert (got["prefix"], got["exe"]) == (str(repo / ".venv"), str(repo / ".venv" / "bin" / "python3"))
    assert got["operator"] == str(repo / "operator" / "zoo_operator" / "__init__.py")
    # Each mountPath shows the volume's own contents: what the pod wrote, plus the mount points of deeper
    # mounts (the re-exposed repo directories, the other volume, the termination-message file) - not the host's.
    inside = [str(repo), *targets, "/tmp/status"]
    for t in targets:
        expected = {marker} | {os.path.relpath(p, t).split("/")[0] for p in inside if p.startswith(t + "/")}
        assert set(got["listing"][t]) == expected, t
        assert not os.path.exists(os.path.join(t, marker))  # the writes went to the volume, not the host
