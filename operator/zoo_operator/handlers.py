"""kopf handlers: thin shims around `runner` (loaded by `zoo-operator run` or `kopf run -m zoo_operator.handlers`).

- an index of the operator's pods by (namespace, job name), so a pass never lists pods, and an index of the
  jobs' Services and ConfigMaps, so a missing one is recreated;
- a watch of ZooTrainingJobs that keeps the runner's view of every job current and enqueues the job; every
  event of one of the operator's pods, Services or ConfigMaps enqueues its job (kopf's initial listing
  enqueues every job, so a restarted operator rebuilds everything from the cluster);
- the runner's work queue, started with the operator and stopped with it, and the watches of node health
  (nodewatch.py, issue 25) beside it.
No handler needs a finalizer, so jobs stay deletable when the operator is gone.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import kopf

from zoo_operator import conditions as c
from zoo_operator import kube, leader, metrics, nodewatch, podview, runner, schema
from zoo_operator import settings as settings_mod

SETTINGS = settings_mod.from_env()


@kopf.on.startup()
async def start(
    settings: kopf.OperatorSettings,
    memo: kopf.Memo,
    zoo_pods: kopf.Index,
    zoo_services: kopf.Index,
    zoo_config_maps: kopf.Index,
    **_: Any,
) -> None:
    """Configure kopf, start /metrics and the reconcile loop."""
    # kopf's per-object log lines are not turned into Events; the reconciler posts its own for every transition.
    settings.posting.level = logging.WARNING
    # kopf logs "Handler ... succeeded" for every event of every pod (index and enqueue): thousands of lines
    # per big job that say nothing. Warnings and errors of handlers still show.
    logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    if SETTINGS.metrics_port:
        memo["metrics_runner"] = await metrics.serve(SETTINGS.metrics_port, host=SETTINGS.listen_host)

    def lookup(namespace: str, name: str) -> list[podview.PodView]:
        return list(zoo_pods.get((namespace, name), []))

    def objects(namespace: str, name: str) -> set[tuple[str, str, str]]:
        key = (namespace, name)
        return {("Service", n, owner) for n, owner in zoo_services.get(key, [])} | {
            ("ConfigMap", n, owner) for n, owner in zoo_config_maps.get(key, [])
        }

    memo["runner"] = job_runner = runner.Runner(SETTINGS, lookup, objects)
    election = leader.from_env()
    # Every replica watches (its indexes stay warm); only the holder of the Lease runs passes.
    work = leader.Elector(election, job_runner.lead).run() if election else job_runner.run_forever()
    memo["loop"] = asyncio.get_running_loop().create_task(work)
    # Issue 25: node health for every pass from two shared watches, open only while running jobs ask for them.
    memo["node_watch"] = asyncio.get_running_loop().create_task(nodewatch.run())


@kopf.on.cleanup()
async def stop(memo: kopf.Memo, **_: Any) -> None:
    """Stop the loop and /metrics, close the API client's HTTP session."""
    for key in ("loop", "node_watch"):
        task = memo.get(key)
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    metrics_runner = memo.get("metrics_runner")
    if metrics_runner is not None:
        await metrics_runner.cleanup()
    await kube.close()


@kopf.index("pods", labels={c.LABEL_MANAGED_BY: c.MANAGED_BY, c.LABEL_JOB: kopf.PRESENT})
def zoo_pods(body: kopf.Body, namespace: str, labels: kopf.Labels, **_: Any) -> dict[tuple[str, str], Any]:
    """(namespace, job name) -> PodView of each of the operator's pods."""
    return {(namespace, labels[c.LABEL_JOB]): podview.view(body)}


_OURS = {c.LABEL_MANAGED_BY: c.MANAGED_BY, c.LABEL_JOB: kopf.PRESENT}


def _controller_uid(body: kopf.Body) -> str:
    """The UID of an object's controller ownerReference, "" when none (labels alone prove nothing, issue 24)."""
    refs = body.get("metadata", {}).get("ownerReferences") or []
    return next((str(r.get("uid") or "") for r in refs if r.get("controller")), "")


@kopf.index("services", labels=_OURS)
def zoo_services(
    body: kopf.Body, name: str, namespace: str, labels: kopf.Labels, **_: Any
) -> dict[tuple[str, str], Any]:
    """(namespace, job name) -> (name, controller UID) of each Service labelled as a job's."""
    return {(namespace, labels[c.LABEL_JOB]): (name, _controller_uid(body))}


@kopf.index("configmaps", labels=_OURS)
def zoo_config_maps(
    body: kopf.Body, name: str, namespace: str, labels: kopf.Labels, **_: Any
) -> dict[tuple[str, str], Any]:
    """(namespace, job name) -> (name, controller UID) of each ConfigMap labelled as a job's."""
    return {(namespace, labels[c.LABEL_JOB]): (name, _controller_uid(body))}


@kopf.on.event("pods", labels=_OURS)
@kopf.on.event("services", labels=_OURS)
@kopf.on.event("configmaps", labels=_OURS)
async def object_event(namespace: str, labels: kopf.Labels, memo: kopf.Memo, **_: Any) -> None:
    """One of a job's pods, Services or ConfigMaps changed (or went): enqueue the job.

    Async on purpose (issue 25), like job_event: kopf runs a sync handler in its thread pool
    (kopf/_core/actions/invocation.py), and the work queue's asyncio.Event set from another thread does not
    wake the loop, so under load the last events' passes never ran (tables stayed initializing)."""
    job_runner: runner.Runner | None = memo.get("runner")
    if job_runner is not None and namespace:
        job_runner.touch(namespace, str(labels.get(c.LABEL_JOB)))


@kopf.on.event(schema.GROUP, schema.VERSION, schema.PLURAL)
async def job_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    """Keep the runner's copy of each job current and enqueue it (on the event loop: see object_event)."""
    job_runner: runner.Runner | None = memo.get("runner")
    obj = event.get("object") or {}
    if job_runner is None or not isinstance(obj, dict):
        return
    if event.get("type") == "DELETED":
        meta = obj.get("metadata") or {}
        job_runner.forget(runner.job_key(str(meta.get("namespace")), str(meta.get("name"))))
    else:
        job_runner.observe(obj)
