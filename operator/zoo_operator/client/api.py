"""`ZooClient`: a small synchronous Python client for ZooTrainingJobs.

It is a facade over `zoo_operator.kube` (the one module that talks to the API, kubernetes_asyncio) run in a
private event loop, so it needs no second Kubernetes client library and no kubectl, and works from a plain
script or a notebook cell (the loop lives in its own thread, so a notebook's running loop does not matter).
Jobs are validated here with the operator's own `zoo_operator.spec.parse` before they are sent, so a mistake is
reported naming the field (`spec.replicas: ...`) before anything reaches the cluster.
"""

from __future__ import annotations

import asyncio
import copy
import threading
import time
from collections.abc import Awaitable, Callable, Collection, Iterator, Mapping, Sequence
from typing import Any, TypeVar

from kubernetes_asyncio.client.rest import ApiException

from zoo_operator import conditions as c
from zoo_operator import kube, schema
from zoo_operator.ctl import views
from zoo_operator.settings import Settings
from zoo_operator.spec import InvalidSpec, parse

T = TypeVar("T")
Obj = dict[str, Any]


class ClientError(Exception):
    """A request the cluster refused or could not answer; the message says which job and why."""


def build_job(
    name: str | None = None,
    *,
    model: str | None = None,
    namespace: str = "default",
    body: Mapping[str, Any] | None = None,
    labels: Mapping[str, str] | None = None,
    **spec: Any,
) -> Obj:
    """A ZooTrainingJob object from keyword arguments (spec fields in the CRD's camelCase, e.g.
    `device={"type": "CPU"}`, `replicas=2`, `hyperparameters={"epoch_size": 1}`) or from a whole `body`."""
    job: Obj = copy.deepcopy(dict(body)) if body is not None else {}
    job.setdefault("apiVersion", f"{schema.GROUP}/{schema.VERSION}")
    job.setdefault("kind", schema.KIND)
    meta = job.setdefault("metadata", {})
    if name:
        meta["name"] = name
    meta.setdefault("namespace", namespace)
    if labels:
        meta.setdefault("labels", {}).update(labels)
    target = job.setdefault("spec", {})
    if model is not None:
        target["model"] = model
    target.update(spec)
    return job


def validate(job: Mapping[str, Any], settings: Settings | None = None) -> None:
    """Raise InvalidSpec (a ValueError listing every problem, each naming its field) unless the operator would
    accept `job`. The apiserver's schema and the operator's admission still have the last word."""
    body = copy.deepcopy(dict(job))
    meta = body.setdefault("metadata", {})
    if not meta.get("name"):
        if meta.get("generateName"):
            meta["name"] = f"{meta['generateName']}x"
        else:
            raise InvalidSpec(["metadata.name: required (or metadata.generateName)"])
    meta.setdefault("uid", "client-side")
    parse(body, settings or Settings())


def merged_logs(pods: Sequence[Mapping[str, Any]], read: Callable[[str], str | None]) -> list[views.LogLine]:
    """Every worker pod's log (read with `read(pod_name)`, timestamped) merged in time order by rank, exactly as
    `kubectl ztj logs` prints them."""
    streams = []
    for pod in pods:
        try:
            rank = int((pod.get("metadata") or {}).get("labels", {}).get(c.LABEL_RANK, -1))
        except (TypeError, ValueError):
            rank = -1
        streams.append(views.rank_lines(rank, read(pod["metadata"]["name"]) or ""))
    return views.merge(streams)


