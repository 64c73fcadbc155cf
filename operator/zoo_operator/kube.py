"""The one module that talks to the Kubernetes API (kubernetes_asyncio); everything else is plain data.

Calls are idempotent where the reconciler needs them to be: creating an object that exists, or deleting one
that is gone, is not an error. Objects go in and come out as plain dicts. Every call has a timeout
(REQUEST_TIMEOUT_SECONDS) and is retried with exponential backoff on 429, 5xx, timeouts and connection errors,
waiting at least what a Retry-After header asks for (as client-go's rest client does); other errors are raised.
"""

from __future__ import annotations

import asyncio
import collections
import datetime
import functools
import json
import logging
import os
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, TypeVar

import aiohttp
from kubernetes_asyncio import client, config
from kubernetes_asyncio.client.rest import ApiException, RESTResponse
from kubernetes_asyncio.config.config_exception import ConfigException

from zoo_operator import guards, schema

log = logging.getLogger(__name__)
Obj = dict[str, Any]
_MERGE = "application/merge-patch+json"
_JSON_PATCH = "application/json-patch+json"
_STRATEGIC = "application/strategic-merge-patch+json"
_api_client: client.ApiClient | None = None
_stream_api_client: client.ApiClient | None = None
STREAM_CONNECTIONS = 4096
REQUEST_TIMEOUT_SECONDS = 30.0
RETRIES = 5
RETRY_BASE_SECONDS = 0.2
RETRY_MAX_SECONDS = 10.0
RETRY_AFTER_MAX_SECONDS = 30.0
T = TypeVar("T")
# Requests sent through `call`, by their first word (create, patch, delete, log, follow, ...): benchmarks/scale.py
# reads them to count the operator's requests per idle minute (kopf's own watches are not counted here).
REQUESTS: collections.Counter[str] = collections.Counter()
# Failed tries of `call`, by HTTP status ("429", "409", "500", ...) or error class ("TimeoutError"), retried or not:
# the benchmark's answer to "API errors and throttling" (README "Scale", 300 jobs at once).
FAILURES: collections.Counter[str] = collections.Counter()
# What an API call may raise besides programming errors (after its retries).
ERRORS: tuple[type[BaseException], ...] = (ApiException, TimeoutError, aiohttp.ClientError, OSError)


class MissingAPI(Exception):
    """The cluster does not serve a resource (e.g. Volcano's PodGroup CRD is not installed)."""


class Refused(Exception):
    """The apiserver refused to create a pod: 403 (Pod Security, ResourceQuota, RBAC) or 422 (a webhook, a
    LimitRange); `message` is the apiserver's own."""

    def __init__(self, name: str, code: int, message: str) -> None:
        super().__init__(f"{name}: {code}: {message}")
        self.name, self.code, self.message = name, code, message


class NotOwned(Exception):
    """A write by name was refused because the object holding the name is not the one it was meant for (another
    owner's, or one that replaced it between the read and the write: guards.py, issue 24)."""

    def __init__(self, kind: str, name: str, why: str) -> None:
        super().__init__(f"{kind} {name}: {why}")
        self.kind, self.name = kind, name


def _message(err: ApiException) -> str:
    """The `message` of a Status body, else the reason."""
    try:
        body = json.loads(err.body or "")
    except (TypeError, ValueError):
        body = None
    if isinstance(body, dict) and body.get("message"):
        return str(body["message"])
    return str(err.reason or err.status)


async def _client() -> client.ApiClient:
    global _api_client
    if _api_client is None:
        await _load_config()
        _api_client = client.ApiClient()
    return _api_client


async def _load_config() -> None:
    try:
        config.load_incluster_config()
    except ConfigException:
        # KUBECONFIG as it is now (the client library reads it once, when it is imported).
        await config.load_kube_config(
            config_file=_kubeconfig or os.environ.get("KUBECONFIG") or None, context=_context
        )


async def _stream_client() -> client.ApiClient:
    """A second client for followed logs: each holds a connection for as long as the pod runs, so they get a
    pool of their own and never starve the requests of the passes (100 connections)."""
    global _stream_api_client
    if _stream_api_client is None:
        await _client()
        conf = client.Configuration.get_default_copy()
        conf.connection_pool_maxsize = STREAM_CONNECTIONS
        _stream_api_client = client.ApiClient(conf)
    return _stream_api_client


async def close() -> None:
    """Close the shared HTTP sessions (operator shutdown)."""
    global _api_client, _stream_api_client
    for api in (_api_client, _stream_api_client):
        if api is not None:
            await api.close()
    _api_client = _stream_api_client = None


def retry_delay(attempt: int, err: BaseException | None = None) -> float | None:
    """Seconds to wait before retry number `attempt` (1-based) after `err`, or None if `err` is not retryable."""
    if attempt > RETRIES:
        return None
    if isinstance(err, ApiException):
        if err.status != 429 and not (err.status or 0) >= 500:
            return None
    elif not isinstance(err, (TimeoutError, aiohttp.ClientError, ConnectionError)):
        return None
    delay = min(RETRY_BASE_SECONDS * 2 ** (attempt - 1), RETRY_MAX_SECONDS) * (0.5 + random.random() / 2)
    headers = getattr(err, "headers", None) or {}
    try:
        delay = max(delay, min(float(headers.get("Retry-After", 0)), RETRY_AFTER_MAX_SECONDS))
    except (TypeError, ValueError):
        pass
    return delay


