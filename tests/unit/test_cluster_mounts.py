"""cluster-down leaves host mount points alone while another cluster's container has a mount on them."""

from __future__ import annotations

from pathlib import Path

from zoocluster import controlplane


def test_mount_points_in_use_reads_every_process_mountinfo(tmp_path: Path) -> None:
    proc = tmp_path / "proc"
    (proc / "12").mkdir(parents=True)
    (proc / "12" / "mountinfo").write_text(
        "36 35 98:0 / / rw,noatime master:1 - ext3 /dev/root rw\n"
        "40 36 0:5 /kubelet/pods/u/volumes/kube-api-access /var/run/secrets/kubernetes.io/serviceaccount ro - x y\n")
    (proc / "13").mkdir()
    (proc / "13" / "mountinfo").write_text("41 36 0:6 /data /zoo/my\\040data rw - x y\n")
    (proc / "self").mkdir()  # not a pid: ignored
    (proc / "14").mkdir()    # no mountinfo (a process that just exited): ignored
    assert controlplane.mount_points_in_use(proc) == {"/", "/var/run/secrets/kubernetes.io/serviceaccount",
                                                      "/zoo/my data"}


def test_a_mount_under_a_symlinked_path_counts_as_in_use(tmp_path: Path) -> None:
    # A container asked for /var/run/secrets/...; mountinfo names the resolved /run/secrets/... (/var/run is a
    # symlink to /run on Debian). Removing the directory would detach the token mount of every other cluster's pod.
    real = tmp_path / "run"
    (real / "secrets" / "sa").mkdir(parents=True)
    (tmp_path / "var-run").symlink_to(real)
    asked = str(tmp_path / "var-run" / "secrets" / "sa")
    in_use = {str(real / "secrets" / "sa")}
    assert controlplane.mounted_at(asked, in_use)
    assert controlplane.mounted_at(str(tmp_path / "var-run" / "secrets"), in_use)  # a parent of a mount
    assert not controlplane.mounted_at(str(tmp_path / "var-run" / "other"), in_use)
