"""A small HTTPS client for the Kubernetes API: JSON dicts in and out, list+watch, mutual TLS.

The kubelet needs a handful of verbs on a few resources; plain dicts keep it free of client libraries.
"""

from __future__ import annotations

import http.client
import json
import ssl
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any


class ApiError(Exception):
    """A non-2xx answer of the API server."""

    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"HTTP {status}: {body[:300]}")
        self.status = status
        self.body = body


@dataclass(frozen=True)
class Credentials:
    """Where the API server is and how to authenticate to it (files on disk)."""

    host: str
    port: int
    ca_file: str
    cert_file: str
    key_file: str


class Client:
    """Thread-safe API client; every thread keeps its own keep-alive connection."""

    def __init__(self, creds: Credentials, timeout: float = 30.0) -> None:
        self.creds = creds
        self.timeout = timeout
        self._ctx = ssl.create_default_context(cafile=creds.ca_file)
        self._ctx.load_cert_chain(creds.cert_file, creds.key_file)
        self._local = threading.local()

    def _connection(self, timeout: float | None) -> http.client.HTTPSConnection:
        return http.client.HTTPSConnection(
            self.creds.host, self.creds.port, context=self._ctx, timeout=timeout
        )

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        content_type: str = "application/json",
        query: dict[str, Any] | None = None,
    ) -> Any:
        """Send one request and return the decoded JSON answer; raise ApiError on a non-2xx status."""
        if query:
            path = f"{path}?{urllib.parse.urlencode(query)}"
        data = None if body is None else json.dumps(body).encode()
        headers = {"Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = content_type
        for attempt in (0, 1):
            conn = getattr(self._local, "conn", None)
            if conn is None:
                conn = self._local.conn = self._connection(self.timeout)
            try:
                conn.request(method, path, body=data, headers=headers)
                resp = conn.getresponse()
                raw = resp.read()
            except (OSError, http.client.HTTPException):
                # A keep-alive connection the server closed: reconnect once, then give up.
                conn.close()
                self._local.conn = None
                if attempt:
                    raise
                continue
            text = raw.decode("utf-8", "replace")
            if resp.status >= 300:
                raise ApiError(resp.status, text)
            return json.loads(text) if text else None
        raise AssertionError("unreachable")

    def get(self, path: str, **query: Any) -> Any:
        """GET a path."""
        return self.request("GET", path, query=query or None)

    def create(self, path: str, body: Any) -> Any:
        """POST an object to a collection path."""
        return self.request("POST", path, body)

    def merge_patch(self, path: str, patch: Any) -> Any:
        """PATCH with a JSON merge patch (lists replaced whole)."""
        return self.request("PATCH", path, patch, "application/merge-patch+json")

    def strategic_patch(self, path: str, patch: Any) -> Any:
        """PATCH with a strategic merge patch (lists merged by their keys, e.g. conditions by type)."""
        return self.request("PATCH", path, patch, "application/strategic-merge-patch+json")

    def delete(self, path: str, body: Any = None) -> Any:
        """DELETE an object (body: DeleteOptions)."""
        return self.request("DELETE", path, body)

    def watch(self, path: str, resource_version: str, timeout_seconds: int = 240) -> Iterator[dict[str, Any]]:
        """Yield watch events ({"type", "object"}) from resource_version until the server ends the stream."""
        query = urllib.parse.urlencode(
            {
                "watch": "1",
                "resourceVersion": resource_version,
                "allowWatchBookmarks": "true",
                "timeoutSeconds": str(timeout_seconds),
            }
        )
        conn = self._connection(timeout_seconds + 30)
        try:
            conn.request("GET", f"{path}?{query}", headers={"Accept": "application/json"})
            resp = conn.getresponse()
            if resp.status >= 300:
                raise ApiError(resp.status, resp.read().decode("utf-8", "replace"))
            while True:
                line = resp.readline()
                if not line:
                    return
                if line.strip():
                    yield json.loads(line)
        finally:
            conn.close()