async def unparsed(make: Callable[[], Awaitable[Any]]) -> None:
    """Send a write whose answer the operator does not need, without turning it into client model objects
    (for a pod that costs milliseconds of CPU per request): `make` must pass `_preload_content=False`. Raises
    ApiException on an error status, as the parsing path would."""
    resp = await make()
    if not hasattr(resp, "release"):  # a stand-in that already answered
        return
    try:
        data = await resp.read()
    finally:
        resp.release()
    if not 200 <= resp.status <= 299:
        raise ApiException(http_resp=RESTResponse(resp, data))


async def call(make: Callable[[], Awaitable[T]], what: str = "request") -> T:
    """Run one API request (made fresh for each try) with a timeout and retries; see the module doc."""
    attempt = 0
    while True:
        attempt += 1
        REQUESTS[what.split(" ", 1)[0]] += 1
        try:
            async with asyncio.timeout(REQUEST_TIMEOUT_SECONDS):
                return await make()
        except (ApiException, TimeoutError, aiohttp.ClientError, ConnectionError) as err:
            FAILURES[str(err.status) if isinstance(err, ApiException) else type(err).__name__] += 1
            delay = retry_delay(attempt, err)
            if delay is None:
                raise
            log.debug("%s failed (%s); retry %d in %.2f s", what, err, attempt, delay)
            await asyncio.sleep(delay)


class CoreApi:
    """The CoreV1Api methods the operator calls, with the generated methods' names, arguments, paths and answer
    types, sent through the same ApiClient.call_api. The generated CoreV1Api module is 2.6 MB of source and
    36 MiB of the operator's memory once imported (README "Scale"); this is the part of it the operator uses."""

    def __init__(self, api_client: client.ApiClient) -> None:
        self.api_client = api_client

    def __getattr__(self, name: str) -> Any:
        # A CoreV1Api method not written here (a call added since): the generated one, imported on first use.
        # Add it here, with its row in tests/unit/test_lazy_client.py, to keep the memory.
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(client.CoreV1Api(self.api_client), name)

    def _send(
        self,
        method: str,
        path: str,
        answer: str | None,
        *,
        path_params: dict[str, str],
        query: dict[str, Any] | None = None,
        body: Any = None,
        **opts: Any,
    ) -> Awaitable[Any]:
        headers = {"Accept": "application/json"}
        content_type = opts.pop("_content_type", None)
        if method == "PATCH":  # (other bodies go as JSON: the REST layer's default, as generated)
            # without a content type: JSON patch for a list, strategic merge for a dict (as generated)
            default = "application/json-patch+json" if isinstance(body, list) else _STRATEGIC
            headers["Content-Type"] = content_type or default
        unknown = set(opts) - {"_preload_content", "_request_timeout"}
        if unknown:
            raise TypeError(f"kube.CoreApi: unexpected arguments {sorted(unknown)}")
        return self.api_client.call_api(
            path,
            method,
            path_params,
            [(k, v) for k, v in (query or {}).items() if v is not None],
            headers,
            body=body,
            response_types_map={200: answer, 201: answer, 202: answer},
            auth_settings=["BearerToken"],
            _return_http_data_only=True,
            _preload_content=opts.get("_preload_content", True),
            _request_timeout=opts.get("_request_timeout"),
        )

    def _create(self, plural: str, answer: str, namespace: str, body: Any, **opts: Any) -> Awaitable[Any]:
        where = {"namespace": namespace}
        return self._send(
            "POST", f"/api/v1/namespaces/{{namespace}}/{plural}", answer, path_params=where, body=body, **opts
        )

    def create_namespaced_pod(self, namespace: str, body: Any, **opts: Any) -> Awaitable[Any]:
        return self._create("pods", "V1Pod", namespace, body, **opts)

    def create_namespaced_service(self, namespace: str, body: Any, **opts: Any) -> Awaitable[Any]:
        return self._create("services", "V1Service", namespace, body, **opts)

    def create_namespaced_config_map(self, namespace: str, body: Any, **opts: Any) -> Awaitable[Any]:
        return self._create("configmaps", "V1ConfigMap", namespace, body, **opts)

    def create_namespaced_event(self, namespace: str, body: Any, **opts: Any) -> Awaitable[Any]:
        return self._create("events", "CoreV1Event", namespace, body, **opts)

    def _one(
        self, method: str, plural: str, answer: str | None, name: str, namespace: str, **opts: Any
    ) -> Any:
        where = {"name": name, "namespace": namespace}
        path = f"/api/v1/namespaces/{{namespace}}/{plural}/{{name}}"
        return self._send(method, path, answer, path_params=where, **opts)

    def patch_namespaced_config_map(
        self, name: str, namespace: str, body: Any, **opts: Any
    ) -> Awaitable[Any]:
        return self._one("PATCH", "configmaps", "V1ConfigMap", name, namespace, body=body, **opts)

    def patch_namespaced_pod(self, name: str, namespace: str, body: Any, **opts: Any) -> Awaitable[Any]:
        return self._one("PATCH", "pods", "V1Pod", name, namespace, body=body, **opts)

    def read_namespaced_pod(self, name: str, namespace: str, **opts: Any) -> Awaitable[Any]:
        return self._one("GET", "pods", "V1Pod", name, namespace, **opts)

    def delete_namespaced_pod(
        self, name: str, namespace: str, body: Any = None, **opts: Any
    ) -> Awaitable[Any]:
        return self._one("DELETE", "pods", "V1Pod", name, namespace, body=body, **opts)

    def read_namespaced_pod_log(
        self,
        name: str,
        namespace: str,
        container: str | None = None,
        follow: bool | None = None,
        tail_lines: int | None = None,
        timestamps: bool | None = None,
        **opts: Any,
    ) -> Awaitable[Any]:
        query = {"container": container, "follow": follow, "tailLines": tail_lines, "timestamps": timestamps}
        where = {"name": name, "namespace": namespace}
        path = "/api/v1/namespaces/{namespace}/pods/{name}/log"
        return self._send("GET", path, "str", path_params=where, query=query, **opts)

    def list_namespaced_event(
        self, namespace: str, field_selector: str | None = None, limit: int | None = None, **opts: Any
    ) -> Awaitable[Any]:
        query = {"fieldSelector": field_selector, "limit": limit}
        return self._send(
            "GET",
            "/api/v1/namespaces/{namespace}/events",
            "CoreV1EventList",
            path_params={"namespace": namespace},
            query=query,
            **opts,
        )

    def list_namespaced_pod(
        self, namespace: str, label_selector: str | None = None, **opts: Any
    ) -> Awaitable[Any]:
        return self._send(
            "GET",
            "/api/v1/namespaces/{namespace}/pods",
            "V1PodList",
            path_params={"namespace": namespace},
            query={"labelSelector": label_selector},
            **opts,
        )


