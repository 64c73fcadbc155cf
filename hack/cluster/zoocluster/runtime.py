"""Container processes: start one through unshare and the shim, pump its output into a log file, stop it.

Log files hold one line per output line: `<RFC3339Nano timestamp> <stdout|stderr> <text>`.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO, Any

PACKAGE_PARENT = str(Path(__file__).resolve().parent.parent)


def log_timestamp() -> str:
    """Now, as RFC 3339 with nanoseconds (the kubelet's log timestamp format)."""
    now = time.time_ns()
    base = dt.datetime.fromtimestamp(now // 1_000_000_000, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{base}.{now % 1_000_000_000:09d}Z"


class ContainerProcess:
    """One running instance of a container."""

    def __init__(self, spec: dict[str, Any], spec_path: Path, log_path: Path, pid_dir: Path) -> None:
        self.spec = spec
        self.spec_path = spec_path
        self.log_path = log_path
        self.pid_dir = pid_dir
        self.proc: subprocess.Popen[bytes] | None = None
        self.exit_code: int | None = None
        self._log_lock = threading.Lock()
        self._pumps: list[threading.Thread] = []

    @property
    def pid(self) -> int:
        """The container's main process id (also its process group id)."""
        assert self.proc is not None
        return self.proc.pid

    def start(self) -> None:
        """Start the process in its own session, mount and UTS namespaces."""
        self.spec_path.write_text(json.dumps(self.spec))
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("ab", buffering=0)
        cmd = ["unshare", "--mount", "--uts", "--propagation", "private", "--"]
        cmd += [sys.executable, "-m", "zoocluster.shim", str(self.spec_path)]
        self.proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
            cwd="/",
            env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "PYTHONPATH": PACKAGE_PARENT},
        )
        self.pid_dir.mkdir(parents=True, exist_ok=True)
        (self.pid_dir / str(self.proc.pid)).touch()
        for stream, name in ((self.proc.stdout, "stdout"), (self.proc.stderr, "stderr")):
            t = threading.Thread(target=self._pump, args=(stream, name), daemon=True)
            t.start()
            self._pumps.append(t)

    def _pump(self, stream: IO[bytes] | None, name: str) -> None:
        assert stream is not None
        pending = b""
        while True:
            chunk = os.read(stream.fileno(), 65536)
            if not chunk:
                break
            pending += chunk
            *lines, pending = pending.split(b"\n")
            self._write(name, lines)
        if pending:
            self._write(name, [pending])
        stream.close()

    def _write(self, name: str, lines: list[bytes]) -> None:
        if not lines:
            return
        prefix = f"{log_timestamp()} {name} ".encode()
        data = b"".join(prefix + line + b"\n" for line in lines)
        with self._log_lock:
            self._log.write(data)

    def poll(self) -> int | None:
        """The exit code once the process has ended (128+N for signal N), else None."""
        if self.exit_code is not None or self.proc is None:
            return self.exit_code
        code = self.proc.poll()
        if code is None:
            return None
        # The container's other processes die with its main process, as in a PID namespace.
        self._killpg(signal.SIGKILL)
        self.exit_code = 128 - code if code < 0 else code
        (self.pid_dir / str(self.proc.pid)).unlink(missing_ok=True)
        return self.exit_code

    def logs_closed(self) -> bool:
        """Whether every output line has reached the log file."""
        return self.exit_code is not None and not any(t.is_alive() for t in self._pumps)

    def finish_logs(self, timeout: float = 2.0) -> None:
        """Wait briefly for the pumps to drain, then close the log file."""
        for t in self._pumps:
            t.join(timeout)
        with self._log_lock:
            self._log.close()

    def _killpg(self, sig: int) -> None:
        try:
            os.killpg(self.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def stop(self, grace: float) -> int:
        """SIGTERM the process group, SIGKILL it after grace seconds; return the exit code."""
        if self.poll() is None:
            self._killpg(signal.SIGTERM)
            deadline = time.monotonic() + grace
            while self.poll() is None and time.monotonic() < deadline:
                time.sleep(0.1)
            if self.poll() is None:
                self._killpg(signal.SIGKILL)
                assert self.proc is not None
                self.proc.wait()
        code = self.poll()
        assert code is not None
        return code
