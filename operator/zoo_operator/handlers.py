"""kopf handlers: thin shims that hand the work to `reconcile` (loaded by `zoo-operator run` or `kopf run`).

- an index of the operator's pods by (namespace, job name), so a pass never lists pods;
- a timer per ZooTrainingJob that runs one reconcile pass.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import kopf

from zoo_operator import conditions as c
from zoo_operator import kube, metrics, podview, reconcile, schema
from zoo_operator import settings as settings_mod

TICK_SECONDS = 2.0
SETTINGS = settings_mod.from_env()


@kopf.on.startup()
async def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    """Keep kopf's bookkeeping in annotations (our status schema has no place for it); start /metrics."""
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="modelzoo.io")
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix="modelzoo.io")
    # Per-object log lines are not turned into Events (a 2 s timer would flood them); the reconciler posts its
    # own Events for every transition. Timer successes are not logged either, for the same reason.
    settings.posting.level = logging.WARNING
    logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    if SETTINGS.metrics_port:
        memo["metrics_runner"] = await metrics.serve(SETTINGS.metrics_port)


@kopf.on.cleanup()
async def shutdown(memo: kopf.Memo, **_: Any) -> None:
    """Stop /metrics and close the API client's HTTP session."""
    runner = memo.get("metrics_runner")
    if runner is not None:
        await runner.cleanup()
    await kube.close()


@kopf.index("pods", labels={c.LABEL_MANAGED_BY: c.MANAGED_BY, c.LABEL_JOB: kopf.PRESENT})
def zoo_pods(body: kopf.Body, namespace: str, labels: kopf.Labels, **_: Any) -> dict[tuple[str, str], Any]:
    """(namespace, job name) -> PodView of each of the operator's pods."""
    return {(namespace, labels[c.LABEL_JOB]): podview.view(body)}


@kopf.timer(schema.GROUP, schema.VERSION, schema.PLURAL, interval=TICK_SECONDS)
async def tick(body: kopf.Body, memo: kopf.Memo, zoo_pods: kopf.Index, namespace: str, name: str,
               uid: str, **_: Any) -> None:
    """One reconcile pass of one job."""
    mem = memo.get("zoo")
    if mem is None:
        mem = memo["zoo"] = reconcile.JobMemory()
    # Only pods this job controls: a pod with our labels but another owner is never touched.
    pods = [p for p in zoo_pods.get((namespace, name), []) if p.owner_uid == uid]

    def emit(kind: str, reason: str, message: str) -> None:
        kopf.event(body, type=kind, reason=reason, message=message[:1000])

    await reconcile.reconcile(body, pods, SETTINGS, mem, time.time(), emit)
