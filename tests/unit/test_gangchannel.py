"""The gang's fault channel (issue 23): the pure state machine on plain data, then real UDP sockets on loopback,
then two real zoo-launch supervisors (subprocesses with real children): one child crashes, the other
supervisor kills and restarts its own child within a second or two instead of the child's 60 s."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from zoo_workloads import contract, gangchannel, launch
from zoo_workloads.gangchannel import Channel, Message, decode, encode, hub_generation, member_step


def test_messages_round_trip_and_garbage_is_dropped() -> None:
    msg = Message(3, fault=True, pod="job-worker-1", inc=2**62)
    assert decode(encode(msg)) == msg
    for bad in (
        b"",
        b"not json",
        b"[1]",
        b'{"gen": 1}',  # no version
        b'{"v": 2, "gen": 1}',
        b'{"v": 1, "gen": -1}',
        b'{"v": 1, "gen": 1.5}',
        b'{"v": 1, "gen": true}',  # a bool is no generation
        b'{"v": 1, "gen": 1, "fault": "yes"}',
        b'{"v": 1, "gen": 1, "inc": -3}',
        json.dumps({"v": 1, "gen": gangchannel.MAX_GENERATION + 1}).encode(),
        json.dumps({"v": 1, "gen": 1, "pod": "x" * 600}).encode(),  # over the datagram bound
    ):
        assert decode(bad) is None, bad


@pytest.mark.parametrize(
    ("current", "msg", "expected"),
    [
        (0, Message(0, fault=True), 1),  # the first crash starts generation 1
        (1, Message(1, fault=True), 2),
        (2, Message(1, fault=True), 2),  # a process that died of the restart already ordered: nothing new
        (2, Message(2, fault=True), 3),  # a new crash after the restart: the generation after
        (2, Message(2), 2),  # a heartbeat
        (2, Message(5, fault=True), 2),  # a generation the hub never gave: ignored
    ],
)
def test_hub_generation(current: int, msg: Message, expected: int) -> None:
    assert hub_generation(current, msg) == expected


@pytest.mark.parametrize(
    ("local", "gen", "expected"),
    [
        (None, 3, (3, False)),  # a new pod joining a running gang adopts its generation, keeps its process
        (0, 1, (1, True)),
        (1, 1, (1, False)),  # a duplicate order
        (2, 1, (2, False)),  # a late order
        (1, 3, (3, True)),  # two orders merged: one restart
    ],
)
def test_member_step(local: int | None, gen: int, expected: tuple[int, bool]) -> None:
    assert member_step(local, gen) == expected


def test_the_hub_is_the_pod_its_dns_name_starts_with() -> None:
    assert gangchannel.is_hub("job-sched.job.ns.svc.cluster.local", "job-sched")
    assert not gangchannel.is_hub("job-sched.job.ns.svc.cluster.local", "job-worker-0")
    assert not gangchannel.is_hub("job-sched.job.ns.svc.cluster.local", "")


def _drain(channels: list[Channel], seconds: float) -> list[bool]:
    """Poll every channel in turn for `seconds`; whether each was told to restart."""
    told = [False] * len(channels)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for i, ch in enumerate(channels):
            told[i] = ch.poll(0.02) or told[i]
    return told


def test_one_fault_restarts_every_member_once_over_real_sockets() -> None:
    hub = Channel(pod="hub", hub_addr=None, bind=("127.0.0.1", 0))
    members = [Channel(pod=f"m{i}", hub_addr=hub.address, bind=("127.0.0.1", 0)) for i in range(3)]
    everyone = [hub, *members]
    try:
        assert _drain(everyone, 1.5) == [False] * 4  # heartbeats: members adopt generation 0
        assert [m.gen for m in members] == [0, 0, 0] and len(hub.peers) == 3
        members[1].report_fault()
        members[2].report_fault()  # a second crash of the same generation: still one restart
        assert _drain(everyone, 1.5) == [True] * 4
        assert hub.hub_gen == 1 and [m.gen for m in everyone] == [1, 1, 1, 1]
        assert _drain(everyone, 1.0) == [False] * 4  # late heartbeats and duplicates change nothing
        hub.report_fault()  # the hub's own process crashes: the next generation for all
        assert _drain(everyone, 1.5) == [True] * 4 and hub.hub_gen == 2
    finally:
        for ch in everyone:
            ch.close()


def test_a_member_started_late_adopts_the_generation_without_restarting() -> None:
    hub = Channel(pod="hub", hub_addr=None, bind=("127.0.0.1", 0))
    first = Channel(pod="m0", hub_addr=hub.address, bind=("127.0.0.1", 0))
    try:
        _drain([hub, first], 1.0)
        first.report_fault()
        assert _drain([hub, first], 1.0) == [True, True]
        late = Channel(pod="m1", hub_addr=hub.address, bind=("127.0.0.1", 0))  # e.g. a recreated pod
        try:
            assert _drain([hub, first, late], 1.5) == [False, False, False] and late.gen == 1
        finally:
            late.close()
    finally:
        hub.close()
        first.close()


def test_lost_peers() -> None:
    old, new = ("10.0.0.1", 8119, 7), ("10.0.0.1", 8119, 8)  # a replacement pod that got the same IP
    peers = {old: 100.0, new: 104.0}
    assert gangchannel.lost_peers(peers, 104.9) == []
    assert gangchannel.lost_peers(peers, 105.5) == [old]
    assert gangchannel.lost_peers(peers, 110.0, after=1.0) == [old, new]


def test_a_silent_member_restarts_the_gang_and_one_that_left_does_not() -> None:
    """A pod deleted (its supervisor ends after its process stopped) falls silent: the survivors restart to
    meet its replacement. A member whose process ended for good says so and is forgotten quietly."""
    hub = Channel(pod="hub", hub_addr=None, bind=("127.0.0.1", 0), lost_after=1.0)
    stay, done, gone = (Channel(pod=p, hub_addr=hub.address, bind=("127.0.0.1", 0)) for p in "sdg")
    try:
        _drain([hub, stay, done, gone], 1.0)
        assert len(hub.peers) == 3
        done.leave()
        done.close()
        assert _drain([hub, stay, gone], 2.0) == [False, False, False] and len(hub.peers) == 2
        gone.close()  # no goodbye: lost
        assert _drain([hub, stay], 2.5) == [True, True] and hub.hub_gen == 1 and len(hub.peers) == 1
    finally:
        for ch in (hub, stay, done, gone):
            ch.close()


def test_a_stray_sender_cannot_order_a_restart() -> None:
    hub = Channel(pod="hub", hub_addr=None, bind=("127.0.0.1", 0))
    member = Channel(pod="m0", hub_addr=hub.address, bind=("127.0.0.1", 0))
    stray = Channel(pod="x", hub_addr=None, bind=("127.0.0.1", 0))  # another "hub" with a higher generation
    try:
        _drain([hub, member], 1.0)
        stray.hub_gen = 7
        stray._reply(member.address)
        assert _drain([hub, member], 1.0) == [False, False] and member.gen == 0
    finally:
        for ch in (hub, member, stray):
            ch.close()


# A supervisor with a gang channel (argv: role, hub port file, runs file, the child's behaviour per run).
SUPERVISOR = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from zoo_workloads import launch
    from zoo_workloads.gangchannel import Channel
    role, port_file, runs, plan = sys.argv[1:5]
    if role == "hub":
        ch = Channel(pod="hub", hub_addr=None, bind=("127.0.0.1", 0))
        Path(port_file).write_text(str(ch.address[1]))
    else:
        while not Path(port_file).exists() or not Path(port_file).read_text():
            time.sleep(0.05)
        ch = Channel(pod="m", hub_addr=("127.0.0.1", int(Path(port_file).read_text())), bind=("127.0.0.1", 0))
    sys.exit(launch.supervise([sys.executable, "-c", CHILD, runs, plan], 3, channel=ch))
    """
)
# The child: run n does plan[n-1]: K = SIGKILL itself after 2 s, S = sleep 60 s, 0 = exit 0; W = hold a
# completed step for last words (a real lastwords.Watcher, a fake write) and sleep 60 s, as a rank blocked in a
# collective; H = say it is ready and never answer (hung).
CHILD = textwrap.dedent(
    """
    import os, signal, sys, time
    runs, plan = sys.argv[1], sys.argv[2].split(",")
    with open(runs, "a") as f:
        f.write(f"{time.time()}\\n")
    step = plan[min(sum(1 for _ in open(runs)), len(plan)) - 1]
    if step == "K":
        time.sleep(2)
        os.kill(os.getpid(), signal.SIGKILL)
    if step in ("W", "H"):
        from pathlib import Path
        from types import SimpleNamespace
        from zoo_workloads import lastwords
        words = Path(os.environ[lastwords.ENV_DIR])
        if step == "W":
            watcher = lastwords.Watcher(words, lambda job: {}, lambda timeout: True)
            job = SimpleNamespace(path=Path("/ckpt/m-2_3.ckpt"), position=SimpleNamespace(epoch=2, step=3))
            watcher.hold(lastwords.Held(job, 11, False))
        else:
            (words / lastwords.READY).write_text("1")
        time.sleep(60)
    if step == "S":
        time.sleep(60)
    sys.exit(0)
    """
)