async def _core() -> CoreApi:
    return CoreApi(await _client())


async def _custom() -> client.CustomObjectsApi:
    return client.CustomObjectsApi(await _client())


_CORE_CREATE = {
    "Pod": "create_namespaced_pod",
    "Service": "create_namespaced_service",
    "ConfigMap": "create_namespaced_config_map",
}


# Kinds created through the generic (custom-object) API: any group/version, by plural.
_CUSTOM_PLURAL = {"PodGroup": "podgroups", "ResourceClaimTemplate": "resourceclaimtemplates"}


async def create(obj: Obj) -> bool:
    """Create `obj` (Pod, Service, ConfigMap, NetworkPolicy, PodGroup or ResourceClaimTemplate); False if it
    already exists."""
    ns = obj["metadata"]["namespace"]
    kind = obj["kind"]
    core, what = await _core(), f"create {kind} {ns}/{obj['metadata'].get('name')}"
    try:
        if kind in _CORE_CREATE or kind == "NetworkPolicy":
            if kind == "NetworkPolicy":
                make = client.NetworkingV1Api(await _client()).create_namespaced_network_policy
            else:
                make = getattr(core, _CORE_CREATE[kind])
            await call(
                lambda: unparsed(
                    lambda: make(ns, obj, _preload_content=False, _request_timeout=REQUEST_TIMEOUT_SECONDS)
                ),
                what,
            )
        elif kind in _CUSTOM_PLURAL:
            group, version = obj["apiVersion"].split("/")
            custom = await _custom()
            await call(
                lambda: custom.create_namespaced_custom_object(
                    group, version, ns, _CUSTOM_PLURAL[kind], obj, _request_timeout=REQUEST_TIMEOUT_SECONDS
                ),
                what,
            )
        else:
            raise ValueError(f"kube.create: unsupported kind {kind}")
    except ApiException as err:
        if err.status == 409:
            return False
        if err.status in (403, 422) and kind == "Pod":
            raise Refused(str(obj["metadata"].get("name")), int(err.status), _message(err)) from None
        if err.status == 404 and kind == "PodGroup":
            raise MissingAPI(f"{obj['apiVersion']} PodGroup is not served by this cluster") from None
        raise
    return True


async def serves(api_version: str, plural: str) -> bool:
    """Whether the cluster serves the resource `plural` of `api_version` (group/version), read from API
    discovery, which every authenticated user may read (system:discovery)."""
    api = await _client()
    try:
        found = await call(lambda: _get_json(api, f"/apis/{api_version}"), f"discover {api_version}")
    except ApiException as err:
        if err.status == 404:
            return False
        raise
    resources = found.get("resources") if isinstance(found, dict) else None
    return any(isinstance(r, dict) and r.get("name") == plural for r in resources or [])


async def put_config_map(obj: Obj) -> None:
    """Set a ConfigMap's data (keys not in it are kept), creating the ConfigMap if it is gone; only ever the
    ConfigMap whose controller is `obj`'s (issue 24): NotOwned otherwise, also when another one replaced it
    between this read and the write (the patch tests its UID)."""
    found = await read_owned(obj)
    if found is None:
        if not await create(obj):
            raise NotOwned(obj["kind"], obj["metadata"]["name"], "created by someone else meanwhile")
        return
    await patch_config_map_data(found, obj["data"])