class _Loop:
    """An event loop in a daemon thread; `run` submits a coroutine and waits for it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="zoo-client", daemon=True)
        self.thread.start()

    def run(self, coro: Awaitable[T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()  # type: ignore[arg-type]

    def close(self) -> None:
        self.run(kube.close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)


def _explain(err: ApiException, what: str) -> ClientError:
    reason = kube._message(err)
    if err.status == 404:
        return ClientError(f"{what}: not found ({reason}); is the zoo-operator chart installed here?")
    if err.status == 409:
        return ClientError(f"{what}: already exists ({reason})")
    if err.status in (401, 403):
        return ClientError(f"{what}: not allowed ({reason})")
    if err.status == 422:
        return ClientError(f"{what}: rejected by the apiserver: {reason}")
    return ClientError(f"{what}: HTTP {err.status}: {reason}")


class ZooClient:
    """Create, wait for, read, list and delete ZooTrainingJobs.

    >>> zc = ZooClient(namespace="default")
    >>> job = zc.create("try-1", model="glore_res50", device={"type": "CPU"}, dataset={...})
    >>> zc.wait("try-1", timeout=600)["phase"]
    'Succeeded'
    """

    # One client per process: kube.py keeps its HTTP client in module globals, bound to the loop that made it.
    _shared: _Loop | None = None

    def __init__(
        self,
        namespace: str = "default",
        *,
        kubeconfig: str | None = None,
        context: str | None = None,
        settings: Settings | None = None,
    ) -> None:
        self.namespace = namespace
        self.settings = settings or Settings()
        if kubeconfig or context:
            kube.configure(kubeconfig, context)
        if ZooClient._shared is None:
            ZooClient._shared = _Loop()
        self._loop = ZooClient._shared

    def _call(self, coro: Awaitable[T], what: str) -> T:
        try:
            return self._loop.run(coro)
        except ApiException as err:
            raise _explain(err, what) from None
        except (OSError, TimeoutError) as err:
            raise ClientError(f"{what}: cannot reach the apiserver: {err}") from None

    # ---- write -------------------------------------------------------------------------------------------------

    def create(
        self,
        name: str | None = None,
        *,
        model: str | None = None,
        body: Mapping[str, Any] | None = None,
        labels: Mapping[str, str] | None = None,
        **spec: Any,
    ) -> Obj:
        """Validate and create a job (from keyword arguments, or `body` = a whole object / parsed YAML);
        returns it as stored. Raises InvalidSpec naming the field, ClientError when the cluster refuses."""
        job = build_job(name, model=model, namespace=self.namespace, body=body, labels=labels, **spec)
        validate(job, self.settings)
        return self._call(kube.create_job(job), f"create {schema.KIND} {job['metadata'].get('name')}")

    def delete(self, name: str) -> None:
        """Delete a job (its pods go with it); a job that is gone already is fine."""
        self._call(kube.delete_job(self.namespace, name), f"delete {name}")

    def patch(self, name: str, patch: Mapping[str, Any]) -> None:
        """Merge-patch the job's metadata or spec (RFC 7386)."""
        self._call(kube.patch_job(self.namespace, name, dict(patch)), f"patch {name}")

    def suspend(self, name: str, suspend: bool = True) -> None:
        """Set spec.runPolicy.suspend: the operator stops the pods and keeps the job (and its history)."""
        self._call(
            kube.patch_job(self.namespace, name, {"spec": {"runPolicy": {"suspend": suspend}}}),
            f"suspend {name}",
        )

    # ---- read --------------------------------------------------------------------------------------------------

    def get(self, name: str) -> Obj:
        """The job as stored; ClientError if there is none."""
        job = self._call(kube.get_job(self.namespace, name), f"get {name}")
        if job is None:
            raise ClientError(f"{schema.KIND} {self.namespace}/{name} not found")
        return job

    def status(self, name: str) -> Obj:
        """status of the job ({} before the operator first wrote it)."""
        return dict(self.get(name).get("status") or {})

    def phase(self, name: str) -> str | None:
        """status.phase, or None before the operator saw the job."""
        return self.status(name).get("phase")

    def result(self, name: str) -> Obj | None:
        """status.result (best metrics, checkpoint) of a finished job, or None."""
        return self.status(name).get("result")

    def history(self, name: str) -> list[Obj]:
        """status.history: one entry per epoch (epoch, loss, top1, top5)."""
        return list(self.status(name).get("history") or [])

    def list_jobs(self, selector: str | Mapping[str, str] = "") -> list[Obj]:
        """Jobs of this namespace matching a label selector ("a=b,c" or a dict), by name."""
        if isinstance(selector, Mapping):
            selector = ",".join(f"{k}={v}" for k, v in selector.items())
        jobs = self._call(kube.list_jobs(self.namespace, selector), f"list jobs ({selector or 'all'})")
        return sorted(jobs, key=lambda j: j["metadata"]["name"])

    def wait(
        self,
        name: str,
        phases: Collection[str] = c.FINISHED_PHASES,
        *,
        timeout: float = 3600.0,
        interval: float = 2.0,
    ) -> Obj:
        """Poll until status.phase is one of `phases` (default: any finished phase); returns status. Raises
        TimeoutError naming the last phase seen."""
        deadline = time.monotonic() + timeout
        last: str | None = None
        while True:
            status = self.status(name)
            last = status.get("phase")
            if last in phases:
                return status
            if time.monotonic() >= deadline:
                raise TimeoutError(
                    f"{name}: not {'/'.join(phases)} after {timeout:g} s; last phase seen: "
                    f"{last or 'none (has the operator seen the job?)'}"
                )
            time.sleep(interval)

    def pods(self, name: str) -> list[Obj]:
        """The job's live worker pods, by rank."""
        pods = self._call(
            kube.list_pods(self.namespace, f"{c.LABEL_JOB}={name},{c.LABEL_ROLE}={c.ROLE_WORKER}"),
            f"pods of {name}",
        )
        return [p for p in pods if not p["metadata"].get("deletionTimestamp")]

    def logs(self, name: str) -> list[str]:
        """All ranks' log lines merged in time order, each prefixed `[rank N]`, as `kubectl ztj logs` shows."""
        pods = self.pods(name)
        width = len(str(max([0, *(int(p["metadata"]["labels"].get(c.LABEL_RANK, 0)) for p in pods)])))
        lines = merged_logs(pods, lambda pod: self._loop.run(kube.pod_log_timestamped(self.namespace, pod)))
        return [views.format_line(line, width, False) for line in lines]

    def stream_logs(self, name: str, *, interval: float = 3.0) -> Iterator[str]:
        """Merged log lines as they come, until the job finishes (polls; a line is yielded once)."""
        seen = 0
        while True:
            finished = self.phase(name) in c.FINISHED_PHASES
            lines = self.logs(name)
            yield from lines[seen:]
            seen = max(seen, len(lines))
            if finished:
                return
            time.sleep(interval)

    @classmethod
    def close(cls) -> None:
        """Close the HTTP sessions and stop the private loop (optional; a daemon thread ends with the process)."""
        if cls._shared is not None:
            cls._shared.close()
            cls._shared = None
