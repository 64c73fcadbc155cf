"""The gang's fault channel (issue 23): one rank's crash reaches every other rank's zoo-launch within a second,
so the gang restarts its processes in place together instead of waiting for MindSpore's heartbeat
(MS_NODE_TIMEOUT, 30 s: the survivors noticed a SIGKILLed worker ~35 s late) or HCCL's collective timeout.

UDP datagrams on contract.GANG_CHANNEL_PORT, each one small JSON object. Every supervisor binds that port on
its pod IP. One of them is the hub: the pod whose name starts ZOO_GANG_HUB (the scheduler of a dynamic launch,
worker 0 of a rank-table launch). The others send it a heartbeat every HEARTBEAT_SECONDS carrying their
generation (how many gang restarts they took part in), and a `fault` as soon as their own process crashed.
The hub keeps the gang's generation (`hub_generation`): a fault of the current generation starts the next one,
which it sends to every member it hears from; a fault of an older generation (a process
that ended because of the restart already ordered) changes nothing. Every reply carries the generation, so a
lost datagram is repaired by the next heartbeat, and a duplicate or a late one is harmless: a member restarts
only for a generation above its own (`member_step`). Not a ConfigMap or an annotation: a real kubelet refreshes
mounted ConfigMaps 60-90 s late, and the workload has no API token.

A member silent for LOST_SECONDS is lost (its pod deleted or evicted: the supervisor got SIGTERM, let its process
stop gracefully and ended; or its node died): the hub starts the next generation too, so the survivors restart in
place and wait for the replacement pod the operator creates (policy.py, dynamic launch). A member whose process
ended for good (success, a permanent error) says `left` first, and its silence changes nothing.

The state machine (`decode`, `encode`, `hub_generation`, `member_step`, `lost_peers`) is pure; `Channel` is the
socket around it.
"""

from __future__ import annotations

import json
import secrets
import select
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from zoo_workloads import contract

HEARTBEAT_SECONDS = 0.5
LOST_SECONDS = 5.0  # ten heartbeats missed: the member is lost (a starved supervisor on a loaded node is not)
MAX_DATAGRAM = 512
MAX_GENERATION = 1_000_000  # far above any restart bound (ZOO_PROCESS_RESTARTS <= 100)


@dataclass(frozen=True)
class Message:
    """One datagram: the sender's generation, whether its process just crashed, and its pod name (for logs)."""

    gen: int
    fault: bool = False
    pod: str = ""
    left: bool = False  # its process ended for good (success, a permanent error): its silence is no fault
    # A random number per supervisor: a replacement pod that got the lost pod's IP is another member, so the
    # old one still falls silent (the hub keys members by address and incarnation).
    inc: int = 0


def encode(msg: Message) -> bytes:
    body = {
        "v": 1,
        "gen": msg.gen,
        "fault": msg.fault,
        "pod": msg.pod[:253],
        "left": msg.left,
        "inc": msg.inc,
    }
    return json.dumps(body).encode()


def decode(data: bytes) -> Message | None:
    """The message in a datagram, or None for anything else (too long, not JSON, wrong types, out of bounds):
    the port is reachable from the gang's pods only (netpolicy.py), but a stray datagram must not restart it."""
    if len(data) > MAX_DATAGRAM:
        return None
    try:
        obj = json.loads(data)
    except ValueError:
        return None
    if not isinstance(obj, dict) or obj.get("v") != 1:
        return None
    gen, fault, pod, left = (
        obj.get("gen"),
        obj.get("fault", False),
        obj.get("pod", ""),
        obj.get("left", False),
    )
    if type(gen) is not int or not 0 <= gen <= MAX_GENERATION:
        return None
    inc = obj.get("inc", 0)
    if not isinstance(fault, bool) or not isinstance(left, bool) or not isinstance(pod, str):
        return None
    if type(inc) is not int or not 0 <= inc < 2**63:
        return None
    return Message(gen, fault, pod, left, inc)


def hub_generation(current: int, msg: Message) -> int:
    """The gang's generation after the hub hears `msg`: the next one on a fault of the current generation."""
    if msg.fault and msg.gen == current and current < MAX_GENERATION:
        return current + 1
    return current


Peer = tuple[str, int, int]  # (IP, port, incarnation)


def lost_peers(peers: dict[Peer, float], now: float, after: float = LOST_SECONDS) -> list[Peer]:
    """The members last heard more than `after` seconds before `now` (the hub drains its socket first, so a
    supervisor that was merely slow to read is never one)."""
    return sorted(addr for addr, seen in peers.items() if now - seen > after)


def member_step(local: int | None, gen: int) -> tuple[int, bool]:
    """(the member's generation, whether it restarts its process) after hearing the hub's `gen`.

    `local` None: the member has not heard the hub yet (a pod just started, or recreated into a running gang):
    it adopts the generation and keeps its freshly started process. Otherwise it restarts only for a newer one.
    """
    if local is None:
        return gen, False
    if gen > local:
        return gen, True
    return local, False


def is_hub(hub_host: str, pod_name: str) -> bool:
    """Whether this pod is the hub: ZOO_GANG_HUB is `<pod>.<service>...` (the pod's DNS name)."""
    return bool(pod_name) and hub_host.split(".", 1)[0] == pod_name


