"""Pod volumes on disk: each volume is a per-pod directory that the container's mount namespace binds in.

ConfigMap, Secret, downward-API and projected volumes are written like a real kubelet's atomic writer: the
files live in a timestamped directory reached through the `..data` symlink, and each visible name is a symlink
through `..data`; an update writes a new directory and renames a new `..data` over the old one, so a reader
sees either the old or the new set of files, and a directory bind mount sees updates.
"""

from __future__ import annotations

import base64
import os
import shutil
import time
from pathlib import Path
from typing import Any

from zoocluster.envvars import ConfigError, Lookup, field_value
from zoocluster.kubeapi import ApiError, Client
from zoocluster.propagation import VolumeClock


def write_payload(target: Path, files: dict[str, bytes], mode: int = 0o644) -> bool:
    """Atomically replace the files shown in target (relative paths -> content); False when nothing changed."""
    target.mkdir(parents=True, exist_ok=True)
    data_link = target / "..data"
    if data_link.is_symlink():
        current = target / os.readlink(data_link)
        if _read_tree(current) == files:
            return False
    stamp = target / f"..{time.strftime('%Y_%m_%d_%H_%M_%S')}.{time.monotonic_ns()}"
    stamp.mkdir()
    for rel, content in files.items():
        path = stamp / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        path.chmod(mode)
    old = os.readlink(data_link) if data_link.is_symlink() else None
    tmp_link = target / "..data_tmp"
    if tmp_link.is_symlink():
        tmp_link.unlink()
    os.symlink(stamp.name, tmp_link)
    os.replace(tmp_link, data_link)
    tops = {rel.split("/", 1)[0] for rel in files}
    for top in tops:
        link = target / top
        if not link.is_symlink():
            os.symlink(f"..data/{top}", link)
    for entry in target.iterdir():
        if not entry.name.startswith("..") and entry.name not in tops and entry.is_symlink():
            entry.unlink()
    if old and old != stamp.name:
        shutil.rmtree(target / old, ignore_errors=True)
    return True


def _read_tree(root: Path) -> dict[str, bytes]:
    out = {}
    for path in root.rglob("*"):
        if path.is_file():
            out[str(path.relative_to(root))] = path.read_bytes()
    return out


def _select(data: dict[str, bytes], items: list[dict[str, Any]] | None, what: str) -> dict[str, bytes]:
    """Key -> file mapping of a config map or secret, honouring `items` (key -> path)."""
    if not items:
        return dict(data)
    out = {}
    for item in items:
        if item["key"] not in data:
            raise ConfigError(f"{what}: key {item['key']!r} not found")
        out[item["path"]] = data[item["key"]]
    return out


def _decoded(obj: dict[str, Any], secret: bool) -> dict[str, bytes]:
    out = {k: base64.b64decode(v) for k, v in (obj.get("binaryData") or {}).items()}
    for k, v in (obj.get("data") or {}).items():
        out[k] = base64.b64decode(v) if secret else v.encode()
    return out


