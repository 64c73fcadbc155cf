"""Runs inside a container's fresh mount and UTS namespaces: bind-mounts its volumes, sets its hostname and
working directory, then execs the container's command (so the process the kubelet started becomes it).

Usage: unshare --mount --uts --propagation private -- python -m zoocluster.shim SPEC.json
SPEC: {"mounts": [{"source", "target", "readOnly", "file"}], "hostname", "workingDir", "argv", "env",
"createdLog"} where createdLog lists the mount points this shim had to create on the host file system, so that
cluster-down can remove them again.
"""

from __future__ import annotations

import ctypes
import json
import os
import socket
import sys
from pathlib import Path
from typing import Any

MS_RDONLY, MS_REMOUNT, MS_BIND, MS_REC = 1, 32, 4096, 16384
_libc = ctypes.CDLL(None, use_errno=True)


def _ensure_target(target: Path, is_file: bool, created_log: Path) -> None:
    """Create a missing mount point (and its missing parents), recording each path created."""
    missing = []
    p = target if not is_file else target.parent
    while not p.exists():
        missing.append(p)
        p = p.parent
    for d in reversed(missing):
        d.mkdir(exist_ok=True)
    created = [str(d) for d in reversed(missing)]
    if is_file and not target.exists():
        target.touch()
        created.append(str(target))
    if created:
        with created_log.open("a") as fh:
            fh.write("".join(f"{c}\n" for c in created))


def _mount(source: str, target: str, flags: int) -> None:
    if _libc.mount(source.encode(), target.encode(), None, flags, None) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"mount {source} on {target}: {os.strerror(errno)}")


def mount_all(mounts: list[dict[str, Any]], created_log: Path) -> None:
    """Bind every mount, parents before children; read-only ones are remounted read-only.

    Every source is opened before anything is mounted and bound through /proc/self/fd, so a volume mounted
    over a host directory that holds other sources (the state directory) does not hide them.
    """
    fds = [os.open(m["source"], os.O_PATH) for m in mounts]
    order = sorted(range(len(mounts)), key=lambda i: len(Path(mounts[i]["target"]).parts))
    for i in order:
        m = mounts[i]
        target = Path(m["target"])
        _ensure_target(target, bool(m.get("file")), created_log)
        _mount(f"/proc/self/fd/{fds[i]}", str(target), MS_BIND | MS_REC)
        if m.get("readOnly"):
            _mount("none", str(target), MS_REMOUNT | MS_BIND | MS_RDONLY)
    for fd in fds:
        os.close(fd)


def main(argv: list[str]) -> None:
    """Set up the namespace from the spec file named in argv[1] and exec the container command."""
    spec = json.loads(Path(argv[1]).read_text())
    try:
        mount_all(spec["mounts"], Path(spec["createdLog"]))
        socket.sethostname(spec["hostname"])
        workdir = Path(spec.get("workingDir") or "/")
        workdir.mkdir(parents=True, exist_ok=True)
        os.chdir(workdir)
    except OSError as exc:
        print(f"zoo-kubelet: container setup failed: {exc}", file=sys.stderr, flush=True)
        os._exit(128)
    try:
        os.execvpe(spec["argv"][0], spec["argv"], spec["env"])
    except OSError as exc:
        print(f"zoo-kubelet: exec {spec['argv'][0]!r}: {exc.strerror}", file=sys.stderr, flush=True)
        os._exit(127 if isinstance(exc, FileNotFoundError) else 126)


if __name__ == "__main__":
    main(sys.argv)