@dataclass
class Channel:
    """One supervisor's end of the channel. `poll` returns True when the gang's generation moved past this
    member's (restart the process now); `report_fault` says this member's process crashed."""

    pod: str
    hub_addr: tuple[str, int] | None  # None: this supervisor is the hub
    bind: tuple[str, int]
    clock: Callable[[], float] = time.monotonic
    lost_after: float = LOST_SECONDS
    gen: int | None = None
    hub_gen: int = 0
    peers: dict[Peer, float] = field(default_factory=dict)
    inc: int = field(default_factory=lambda: secrets.randbelow(2**63))
    _sock: socket.socket = field(init=False)
    _next_beat: float = 0.0
    _fault_pending: bool = False
    _restart: bool = False

    def __post_init__(self) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(self.bind)
        if self.hub_addr is None:
            self.gen = 0  # the hub is the gang's generation

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._sock.getsockname()[:2]
        return str(host), int(port)

    def close(self) -> None:
        self._sock.close()

    def report_fault(self) -> None:
        """This member's process crashed: tell the hub now (and in every heartbeat until the generation moves)."""
        if self.hub_addr is None:
            self._hub_heard(Message(self.hub_gen, fault=True, pod=self.pod), None)
            return
        self._fault_pending = True
        self._send_hub()

    def leave(self) -> None:
        """This member's process ended for good: the hub forgets it without restarting the gang."""
        if self.hub_addr is not None:
            self._send_hub(left=True)

    def poll(self, timeout: float) -> bool:
        """Handle datagrams for up to `timeout` seconds; True (once) when this member must restart."""
        deadline = self.clock() + timeout
        while True:
            self._drain()
            now = self.clock()
            if self.hub_addr is None:
                lost = lost_peers(self.peers, now, self.lost_after)
                if lost:
                    for peer in lost:
                        del self.peers[peer]  # (a lost member that speaks again is new: adopts, no restart)
                    self._bump()
            elif now >= self._next_beat:
                self._send_hub()
            if self._restart or now >= deadline:
                break
            wake = deadline if self.hub_addr is None else min(deadline, self._next_beat)
            select.select([self._sock], [], [], max(min(wake - now, HEARTBEAT_SECONDS), 0.0))
        restart, self._restart = self._restart, False
        return restart

    def _drain(self) -> None:
        """Every datagram queued on the socket, without waiting."""
        while True:
            try:
                data, addr = self._sock.recvfrom(MAX_DATAGRAM + 1, socket.MSG_DONTWAIT)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return  # e.g. ICMP port unreachable from a hub not yet listening: the next heartbeat retries
            msg = decode(data)
            if msg is None:
                continue
            sender = (str(addr[0]), int(addr[1]))
            if self.hub_addr is None:
                self._hub_heard(msg, sender)
            elif sender == self.hub_addr:
                self._member_heard(msg.gen)

    def _send_hub(self, left: bool = False) -> None:
        assert self.hub_addr is not None
        self._next_beat = self.clock() + HEARTBEAT_SECONDS
        msg = Message(self.gen or 0, fault=self._fault_pending, pod=self.pod, left=left, inc=self.inc)
        try:
            self._sock.sendto(encode(msg), self.hub_addr)
        except OSError:
            pass  # the hub's pod not reachable yet: the next heartbeat retries

    def _member_heard(self, gen: int) -> None:
        before = self.gen
        self.gen, restart = member_step(self.gen, gen)
        if self.gen != before:
            # The hub has ordered the restart the fault asked for (or a later one).
            self._fault_pending = False
        self._restart = self._restart or restart

    def _hub_heard(self, msg: Message, addr: tuple[str, int] | None) -> None:
        if addr is not None:
            key = (addr[0], addr[1], msg.inc)
            if msg.left:
                self.peers.pop(key, None)
                return
            self.peers[key] = self.clock()
        if hub_generation(self.hub_gen, msg) != self.hub_gen:
            self._bump()
        elif addr is not None:
            self._reply(addr)

    def _bump(self) -> None:
        """The next generation: the hub's own process restarts, and every member hears it."""
        if self.hub_gen >= MAX_GENERATION:
            return
        self.hub_gen += 1
        self._member_heard(self.hub_gen)
        for host, port, _inc in self.peers:
            self._reply((host, port))

    def _reply(self, addr: tuple[str, int]) -> None:
        try:
            self._sock.sendto(encode(Message(self.hub_gen, pod=self.pod)), addr)
        except OSError:
            pass


def open_channel(
    hub_host: str,
    pod_name: str,
    pod_ip: str,
    port: int = contract.GANG_CHANNEL_PORT,
    resolver: Callable[[str], str] = socket.gethostbyname,
) -> Channel:
    """The channel of this pod: the hub when its name is the hub's, else a member sending to the hub's address."""
    bind = (pod_ip or "0.0.0.0", port)
    if is_hub(hub_host, pod_name):
        return Channel(pod=pod_name, hub_addr=None, bind=bind)
    return Channel(pod=pod_name, hub_addr=(resolver(hub_host), port), bind=bind)