async def read_owned(obj: Obj) -> Obj | None:
    """The stored object named like `obj` (ConfigMap), None when there is none; NotOwned when its controller
    ownerReference is not `obj`'s (guards.controller_uid)."""
    meta = obj["metadata"]
    found = await _get_raw(
        f"/api/v1/namespaces/{meta['namespace']}/configmaps/{meta['name']}",
        f"get ConfigMap {meta['namespace']}/{meta['name']}",
    )
    if found is None:
        return None
    want = guards.controller_uid(meta)  # the job's; "" would match any ConfigMap without an owner
    if not want or guards.controller_uid(found.get("metadata") or {}) != want:
        raise NotOwned(obj["kind"], meta["name"], "its controller is not this job")
    return found


async def patch_config_map_data(found: Obj, data: dict[str, str]) -> None:
    """JSON-patch keys into exactly the ConfigMap `found` (read by read_owned): a ConfigMap that has replaced it
    since is refused by the apiserver (422, guards.uid_test) and raises NotOwned; gone is NotOwned too."""
    meta = found["metadata"]
    ns, name, uid = meta["namespace"], meta["name"], str(meta.get("uid") or "")
    core = await _core()
    ops = guards.data_patch(uid, data, bool(found.get("data")))
    try:
        await call(
            lambda: unparsed(
                lambda: core.patch_namespaced_config_map(
                    name,
                    ns,
                    ops,
                    _content_type=_JSON_PATCH,
                    _preload_content=False,
                    _request_timeout=REQUEST_TIMEOUT_SECONDS,
                )
            ),
            f"patch ConfigMap {name}",
        )
    except ApiException as err:
        if err.status == 404:
            raise NotOwned("ConfigMap", name, "gone before the write") from None
        if err.status == 422 and await _replaced(f"/api/v1/namespaces/{ns}/configmaps/{name}", uid):
            raise NotOwned("ConfigMap", name, f"replaced since it was read (UID {uid})") from None
        raise


async def _replaced(path: str, uid: str) -> bool:
    """Whether the object at `path` is gone or has another UID than `uid` (what a 422 from a JSON patch whose
    uid test failed means; the apiserver's message does not say which op failed)."""
    found = await _get_raw(path, f"get {path}")
    return found is None or str((found.get("metadata") or {}).get("uid") or "") != uid


async def delete_pod(namespace: str, name: str, uid: str = "", grace: int | None = None) -> None:
    """Delete a pod; gone already is fine. With `uid`, only that pod (a UID precondition, issue 24): a pod of
    someone else that took the name meanwhile is left alone (409). `grace` 0: at once (issue 23: its node is
    lost and its kubelet would never confirm a graceful delete)."""
    core = await _core()
    body: dict[str, Any] = {"preconditions": {"uid": uid}} if uid else {}
    if grace is not None:
        body["gracePeriodSeconds"] = grace
    extra = {"body": body} if body else {}
    try:
        await call(
            lambda: unparsed(
                lambda: core.delete_namespaced_pod(
                    name,
                    namespace,
                    _preload_content=False,
                    _request_timeout=REQUEST_TIMEOUT_SECONDS,
                    **extra,
                )
            ),
            f"delete Pod {namespace}/{name}",
        )
    except ApiException as err:
        if err.status == 409 and uid:
            log.warning("%s/%s: not deleted: another pod than %s holds the name now", namespace, name, uid)
            return
        if err.status != 404:
            raise


async def pod_log(namespace: str, name: str, tail_lines: int) -> str | None:
    """The last `tail_lines` lines of the pod's worker container, or None if they cannot be read (yet)."""
    core = await _core()
    try:
        text = await call(
            lambda: core.read_namespaced_pod_log(
                name,
                namespace,
                container="worker",
                tail_lines=tail_lines,
                _request_timeout=REQUEST_TIMEOUT_SECONDS,
            ),
            f"log of {namespace}/{name}",
        )
    except (ApiException, TimeoutError, aiohttp.ClientError, ConnectionError) as err:
        log.debug("no log for %s/%s: %s", namespace, name, err)
        return None
    return text if isinstance(text, str) else None


async def follow_log(namespace: str, name: str, tail_lines: int, idle_timeout: float) -> AsyncIterator[str]:
    """The last `tail_lines` lines of the pod's worker container, then each line as it is written.

    Ends when the container ends or the apiserver closes the stream; raises TimeoutError when no line came
    for `idle_timeout` seconds (the caller reconnects), ApiException when the log cannot be read (yet).
    """
    core = CoreApi(await _stream_client())
    resp = await call(
        lambda: core.read_namespaced_pod_log(
            name,
            namespace,
            container="worker",
            follow=True,
            tail_lines=tail_lines,
            _preload_content=False,
            _request_timeout=aiohttp.ClientTimeout(total=None, sock_connect=REQUEST_TIMEOUT_SECONDS),
        ),
        f"follow log of {namespace}/{name}",
    )
    if not 200 <= resp.status < 300:
        # Unread responses are not checked by the client: a container that is not started yet answers 400 with
        # a Status body, which must not pass for a log line.
        body = (await resp.read()).decode("utf-8", "replace")
        resp.release()
        err = ApiException(status=resp.status, reason=resp.reason)
        err.body = body
        raise err
    try:
        while True:
            async with asyncio.timeout(idle_timeout):
                raw = await resp.content.readline()
            if not raw:
                return
            yield raw.decode("utf-8", "replace").rstrip("\r\n")
    finally:
        resp.release()