class PodVolumes:
    """Materialises and refreshes the volumes of one pod under pod_dir/volumes."""

    TOKEN_REFRESH = 0.8  # re-request a token after this fraction of its lifetime

    def __init__(
        self,
        pod_dir: Path,
        client: Client,
        configmaps: Lookup,
        secrets: Lookup,
        node_files: dict[str, Path] | None = None,
        clock: VolumeClock | None = None,
    ) -> None:
        self.root = pod_dir / "volumes"
        # When an updated ConfigMap/Secret reaches this pod's volumes (propagation.py); None: at once.
        self.clock = clock
        # hostPaths that exist on this (fake) node only, e.g. an Ascend node's driver (devices.node_files).
        self.node_files = node_files or {}
        self.client = client
        self.configmaps = configmaps
        self.secrets = secrets
        self._tokens: dict[str, tuple[bytes, float]] = {}  # key -> (token, refresh at monotonic time)

    def host_path(self, volume: dict[str, Any]) -> Path:
        """Where the volume's files are on the host."""
        if "hostPath" in volume:
            path = volume["hostPath"]["path"]
            return self.node_files.get(path.rstrip("/") or "/", Path(path))
        return self.root / volume["name"]

    def sync(self, pod: dict[str, Any], pod_ip: str, host_ip: str) -> None:
        """Create or refresh every volume; raise ConfigError naming what is missing or unsupported."""
        for volume in pod["spec"].get("volumes") or []:
            try:
                self._sync_one(pod, volume, pod_ip, host_ip)
            except ConfigError as exc:
                # The words of a real kubelet's FailedMount Event: the operation generator wraps the plugin's
                # error as `MountVolume.SetUp failed for volume "<name>" : <error>` (kubernetes
                # pkg/volume/util/operationexecutor/operation_generator.go, GenerateMountVolumeFunc).
                raise ConfigError(f'MountVolume.SetUp failed for volume "{volume["name"]}" : {exc}') from exc

    def _sync_one(self, pod: dict[str, Any], vol: dict[str, Any], pod_ip: str, host_ip: str) -> None:
        ns, name = pod["metadata"]["namespace"], vol["name"]
        target = self.host_path(vol)
        if "emptyDir" in vol:
            target.mkdir(parents=True, exist_ok=True)
        elif "hostPath" in vol:
            kind = vol["hostPath"].get("type") or ""
            if kind == "DirectoryOrCreate":
                target.mkdir(parents=True, exist_ok=True)
            elif kind == "FileOrCreate" and not target.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                target.touch()
            elif not target.exists() and kind:
                # kubernetes pkg/volume/hostpath/host_path.go typeMatchedOrError: "hostPath %s doesn't exist".
                raise ConfigError(f"hostPath {target} doesn't exist")
        elif "configMap" in vol:
            files = self._object_files(ns, vol["configMap"], secret=False)
            if files is not None:
                self._write_when_due(name, target, files, _mode(vol["configMap"]))
        elif "secret" in vol:
            ref = {**vol["secret"], "name": vol["secret"].get("secretName", "")}
            files = self._object_files(ns, ref, secret=True)
            if files is not None:
                self._write_when_due(name, target, files, _mode(vol["secret"], 0o644))
        elif "downwardAPI" in vol:
            write_payload(target, self._downward(pod, vol["downwardAPI"].get("items") or [], pod_ip, host_ip))
        elif "projected" in vol:
            self._write_when_due(
                name, target, self._projected(pod, vol["projected"], pod_ip, host_ip), _mode(vol["projected"])
            )
        else:
            kinds = sorted(k for k in vol if k != "name")
            raise ConfigError(f"volume {name}: type {kinds} is not supported by the local kubelet")

    def _write_when_due(self, name: str, target: Path, files: dict[str, bytes], mode: int) -> None:
        """Write a ConfigMap/Secret/projected volume: the first time at once, an update when the node's resync
        would deliver it (propagation.VolumeClock)."""
        if self.clock is not None:
            due = self.clock.offer(name, files, time.monotonic())
            if due is None:
                return
            files = due
        write_payload(target, files, mode)

    def _object_files(self, ns: str, ref: dict[str, Any], secret: bool) -> dict[str, bytes] | None:
        # A real kubelet says `configmap "<name>" not found` / `secret "<name>" not found` (the API's NotFound).
        what = f'{"secret" if secret else "configmap"} "{ref.get("name")}"'
        obj = (self.secrets if secret else self.configmaps)(ns, ref.get("name", ""))
        if obj is None:
            if ref.get("optional"):
                return {}
            raise ConfigError(f"{what} not found")
        return _select(_decoded(obj, secret), ref.get("items"), what)

    def _downward(
        self, pod: dict[str, Any], items: list[dict[str, Any]], pod_ip: str, host_ip: str
    ) -> dict[str, bytes]:
        out = {}
        for item in items:
            if "fieldRef" in item:
                out[item["path"]] = field_value(pod, item["fieldRef"]["fieldPath"], pod_ip, host_ip).encode()
        return out

    def _projected(
        self, pod: dict[str, Any], spec: dict[str, Any], pod_ip: str, host_ip: str
    ) -> dict[str, bytes]:
        ns = pod["metadata"]["namespace"]
        files: dict[str, bytes] = {}
        for src in spec.get("sources") or []:
            if "serviceAccountToken" in src:
                tok = src["serviceAccountToken"]
                files[tok["path"]] = self._token(pod, tok)
            elif "configMap" in src:
                files.update(self._object_files(ns, src["configMap"], secret=False) or {})
            elif "secret" in src:
                files.update(self._object_files(ns, src["secret"], secret=True) or {})
            elif "downwardAPI" in src:
                files.update(self._downward(pod, src["downwardAPI"].get("items") or [], pod_ip, host_ip))
        return files

    def _token(self, pod: dict[str, Any], tok: dict[str, Any]) -> bytes:
        """A bound service-account token from the TokenRequest API, cached until most of its life is used."""
        key = f"{tok.get('audience', '')}/{tok.get('expirationSeconds', 3607)}"
        cached = self._tokens.get(key)
        if cached and time.monotonic() < cached[1]:
            return cached[0]
        meta = pod["metadata"]
        sa = pod["spec"].get("serviceAccountName") or "default"
        lifetime = int(tok.get("expirationSeconds") or 3607)
        body: dict[str, Any] = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {
                "expirationSeconds": lifetime,
                "boundObjectRef": {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "name": meta["name"],
                    "uid": meta["uid"],
                },
            },
        }
        if tok.get("audience"):
            body["spec"]["audiences"] = [tok["audience"]]
        try:
            answer = self.client.create(
                f"/api/v1/namespaces/{meta['namespace']}/serviceaccounts/{sa}/token", body
            )
        except ApiError as exc:
            raise ConfigError(f"service account token for {meta['namespace']}/{sa}: {exc}") from exc
        token = answer["status"]["token"].encode()
        self._tokens[key] = (token, time.monotonic() + lifetime * self.TOKEN_REFRESH)
        return token


def _mode(spec: dict[str, Any], default: int = 0o644) -> int:
    return int(spec.get("defaultMode") or default)
