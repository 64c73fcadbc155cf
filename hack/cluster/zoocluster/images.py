"""Maps container images to local environments (the kubelet's stand-in for pulling an image)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


@dataclass(frozen=True)
class Image:
    """A local environment standing in for an image."""

    root: Path
    entrypoint: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)


def repository(image: str) -> str:
    """The repository part of an image reference: no tag, no digest, no docker.io/library prefix."""
    name = image.split("@", 1)[0]
    slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > slash:
        name = name[:colon]
    for prefix in ("docker.io/library/", "docker.io/"):
        name = name.removeprefix(prefix)
    return name


def parse_images(doc: dict[str, Any], repo: Path) -> dict[str, Image]:
    """Read the images config ({"images": {repository: {root, entrypoint, env}}}); roots are repo-relative."""
    images = doc.get("images")
    if not isinstance(images, dict):
        raise TypeError("images config: top-level 'images' must be a mapping of repository -> settings")
    out = {}
    for name, spec in images.items():
        if not isinstance(spec, dict) or "root" not in spec:
            raise ValueError(f"images config: images.{name}.root is required (a path relative to the repo)")
        out[name] = Image(
            root=(repo / str(spec["root"])).resolve(),
            entrypoint=[str(a) for a in spec.get("entrypoint") or []],
            env={str(k): str(v) for k, v in (spec.get("env") or {}).items()},
        )
    return out


def load_images(path: Path, repo: Path) -> dict[str, Image]:
    """Load the images config file."""
    return parse_images(yaml.safe_load(path.read_text()) or {}, repo)


def resolve(images: dict[str, Image], image: str) -> Image | None:
    """The environment for an image reference, or None when the image is unknown (ErrImagePull)."""
    return images.get(repository(image))
