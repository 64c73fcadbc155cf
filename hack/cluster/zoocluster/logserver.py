"""The kubelet's HTTPS API, as far as `kubectl logs` needs it: GET /containerLogs/{ns}/{pod}/{container}.

The API server proxies `kubectl logs` here (it dials the node's InternalIP on the kubelet port and presents its
kubelet client certificate, which this server requires). Supported query parameters: follow, tailLines,
sinceSeconds, sinceTime, limitBytes, timestamps, previous.
"""

from __future__ import annotations

import datetime as dt
import http.server
import logging
import ssl
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path

from zoocluster.runtime import ContainerProcess

log = logging.getLogger(__name__)

# (namespace, pod, container, previous) -> (log file, live process or None), or an error string
Finder = Callable[[str, str, str, bool], "tuple[Path, ContainerProcess | None] | str"]


def parse_line(raw: bytes) -> tuple[str, bytes]:
    """Split a stored log line into its timestamp and the text the container wrote (with the newline)."""
    ts, _, rest = raw.partition(b" ")
    _, _, text = rest.partition(b" ")
    return ts.decode(), text


def _since_cutoff(query: dict[str, str]) -> str | None:
    """The earliest timestamp to show, as an RFC 3339 string comparable with the stored ones."""
    if "sinceSeconds" in query:
        t = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=int(query["sinceSeconds"]))
        return t.strftime("%Y-%m-%dT%H:%M:%S")
    if "sinceTime" in query:
        return query["sinceTime"].rstrip("Z")
    return None


def select_lines(lines: list[bytes], query: dict[str, str]) -> list[bytes]:
    """Apply sinceSeconds/sinceTime, tailLines and timestamps to stored lines; output lines as sent."""
    cutoff = _since_cutoff(query)
    out = []
    for raw in lines:
        ts, text = parse_line(raw)
        if cutoff and ts[: len(cutoff)] < cutoff:
            continue
        out.append((ts.encode() + b" " + text) if query.get("timestamps") == "true" else text)
    if "tailLines" in query:
        n = int(query["tailLines"])
        out = out[-n:] if n > 0 else []
    return out


def stream(path: Path, proc: ContainerProcess | None, query: dict[str, str]) -> Iterator[bytes]:
    """The lines to send: what is in the file now, then (follow) new lines until the container has ended."""
    with path.open("rb") as fh:
        lines = fh.readlines()
        pending = b""
        if lines and not lines[-1].endswith(b"\n"):
            pending = lines.pop()
        yield from select_lines(lines, query)
        if query.get("follow") != "true":
            return
        timestamps = query.get("timestamps") == "true"
        while True:
            chunk = fh.readline()
            if chunk:
                pending += chunk
                if pending.endswith(b"\n"):
                    ts, text = parse_line(pending)
                    pending = b""
                    yield (ts.encode() + b" " + text) if timestamps else text
                continue
            if proc is None or proc.logs_closed():
                return
            time.sleep(0.2)


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    finder: Finder

    def log_message(self, format: str, *args: object) -> None:
        log.debug("kubelet api: " + format, *args)

    def _error(self, code: int, message: str) -> None:
        body = message.encode()
        self.send_response(code)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        url = urllib.parse.urlsplit(self.path)
        parts = url.path.strip("/").split("/")
        if url.path in ("/healthz", "/readyz"):
            return self._error(200, "ok")
        if len(parts) != 4 or parts[0] != "containerLogs":
            return self._error(404, f"not found: {url.path}")
        query = {k: v[-1] for k, v in urllib.parse.parse_qs(url.query).items()}
        found = self.finder(parts[1], parts[2], parts[3], query.get("previous") == "true")
        if isinstance(found, str):
            return self._error(400 if "waiting" in found or "previous" in found else 404, found)
        path, proc = found
        if not path.exists():
            return self._error(400, f'container "{parts[3]}" in pod "{parts[2]}" has no log yet')
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        limit = int(query["limitBytes"]) if "limitBytes" in query else None
        sent = 0
        try:
            for line in stream(path, proc, query):
                if limit is not None:
                    line = line[: limit - sent]
                if line:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(line), line))
                    self.wfile.flush()
                    sent += len(line)
                if limit is not None and sent >= limit:
                    break
            self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            pass  # the client (kubectl logs -f) went away


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True


def serve(port: int, cert: str, key: str, client_ca: str, finder: Finder) -> http.server.ThreadingHTTPServer:
    """Start the kubelet API on all addresses (the nodes' InternalIPs are loopback addresses) in a thread."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    ctx.load_verify_locations(client_ca)
    ctx.verify_mode = ssl.CERT_REQUIRED
    handler = type("Handler", (_Handler,), {"finder": staticmethod(finder)})
    server = _Server(("0.0.0.0", port), handler)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, name="kubelet-api", daemon=True).start()
    return server