def test_a_crash_restarts_the_other_supervisors_process_at_once(tmp_path: Path) -> None:
    script = tmp_path / "supervisor.py"
    script.write_text(SUPERVISOR.replace("CHILD", repr(CHILD)))
    port = tmp_path / "port"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop(contract.ENV_MS_ROLE, None)

    def start(role: str, plan: str) -> subprocess.Popen[str]:
        args = [sys.executable, str(script), role, str(port), str(tmp_path / f"{role}.runs"), plan]
        return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)

    began = time.monotonic()
    hub = start("hub", "S,0")  # would sleep 60 s: only the gang's restart order ends it early
    member = start("member", "K,0")  # crashes 2 s in
    try:
        outs = [p.communicate(timeout=45)[0] for p in (hub, member)]
    finally:
        for p in (hub, member):
            if p.poll() is None:
                p.kill()
    took = time.monotonic() - began
    assert [hub.returncode, member.returncode] == [0, 0], outs
    assert took < 40, f"the hub's child was not restarted early ({took:.0f}s): {outs}"
    events = [[json.loads(x) for x in o.splitlines() if x.startswith("{")] for o in outs]
    assert [(e["peer"], e["code"]) for e in events[0]] == [(True, 137)], outs  # killed by its supervisor
    assert [(e["peer"], e["code"], e["delay_seconds"]) for e in events[1]] == [(False, 137, 0.0)], outs
    hub_runs = [float(t) for t in (tmp_path / "hub.runs").read_text().split()]
    member_runs = [float(t) for t in (tmp_path / "member.runs").read_text().split()]
    # The crash is ~2 s into the member's first run; both second runs start within a few seconds of it (two
    # Python start-ups on a loaded machine), not after MindSpore's 30 s heartbeat timeout.
    crash = member_runs[0] + 2
    assert len(hub_runs) == len(member_runs) == 2, (hub_runs, member_runs)
    assert hub_runs[1] - crash < 15 and member_runs[1] - crash < 15, (crash, hub_runs, member_runs)


