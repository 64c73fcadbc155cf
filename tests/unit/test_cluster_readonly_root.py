"""readOnlyRootFilesystem in the local kubelet: writes outside a container's volumes fail with EROFS (issue 24).

A real runtime (runc, from the OCI spec's root.readonly that containerd sets from the field) remounts the image's
root file system read-only and leaves the volumes and its own /proc, /dev and /sys writable. The local kubelet's
containers see the host's file system, so the shim remounts its mounts read-only in the container's own mount
namespace: a rank that writes a path no volume holds fails here as it would on a node.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from zoocluster import mountplan
from zoocluster.runtime import PACKAGE_PARENT

HOSTS = {"source": "/state/hosts", "target": "/etc/hosts", "readOnly": False, "file": True}


def test_every_mount_but_the_volumes_and_the_runtime_mounts_turns_read_only() -> None:
    mounts = [
        HOSTS,
        {"source": "/state/tmp", "target": "/tmp", "readOnly": False, "file": False},
        {"source": "/state/data", "target": "/zoo/data", "readOnly": True, "file": False},
        {
            "source": "/repo/.venv",
            "target": "/tmp/repo/.venv",
            "readOnly": False,
            "file": False,
            "image": True,
        },
    ]
    points = [
        "/",
        "/proc",
        "/proc/sys/fs/binfmt_misc",
        "/dev/shm",
        "/sys/fs/cgroup",
        "/run",
        "/tmp",
        "/tmp/x",
    ]
    points += ["/etc/hosts", "/zoo/data", "/tmp/repo/.venv", "/run", "/home/my\\040dir"]
    got = mountplan.read_only_points([mountplan.unescape_mount_point(p) for p in points], mounts)
    # The image directories a volume hides are the image: read-only. A read-only volume stays so (listed: it is
    # already read-only and skipped). Writable volumes, the kubelet's files and what lies under them stay.
    assert got == ["/", "/run", "/zoo/data", "/home/my dir", "/tmp/repo/.venv"]


def _shim(tmp_path: Path, read_only: bool) -> subprocess.CompletedProcess[str]:
    volume, target = tmp_path / "volume", tmp_path / "ctr" / "scratch"
    volume.mkdir()
    script = (
        "import sys\n"
        f"open({str(target / 'ok')!r}, 'w').write('x')\n"
        "try:\n"
        f"    open({str(tmp_path / 'outside')!r}, 'w').write('x')\n"
        "except OSError as exc:\n"
        "    print('refused', exc.strerror)\n"
        "    sys.exit(3)\n"
    )
    spec = {
        "mounts": [{"source": str(volume), "target": str(target), "readOnly": False, "file": False}],
        "hostname": "rank-0",
        "workingDir": "/",
        "readOnlyRootFilesystem": read_only,
        "argv": [sys.executable, "-c", script],
        "env": {"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
        "createdLog": str(tmp_path / "created"),
    }
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    cmd = ["unshare", "--mount", "--uts", "--propagation", "private", "--"]
    cmd += [sys.executable, "-m", "zoocluster.shim", str(tmp_path / "spec.json")]
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "PYTHONPATH": PACKAGE_PARENT}
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("unshare"), reason="the local kubelet runs as root")
@pytest.mark.parametrize("read_only", [True, False])
def test_a_write_outside_the_volumes_fails_with_erofs_only_when_the_root_is_read_only(
    tmp_path: Path, read_only: bool
) -> None:
    done = _shim(tmp_path, read_only)
    assert (tmp_path / "volume" / "ok").read_text() == "x", done.stderr  # the volume is writable either way
    if read_only:
        assert (done.returncode, done.stdout.strip()) == (3, "refused Read-only file system"), done.stderr
        assert not (tmp_path / "outside").exists()
    else:
        assert done.returncode == 0, done.stdout + done.stderr
        assert (tmp_path / "outside").read_text() == "x"
    (tmp_path / "probe").write_text("host")  # only the container's namespace was read-only
