"""One thread per pod: admit it (image, devices, volumes), run init then main containers, report status,
honour the restart policy, and on deletion stop the processes and remove the pod object."""

from __future__ import annotations

import copy
import logging
import os
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from zoocluster import containers, devices, envvars, hosts, images, propagation
from zoocluster.kubeapi import ApiError, Client
from zoocluster.podstatus import (
    ContainerState,
    backoff_seconds,
    exit_reason,
    now_rfc3339,
    pod_conditions,
    pod_phase,
    restart_wanted,
)
from zoocluster.runtime import ContainerProcess
from zoocluster.volumes import PodVolumes

log = logging.getLogger(__name__)
MESSAGE_LIMIT = 4096


@dataclass
class NodeInfo:
    """One node this kubelet runs: its address, index (1-based) and device plugin, if any."""

    name: str
    ip: str
    index: int
    allocator: devices.DeviceAllocator | None
    plugin: devices.PluginConfig | None = None
    timing: propagation.Propagation = propagation.FAST
    """When updated ConfigMaps/Secrets reach this node's pods (nodes.yaml configMapSync)."""
    dra: bool = False
    """NPUs through DRA (nodes.yaml `dra`): pods get the devices the scheduler allocated in their ResourceClaims."""


class KubeletContext(Protocol):
    """What a pod worker needs from the kubelet."""

    client: Client
    state_dir: Path
    images: dict[str, images.Image]
    api_host: str
    api_port: int
    api_proxy_ip: str | None

    def node(self, name: str) -> NodeInfo:
        """One of the kubelet's nodes."""
        ...

    def configmap(self, ns: str, name: str) -> dict[str, Any] | None:
        """A cached ConfigMap, or None."""
        ...

    def secret(self, ns: str, name: str) -> dict[str, Any] | None:
        """A cached Secret, or None."""
        ...

    def cluster_pods(self) -> list[dict[str, Any]]:
        """Every pod of the cluster."""
        ...

    def services(self) -> list[dict[str, Any]]:
        """Every Service of the cluster."""
        ...