def test_without_a_hub_the_crashed_process_falls_back_to_the_framework_timeout() -> None:
    assert launch.gang_channel({}) is None
    unreachable = launch.gang_channel(
        {contract.ENV_GANG_HUB: "nowhere.invalid", contract.ENV_POD_NAME: "p", "ZOO_RESOLVE_TIMEOUT": "0"},
        resolve=lambda _host: (_ for _ in ()).throw(ConnectionError("cannot resolve")),
    )
    assert unreachable is None


@pytest.mark.parametrize(("plan", "saved"), [("W,0", 11), ("H,0", 0)])
def test_a_survivor_says_its_last_words_before_its_supervisor_kills_it(
    tmp_path: Path, plan: str, saved: int
) -> None:
    """The hub's process holds a completed step (W) or hangs after saying it does (H); the member crashes. The
    hub's supervisor asks for last words before the kill: W answers at once, H is killed after the 5 s bound."""
    script = tmp_path / "supervisor.py"
    script.write_text(SUPERVISOR.replace("CHILD", repr(CHILD)))
    port = tmp_path / "port"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop(contract.ENV_MS_ROLE, None)

    def start(role: str, plan: str) -> subprocess.Popen[str]:
        args = [sys.executable, str(script), role, str(port), str(tmp_path / f"{role}.runs"), plan]
        return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)

    hub, member = start("hub", plan), start("member", "K,0")
    try:
        outs = [p.communicate(timeout=60)[0] for p in (hub, member)]
    finally:
        for p in (hub, member):
            if p.poll() is None:
                p.kill()
    assert [hub.returncode, member.returncode] == [0, 0], outs
    (restart,) = [json.loads(x) for x in outs[0].splitlines() if x.startswith("{")]
    assert restart["peer"] and restart["last_words_step"] == saved, outs
    said = next(x for x in outs[0].splitlines() if "last words" in x)
    took = float(said.rsplit(" in ", 1)[1].rstrip("s"))
    if saved:
        assert "saved epoch 2 step 3 (/ckpt/m-2_3.ckpt)" in said and took < 3, said
    else:
        assert "saved nothing (no answer)" in said and 4.5 <= took < 10, said
    (member_restart,) = [json.loads(x) for x in outs[1].splitlines() if x.startswith("{")]
    assert "last_words_step" not in member_restart, outs  # its own process crashed: nothing to ask
