"""One reconcile pass for one job: observe -> plan -> execute, with plain data between the stages.

Called by the runner (runner.py) with the job body, its pods from the pod index and, when known, which of the
job's Service and launch ConfigMap exist (from the operator's index of them).

1. observe.py reads everything the pass needs, once, before anything is decided (an `Observation`);
2. planner.py computes the `Plan` from the observation and the job's memory: pure, no I/O, no clock;
3. executor.py carries the plan out: the only code that writes, and the only code that changes the memory.

No stage calls back into one it has left. `JobMemory` (memory.py) holds what must survive between passes but
not an operator restart; progress is not polled: the runner follows rank 0's log as a stream and folds its
lines into the memory (`memory.feed_lines`).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

from zoo_operator import executor, observe, planner
from zoo_operator.memory import JobMemory
from zoo_operator.podview import PodView
from zoo_operator.settings import Settings


async def reconcile(
    body: Mapping[str, Any],
    pods: Sequence[PodView],
    settings: Settings,
    mem: JobMemory,
    now: float,
    emit: executor.EventSink,
    existing: Collection[tuple[str, str]] | None = None,
) -> planner.Plan:
    """One pass over one job; returns the plan it carried out (its `next_due` says when to come back)."""
    seen = await observe.read_job(body, pods, settings, mem, now, existing)
    the_plan = planner.plan(seen, mem, settings)
    return await executor.execute(body, the_plan, mem, now, emit)
