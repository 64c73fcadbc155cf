"""The mount plan of a container's namespace: which bind mounts, in which order (pure functions).

The local kubelet has no image file system: a container sees the host's, with its volumes bound on top. A
volume mounted at a parent of the image's environment (an emptyDir at /tmp while the repo and its .venv live
under /tmp/...) would hide that environment, which a real image never depends on. So the plan binds every
image directory that a volume shadows back at its own path, above that volume: the container then sees the
volume's contents at the mountPath and its image where the image is, as on a real node.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from pathlib import PurePosixPath
from typing import Any

# At equal depth: an image directory first, then the kubelet's files, then volumes, so that a volume mounted
# at exactly the same path wins (as a user's mount over /etc/hosts does on a real node).
_REEXPOSE, _KUBELET, _VOLUME = 0, 1, 2


def normalize(path: str) -> PurePosixPath:
    """An absolute mount path without `.`, `..`, doubled or trailing slashes."""
    return PurePosixPath(os.path.normpath("/" + path.lstrip("/")))


def is_under(path: PurePosixPath, ancestor: PurePosixPath) -> bool:
    """Whether path is ancestor or lies below it."""
    return path == ancestor or ancestor in path.parents


def outermost(paths: Iterable[str | os.PathLike[str]]) -> list[PurePosixPath]:
    """The given paths without duplicates and without those that lie inside another one, in input order."""
    norm = [normalize(os.fspath(p)) for p in paths]
    out: list[PurePosixPath] = []
    for p in norm:
        if p in out or any(q != p and is_under(p, q) for q in norm):
            continue
        out.append(p)
    return out


def shadowed(image_dirs: Iterable[str | os.PathLike[str]], targets: Iterable[str]) -> list[PurePosixPath]:
    """The image directories that some mount target hides: a target that is a strict parent of the directory.

    A target equal to (or inside) an image directory is the pod's own choice and is left alone.
    """
    norm_targets = [normalize(t) for t in targets]
    return [d for d in outermost(image_dirs) if any(t in d.parents for t in norm_targets)]


def plan(
    kubelet_mounts: Sequence[dict[str, Any]],
    volume_mounts: Sequence[dict[str, Any]],
    image_dirs: Iterable[str | os.PathLike[str]],
) -> list[dict[str, Any]]:
    """All bind mounts of a container in the order to mount them: parents before children, and the image
    directories a volume would hide bound again on top of it.

    Mounts are dicts {"source", "target", "readOnly", "file"}; kubelet_mounts are the kubelet's own files
    (/etc/hosts, the termination-message file), volume_mounts the container's volumeMounts.
    """
    targets = [m["target"] for m in (*kubelet_mounts, *volume_mounts)]
    reexposed = [
        {"source": str(d), "target": str(d), "readOnly": False, "file": False, "image": True}
        for d in shadowed(image_dirs, targets)
    ]
    ranked = [(_REEXPOSE, m) for m in reexposed]
    ranked += [(_KUBELET, m) for m in kubelet_mounts] + [(_VOLUME, m) for m in volume_mounts]
    ranked.sort(key=lambda rm: (len(normalize(rm[1]["target"]).parts), rm[0]))  # stable: ties keep order
    return [{**m, "target": str(normalize(m["target"]))} for _, m in ranked]


def host_location(path: str, mounted: Sequence[tuple[str, str]]) -> str:
    """Where a path seen inside the namespace lies on the host, given the (target, source) binds made so far.

    The topmost (last) bind whose target contains the path decides; a path under no bind is a host path.
    """
    p = normalize(path)
    for target, source in reversed(mounted):
        t = normalize(target)
        if is_under(p, t):
            return str(PurePosixPath(source) / p.relative_to(t))
    return str(p)


# What a container runtime mounts apart from the image's root file system, which readOnlyRootFilesystem leaves
# writable: the OCI runtime's default mounts (/proc, /dev with /dev/shm and /dev/pts, /sys; runc's libcontainer
# mounts them after the rootfs and remounts only the rootfs read-only, OCI runtime spec `root.readonly`).
RUNTIME_MOUNTS = ("/proc", "/dev", "/sys")


def unescape_mount_point(field: str) -> str:
    """A mountinfo mount point with its octal escapes (\\040 for a space, \\011, \\012, \\134) decoded."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def read_only_points(mount_points: Iterable[str], mounts: Sequence[dict[str, Any]]) -> list[str]:
    """The mount points to remount read-only for readOnlyRootFilesystem: every mount of the namespace that
    stands for the image's root file system (the host's, here). A point keeps its mode when the innermost of the
    container's mounts that holds it is a writable volume or kubelet file; the image directories a volume would
    hide (plan's "image" mounts) are the image, so they and what lies in them turn read-only too; so does all
    that no mount of the container holds, except the runtime's own (RUNTIME_MOUNTS). Sorted parents first.
    """
    own = sorted(mounts, key=lambda m: len(normalize(m["target"]).parts))
    keep = [normalize(p) for p in RUNTIME_MOUNTS]
    out: list[PurePosixPath] = []
    for raw in mount_points:
        p = normalize(raw)
        if p in out or any(is_under(p, k) for k in keep):
            continue
        holders = [m for m in own if is_under(p, normalize(m["target"]))]
        innermost = holders[-1] if holders else None
        if innermost is not None and not innermost.get("readOnly") and not innermost.get("image"):
            continue
        out.append(p)
    return [str(p) for p in sorted(out, key=lambda q: len(q.parts))]
