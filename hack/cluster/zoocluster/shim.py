"""Runs inside a container's fresh mount and UTS namespaces: bind-mounts its volumes, sets its hostname and
working directory, then execs the container's command (so the process the kubelet started becomes it).

Usage: unshare --mount --uts --propagation private -- python -m zoocluster.shim SPEC.json
SPEC: {"mounts": [{"source", "target", "readOnly", "file"}] (in mounting order, see mountplan.py),
"hostname", "workingDir", "readOnlyRootFilesystem", "argv", "env", "createdLog"} where createdLog lists the mount
points this shim had to create on the host file system, so that cluster-down can remove them again.
"""

from __future__ import annotations

import ctypes
import json
import os
import socket
import sys
from pathlib import Path
from typing import Any

from zoocluster import mountplan

MS_RDONLY, MS_REMOUNT, MS_BIND, MS_REC = 1, 32, 4096, 16384
MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_NOATIME, MS_NODIRATIME, MS_RELATIME = 2, 4, 8, 1024, 2048, 1 << 21
_libc = ctypes.CDLL(None, use_errno=True)


def _ensure_target(target: Path, is_file: bool) -> list[Path]:
    """Create a missing mount point (and its missing parents); return the paths created, outermost first."""
    missing = []
    p = target if not is_file else target.parent
    while not p.exists():
        missing.append(p)
        p = p.parent
    for d in reversed(missing):
        d.mkdir(exist_ok=True)
    created = list(reversed(missing))
    if is_file and not target.exists():
        target.touch()
        created.append(target)
    return created


def _mount(source: str, target: str, flags: int) -> None:
    if _libc.mount(source.encode(), target.encode(), None, flags, None) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"mount {source} on {target}: {os.strerror(errno)}")


def mount_all(mounts: list[dict[str, Any]], created_log: Path) -> None:
    """Bind every mount in the given order (the kubelet's mount plan), then make the read-only ones read-only.

    Every source, and the created-paths log, is opened before anything is mounted and reached through its
    descriptor, so a volume mounted over a host directory that holds them (the state directory, the repo)
    does not hide them. Read-only remounts come last so that mount points can still be made inside a
    read-only volume. Mount points created inside an earlier bind are logged at their host location.
    """
    fds = [os.open(m["source"], os.O_PATH) for m in mounts]
    log_fd = os.open(created_log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    mounted: list[tuple[str, str]] = []
    try:
        for m, fd in zip(mounts, fds, strict=True):
            created = _ensure_target(Path(m["target"]), bool(m.get("file")))
            if created:
                lines = "".join(f"{mountplan.host_location(str(c), mounted)}\n" for c in created)
                os.write(log_fd, lines.encode())
            _mount(f"/proc/self/fd/{fd}", m["target"], MS_BIND | MS_REC)
            mounted.append((m["target"], m["source"]))
        for m in mounts:
            if m.get("readOnly"):
                _mount("none", m["target"], MS_REMOUNT | MS_BIND | MS_RDONLY)
    finally:
        for fd in (*fds, log_fd):
            os.close(fd)


# statvfs f_flag bits kept on a read-only remount (a bind remount replaces the per-mount flags; in a user
# namespace clearing a locked one is refused) and their mount(2) flags.
_KEEP_FLAGS = (
    (os.ST_NOSUID, MS_NOSUID),
    (os.ST_NODEV, MS_NODEV),
    (os.ST_NOEXEC, MS_NOEXEC),
    (os.ST_NOATIME, MS_NOATIME),
    (os.ST_NODIRATIME, MS_NODIRATIME),
    (os.ST_RELATIME, MS_RELATIME),
)


def make_root_read_only(mounts: list[dict[str, Any]], mountinfo: Path = Path("/proc/self/mountinfo")) -> None:
    """readOnlyRootFilesystem: remount read-only every mount of this namespace that stands for the image's root
    file system (mountplan.read_only_points), so a write outside the container's volumes fails with EROFS, as in
    a real container (runc remounts the rootfs read-only when the OCI spec's root.readonly is set, which
    containerd sets from the field). Only this namespace's copies change: propagation is private."""
    points = [mountplan.unescape_mount_point(line.split()[4]) for line in mountinfo.read_text().splitlines()]
    for point in mountplan.read_only_points(points, mounts):
        try:
            flags = os.statvfs(point).f_flag
        except OSError:
            continue  # a mount point hidden or gone (e.g. under a volume's own submounts): nothing to remount
        if flags & os.ST_RDONLY:
            continue
        keep = sum(ms for st, ms in _KEEP_FLAGS if flags & st)
        _mount("none", point, MS_REMOUNT | MS_BIND | MS_RDONLY | keep)


def main(argv: list[str]) -> None:
    """Set up the namespace from the spec file named in argv[1] and exec the container command."""
    spec = json.loads(Path(argv[1]).read_text())
    try:
        mount_all(spec["mounts"], Path(spec["createdLog"]))
        socket.sethostname(spec["hostname"])
        workdir = Path(spec.get("workingDir") or "/")
        workdir.mkdir(parents=True, exist_ok=True)  # before the root turns read-only, as runc makes the cwd
        if spec.get("readOnlyRootFilesystem"):
            make_root_read_only(spec["mounts"])
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
