"""The local kubelet's mount plan: volumes over a parent of the image environment must not hide it."""

from pathlib import Path

from zoocluster.containers import mounts
from zoocluster.images import environment_dependencies, venv_dependencies
from zoocluster.mountplan import host_location, outermost, plan, shadowed

REPO = "/tmp/ci/zoo"
IMAGE_DIRS = [f"{REPO}/.venv", f"{REPO}/operator", "/root/.pyenv/versions/3.11.7"]


def vol(target: str, source: str = "/state/v", read_only: bool = False) -> dict:
    return {"source": source, "target": target, "readOnly": read_only, "file": False}


def kubelet_files(message: str = "/dev/termination-log") -> list[dict]:
    return [
        {"source": "/state/hosts", "target": "/etc/hosts", "readOnly": False, "file": True},
        {"source": "/state/msg", "target": message, "readOnly": False, "file": True},
    ]


def test_volume_at_tmp_gets_the_image_dirs_below_it_bound_again_on_top():
    got = plan(kubelet_files(), [vol("/tmp", "/state/tmp"), vol("/data")], IMAGE_DIRS)
    targets = [m["target"] for m in got]
    assert targets == [
        "/tmp",
        "/data",
        "/etc/hosts",
        "/dev/termination-log",
        f"{REPO}/.venv",
        f"{REPO}/operator",
    ]
    venv = got[targets.index(f"{REPO}/.venv")]
    assert venv == {
        "source": f"{REPO}/.venv",
        "target": f"{REPO}/.venv",
        "readOnly": False,
        "file": False,
        "image": True,
    }
    # The interpreter under /root is not under any volume: nothing to re-expose.
    assert not any(t.startswith("/root") for t in targets)


def test_no_volume_above_the_image_means_no_extra_mounts():
    got = plan(kubelet_files(), [vol("/scratch"), vol(f"{REPO}/.venv/cache")], IMAGE_DIRS)
    assert [m["target"] for m in got] == [
        "/scratch",
        "/etc/hosts",
        "/dev/termination-log",
        f"{REPO}/.venv/cache",
    ]


def test_a_volume_at_or_inside_an_image_dir_still_wins():
    # The pod chose to mount over (part of) the image, as it could on a real node: its volume stays on top.
    got = plan([], [vol("/tmp"), vol(f"{REPO}/.venv", "/state/mine"), vol(f"{REPO}/operator/x")], IMAGE_DIRS)
    assert [(m["target"], m["source"]) for m in got] == [
        ("/tmp", "/state/v"),
        (f"{REPO}/.venv", f"{REPO}/.venv"),
        (f"{REPO}/operator", f"{REPO}/operator"),
        (f"{REPO}/.venv", "/state/mine"),  # same depth: after the re-exposed image dir, so it is the one seen
        (f"{REPO}/operator/x", "/state/v"),
    ]


def test_kubelet_files_under_a_volume_are_mounted_after_it():
    got = plan(kubelet_files("/tmp/status/message"), [vol("/etc"), vol("/tmp/")], [])
    assert [m["target"] for m in got] == ["/etc", "/tmp", "/etc/hosts", "/tmp/status/message"]
    # A volume at exactly /etc/hosts replaces the kubelet's file, as a user mount does on a real node.
    got = plan(kubelet_files(), [vol("/etc/hosts")], [])
    assert [m["source"] for m in got if m["target"] == "/etc/hosts"] == ["/state/hosts", "/state/v"]


def test_volume_at_the_repo_parent_and_at_root_of_a_deeper_path():
    got = plan([], [vol("/tmp/ci"), vol("/tmp")], IMAGE_DIRS)
    assert [m["target"] for m in got] == ["/tmp", "/tmp/ci", f"{REPO}/.venv", f"{REPO}/operator"]


def test_paths_are_normalised_and_nested_image_dirs_collapse():
    assert [str(p) for p in outermost(["/a/b/", "/a", "/c//d", "/a/b/c", "/c/d"])] == ["/a", "/c/d"]
    assert [str(p) for p in shadowed(["/x/y/.venv", "/x/y/.venv/lib"], ["/x/./y/../"])] == ["/x/y/.venv"]
    assert shadowed(["/x/y"], ["/x/y", "/x/y/z", "/xx"]) == []  # equal or deeper targets shadow nothing


def test_host_location_follows_the_topmost_bind():
    mounted = [("/tmp", "/state/pods/u/volumes/tmp"), ("/tmp/ci/zoo/.venv", "/tmp/ci/zoo/.venv")]
    assert host_location("/tmp/ci/zoo", mounted[:1]) == "/state/pods/u/volumes/tmp/ci/zoo"
    assert host_location("/tmp/ci/zoo/.venv/x", mounted) == "/tmp/ci/zoo/.venv/x"
    assert host_location("/etc/zoo", mounted) == "/etc/zoo"
    assert host_location("/tmp", mounted) == "/state/pods/u/volumes/tmp"


def test_container_mounts_include_the_plan(tmp_path: Path):
    pod = {"spec": {"volumes": [{"name": "tmp", "emptyDir": {}}]}}
    container = {"volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}]}
    got = mounts(
        pod, container, lambda v: tmp_path / v["name"], tmp_path / "hosts", tmp_path / "m", [Path(REPO)]
    )
    assert [m["target"] for m in got] == ["/tmp", "/etc/hosts", "/dev/termination-log", REPO]


def test_venv_dependencies_are_the_interpreter_prefix_and_editable_sources():
    cfg = "home = /root/.local/share/uv/python/cpython-3.11.7/bin\nversion_info = 3.11.7\n"
    pth = ["/repo/operator\n", "import _virtualenv\n./relative\n/repo/workloads"]
    assert venv_dependencies(cfg, pth) == [
        Path("/root/.local/share/uv/python/cpython-3.11.7"),
        Path("/repo/operator"),
        Path("/repo/workloads"),
    ]
    assert venv_dependencies("", []) == []


def test_environment_dependencies_reads_a_venv_on_disk(tmp_path: Path):
    venv, base, src = tmp_path / ".venv", tmp_path / "python", tmp_path / "src"
    (base / "bin").mkdir(parents=True)
    src.mkdir()
    site = venv / "lib" / "python3.11" / "site-packages"
    site.mkdir(parents=True)
    (venv / "pyvenv.cfg").write_text(f"home = {base / 'bin'}\n")
    (site / "_editable_src.pth").write_text(f"{src}\n{tmp_path / 'gone'}\n")
    assert environment_dependencies(venv) == (base, src)  # a listed directory that is missing is dropped
    assert environment_dependencies(tmp_path / "not-a-venv") == ()
