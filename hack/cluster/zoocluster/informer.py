"""List+watch caches of API objects (pods, services, config maps, secrets) shared by the kubelet's loops."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from zoocluster.kubeapi import ApiError, Client

log = logging.getLogger(__name__)


def object_key(obj: dict[str, Any]) -> str:
    """The cache key of an object: namespace/name (or name for cluster-scoped objects)."""
    meta = obj["metadata"]
    return f"{meta.get('namespace', '')}/{meta['name']}"


class Informer:
    """Keeps an up-to-date copy of every object under one list path; calls on_change after each change."""

    def __init__(self, client: Client, path: str, on_change: Callable[[], None]) -> None:
        self.client = client
        self.path = path
        self.on_change = on_change
        self.synced = threading.Event()
        self._items: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"informer{path}", daemon=True)

    def start(self) -> None:
        """Start listing and watching in a background thread."""
        self._thread.start()

    def stop(self) -> None:
        """Ask the thread to stop at its next event or timeout."""
        self._stop.set()

    def items(self) -> list[dict[str, Any]]:
        """A snapshot of all cached objects."""
        with self._lock:
            return list(self._items.values())

    def get(self, namespace: str, name: str) -> dict[str, Any] | None:
        """One cached object, or None."""
        with self._lock:
            return self._items.get(f"{namespace}/{name}")

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                listing = self.client.get(self.path)
                with self._lock:
                    self._items = {object_key(o): o for o in listing.get("items", [])}
                self.synced.set()
                self.on_change()
                self._watch(listing["metadata"]["resourceVersion"])
            except (ApiError, OSError, ValueError) as exc:
                log.warning("informer %s: %s; relisting", self.path, exc)
                time.sleep(1.0)

    def _watch(self, rv: str) -> None:
        while not self._stop.is_set():
            for event in self.client.watch(self.path, rv):
                kind, obj = event["type"], event["object"]
                if kind == "ERROR":
                    # Usually 410 Gone (resource version too old): relist.
                    raise ApiError(int(obj.get("code", 500)), str(obj.get("message")))
                rv = obj["metadata"]["resourceVersion"]
                if kind == "BOOKMARK":
                    continue
                with self._lock:
                    if kind == "DELETED":
                        self._items.pop(object_key(obj), None)
                    else:
                        self._items[object_key(obj)] = obj
                self.on_change()
