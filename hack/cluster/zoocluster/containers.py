"""What one container instance is made of: its base environment and the mounts of its namespace.

Pure functions; the pod worker turns their result into a process (runtime.py) that the shim sets up.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from zoocluster import devices, hosts, mountplan
from zoocluster.images import Image

TERMINATION_LOG = "/dev/termination-log"
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def base_env(
    image: Image,
    pod: dict[str, Any],
    api_host: str,
    api_port: int,
    device_ids: list[int],
    simulate: bool = True,
    dra: bool = False,
) -> dict[str, str]:
    """The environment before the container's own env: PATH of the image, HOSTNAME, the API server address
    (the real one: ClusterIPs are not routable here) and, on Ascend nodes, the devices the pod holds."""
    env = {
        "PATH": f"{image.root}/bin:{SYSTEM_PATH}",
        "HOME": "/root",
        "HOSTNAME": hosts.pod_hostname(pod),
        "KUBERNETES_SERVICE_HOST": api_host,
        "KUBERNETES_SERVICE_PORT": str(api_port),
        "KUBERNETES_SERVICE_PORT_HTTPS": str(api_port),
        "KUBERNETES_PORT": f"tcp://{api_host}:{api_port}",
        **image.env,
    }
    env.update(devices.container_env(device_ids, simulate, dra))
    return env


def mounts(
    pod: dict[str, Any],
    container: dict[str, Any],
    volume_path: Callable[[dict[str, Any]], Path],
    hosts_file: Path,
    message_file: Path,
    image_dirs: Sequence[Path] = (),
    device_dir: Path | None = None,
) -> list[dict[str, Any]]:
    """The bind mounts of a container in mounting order (mountplan.plan): /etc/hosts, its termination-message
    file, its volumeMounts, and the image directories (image_dirs) that a volume would otherwise hide."""
    own: list[dict[str, Any]] = [
        {"source": str(hosts_file), "target": "/etc/hosts", "readOnly": False, "file": True},
        {
            "source": str(message_file),
            "target": container.get("terminationMessagePath") or TERMINATION_LOG,
            "readOnly": False,
            "file": True,
        },
    ]
    if device_dir is not None:  # only the pod's own fake NPU device files (devices.write_device_files)
        own.append({"source": str(device_dir), "target": devices.DEVICE_DIR, "readOnly": True, "file": False})
    out: list[dict[str, Any]] = []
    by_name = {v["name"]: v for v in pod["spec"].get("volumes") or []}
    for vm in container.get("volumeMounts") or []:
        if vm["name"] not in by_name:
            raise ValueError(f"volumeMounts[{vm['name']}]: the pod has no volume of that name")
        source = volume_path(by_name[vm["name"]])
        if vm.get("subPath"):
            source = source / vm["subPath"]
        out.append(
            {
                "source": str(source),
                "target": vm["mountPath"],
                "readOnly": bool(vm.get("readOnly")),
                "file": source.is_file(),
            }
        )
    return mountplan.plan(own, out, image_dirs)