class PodWorker(threading.Thread):
    """Runs one pod bound to one of this kubelet's nodes."""

    def __init__(self, ctx: KubeletContext, pod: dict[str, Any], pod_ip: str) -> None:
        super().__init__(name=f"pod-{pod['metadata']['name']}", daemon=True)
        self.ctx = ctx
        self.pod = pod
        self.uid: str = pod["metadata"]["uid"]
        self.pod_ip = pod_ip
        self.node = ctx.node(pod["spec"]["nodeName"])
        self.dir = ctx.state_dir / "pods" / self.uid
        node_files = (
            devices.node_files(ctx.state_dir / "nodes" / self.node.name) if self.node.allocator else {}
        )
        clock = propagation.VolumeClock(self.node.timing, self.uid, time.monotonic())
        self.volumes = PodVolumes(self.dir, ctx.client, ctx.configmap, ctx.secret, node_files, clock)
        spec = pod["spec"]
        self.init_specs: list[dict[str, Any]] = spec.get("initContainers") or []
        self.main_specs: list[dict[str, Any]] = spec["containers"]
        self.init = [ContainerState(c["name"], c.get("image", "")) for c in self.init_specs]
        self.main = [ContainerState(c["name"], c.get("image", "")) for c in self.main_specs]
        self.procs: dict[str, ContainerProcess] = {}
        self.restart_at: dict[str, float] = {}
        self.device_ids: list[int] = []
        self.annotation: str | None = None  # the device annotation still to write (the plugin's loop lags)
        self.rejected: str | None = None  # why admission failed for good (pod phase Failed)
        self.first_start: float | None = None  # monotonic time the first container started
        self.admitted = False
        self.done = False
        self.forgotten = False
        self.lost = False
        self.start_time = now_rfc3339()
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._published: dict[str, Any] | None = None
        self._last_refresh = 0.0
        self._mount_error = ""

    # ---- called from the kubelet's loop ----
    def update(self, pod: dict[str, Any]) -> None:
        """Hand the worker the latest copy of its pod."""
        with self._lock:
            self.pod = pod
        self._wake.set()

    def forget(self) -> None:
        """The pod object is gone (force-deleted): stop its processes and clean up."""
        self.forgotten = True
        self._wake.set()

    def lose(self) -> None:
        """The node is lost (faults.py): its processes die at once and nothing is reported to the apiserver
        any more, as when a machine loses power; the pod object stays as it was last published."""
        self.lost = True
        self._wake.set()

    def container_log(self, name: str, previous: bool) -> tuple[Path, ContainerProcess | None] | None:
        """The log file of a container's current (or previous) instance and its process, if any."""
        for state in self.init + self.main:
            if state.name == name:
                if not state.ever_started:
                    return None
                count = state.restart_count
                if previous and not (state.state == "waiting" and name in self.restart_at):
                    count -= 1  # in back-off the instance that just ended is the previous one
                if count < 0:
                    return None
                proc = None if previous else self.procs.get(name)
                return self.dir / "logs" / name / f"{count}.log", proc
        return None

    # ---- the worker thread ----
    def run(self) -> None:
        """Drive the pod until it is deleted."""
        try:
            while True:
                with self._lock:
                    pod = self.pod
                if self.lost:
                    self._stop_all(0.0)
                    break
                if self.forgotten:
                    self._stop_all(2.0)
                    break
                if pod["metadata"].get("deletionTimestamp"):
                    self._terminate(pod)
                    break
                if not self.done:
                    self._step(pod)
                self._publish(pod)
                self._wake.wait(0.25)
                self._wake.clear()
        except Exception:  # a bug or an API failure must not take the kubelet down
            log.exception(
                "pod worker %s crashed; stopping its containers (the next sync starts over)", self.name
            )
            self._stop_all(2.0)
        finally:
            self._release()

    def _step(self, pod: dict[str, Any]) -> None:
        if not self.admitted:
            self.admitted = self._admit(pod)
            if not self.admitted:
                return
        self._annotate_devices(pod)
        if time.monotonic() - self._last_refresh > 1.0:
            self._refresh(pod)
        policy = pod["spec"].get("restartPolicy", "Always")
        for spec, state in zip(self.init_specs, self.init, strict=False):
            if state.state == "terminated" and state.exit_code == 0:
                continue
            self._drive(pod, spec, state, policy if policy != "Always" else "OnFailure")
            if state.state == "terminated" and state.exit_code == 0:
                continue  # it has just completed: start the next one now, not a tick later
            for waiting in self.main:
                waiting.reason = "PodInitializing"
            return
        for spec, state in zip(self.main_specs, self.main, strict=False):
            self._drive(pod, spec, state, policy)
        phase = pod_phase(policy, self.init, self.main)
        if phase in ("Succeeded", "Failed") and not any(p.poll() is None for p in self.procs.values()):
            self.done = True
            self._release_devices()

    def _drive(self, pod: dict[str, Any], spec: dict[str, Any], state: ContainerState, policy: str) -> None:
        """Advance one container: start it, notice its exit, restart it after a back-off."""
        name = spec["name"]
        proc = self.procs.get(name)
        if proc is not None and state.state == "running":
            code = proc.poll()
            if code is None:
                return
            proc.finish_logs()
            state.state, state.exit_code = "terminated", code
            state.reason, state.finished_at = exit_reason(code), now_rfc3339()
            state.message = self._termination_message(spec, code, name, state.restart_count)
            if restart_wanted(policy, code):
                state.last_terminated = state.terminated_dict()
                state.state, state.reason, state.message = "waiting", "CrashLoopBackOff", ""
                delay = backoff_seconds(state.restart_count)
                self.restart_at[name] = time.monotonic() + delay
                self._event(pod, "BackOff", f"Back-off {delay:.0f}s restarting container {name}", name, True)
            return
        if state.state == "terminated":
            return
        if name in self.restart_at:
            if time.monotonic() < self.restart_at[name]:
                return
            del self.restart_at[name]
            state.restart_count += 1
        self._start(pod, spec, state)

    def _admit(self, pod: dict[str, Any]) -> bool:
        """Check images, allocate devices, write volumes; report why not in the container states."""
        unknown = [c for c in self.init + self.main if images.resolve(self.ctx.images, c.image) is None]
        if unknown:
            for c in unknown:
                if c.reason != "ErrImagePull":
                    self._event(
                        pod, "Failed", f'Failed to pull image "{c.image}": not in images.yaml', c.name, True
                    )
                c.reason = "ErrImagePull"
                c.message = (
                    f'image "{c.image}" is not known to the local kubelet (see hack/cluster/images.yaml)'
                )
            return False
        if self.node.dra and self.node.allocator is not None and pod["spec"].get("resourceClaims"):
            if not self._claimed(pod):
                return False
            need = 0  # a DRA node advertises no extended resource: nothing below to allocate
        else:
            need = devices.requested_devices(pod)
        plugin = self.node.plugin or devices.PluginConfig()
        refused = devices.refusal(pod, plugin) if need and self.node.allocator is not None else None
        if refused:
            # The kubelet fails a pod whose device allocation fails (UnexpectedAdmissionError), for good.
            self.rejected, self.done = refused, True
            self._event(pod, "UnexpectedAdmissionError", refused, "", True)
            return False
        if need and self.node.allocator is not None and not self._allocate(pod, need):
            return False
        try:
            self.volumes.sync(pod, self.pod_ip, self.node.ip)
        except envvars.ConfigError as exc:
            # As a real kubelet: the containers wait as ContainerCreating with no message, and the reason is a
            # Warning Event FailedMount on the pod (kubernetes pkg/kubelet/events/event.go FailedMountVolume),
            # posted again only when it changes (a real recorder aggregates repeats into a count).
            if str(exc) != self._mount_error:
                self._mount_error = str(exc)
                self._event(pod, "FailedMount", str(exc), warning=True)
            for c in self.init + self.main:
                c.reason, c.message = "ContainerCreating", ""
            return False
        self._mount_error = ""
        # A pod with only hostPath volumes and no service-account token (Pod Security restricted) has no volume
        # that would have made its directory.
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "hosts").touch()
        self._refresh(pod)
        for c in self.init + self.main:
            c.reason, c.message = "ContainerCreating", ""
        return True

    def _allocate(self, pod: dict[str, Any], need: int) -> bool:
        allocator = self.node.allocator
        assert allocator is not None
        existing = devices.ids_from_annotation(
            pod["metadata"].get("annotations", {}).get(devices.ASCEND_ANNOTATION)
        )
        if existing:
            allocator.adopt(self.uid, existing)
            self.device_ids = existing
            return True
        ids = allocator.allocate(self.uid, need)
        if ids is None:
            for c in self.init + self.main:
                c.reason, c.message = (
                    "ContainerCreating",
                    f"waiting for {need} free {devices.ASCEND_RESOURCE}",
                )
            return False
        plugin = self.node.plugin or devices.PluginConfig()
        self.annotation = devices.annotation_value(pod, self.node.ip, self.node.index, ids, plugin.generation)
        self.device_ids = ids
        return True

    def _claimed(self, pod: dict[str, Any]) -> bool:
        """The NPUs the kube-scheduler allocated to the pod's ResourceClaims (DRA), or False while they are not
        known: the resourceclaim controller has not reported the claim yet, or the claim is not allocated and
        reserved for this pod (a real kubelet refuses to prepare a claim not reserved for the pod).

        The container then gets exactly what MindCluster's DRA driver gives it: its CDI spec injects
        /dev/davinci<N> for each allocated NPU (same number as on the host) and the shared device nodes, and sets
        no ASCEND_VISIBLE_DEVICES (component/ascend-common/cdi/spec.go, devnode.go); the driver's RBAC has no
        access to pods (build/ascend-dra-driver.yaml), so no ascend-910-configuration annotation is written
        either. Here the davinci files are the fake device directory (write_device_files, as on plugin nodes) and
        devices.container_env(dra=True) leaves ASCEND_VISIBLE_DEVICES out (docs/contracts.md "NPUs through DRA")."""
        assert self.node.allocator is not None
        meta = pod["metadata"]
        names = devices.claim_names(pod)
        ids: list[int] = []
        waiting = "waiting for the pod's ResourceClaim"
        for name in names or []:
            try:
                claim = self.ctx.client.get(
                    f"{devices.RESOURCE_API}/namespaces/{meta['namespace']}/resourceclaims/{name}"
                )
            except ApiError as exc:
                if exc.status != 404:
                    log.warning("pod %s: resourceclaim %s: %s", self.name, name, exc)
                names = None
                break
            reserved = {r.get("uid") for r in (claim.get("status") or {}).get("reservedFor") or []}
            try:
                got = devices.allocated_ids(claim, self.node.name)
            except ValueError as exc:
                waiting = str(exc)
                got = None
            if got is None or self.uid not in reserved:
                waiting = waiting if got is None else f"ResourceClaim {name} is not reserved for this pod"
                names = None
                break
            ids += got
        if names is None:
            for c in self.init + self.main:
                c.reason, c.message = "ContainerCreating", waiting
            return False
        self.node.allocator.adopt(self.uid, ids)
        self.device_ids = sorted(ids)
        return True

    def _annotate_devices(self, pod: dict[str, Any]) -> None:
        """Write the device annotation once the container has run for the plugin's delay: the real plugin writes
        it from a periodic loop after Allocate, so pods must wait for it (ascend-device-plugin, ~5 s loop)."""
        if self.annotation is None:
            return
        delay = (self.node.plugin or devices.PluginConfig()).annotate_delay
        if self.first_start is None or time.monotonic() - self.first_start < delay:
            return
        meta = pod["metadata"]
        try:
            self.ctx.client.merge_patch(
                f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}",
                {"metadata": {"annotations": {devices.ASCEND_ANNOTATION: self.annotation}}},
            )
        except (ApiError, OSError) as exc:  # the pod is going away, or the apiserver is down: retry next tick
            if isinstance(exc, ApiError) and exc.status == 404:
                self.annotation = None
            log.warning("pod %s: device annotation: %s", self.name, exc)
            return
        self.annotation = None

    def _refresh(self, pod: dict[str, Any]) -> None:
        """Rewrite changed volumes and the hosts file (in place: it is bind-mounted as a single file)."""
        self._last_refresh = time.monotonic()
        try:
            self.volumes.sync(pod, self.pod_ip, self.node.ip)
        except envvars.ConfigError as exc:
            log.warning("pod %s: volume refresh: %s", self.name, exc)
        text = hosts.render_hosts(
            pod, self.pod_ip, self.ctx.cluster_pods(), self.ctx.services(), self.ctx.api_proxy_ip
        ).encode()
        path = self.dir / "hosts"
        if path.read_bytes() != text:
            # Overwrite, then cut to length: a reader never sees an empty file (a rename would break the mount).
            fd = os.open(path, os.O_WRONLY)
            try:
                os.write(fd, text)
                os.ftruncate(fd, len(text))
            finally:
                os.close(fd)

    def _start(self, pod: dict[str, Any], spec: dict[str, Any], state: ContainerState) -> None:
        image = images.resolve(self.ctx.images, state.image)
        assert image is not None
        simulate = (self.node.plugin or devices.PluginConfig()).simulate
        base = containers.base_env(
            image, pod, self.ctx.api_host, self.ctx.api_port, self.device_ids, simulate, self.node.dra
        )
        try:
            env = envvars.container_env(
                pod, spec, base, self.pod_ip, self.node.ip, self.ctx.configmap, self.ctx.secret
            )
            argv = envvars.command_line(spec, image.entrypoint, env)
            if not argv:
                raise envvars.ConfigError("no command specified and the image has no entrypoint")
        except envvars.ConfigError as exc:
            state.state, state.reason, state.message = "waiting", "CreateContainerConfigError", str(exc)
            return
        name = spec["name"]
        message_file = self.dir / "termination" / name
        message_file.parent.mkdir(parents=True, exist_ok=True)
        message_file.write_bytes(b"")
        device_dir = (
            devices.write_device_files(self.dir / "ascend-dev", self.device_ids) if self.device_ids else None
        )
        mounts = containers.mounts(
            pod, spec, self.volumes.host_path, self.dir / "hosts", message_file, image.dirs, device_dir
        )
        proc_spec = {
            "mounts": mounts,
            "hostname": hosts.pod_hostname(pod),
            "workingDir": spec.get("workingDir") or "/",
            "readOnlyRootFilesystem": bool((spec.get("securityContext") or {}).get("readOnlyRootFilesystem")),
            "argv": argv,
            "env": env,
            "createdLog": str(self.ctx.state_dir / "created-paths"),
        }
        proc = ContainerProcess(
            proc_spec,
            self.dir / "specs" / f"{name}.json",
            self.dir / "logs" / name / f"{state.restart_count}.log",
            self.ctx.state_dir / "kubelet-pids",
        )
        (self.dir / "specs").mkdir(parents=True, exist_ok=True)
        proc.start()
        self.procs[name] = proc
        self.first_start = self.first_start or time.monotonic()
        state.state, state.reason, state.message = "running", "", ""
        state.started_at, state.finished_at, state.exit_code = now_rfc3339(), None, None
        state.container_id = f"zoo://{proc.pid}"
        state.ever_started = True
        log.info("pod %s container %s started, pid %d", self.name, name, proc.pid)
        self._event(pod, "Started", f"Started container {name} (pid {proc.pid})", name)

    def _termination_message(self, spec: dict[str, Any], code: int, name: str, instance: int) -> str:
        """The termination message file, or (FallbackToLogsOnError, on failure) the log's tail."""
        text = (self.dir / "termination" / name).read_bytes()[:MESSAGE_LIMIT].decode("utf-8", "replace")
        if text or code == 0 or spec.get("terminationMessagePolicy") != "FallbackToLogsOnError":
            return text
        lines = (self.dir / "logs" / name / f"{instance}.log").read_bytes().splitlines()[-80:]
        tail = b"\n".join(line.split(b" ", 2)[-1] for line in lines)
        return tail[-2048:].decode("utf-8", "replace")

    def _publish(self, pod: dict[str, Any]) -> None:
        """Write the pod status when it changed."""
        policy = pod["spec"].get("restartPolicy", "Always")
        phase = pod_phase(policy, self.init, self.main)
        previous = (self._published or pod.get("status") or {}).get("conditions") or []
        status: dict[str, Any] = {
            "phase": phase,
            "conditions": pod_conditions(previous, phase, self.init, self.main, now_rfc3339()),
            "hostIP": self.node.ip,
            "hostIPs": [{"ip": self.node.ip}],
            "podIP": self.pod_ip,
            "podIPs": [{"ip": self.pod_ip}],
            "startTime": self.start_time,
            "containerStatuses": [c.to_status() for c in self.main],
        }
        if self.init:
            status["initContainerStatuses"] = [c.to_status() for c in self.init]
        if self.rejected:
            status.update(phase="Failed", reason="UnexpectedAdmissionError", message=self.rejected)
        if status == self._published:
            return
        meta = pod["metadata"]
        try:
            self.ctx.client.merge_patch(
                f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}/status", {"status": status}
            )
            self._published = copy.deepcopy(status)
        except (ApiError, OSError) as exc:
            # The apiserver is down or restarting: keep the containers running and retry on the next tick, as
            # the kubelet's status manager does (pkg/kubelet/status/status_manager.go keeps the latest status
            # and syncs it again). Crashing the worker here re-ran a finished container (found by test_chaos).
            if not (isinstance(exc, ApiError) and exc.status == 404):
                log.warning("pod %s: status update: %s", self.name, exc)

    def _stop_all(self, grace: float) -> None:
        """SIGTERM every running container, SIGKILL what is left after grace seconds."""
        running = [(n, p) for n, p in self.procs.items() if p.poll() is None]
        threads = [threading.Thread(target=p.stop, args=(grace,)) for _, p in running]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        states = {c.name: c for c in self.init + self.main}
        for name, proc in running:
            proc.finish_logs()
            state = states[name]
            state.state, state.exit_code = "terminated", proc.poll()
            state.reason, state.finished_at = exit_reason(state.exit_code or 0), now_rfc3339()

    def _terminate(self, pod: dict[str, Any]) -> None:
        """Graceful deletion: stop the containers, report, then delete the object for good."""
        meta = pod["metadata"]
        grace = meta.get("deletionGracePeriodSeconds")
        for name, proc in self.procs.items():
            if proc.poll() is None:
                self._event(pod, "Killing", f"Stopping container {name}", name)
        self._stop_all(float(30 if grace is None else grace))
        self._publish(pod)
        try:
            self.ctx.client.delete(
                f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}",
                {"gracePeriodSeconds": 0, "preconditions": {"uid": self.uid}},
            )
        except ApiError as exc:
            if exc.status not in (404, 409):
                log.warning("pod %s: final delete: %s", self.name, exc)

    def _event(
        self, pod: dict[str, Any], reason: str, message: str, container: str = "", warning: bool = False
    ) -> None:
        """Record an Event on the pod, as a kubelet does (kubectl describe shows them); failures are ignored."""
        meta, now = pod["metadata"], now_rfc3339()
        involved = {"apiVersion": "v1", "kind": "Pod", "namespace": meta["namespace"], "name": meta["name"]}
        involved["uid"] = self.uid
        if container:
            involved["fieldPath"] = f"spec.containers{{{container}}}"
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": f"{meta['name']}.", "namespace": meta["namespace"]},
            "involvedObject": involved,
            "reason": reason,
            "message": message,
            "type": "Warning" if warning else "Normal",
            "source": {"component": "kubelet", "host": self.node.name},
            "reportingComponent": "kubelet",
            "reportingInstance": self.node.name,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        try:
            self.ctx.client.create(f"/api/v1/namespaces/{meta['namespace']}/events", event)
        except (ApiError, OSError) as exc:
            log.warning("pod %s: event %s: %s", self.name, reason, exc)

    def _release_devices(self) -> None:
        if self.node.allocator is not None:
            self.node.allocator.release(self.uid)

    def _release(self) -> None:
        self._release_devices()
        shutil.rmtree(self.dir, ignore_errors=True)
