"""The one module that talks to the Kubernetes API (kubernetes_asyncio); everything else is plain data.

Calls are idempotent where the reconciler needs them to be: creating an object that exists, or deleting one
that is gone, is not an error. Objects go in and come out as plain dicts.
"""

from __future__ import annotations

import datetime
import logging
from typing import Any

from kubernetes_asyncio import client, config
from kubernetes_asyncio.client.rest import ApiException
from kubernetes_asyncio.config.config_exception import ConfigException

from zoo_operator import schema

log = logging.getLogger(__name__)
Obj = dict[str, Any]
_MERGE = "application/merge-patch+json"
_api_client: client.ApiClient | None = None


class MissingAPI(Exception):
    """The cluster does not serve a resource (e.g. Volcano's PodGroup CRD is not installed)."""


async def _client() -> client.ApiClient:
    global _api_client
    if _api_client is None:
        try:
            config.load_incluster_config()
        except ConfigException:
            await config.load_kube_config()
        _api_client = client.ApiClient()
    return _api_client


async def close() -> None:
    """Close the shared HTTP session (operator shutdown)."""
    global _api_client
    if _api_client is not None:
        await _api_client.close()
        _api_client = None


async def _core() -> client.CoreV1Api:
    return client.CoreV1Api(await _client())


async def _custom() -> client.CustomObjectsApi:
    return client.CustomObjectsApi(await _client())


async def create(obj: Obj) -> bool:
    """Create `obj` (Service, ConfigMap, Pod or PodGroup); False if it already exists."""
    ns = obj["metadata"]["namespace"]
    kind = obj["kind"]
    try:
        if kind == "Pod":
            await (await _core()).create_namespaced_pod(ns, obj)
        elif kind == "Service":
            await (await _core()).create_namespaced_service(ns, obj)
        elif kind == "ConfigMap":
            await (await _core()).create_namespaced_config_map(ns, obj)
        elif kind == "PodGroup":
            group, version = obj["apiVersion"].split("/")
            await (await _custom()).create_namespaced_custom_object(group, version, ns, "podgroups", obj)
        else:
            raise ValueError(f"kube.create: unsupported kind {kind}")
    except ApiException as err:
        if err.status == 409:
            return False
        if err.status == 404 and kind == "PodGroup":
            raise MissingAPI(f"{obj['apiVersion']} PodGroup is not served by this cluster") from None
        raise
    return True


async def put_config_map(obj: Obj) -> None:
    """Set a ConfigMap's data (merge patch: keys not in it are kept), creating the ConfigMap if it is gone."""
    meta = obj["metadata"]
    try:
        await (await _core()).patch_namespaced_config_map(meta["name"], meta["namespace"], {"data": obj["data"]},
                                                          _content_type=_MERGE)
    except ApiException as err:
        if err.status != 404:
            raise
        await create(obj)


async def delete_pod(namespace: str, name: str) -> None:
    """Delete a pod; gone already is fine."""
    try:
        await (await _core()).delete_namespaced_pod(name, namespace)
    except ApiException as err:
        if err.status != 404:
            raise


async def pod_log(namespace: str, name: str, tail_lines: int) -> str | None:
    """The last `tail_lines` lines of the pod's worker container, or None if they cannot be read (yet)."""
    try:
        text = await (await _core()).read_namespaced_pod_log(name, namespace, container="worker",
                                                             tail_lines=tail_lines)
    except ApiException as err:
        log.debug("no log for %s/%s: %s", namespace, name, err.reason)
        return None
    return text if isinstance(text, str) else None


async def patch_job_status(namespace: str, name: str, patch: Obj) -> None:
    """Merge-patch the status subresource of a ZooTrainingJob."""
    await (await _custom()).patch_namespaced_custom_object_status(
        schema.GROUP, schema.VERSION, namespace, schema.PLURAL, name, {"status": patch}, _content_type=_MERGE)


async def post_event(job: Obj, kind: str, reason: str, message: str) -> None:
    """Post a core/v1 Event about a job (type Normal or Warning); failures are logged, never raised."""
    meta = job.get("metadata") or {}
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    event = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"generateName": f"{meta.get('name', 'job')}.", "namespace": meta.get("namespace")},
        "involvedObject": {"apiVersion": f"{schema.GROUP}/{schema.VERSION}", "kind": schema.KIND,
                           "name": meta.get("name"), "namespace": meta.get("namespace"), "uid": meta.get("uid")},
        "type": kind,
        "reason": reason,
        "message": message[:1024],
        "source": {"component": "zoo-operator"},
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
    }
    try:
        await (await _core()).create_namespaced_event(meta.get("namespace"), event)
    except ApiException as err:
        log.warning("could not post event %s for %s/%s: %s", reason, meta.get("namespace"), meta.get("name"),
                    err.reason)


async def delete_job(namespace: str, name: str) -> None:
    """Delete a ZooTrainingJob (its objects go with it through ownerReferences); gone already is fine."""
    try:
        await (await _custom()).delete_namespaced_custom_object(
            schema.GROUP, schema.VERSION, namespace, schema.PLURAL, name, propagation_policy="Background")
    except ApiException as err:
        if err.status != 404:
            raise


async def get_job(namespace: str, name: str) -> Obj | None:
    """A ZooTrainingJob as a plain dict, or None when it does not exist (spec.from names another job)."""
    try:
        obj = await (await _custom()).get_namespaced_custom_object(schema.GROUP, schema.VERSION, namespace,
                                                                   schema.PLURAL, name)
    except ApiException as err:
        if err.status == 404:
            return None
        raise
    return obj if isinstance(obj, dict) else None


async def remove_pod_finalizer(namespace: str, name: str, finalizer: str) -> None:
    """Remove one finalizer from a pod (a JSON patch that tests the list first, so a concurrent change is not
    overwritten; a conflict or a pod already gone is left for the next pass)."""
    core = await _core()
    try:
        pod = await core.read_namespaced_pod(name, namespace)
        current = list(pod.metadata.finalizers or [])
        if finalizer not in current:
            return
        patch = [{"op": "test", "path": "/metadata/finalizers", "value": current},
                 {"op": "replace", "path": "/metadata/finalizers", "value": [f for f in current if f != finalizer]}]
        await core.patch_namespaced_pod(name, namespace, patch, _content_type="application/json-patch+json")
    except ApiException as err:
        if err.status not in (404, 409, 422):
            raise