async def patch_job_status(
    namespace: str, name: str, patch: Obj, uid: str = "", has_status: bool = True
) -> None:
    """Patch the status subresource of a ZooTrainingJob with a top-level merge patch (status.patch_for). With
    `uid`, only that job (issue 24): sent as a JSON patch that tests the UID (guards.status_patch; a merge
    patch's metadata.uid is not honoured on the status subresource), NotOwned when a job of the same name has
    replaced it since the pass read it. `has_status`: the job read had a status (else it is created whole)."""
    custom = await _custom()
    body: Any = guards.status_patch(uid, patch, has_status) if uid else {"status": patch}
    try:
        await call(
            lambda: unparsed(
                lambda: custom.patch_namespaced_custom_object_status(
                    schema.GROUP,
                    schema.VERSION,
                    namespace,
                    schema.PLURAL,
                    name,
                    body,
                    _content_type=_JSON_PATCH if uid else _MERGE,
                    _preload_content=False,
                    _request_timeout=REQUEST_TIMEOUT_SECONDS,
                )
            ),
            f"patch status of {namespace}/{name}",
        )
    except ApiException as err:
        path = f"/apis/{schema.GROUP}/{schema.VERSION}/namespaces/{namespace}/{schema.PLURAL}/{name}"
        if uid and err.status in (404, 422) and await _replaced(path, uid):
            raise NotOwned(schema.KIND, name, f"replaced since the pass read it (UID {uid})") from None
        raise


async def post_event(job: Obj, kind: str, reason: str, message: str) -> None:
    """Post a core/v1 Event about a job (type Normal or Warning); failures are logged, never raised."""
    meta = job.get("metadata") or {}
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    event = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"generateName": f"{meta.get('name', 'job')}.", "namespace": meta.get("namespace")},
        "involvedObject": {
            "apiVersion": f"{schema.GROUP}/{schema.VERSION}",
            "kind": schema.KIND,
            "name": meta.get("name"),
            "namespace": meta.get("namespace"),
            "uid": meta.get("uid"),
        },
        "type": kind,
        "reason": reason,
        "message": message[:1024],
        "source": {"component": "zoo-operator"},
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
    }
    try:
        core = await _core()
        await call(
            lambda: core.create_namespaced_event(
                meta.get("namespace"), event, _request_timeout=REQUEST_TIMEOUT_SECONDS
            ),
            "post event",
        )
    except (ApiException, TimeoutError, aiohttp.ClientError, ConnectionError) as err:
        log.warning(
            "could not post event %s for %s/%s: %s", reason, meta.get("namespace"), meta.get("name"), err
        )


async def delete_job(namespace: str, name: str, uid: str = "") -> None:
    """Delete a ZooTrainingJob (its objects go with it through ownerReferences); gone already is fine. With
    `uid`, only that job (a UID precondition: a job of the same name created since is left alone, 409)."""
    custom = await _custom()
    extra = {"body": {"preconditions": {"uid": uid}}} if uid else {}
    try:
        await call(
            lambda: custom.delete_namespaced_custom_object(
                schema.GROUP,
                schema.VERSION,
                namespace,
                schema.PLURAL,
                name,
                propagation_policy="Background",
                _request_timeout=REQUEST_TIMEOUT_SECONDS,
                **extra,
            ),
            f"delete job {namespace}/{name}",
        )
    except ApiException as err:
        if err.status == 409 and uid:
            log.warning("%s/%s: not deleted: another job than %s holds the name now", namespace, name, uid)
            return
        if err.status != 404:
            raise


async def _coordination() -> client.CoordinationV1Api:
    return client.CoordinationV1Api(await _client())


async def get_lease(namespace: str, name: str) -> Obj | None:
    """A coordination.k8s.io/v1 Lease as a dict, or None when there is none."""
    api, c = await _coordination(), await _client()
    try:
        lease = await call(
            lambda: api.read_namespaced_lease(name, namespace, _request_timeout=REQUEST_TIMEOUT_SECONDS),
            f"get lease {namespace}/{name}",
        )
    except ApiException as err:
        if err.status == 404:
            return None
        raise
    return c.sanitize_for_serialization(lease)


async def create_lease(namespace: str, name: str, spec: Obj) -> bool:
    """Create the Lease with `spec`; False when another replica created it first."""
    api = await _coordination()
    body = {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }
    try:
        await call(
            lambda: api.create_namespaced_lease(namespace, body, _request_timeout=REQUEST_TIMEOUT_SECONDS),
            f"create lease {namespace}/{name}",
        )
    except ApiException as err:
        if err.status == 409:
            return False
        raise
    return True


