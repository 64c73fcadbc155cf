"""The keyed work queue: dedup while queued, never one key twice at once, delayed adds, bounded concurrency."""

from __future__ import annotations

import asyncio

from zoo_operator import workqueue


def test_a_key_is_queued_once_however_often_it_is_added() -> None:
    q = workqueue.KeyQueue()
    for key in ("a", "b", "a", "a"):
        q.add(key)
    assert len(q) == 2
    assert q.take() == "a" and q.take() == "b" and q.take() is None


def test_a_key_added_while_in_process_runs_again_after_not_during() -> None:
    q = workqueue.KeyQueue()
    q.add("a")
    assert q.take() == "a"
    q.add("a")
    q.add("a")
    assert q.take() is None  # not handed out a second time while its pass runs
    q.done("a")
    assert q.take() == "a" and q.take() is None
    q.done("a")
    assert q.take() is None  # not added meanwhile: gone


def test_delayed_adds_keep_the_earliest_time() -> None:
    q = workqueue.KeyQueue()
    q.add_at("a", 10.0, now=0.0)
    q.add_at("a", 5.0, now=0.0)
    q.add_at("a", 20.0, now=0.0)
    q.add_at("b", 7.0, now=0.0)
    assert q.next_wakeup() == 5.0
    q.promote(4.9)
    assert q.take() is None
    q.promote(5.0)
    assert q.take() == "a" and q.next_wakeup() == 7.0
    q.promote(100.0)
    assert q.take() == "b" and q.take() is None and q.next_wakeup() is None
    q.add_at("c", 1.0, now=2.0)  # already due
    assert q.take() == "c"


def test_retry_delay_grows_and_is_capped() -> None:
    assert [workqueue.retry_delay(n) for n in (1, 2, 3)] == [1.0, 2.0, 4.0]
    assert workqueue.retry_delay(30) == workqueue.RETRY_MAX_SECONDS


def test_driver_bounds_concurrency_runs_keys_alone_and_follows_next_due() -> None:
    running: set[str] = set()
    peak = 0
    calls: dict[str, int] = {}
    overlap: list[str] = []

    async def worker(key: str) -> float | None:
        nonlocal peak
        if key in running:
            overlap.append(key)
        running.add(key)
        peak = max(peak, len(running))
        calls[key] = calls.get(key, 0) + 1
        await asyncio.sleep(0.01)
        running.discard(key)
        if key == "broken":
            raise RuntimeError("boom")
        if key == "again" and calls[key] < 3:
            return 0.01  # "come back in 10 ms"
        return None

    async def scenario() -> None:
        q = workqueue.WorkQueue(worker, concurrency=3)
        task = asyncio.get_running_loop().create_task(q.run())
        for i in range(10):
            q.add(f"job-{i}")
        q.add("again")
        q.add("broken")
        await asyncio.sleep(0.005)
        q.add("job-0")  # while its pass may run: once more afterwards, never alongside
        await asyncio.sleep(0.3)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        assert q.keys.failures == {"broken": 1} and "broken" in q.keys.waiting()

    asyncio.run(scenario())
    assert peak == 3 and not overlap
    assert calls["again"] == 3 and calls["broken"] == 1 and calls["job-0"] == 2 and calls["job-9"] == 1
