"""Stage 3 of a pass: carry out a Plan, the only code of the pass that writes (reconcile.py).

Order: Kueue marks and finalizers; the fixed objects the pods wait for (PodGroup, NetworkPolicy: planner.BEFORE_PODS);
then, with pods to delete, the Service and launch ConfigMap, the rank table and status (a restart is counted even
if the operator dies before its pods go), the deletions, then the creations; with none, the Service and launch
ConfigMap (then the rank table, unless the ConfigMap was just created holding it), status and creations go out
together (issue 25: the pods do not wait for the Service or the table). Events follow
the status write. Writes of one kind go out concurrently, at most WRITES_IN_FLIGHT at once.

What the executor learns by writing (the apiserver refused a pod, a PodGroup API is gone, when status was last
written) it records in the job's memory, where the next pass's planner reads it; the plan's own memory update
is applied last, once its writes are done.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any

from zoo_operator import admission, guards, kube, metrics, planner, render
from zoo_operator import conditions as c
from zoo_operator.memory import JobMemory
from zoo_operator.planner import Obj, Plan, earliest

log = logging.getLogger(__name__)
# Pod creations and deletions in flight at once, per pass.
WRITES_IN_FLIGHT = 64

EventSink = Callable[[str, str, str], None]  # (type Normal|Warning, reason, message)


async def bounded(calls: Iterable[Callable[[], Awaitable[Any]]], limit: int = WRITES_IN_FLIGHT) -> None:
    """Run the calls with at most `limit` in flight; all are tried, then the first error is raised."""
    gate = asyncio.Semaphore(limit)

    async def one(make: Callable[[], Awaitable[Any]]) -> None:
        async with gate:
            await make()

    results = await asyncio.gather(*(one(m) for m in calls), return_exceptions=True)
    for res in results:
        if isinstance(res, BaseException):
            raise res


def record_refusal(
    before: admission.Refusal | None, refused: Sequence[kube.Refused], now: float
) -> admission.Refusal | None:
    """The refusal to remember after a round of creations (None when every pod was admitted); a quota that
    keeps refusing keeps the time it first did."""
    if not refused:
        return None
    first = refused[0]
    quota = admission.Refusal(first.name, first.code, first.message, now)
    since = before.since if before is not None and before.quota == quota.quota else now
    return dataclasses.replace(quota, since=since)


async def create_pods(objs: Sequence[Obj], taken: list[tuple[str, str]] | None = None) -> list[kube.Refused]:
    """Create the pods, WRITES_IN_FLIGHT at a time; refusals are returned as data, other errors raised. The
    names the apiserver answers 409 AlreadyExists for go into `taken` (issue 24: whose they are is read next)."""
    refused: list[kube.Refused] = []

    async def one(obj: Obj) -> None:
        try:
            if not await kube.create(obj) and taken is not None:
                taken.append((obj["kind"], obj["metadata"]["name"]))
        except kube.Refused as err:
            refused.append(err)

    await bounded(functools.partial(one, obj) for obj in objs)
    return refused


async def _ensure(
    the_plan: Plan, mem: JobMemory, emit: EventSink, objs: Sequence[Obj] | None = None
) -> list[Obj]:
    """Create the job's fixed objects `objs` (default: all of the plan's; all at once); returns those that did not
    exist (PodGroups aside); a PodGroup API gone since observe is recorded, not raised."""
    created: list[Obj] = []

    async def one(obj: Obj) -> None:
        if obj["kind"] != "PodGroup":
            if await kube.create(obj):
                created.append(obj)
            else:  # issue 24: an object holds the name already; the next pass reads whose it is
                mem.taken |= {(obj["kind"], obj["metadata"]["name"])}
            return
        try:
            if not await kube.create(obj):
                mem.taken |= {(obj["kind"], obj["metadata"]["name"])}
        except kube.MissingAPI as err:
            hint = render.gang_missing_hint(the_plan.job) if the_plan.job is not None else ""
            mem.pod_group_error = f"{err}; {hint}"
            emit("Warning", c.REASON_VOLCANO_MISSING, mem.pod_group_error)

    await bounded(functools.partial(one, obj) for obj in (the_plan.ensure if objs is None else objs))
    return created


def _announce(the_plan: Plan, created: Sequence[Obj], emit: EventSink) -> None:
    """The Event (first creation) or log line (a missing object recreated) for the fixed objects created."""
    if created and the_plan.created_event is not None:
        emit(*the_plan.created_event)
    elif created:
        log.info(
            "recreated a missing Service or launch ConfigMap: %s",
            ", ".join(f"{o['kind']} {o['metadata']['name']}" for o in the_plan.ensure),
        )


async def execute(
    body: Mapping[str, Any], the_plan: Plan, mem: JobMemory, now: float, emit: EventSink
) -> Plan:
    """Carry out a plan (see the module doc); returns it, its `next_due` moved earlier when a refusal met
    now makes the job due again (admission.due)."""
    meta = body.get("metadata") or {}
    job_ns, job_name = str(meta.get("namespace")), str(meta.get("name"))
    job_uid = str(meta.get("uid") or "")  # issue 24: every write by name names exactly this job's objects
    for problem in the_plan.problems:
        log.warning("%s/%s: %s", job_ns, job_name, problem)
    if the_plan.delete_job:
        for event in the_plan.events:
            emit(*event)
        await kube.delete_job(job_ns, job_name, job_uid)
        the_plan.memory.apply(mem)
        return the_plan

    async def put_table() -> None:
        if the_plan.config_map is not None:
            try:
                await kube.put_config_map(the_plan.config_map)
            except kube.NotOwned as err:  # issue 24: taken between observe and now; the next pass reads whose
                log.warning("%s/%s: rank table not written: %s", job_ns, job_name, err)
                mem.taken |= {(err.kind, err.name)}
                return
            mem.rank_table_data = the_plan.config_map["data"]

    announced = asyncio.Event()  # set once the fixed objects' Event (if any) is out

    async def write_status() -> None:
        if the_plan.status_patch is not None and the_plan.status is not None:
            try:
                await kube.patch_job_status(
                    job_ns, job_name, the_plan.status_patch, uid=job_uid, has_status=bool(body.get("status"))
                )
            except kube.NotOwned as err:  # issue 24: a job of the same name replaced it; its own pass writes
                log.warning("%s/%s: status not written: %s", job_ns, job_name, err)
                return
            mem.last_status_write = now
            mem.last_written = dict(the_plan.status)
            metrics.observe_job(
                body, the_plan.previous, the_plan.status
            )  # console: counters, gauges, histograms (issue 12)
            if the_plan.urgent:
                new = the_plan.status
                log.info(
                    "%s/%s: %s %s: %s",
                    job_ns,
                    job_name,
                    new.get("phase"),
                    new.get("reason"),
                    new.get("message"),
                )
        await announced.wait()  # the JobCreated Event comes first
        for event in the_plan.events:
            emit(*event)

    refused: list[kube.Refused] = []

    async def create() -> None:
        if the_plan.create:
            taken: list[tuple[str, str]] = []
            refused.extend(await create_pods(the_plan.create, taken))
            mem.taken |= set(taken)
            mem.refusal = record_refusal(mem.refusal, refused, now)
            if mem.refusal is not None:
                log.warning("%s/%s: %s", job_ns, job_name, admission.quote(mem.refusal))

    if the_plan.unretriable:  # before any delete: Kueue must see the mark on the pods that remain
        await bounded(
            functools.partial(
                kube.annotate_pod,
                job_ns,
                name,
                {c.KUEUE_RETRIABLE_ANNOTATION: "false"},
                the_plan.pod_uids.get(name, ""),
            )
            for name in the_plan.unretriable
        )
    if the_plan.release:
        await bounded(
            functools.partial(
                kube.remove_pod_finalizer, job_ns, name, c.KUEUE_FINALIZER, the_plan.pod_uids.get(name, "")
            )
            for name in the_plan.release
        )
    before = mem.taken
    first, along = planner.ensure_waves(the_plan.ensure)
    made = await _ensure(the_plan, mem, emit, first) if first else []

    async def along_then_table() -> None:
        """The Service and launch ConfigMap, then the table unless the ConfigMap was created holding it."""
        try:
            made.extend(await _ensure(the_plan, mem, emit, along) if along else [])
            _announce(the_plan, made, emit)
        finally:
            announced.set()
        if the_plan.config_map is not None and any(o is the_plan.config_map for o in made):
            mem.rank_table_data = the_plan.config_map["data"]
        else:
            await put_table()

    if the_plan.delete:
        await along_then_table()
        await write_status()
        await bounded(
            functools.partial(
                kube.delete_pod,
                job_ns,
                name,
                the_plan.delete_uids.get(name, ""),
                grace=0 if name in the_plan.force else None,
            )
            for name in the_plan.delete
        )  # issue 24: only the pod the plan saw, by its UID
        await create()
    else:
        await bounded([along_then_table, write_status, create])
    answered_409 = mem.taken - before
    the_plan.memory.apply(mem)
    mem.taken |= answered_409  # the plan's update keeps the older names still held; these are new
    # A refused pod does not exist, and a 409-answered one is not ours (guards.py): neither is expected to show up
    # in the index (planner.expected_pods), so the next pass may create it.
    for name in [err.name for err in refused] + [name for kind, name in answered_409 if kind == "Pod"]:
        mem.expected.pop(name, None)
    if answered_409 and the_plan.active:  # issue 24: read soon whose object holds the name (guards.py)
        the_plan.next_due = earliest(the_plan.next_due, now + guards.TAKEN_RECHECK_SECONDS)
    if the_plan.active and the_plan.job is not None and mem.refusal is not None:  # refused now: come back
        the_plan.next_due = earliest(the_plan.next_due, admission.due(the_plan.job, mem.refusal, now))
    return the_plan