async def replace_lease(lease: Obj, spec: Obj) -> bool:
    """Replace the Lease's spec, if nobody changed it since it was read (resourceVersion); False otherwise."""
    api = await _coordination()
    meta = lease["metadata"]
    body = {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {
            "name": meta["name"],
            "namespace": meta["namespace"],
            "resourceVersion": meta["resourceVersion"],
        },
        "spec": spec,
    }
    try:
        await call(
            lambda: api.replace_namespaced_lease(
                meta["name"], meta["namespace"], body, _request_timeout=REQUEST_TIMEOUT_SECONDS
            ),
            f"replace lease {meta['namespace']}/{meta['name']}",
        )
    except ApiException as err:
        if err.status == 409:
            return False
        raise
    return True


# Where each kind the operator names is read (issue 24: owners of objects by name), by API group path.
_OWNED_PATHS = {
    "Pod": ("/api/v1", "pods"),
    "Service": ("/api/v1", "services"),
    "ConfigMap": ("/api/v1", "configmaps"),
    "NetworkPolicy": ("/apis/networking.k8s.io/v1", "networkpolicies"),
}
# Kueue's API versions, newest first (v0.17 serves v1beta2 and still v1beta1).
KUEUE_VERSIONS = ("kueue.x-k8s.io/v1beta2", "kueue.x-k8s.io/v1beta1")


async def _get_raw(path: str, what: str) -> Obj | None:
    """GET an object by its path as a plain dict; None when it does not exist (404)."""
    api = await _client()
    try:
        found = await call(lambda: _get_json(api, path), what)
    except ApiException as err:
        if err.status == 404:
            return None
        raise
    return found if isinstance(found, dict) else None


async def get_node(name: str) -> Obj | None:
    """A Node (issue 23: its Ready condition); None when it does not exist; {} (health unknown, no fault) when
    it may not be read (RBAC without the chart's nodes get)."""
    try:
        return await _get_raw(f"/api/v1/nodes/{name}", f"get Node {name}")
    except ApiException as err:
        if err.status != 403:
            raise
        log.warning("Node %s: may not read it (RBAC): lost nodes are not seen", name)
        return {}


class Expired(Exception):
    """A list's continue token or a watch's resourceVersion is too old (410 Gone): list again."""


async def list_pages(path: str, limit: int) -> AsyncIterator[tuple[list[Obj], str]]:
    """A list of `path` (e.g. /api/v1/nodes) in pages of `limit` objects, as plain dicts, each page with the
    list's resourceVersion (one snapshot: a watch from it misses nothing). A page at a time, so a cluster of
    thousands of Nodes is never one answer in memory. Raises Expired, ApiException (403: not allowed)."""
    api = await _client()
    token = ""
    while True:
        query: list[tuple[str, Any]] = [("limit", limit)] + ([("continue", token)] if token else [])
        try:
            page = await call(functools.partial(_get_json, api, path, query), f"list {path}")
        except ApiException as err:
            if err.status == 410:
                raise Expired(path) from err
            raise
        meta = page.get("metadata") or {} if isinstance(page, dict) else {}
        items = page.get("items") or [] if isinstance(page, dict) else []
        yield [i for i in items if isinstance(i, dict)], str(meta.get("resourceVersion") or "")
        token = str(meta.get("continue") or "")
        if not token:
            return


def _get_json(api: client.ApiClient, path: str, query: Sequence[tuple[str, Any]] = ()) -> Awaitable[Any]:
    """GET `path` (with `query`) as plain JSON: a raw object, list page or discovery document."""
    return api.call_api(
        path,
        "GET",
        query_params=list(query),
        header_params={"Accept": "application/json"},
        auth_settings=["BearerToken"],
        response_types_map={200: "object"},
        _return_http_data_only=True,
        _request_timeout=REQUEST_TIMEOUT_SECONDS,
    )


async def watch_events(path: str, resource_version: str, timeout_seconds: int) -> AsyncIterator[Obj]:
    """The watch events ({"type", "object"}) of `path` from `resource_version`, bookmarks included, until the
    apiserver ends the watch after `timeout_seconds`. On the stream client's pool (a watch holds its
    connection). Raises Expired on 410 Gone (an ERROR event or the answer), ApiException on other errors."""
    api = await _stream_client()
    query = [
        ("watch", "true"),
        ("resourceVersion", resource_version),
        ("allowWatchBookmarks", "true"),
        ("timeoutSeconds", timeout_seconds),
    ]
    resp = await call(
        lambda: api.call_api(
            path,
            "GET",
            query_params=query,
            header_params={"Accept": "application/json"},
            auth_settings=["BearerToken"],
            _preload_content=False,
            _request_timeout=aiohttp.ClientTimeout(total=None, sock_connect=REQUEST_TIMEOUT_SECONDS),
        ),
        f"watch {path}",
    )
    try:
        if not 200 <= resp.status < 300:
            err = ApiException(status=resp.status, reason=resp.reason)
            err.body = await resp.read()
            if resp.status == 410:
                raise Expired(path) from err
            raise err
        while True:
            # The apiserver ends the watch itself; a connection that went quiet for longer is dead.
            async with asyncio.timeout(timeout_seconds + REQUEST_TIMEOUT_SECONDS):
                raw = await resp.content.readline()
            if not raw:
                return
            event = json.loads(raw)
            if not isinstance(event, dict):
                continue
            if event.get("type") == "ERROR":
                status = event.get("object") or {}
                if status.get("code") == 410:
                    raise Expired(path)
                err = ApiException(status=status.get("code") or 500, reason=status.get("reason"))
                err.body = json.dumps(status).encode()
                raise err
            yield event
    finally:
        resp.release()


