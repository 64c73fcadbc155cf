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
    # Directories outside root that the environment reads (its interpreter, editable sources).
    uses: tuple[Path, ...] = ()

    @property
    def dirs(self) -> tuple[Path, ...]:
        """Every host directory that makes up this image's file system."""
        return (self.root, *self.uses)


def venv_dependencies(pyvenv_cfg: str, pth_files: list[str]) -> list[Path]:
    """The directories a virtual environment reads outside itself: its base interpreter's prefix (the parent
    of `home` in pyvenv.cfg) and every absolute directory listed in its .pth files (editable installs)."""
    out: list[Path] = []
    for line in pyvenv_cfg.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip() == "home" and value.strip():
            out.append(Path(value.strip()).parent)
    for text in pth_files:
        for line in text.splitlines():
            line = line.strip()
            if line.startswith("/"):  # `import ...` lines and relative entries name no directory of their own
                out.append(Path(line))
    return out


def environment_dependencies(root: Path) -> tuple[Path, ...]:
    """venv_dependencies of the environment at root that exist on this host (none when root is no venv)."""
    cfg = root / "pyvenv.cfg"
    if not cfg.is_file():
        return ()
    pth = [p.read_text(errors="replace") for p in sorted(root.glob("lib/python*/site-packages/*.pth"))]
    found = venv_dependencies(cfg.read_text(errors="replace"), pth)
    return tuple(dict.fromkeys(p for p in found if p.is_dir()))


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
    """Read the images config ({"images": {repository: {root, entrypoint, env}}}); roots are repo-relative.

    A root that is a virtual environment also brings the directories it uses (environment_dependencies)."""
    images = doc.get("images")
    if not isinstance(images, dict):
        raise TypeError("images config: top-level 'images' must be a mapping of repository -> settings")
    out = {}
    for name, spec in images.items():
        if not isinstance(spec, dict) or "root" not in spec:
            raise ValueError(f"images config: images.{name}.root is required (a path relative to the repo)")
        root = (repo / str(spec["root"])).resolve()
        out[name] = Image(
            root=root,
            uses=environment_dependencies(root),
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
