"""The process kubelet: registers the configured nodes and runs the pods bound to them as local processes.

Run by the cluster (`python -m zoocluster kubelet`); state lives under the cluster's state directory.
Probes are not run: a container counts as ready as soon as it runs.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from pathlib import Path
from typing import Any

from zoocluster import apiproxy, devices, faults, images, logserver, nodes, propagation
from zoocluster.config import REPO, ClusterConfig
from zoocluster.informer import Informer
from zoocluster.kubeapi import ApiError, Client, Credentials
from zoocluster.podworker import NodeInfo, PodWorker
from zoocluster.runtime import ContainerProcess

log = logging.getLogger(__name__)
HEARTBEAT_SECONDS = 10.0


class Kubelet:
    """Nodes, pod workers, informers and the log server of one local cluster."""

    def __init__(self, cfg: ClusterConfig) -> None:
        self.cfg = cfg
        pki = cfg.pki
        creds = Credentials(
            "127.0.0.1",
            cfg.apiserver_port,
            str(pki / "ca.crt"),
            str(pki / "admin.crt"),
            str(pki / "admin.key"),
        )
        self.client = Client(creds)
        self.state_dir = cfg.state_dir / "kubelet"
        self.images = images.load_images(cfg.images_file, REPO)
        self.api_host, self.api_port = "127.0.0.1", cfg.apiserver_port
        self.api_proxy_ip: str | None = f"{cfg.pod_prefix}.255.254"
        self.node_specs = nodes.load_nodes(cfg.nodes_file.read_text())
        self.nodes: dict[str, NodeInfo] = {}
        for i, spec in enumerate(self.node_specs, start=1):
            count = int(spec.capacity.get(devices.ASCEND_RESOURCE, "0"))
            allocator = devices.DeviceAllocator(count) if count else None
            plugin = devices.plugin_config(spec.device_plugin) if count else None
            timing = propagation.parse(spec.config_map_sync, ascend=bool(count))
            self.nodes[spec.name] = NodeInfo(
                spec.name, nodes.node_ip(cfg.node_subnet, i), i, allocator, plugin, timing, spec.dra
            )
        self.ips = nodes.IpPool(cfg.pod_prefix)
        self.workers: dict[str, PodWorker] = {}
        self._changed = threading.Event()
        self._stop = threading.Event()
        self.pods = Informer(self.client, "/api/v1/pods", self._changed.set)
        self.svcs = Informer(self.client, "/api/v1/services", self._changed.set)
        self.cms = Informer(self.client, "/api/v1/configmaps", self._changed.set)
        self.secrets = Informer(self.client, "/api/v1/secrets", self._changed.set)
        # Issue 23 (faults.py): injected NPU and node faults, re-read from the file when it changes.
        self.faults = faults.Faults()
        self._faults_seen: float | None = None

    # ---- the context pod workers use ----
    def node(self, name: str) -> NodeInfo:
        """A node of this kubelet."""
        return self.nodes[name]

    def configmap(self, ns: str, name: str) -> dict[str, Any] | None:
        """A config map from the cache."""
        return self.cms.get(ns, name)

    def secret(self, ns: str, name: str) -> dict[str, Any] | None:
        """A secret from the cache."""
        return self.secrets.get(ns, name)

    def cluster_pods(self) -> list[dict[str, Any]]:
        """Every pod of the cluster, with the IPs this kubelet gave them (status may lag behind)."""
        out = []
        for pod in self.pods.items():
            ip = self.ips.held.get(pod["metadata"]["uid"])
            if ip and not (pod.get("status") or {}).get("podIP"):
                pod = {**pod, "status": {**(pod.get("status") or {}), "podIP": ip}}
            out.append(pod)
        return out

    def services(self) -> list[dict[str, Any]]:
        """Every Service of the cluster."""
        return self.svcs.items()

    # ---- main loop ----
    def run(self) -> None:
        """Register nodes, serve the log API, and reconcile pods until SIGTERM."""
        signal.signal(signal.SIGTERM, lambda *_: self._stop.set())
        signal.signal(signal.SIGINT, lambda *_: self._stop.set())
        self.state_dir.mkdir(parents=True, exist_ok=True)
        for spec in self.node_specs:
            nodes.register(self.client, spec, self.nodes[spec.name].ip, self.cfg.kubelet_port)
        self._publish_dra()
        self._apply_faults(force=True)
        pki = self.cfg.pki
        logserver.serve(
            self.cfg.kubelet_port,
            str(pki / "kubelet.crt"),
            str(pki / "kubelet.key"),
            str(pki / "ca.crt"),
            self.find_log,
        )
        try:
            apiproxy.Forwarder((self.api_proxy_ip or "", 443), (self.api_host, self.api_port)).start()
        except OSError as exc:  # pods still have KUBERNETES_SERVICE_HOST/PORT
            log.warning("no API proxy for kubernetes.default.svc:443: %s", exc)
            self.api_proxy_ip = None
        for inf in (self.cms, self.secrets, self.svcs, self.pods):
            inf.start()
        for inf in (self.cms, self.secrets, self.svcs, self.pods):
            inf.synced.wait(30)
        log.info("kubelet running nodes %s", ", ".join(self.nodes))
        threading.Thread(target=self._heartbeats, name="heartbeat", daemon=True).start()
        while not self._stop.is_set():
            self._changed.wait(1.0)
            self._changed.clear()
            self._apply_faults()
            self._reconcile()
        self.shutdown()

    def _publish_dra(self) -> None:
        """The DeviceClass and one ResourceSlice per DRA node (devices.resource_slice), replacing stale ones: what
        MindCluster's Ascend DRA driver publishes on each node it runs on."""
        dra = [spec for spec in self.node_specs if spec.dra]
        if not dra:
            return
        objs = [devices.device_class()]
        for spec in dra:
            chip = spec.labels.get("node.kubernetes.io/npu.chip.name", "")
            count = int(spec.capacity.get(devices.ASCEND_RESOURCE, "0"))
            objs.append(devices.resource_slice(spec.name, count, f"Ascend{chip}" if chip else ""))
        for obj in objs:
            plural = "deviceclasses" if obj["kind"] == "DeviceClass" else "resourceslices"
            path = f"{devices.RESOURCE_API}/{plural}"
            try:
                self.client.delete(f"{path}/{obj['metadata']['name']}")
            except ApiError as exc:
                if exc.status != 404:
                    raise
            self.client.create(path, obj)
        log.info(
            "published DeviceClass %s and ResourceSlices of %s",
            devices.DRA_DEVICE_CLASS,
            ", ".join(s.name for s in dra),
        )

    def _apply_faults(self, force: bool = False) -> None:
        """Read the faults file when it changed: mark NPUs unhealthy (allocator, allocatable, the device-info
        ConfigMap) and lose the pods of nodes that went down."""
        path = faults.path_in(self.state_dir)
        try:
            stamp: float | None = path.stat().st_mtime_ns
        except FileNotFoundError:
            stamp = None
        if stamp == self._faults_seen and not force:
            return
        self._faults_seen = stamp
        try:
            new = faults.load(path)
        except (ValueError, TypeError, AttributeError) as exc:
            log.warning("faults file %s unreadable, ignored: %s", path, exc)
            return
        old, self.faults = self.faults, new
        for spec in self.node_specs:
            info = self.nodes[spec.name]
            if info.allocator is None or spec.dra:
                continue
            ids = new.unhealthy.get(spec.name, ())
            if not force and ids == old.unhealthy.get(spec.name, ()):
                continue
            info.allocator.unhealthy = frozenset(ids)
            self._write_device_info(spec.name, info.allocator.count, ids)
            if spec.name not in new.down:
                self._beat(spec)
        for name in sorted(new.down - old.down):
            log.info("node %s lost: no more heartbeats, its pods' processes killed", name)
        for name in sorted(old.down - new.down):
            log.info("node %s back", name)
            spec = next(s for s in self.node_specs if s.name == name)
            self._beat(spec)

    def _write_device_info(self, node: str, count: int, unhealthy: tuple[int, ...]) -> None:
        cm = faults.device_info_config_map(node, count, unhealthy)
        path = f"/api/v1/namespaces/{faults.DEVICE_INFO_NAMESPACE}/configmaps"
        try:
            try:
                self.client.create(path, cm)
            except ApiError as exc:
                if exc.status != 409:
                    raise
                self.client.merge_patch(f"{path}/{cm['metadata']['name']}", {"data": cm["data"]})
        except (ApiError, OSError) as exc:
            log.warning("device info of %s: %s", node, exc)

    def _beat(self, spec: nodes.NodeSpec) -> None:
        unhealthy = len(self.faults.unhealthy.get(spec.name, ()))
        try:
            nodes.heartbeat(self.client, spec, self.nodes[spec.name].ip, self.cfg.kubelet_port, unhealthy)
        except (ApiError, OSError, ValueError) as exc:  # keep beating; the API server may be restarting
            log.warning("heartbeat %s: %s", spec.name, exc)

    def _reconcile(self) -> None:
        seen = set()
        for pod in self.pods.items():
            uid, node = pod["metadata"]["uid"], pod["spec"].get("nodeName")
            if node not in self.nodes:
                continue
            if node in self.faults.down:  # a lost node runs nothing and reports nothing (faults.py)
                worker = self.workers.pop(uid, None)
                if worker is not None:
                    worker.lose()
                    self.ips.release(uid)
                continue
            seen.add(uid)
            worker = self.workers.get(uid)
            if worker is None:
                phase = (pod.get("status") or {}).get("phase")
                if phase in ("Succeeded", "Failed") and not pod["metadata"].get("deletionTimestamp"):
                    continue  # finished before this kubelet started: nothing to run
                worker = PodWorker(self, pod, self.ips.allocate(uid))
                self.workers[uid] = worker
                worker.start()
            else:
                worker.update(pod)
        for uid, worker in list(self.workers.items()):
            if uid not in seen:
                worker.forget()
            elif worker.is_alive():
                worker._wake.set()  # let it refresh hosts and volumes after a change
            if not worker.is_alive():
                del self.workers[uid]
                self.ips.release(uid)

    def _heartbeats(self) -> None:
        while not self._stop.is_set():
            self._stop.wait(HEARTBEAT_SECONDS)
            for spec in self.node_specs:
                if spec.name in self.faults.down:
                    continue  # a lost node renews no Lease: the node-lifecycle controller marks it Unknown
                self._beat(spec)

    def find_log(
        self, ns: str, pod: str, container: str, previous: bool
    ) -> tuple[Path, ContainerProcess | None] | str:
        """The log of a container for the log server, or why there is none."""
        for worker in list(self.workers.values()):
            meta = worker.pod["metadata"]
            if meta["namespace"] == ns and meta["name"] == pod:
                found = worker.container_log(container, previous)
                if found is None:
                    what = "previous terminated container" if previous else "container"
                    return f'{what} "{container}" in pod "{pod}" is waiting to start or not found'
                return found
        return f'pod "{ns}/{pod}" is not running on this kubelet'

    def shutdown(self) -> None:
        """Stop every container (the kubelet's children never outlive it)."""
        log.info("kubelet stopping %d pods", len(self.workers))
        for worker in list(self.workers.values()):
            worker.forget()
        deadline = time.monotonic() + 10
        for worker in list(self.workers.values()):
            worker.join(max(0.1, deadline - time.monotonic()))