async def get_config_map_data(namespace: str, name: str) -> dict[str, str] | None:
    """A ConfigMap's data, None when it does not exist or may not be read (issue 23: the Ascend device plugin's
    device-info ConfigMaps in kube-system; a chart without that Role just sees no NPU faults)."""
    try:
        found = await _get_raw(f"/api/v1/namespaces/{namespace}/configmaps/{name}", f"get ConfigMap {name}")
    except ApiException as err:
        if err.status != 403:
            raise
        log.warning("%s/%s: may not read it (RBAC): NPU faults are not seen", namespace, name)
        return None
    data = (found or {}).get("data")
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else None


async def controller_uid(obj: Obj) -> str | None:
    """The UID of the controller ownerReference of the object named like `obj` (its kind, apiVersion,
    namespace and name): "" when it has none, None when no such object exists."""
    meta = obj["metadata"]
    kind = obj["kind"]
    if kind in _OWNED_PATHS:
        base, plural = _OWNED_PATHS[kind]
    elif kind in _CUSTOM_PLURAL:  # PodGroup, ResourceClaimTemplate (DRA): the group/version the object names
        base, plural = f"/apis/{obj['apiVersion']}", _CUSTOM_PLURAL[kind]
    else:
        raise ValueError(f"kube.controller_uid: unsupported kind {kind}")
    found = await _get_raw(
        f"{base}/namespaces/{meta['namespace']}/{plural}/{meta['name']}",
        f"get {kind} {meta['namespace']}/{meta['name']}",
    )
    if found is None:
        return None
    refs = (found.get("metadata") or {}).get("ownerReferences") or []
    return next((str(r.get("uid") or "") for r in refs if isinstance(r, dict) and r.get("controller")), "")


async def local_queue_exists(namespace: str, name: str) -> bool | None:
    """Whether Kueue's LocalQueue `name` exists in `namespace`; None when the cluster serves no Kueue API, or
    the operator may not read LocalQueues (an install without that rule: the job is not held for it)."""
    for version in KUEUE_VERSIONS:
        if await serves(version, "localqueues"):
            path = f"/apis/{version}/namespaces/{namespace}/localqueues/{name}"
            try:
                return await _get_raw(path, f"get LocalQueue {namespace}/{name}") is not None
            except ApiException as err:
                if err.status != 403:
                    raise
                log.warning("may not get LocalQueue %s/%s (RBAC): not checked", namespace, name)
                return None
    return None


async def get_job(namespace: str, name: str) -> Obj | None:
    """A ZooTrainingJob as a plain dict, or None when it does not exist (spec.from names another job)."""
    custom = await _custom()
    try:
        obj = await call(
            lambda: custom.get_namespaced_custom_object(
                schema.GROUP,
                schema.VERSION,
                namespace,
                schema.PLURAL,
                name,
                _request_timeout=REQUEST_TIMEOUT_SECONDS,
            ),
            f"get job {namespace}/{name}",
        )
    except ApiException as err:
        if err.status == 404:
            return None
        raise
    return obj if isinstance(obj, dict) else None


async def pod_warnings(namespace: str, pod_name: str) -> list[tuple[str, str]]:
    """(reason, message) of the Warning Events on a pod, oldest first (e.g. the kubelet's FailedMount); [] when
    they cannot be read. Issue 11: a pod stuck in ContainerCreating says why only here."""
    core = await _core()
    try:
        found = await call(
            lambda: core.list_namespaced_event(
                namespace,
                field_selector=f"involvedObject.kind=Pod,involvedObject.name={pod_name},type=Warning",
                limit=50,
                _request_timeout=REQUEST_TIMEOUT_SECONDS,
            ),
            f"list events {namespace}/{pod_name}",
        )
    except (ApiException, TimeoutError, aiohttp.ClientError, ConnectionError) as err:
        log.debug("no events for %s/%s: %s", namespace, pod_name, err)
        return []
    items = sorted(found.items or [], key=lambda e: str(e.last_timestamp or e.event_time or ""))
    return [(str(e.reason or ""), str(e.message or "")) for e in items]


