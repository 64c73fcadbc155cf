"""manifests/base is the chart rendered with default values: fresh, complete, and buildable by kustomize."""

from __future__ import annotations

import importlib.util
import subprocess
from pathlib import Path

import yaml
from chart_render import REPO, template

KUBECTL = REPO / ".cache" / "bin" / "kubectl"
BASE = REPO / "manifests" / "base"


def _render_module():
    """hack/render_manifests.py, loaded by path (hack/ is scripts, not a package)."""
    spec = importlib.util.spec_from_file_location("render_manifests", REPO / "hack" / "render_manifests.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_manifests_are_fresh():
    render = _render_module()
    expected = render.render(render.default_helm())
    stale = render.stale_files(expected)
    assert not stale, f"manifests/base is stale ({', '.join(stale)}): run `make manifests`"


def test_staleness_is_detected(tmp_path: Path):
    render = _render_module()
    expected = render.render(render.default_helm())
    for name, text in expected.items():
        (tmp_path / name).write_text(text)
    assert render.stale_files(expected, tmp_path) == []
    (tmp_path / "rbac.yaml").write_text(
        expected["rbac.yaml"].replace('"watch"', '"get"').replace("- watch", "- get")
    )
    assert render.stale_files(expected, tmp_path) == ["rbac.yaml"]


def test_kustomize_builds_the_same_objects_as_the_chart():
    built = subprocess.run(
        [str(KUBECTL), "kustomize", str(BASE)], capture_output=True, text=True, timeout=60, check=False
    )
    assert built.returncode == 0, built.stderr
    objects = [o for o in yaml.safe_load_all(built.stdout) if o]
    from_kustomize = sorted((o["kind"], o["metadata"]["name"]) for o in objects)
    from_helm = sorted((o["kind"], o["metadata"]["name"]) for o in template())
    assert from_kustomize == sorted(from_helm + [("Namespace", "zoo-system")])
    # The Deployment is the chart's, field for field, apart from who manages it.
    chart_deployment = next(o for o in template() if o["kind"] == "Deployment")
    kustomize_deployment = next(o for o in objects if o["kind"] == "Deployment")
    assert kustomize_deployment["spec"]["template"]["spec"] == chart_deployment["spec"]["template"]["spec"]


def test_top_level_kustomization_installs_the_base():
    kustomization = yaml.safe_load((REPO / "manifests" / "kustomization.yaml").read_text())
    assert kustomization["resources"] == ["base"]
    base = yaml.safe_load((BASE / "kustomization.yaml").read_text())
    assert all((BASE / name).is_file() for name in base["resources"])
