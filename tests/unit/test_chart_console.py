"""The chart's console parts: roles aggregated into edit/view, the ServiceMonitor, the Grafana dashboard (whose
queries must name metrics the operator exports) and NOTES that point only at what the chart ships."""

from __future__ import annotations

import json
import re

from chart_render import CHART, find, helm, one, rules_as_set

from zoo_operator import metrics

JOB_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


def test_roles_are_aggregated_into_edit_and_view():
    from chart_render import template

    objects = template()
    edit = one(objects, "ClusterRole", "zoo-operator-edit")
    view = one(objects, "ClusterRole", "zoo-operator-view")
    labels = edit["metadata"]["labels"]
    assert labels["rbac.authorization.k8s.io/aggregate-to-edit"] == "true"
    assert labels["rbac.authorization.k8s.io/aggregate-to-admin"] == "true"
    assert view["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-view"] == "true"
    assert rules_as_set(edit["rules"]) == {("modelzoo.io", "zootrainingjobs", v) for v in JOB_VERBS} | {
        ("modelzoo.io", "zootrainingjobs/status", "get")
    }
    # view reads, never writes.
    assert {v for _, _, v in rules_as_set(view["rules"])} == {"get", "list", "watch"}
    off = template({"rbac.aggregateToDefaultRoles": "false"})
    assert not [r for r in find(off, "ClusterRole") if r["metadata"]["name"].endswith(("-edit", "-view"))]


def test_service_monitor_targets_the_metrics_service():
    from chart_render import template

    assert not find(template({"metrics.serviceMonitor.enabled": "true"}), "ServiceMonitor")  # needs metrics
    objects = template(
        {
            "metrics.enabled": "true",
            "metrics.serviceMonitor.enabled": "true",
            "metrics.serviceMonitor.labels.release": "prom",
        }
    )
    monitor = one(objects, "ServiceMonitor")
    service = one(objects, "Service", "zoo-operator-metrics")
    assert monitor["metadata"]["labels"]["release"] == "prom"
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["endpoints"] == [{"port": "metrics", "path": "/metrics", "interval": "30s"}]
    assert service["spec"]["ports"][0]["name"] == "metrics"


def _exprs(dashboard: dict) -> list[str]:
    panels = [p for p in dashboard["panels"]]
    return [t["expr"] for p in panels for t in p.get("targets", [])]


def test_dashboard_queries_name_exported_metrics():
    dashboard = json.loads((CHART / "dashboards" / "zoo-operator.json").read_text())
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids)) and dashboard["uid"] == "zoo-operator"
    exprs = _exprs(dashboard) + [v["query"] for v in dashboard["templating"]["list"] if v["type"] == "query"]
    used = set()
    for expr in exprs:
        used |= {m for m in re.findall(r"\b((?:zoo|process|python)_[a-z0-9_]+)\b", expr)}
    exported = set(metrics.NAMES)
    unknown = [
        m for m in used if m not in exported and re.sub(r"_(bucket|sum|count)$", "", m) not in exported
    ]
    assert unknown == []
    # It shows the jobs' loss and accuracy curves and the operator's health.
    assert {
        "zoo_job_loss",
        "zoo_job_top1",
        "zoo_job_apply_to_running_seconds_bucket",
        "process_resident_memory_bytes",
    } <= used
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24, panel["title"]


def test_dashboard_config_map_carries_the_json():
    from chart_render import template

    assert not find(template(), "ConfigMap")
    cm = one(
        template({"metrics.dashboard.enabled": "true", "metrics.dashboard.namespace": "grafana"}), "ConfigMap"
    )
    assert cm["metadata"]["namespace"] == "grafana" and cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(cm["data"]["zoo-operator.json"]) == json.loads(
        (CHART / "dashboards" / "zoo-operator.json").read_text()
    )


def test_notes_point_only_at_what_the_chart_ships():
    for values in (
        [],
        [
            "--set",
            "crds.enabled=false",
            "--set",
            "metrics.enabled=true",
            "--set",
            "metrics.serviceMonitor.enabled=true",
            "--set",
            "metrics.dashboard.enabled=true",
        ],
    ):
        out = helm(
            "install", "zoo-operator", str(CHART), "--dry-run=client", "-n", "zoo-system", *values
        ).stdout
        notes = out.split("NOTES:", 1)[1]
        assert "manifests/" not in notes and "hack/" not in notes, notes
        assert "kubectl get ztj -o wide" in notes
    assert "ServiceMonitor: zoo-operator" in notes and "ConfigMap zoo-operator-dashboard" in notes