async def annotate_pod(namespace: str, name: str, annotations: dict[str, str], uid: str = "") -> None:
    """Merge annotations into a pod (a pod already gone is fine). With `uid`, only that pod (issue 24): the
    merge patch carries metadata.uid, which is immutable, so another pod that took the name meanwhile is refused
    (422) and left alone."""
    core = await _core()
    meta: Obj = {"annotations": annotations, **({"uid": uid} if uid else {})}
    try:
        await call(
            lambda: unparsed(
                lambda: core.patch_namespaced_pod(
                    name,
                    namespace,
                    {"metadata": meta},
                    _content_type=_MERGE,
                    _preload_content=False,
                    _request_timeout=REQUEST_TIMEOUT_SECONDS,
                )
            ),
            f"patch pod {namespace}/{name}",
        )
    except ApiException as err:
        if err.status == 422 and uid:
            log.warning("%s/%s: not annotated: another pod than %s holds the name now", namespace, name, uid)
            return
        if err.status != 404:
            raise


async def remove_pod_finalizer(namespace: str, name: str, finalizer: str, uid: str = "") -> None:
    """Remove one finalizer from a pod (a JSON patch that tests the pod's UID and the list first, so neither
    another pod that took the name nor a concurrent change is touched; a conflict or a pod already gone is left
    for the next pass). With `uid`, only that pod (issue 24)."""
    core = await _core()
    try:
        pod = await call(
            lambda: core.read_namespaced_pod(name, namespace, _request_timeout=REQUEST_TIMEOUT_SECONDS),
            f"get pod {namespace}/{name}",
        )
        current = list(pod.metadata.finalizers or [])
        if finalizer not in current or (uid and pod.metadata.uid != uid):
            return
        patch = guards.finalizer_patch(str(pod.metadata.uid), current, finalizer)
        await call(
            lambda: core.patch_namespaced_pod(
                name,
                namespace,
                patch,
                _content_type="application/json-patch+json",
                _request_timeout=REQUEST_TIMEOUT_SECONDS,
            ),
            f"patch pod {namespace}/{name}",
        )
    except ApiException as err:
        if err.status not in (404, 409, 422):
            raise


# ---- the Python client (zoo_operator.client, issue 26) ------------------------------------------------------------


def configure(kubeconfig: str | None = None, context: str | None = None) -> None:
    """Use this kubeconfig file and context instead of the defaults (the client's connection settings); takes
    effect before the first request only."""
    global _kubeconfig, _context
    _kubeconfig, _context = kubeconfig, context


_kubeconfig: str | None = None
_context: str | None = None


async def create_job(obj: Obj) -> Obj:
    """Create a ZooTrainingJob; returns it as stored. Errors (409 exists, 422 invalid) are raised."""
    custom = await _custom()
    ns = obj["metadata"].get("namespace") or "default"
    created = await call(
        lambda: custom.create_namespaced_custom_object(
            schema.GROUP, schema.VERSION, ns, schema.PLURAL, obj, _request_timeout=REQUEST_TIMEOUT_SECONDS
        ),
        f"create job {ns}/{obj['metadata'].get('name')}",
    )
    return created if isinstance(created, dict) else {}


async def list_jobs(namespace: str, selector: str = "") -> list[Obj]:
    """ZooTrainingJobs in `namespace` matching the label selector."""
    custom = await _custom()
    out = await call(
        lambda: custom.list_namespaced_custom_object(
            schema.GROUP,
            schema.VERSION,
            namespace,
            schema.PLURAL,
            label_selector=selector,
            _request_timeout=REQUEST_TIMEOUT_SECONDS,
        ),
        f"list jobs in {namespace}",
    )
    return list(out.get("items") or []) if isinstance(out, dict) else []


async def patch_job(namespace: str, name: str, patch: Obj) -> None:
    """Merge-patch a ZooTrainingJob (its spec or metadata)."""
    custom = await _custom()
    await call(
        lambda: unparsed(
            lambda: custom.patch_namespaced_custom_object(
                schema.GROUP,
                schema.VERSION,
                namespace,
                schema.PLURAL,
                name,
                patch,
                _content_type=_MERGE,
                _preload_content=False,
                _request_timeout=REQUEST_TIMEOUT_SECONDS,
            )
        ),
        f"patch job {namespace}/{name}",
    )


async def list_pods(namespace: str, selector: str) -> list[Obj]:
    """Pods matching the label selector, as plain dicts."""
    api = await _client()
    core = CoreApi(api)
    resp = await call(
        lambda: core.list_namespaced_pod(
            namespace,
            label_selector=selector,
            _preload_content=False,
            _request_timeout=REQUEST_TIMEOUT_SECONDS,
        ),
        f"list pods in {namespace}",
    )
    raw: Any = resp  # unparsed (_preload_content=False): the aiohttp response, not a V1PodList
    body = json.loads(await raw.read())
    raw.release()
    return list(body.get("items") or [])


async def pod_log_timestamped(namespace: str, name: str) -> str | None:
    """The whole log of the pod's worker container with RFC 3339 timestamps (`kubectl logs --timestamps`), or
    None when it cannot be read (yet)."""
    core = await _core()
    try:
        text = await call(
            lambda: core.read_namespaced_pod_log(
                name, namespace, container="worker", timestamps=True, _request_timeout=REQUEST_TIMEOUT_SECONDS
            ),
            f"log of {namespace}/{name}",
        )
    except (ApiException, TimeoutError, aiohttp.ClientError, ConnectionError) as err:
        log.debug("no log for %s/%s: %s", namespace, name, err)
        return None
    return text if isinstance(text, str) else None
