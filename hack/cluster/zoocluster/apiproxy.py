"""A TCP forwarder that makes the API server reachable as https://kubernetes.default.svc (port 443) from pods.

Pods learn the real API server address from KUBERNETES_SERVICE_HOST/PORT, but some clients (kopf's own
service-account login among them) always dial `kubernetes.default.svc:443`. Each pod's /etc/hosts maps that name
to a per-cluster loopback address where this forwarder passes the TLS bytes through to the API server, whose
certificate already names kubernetes.default.svc.
"""

from __future__ import annotations

import logging
import socket
import threading

log = logging.getLogger(__name__)


def _pipe(src: socket.socket, dst: socket.socket) -> None:
    """Copy bytes until src ends, then tell dst no more is coming."""
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass
    finally:
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass


class Forwarder:
    """Accepts connections on listen and relays each to target in two threads."""

    def __init__(self, listen: tuple[str, int], target: tuple[str, int]) -> None:
        self.listen = listen
        self.target = target
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)

    def start(self) -> None:
        """Bind and serve in a daemon thread (raises OSError when the address is taken)."""
        self.sock.bind(self.listen)
        self.sock.listen(64)
        threading.Thread(target=self._accept, name="api-proxy", daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._relay, args=(client,), daemon=True).start()

    def _relay(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(self.target, timeout=10)
        except OSError as exc:
            log.warning("api proxy: cannot reach %s: %s", self.target, exc)
            client.close()
            return
        upstream.settimeout(None)
        back = threading.Thread(target=_pipe, args=(upstream, client), daemon=True)
        back.start()
        _pipe(client, upstream)
        back.join()
        client.close()
        upstream.close()
