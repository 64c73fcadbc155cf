"""The two watches that feed nodehealth.INDEX (issue 25): Nodes, and the ConfigMaps of kube-system (where
MindCluster's device plugin writes `mindx-dl-deviceinfo-<node>`; a watch cannot select names by prefix, so
the others are dropped on arrival, nodehealth.config_map_event).

Each is an informer's loop, after client-go's reflector (k8s.io/client-go/tools/cache/reflector.go
ListAndWatch): list in pages, then watch from the list's resourceVersion with bookmarks, resume from the last
resourceVersion seen when a watch ends or fails, list again on 410 Gone. A watch runs only while passes of
running jobs ask for it (nodehealth.HealthIndex.want) and closes after IDLE_SECONDS without one. A list that
is refused (RBAC without the chart's list/watch) is retried every FORBIDDEN_RETRY_SECONDS; the passes read by
name meanwhile (observe.read_health).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random

from zoo_operator import faults, kube, nodehealth

log = logging.getLogger(__name__)
PAGE = 500  # objects per list page (client-go's reflector default)
# The apiserver ends each watch after this long (client-go picks 5-10 min at random; shorter here so that an
# idle watch closes soon after the last running job ends).
WATCH_SECONDS = 120
IDLE_SECONDS = 300.0  # no pass asked for this long: close the watch, drop what it held
RETRY_SECONDS = 1.0  # first retry after an error, doubling up to RETRY_MAX_SECONDS
RETRY_MAX_SECONDS = 8.0  # below nodehealth.MAX_STALE_SECONDS: a short outage never falls back to reads
FORBIDDEN_RETRY_SECONDS = 300.0
POLL_SECONDS = 1.0  # how often an idle watcher looks whether a pass asked

NODES = "/api/v1/nodes"
CONFIG_MAPS = f"/api/v1/namespaces/{faults.DEVICE_INFO_NAMESPACE}/configmaps"


async def watch(index: nodehealth.HealthIndex, nodes: bool) -> None:
    """Keep one of the index's lists current (nodes, else the device-info ConfigMaps) until cancelled."""
    source = index.nodes if nodes else index.devices
    relist = index.relisted_nodes if nodes else index.relisted_config_maps
    apply = index.node_event if nodes else index.config_map_event
    path = NODES if nodes else CONFIG_MAPS
    version = ""
    delay = RETRY_SECONDS
    while True:
        if index.clock() - source.wanted_at > IDLE_SECONDS:
            if source.listed:
                log.debug("%s: no running job asked for %.0f s; watch closed", path, IDLE_SECONDS)
                index.forget(source)
                version = ""
            await asyncio.sleep(POLL_SECONDS)
            continue
        try:
            if not version or not source.listed:
                items: list[kube.Obj] = []
                async for page, listed_at in kube.list_pages(path, PAGE):
                    version = listed_at
                    if nodes:  # only the Ready condition is kept: drop the page's bodies now
                        items.extend({"metadata": o.get("metadata"), "status": _ready_only(o)} for o in page)
                    else:
                        items.extend(o for o in page if _device_info(o))
                relist(items)
                source.forbidden = False
            source.connected = True
            async for event in kube.watch_events(path, version, WATCH_SECONDS):
                obj = event.get("object") or {}
                version = str((obj.get("metadata") or {}).get("resourceVersion") or version)
                if event.get("type") != "BOOKMARK":
                    apply(str(event.get("type")), obj)
            delay = RETRY_SECONDS  # the apiserver ended the watch: resume from `version` at once
            source.lost(index.clock())
            continue
        except asyncio.CancelledError:
            source.lost(index.clock())
            raise
        except kube.Expired:
            log.debug("%s: resourceVersion %s expired; listing again", path, version)
            version = ""
            source.lost(index.clock())
            continue
        except kube.ERRORS as err:
            source.lost(index.clock())
            if getattr(err, "status", None) == 403:
                if not source.forbidden:
                    log.warning("%s: may not list/watch it (RBAC): reading by name instead", path)
                source.forbidden = True
                source.listed = False
                await asyncio.sleep(FORBIDDEN_RETRY_SECONDS)
                continue
            log.debug("%s: watch failed: %s", path, err)
        except ValueError as err:  # a line that is not JSON: a broken stream
            source.lost(index.clock())
            log.debug("%s: watch failed: %s", path, err)
        await asyncio.sleep(delay * (0.5 + random.random() / 2))
        delay = min(delay * 2, RETRY_MAX_SECONDS)


def _ready_only(obj: kube.Obj) -> dict[str, object]:
    conditions = (obj.get("status") or {}).get("conditions") or []
    return {"conditions": [c for c in conditions if isinstance(c, dict) and c.get("type") == "Ready"]}


def _device_info(obj: kube.Obj) -> bool:
    return faults.device_info_node(str((obj.get("metadata") or {}).get("name") or "")) is not None


async def run(index: nodehealth.HealthIndex = nodehealth.INDEX) -> None:
    """Both watches, until cancelled (the operator's startup starts it, handlers.start)."""
    tasks = [asyncio.ensure_future(watch(index, nodes)) for nodes in (True, False)]
    try:
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
        with contextlib.suppress(BaseException):
            await asyncio.gather(*tasks, return_exceptions=True)
