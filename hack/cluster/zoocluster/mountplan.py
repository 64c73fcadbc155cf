"""The mount plan of a container's namespace: which bind mounts, in which order (pure functions).

The local kubelet has no image file system: a container sees the host's, with its volumes bound on top. A
volume mounted at a parent of the image's environment (an emptyDir at /tmp while the repo and its .venv live
under /tmp/...) would hide that environment, which a real image never depends on. So the plan binds every
image directory that a volume shadows back at its own path, above that volume: the container then sees the
volume's contents at the mountPath and its image where the image is, as on a real node.
"""

from __future__ import annotations

import os
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
        {"source": str(d), "target": str(d), "readOnly": False, "file": False}
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
