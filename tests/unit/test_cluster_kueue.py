"""The local cluster's Kueue wiring (hack/cluster/zoocluster/kueue.py): version, configuration, webhooks."""

from __future__ import annotations

from pathlib import Path

import yaml

from zoocluster import kueue

HOOKS = """
apiVersion: admissionregistration.k8s.io/v1
kind: MutatingWebhookConfiguration
metadata: {name: mutating-webhook-configuration}
webhooks:
- name: mjob.kb.io
  clientConfig: {service: {name: webhook-service, namespace: system, path: /mutate-batch-v1-job}}
  failurePolicy: Fail
- name: mpod.kb.io
  clientConfig: {service: {name: webhook-service, namespace: system, path: /mutate--v1-pod}}
  failurePolicy: Fail
- name: mclusterqueue.kb.io
  clientConfig: {service: {name: webhook-service, namespace: system, path: /mutate-kueue-x-k8s-io-v1beta2-clusterqueue}}
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata: {name: validating-webhook-configuration}
webhooks:
- name: vjobset.kb.io
  clientConfig: {service: {name: webhook-service, namespace: system, path: /validate-jobset-x-k8s-io-v1alpha2-jobset}}
"""


def test_version_from_the_pinned_go_mod() -> None:
    assert kueue.version() == "v0.17.0"
    assert kueue.binary({}).parts[-2:] == ("kueue-v0.17.0", "kueue")
    assert kueue.binary({"ZOO_KUEUE_BIN_DIR": "/x"}) == Path("/x/kueue")


def test_webhooks_point_at_the_local_manager_and_only_kueue_and_pods() -> None:
    out = kueue.local_webhooks(list(yaml.safe_load_all(HOOKS)), 37000, "Q0E=")
    assert len(out) == 1  # the validating configuration had only another integration's webhook
    (mutating,) = out
    assert mutating["metadata"] == {"name": "kueue-mutating-webhook-configuration"}
    by_name = {h["name"]: h for h in mutating["webhooks"]}
    assert set(by_name) == {"mpod.kb.io", "mclusterqueue.kb.io"}  # no batch/v1 Job webhook: nobody serves it
    pod = by_name["mpod.kb.io"]
    assert pod["clientConfig"] == {"url": "https://127.0.0.1:37000/mutate--v1-pod", "caBundle": "Q0E="}
    assert pod["namespaceSelector"] == {"matchLabels": {kueue.MANAGED_LABEL: "true"}}
    assert "namespaceSelector" not in by_name["mclusterqueue.kb.io"]


def test_configuration_manages_pods_only_in_labelled_namespaces() -> None:
    cfg = kueue.configuration(37000, 37001, Path("/certs"))
    assert cfg["integrations"] == {"frameworks": ["pod"]}
    assert cfg["managedJobsNamespaceSelector"] == {"matchLabels": {kueue.MANAGED_LABEL: "true"}}
    assert cfg["internalCertManagement"] == {"enable": False} and not cfg["manageJobsWithoutQueueName"]
    assert cfg["webhook"] == {"host": "127.0.0.1", "port": 37000, "certDir": "/certs"}
    assert (
        cfg["health"]["healthProbeBindAddress"] == "127.0.0.1:37001" and cfg["metrics"]["bindAddress"] == "0"
    )
