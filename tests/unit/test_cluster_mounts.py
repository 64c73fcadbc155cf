"""cluster-down leaves host mount points alone while another cluster's container has a mount on them."""

from __future__ import annotations

from pathlib import Path

from zoocluster import controlplane


def test_mount_points_in_use_reads_every_process_mountinfo(tmp_path: Path) -> None:
    proc = tmp_path / "proc"
    (proc / "12").mkdir(parents=True)
    (proc / "12" / "mountinfo").write_text(
        "36 35 98:0 / / rw,noatime master:1 - ext3 /dev/root rw\n"
        "40 36 0:5 /kubelet/pods/u/volumes/kube-api-access /var/run/secrets/kubernetes.io/serviceaccount ro - x y\n"
    )
    (proc / "13").mkdir()
    (proc / "13" / "mountinfo").write_text("41 36 0:6 /data /zoo/my\\040data rw - x y\n")
    (proc / "self").mkdir()  # not a pid: ignored
    (proc / "14").mkdir()  # no mountinfo (a process that just exited): ignored
    assert controlplane.mount_points_in_use(proc) == {
        "/",
        "/var/run/secrets/kubernetes.io/serviceaccount",
        "/zoo/my data",
    }


def test_cluster_down_keeps_a_mount_point_another_cluster_uses_through_a_symlink(tmp_path: Path) -> None:
    # Debian: /var/run -> /run. A container of another cluster shows its token mount as /run/secrets/...
    # while this cluster logged the path it created as /var/run/secrets/...: removing it detached that mount.
    run = tmp_path / "run"
    (run / "secrets" / "sa").mkdir(parents=True)
    (tmp_path / "var").mkdir()
    (tmp_path / "var" / "run").symlink_to(run)
    logged = str(tmp_path / "var" / "run" / "secrets" / "sa")
    in_use = {str(run / "secrets" / "sa")}
    assert controlplane.mounted_at_or_below(logged, in_use)
    assert controlplane.mounted_at_or_below(str(tmp_path / "var" / "run" / "secrets"), in_use)
    assert not controlplane.mounted_at_or_below(str(tmp_path / "var" / "run" / "other"), in_use)
