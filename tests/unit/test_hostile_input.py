"""Hostile, bad and unusual input (issue 24): each case has a defined answer, tested at the spec and render level.

The CASES table is the suite: (id, who, what, a job body or its change, expected). `refused` cases must raise
InvalidSpec with every listed fragment in the message (the field and the limit); `accepted` cases must parse and
render, and the check (if any) holds on the rendered objects. docs/security.md carries the same table; a test
below keeps the two in step. "who" is the role the input needs: a ztj-only user (may create ZooTrainingJobs
only) or an admin (sets the chart's values, i.e. the operator's settings).
"""

from __future__ import annotations

import copy
import os
import re
from pathlib import Path
from typing import Any

import pytest
from operator_jobs import ascend_job, job

from zoo_operator import inputlimits, memlimits, netpolicy, render, schema
from zoo_operator.settings import Settings
from zoo_operator.spec import InvalidSpec, parse
from zoo_workloads import config
from zoo_workloads.errors import ConfigError
from zoo_workloads.training import checkpoints as ck

REPO = Path(__file__).resolve().parents[2]
SETTINGS = Settings(image_cpu="zoo-operator/workload-cpu:t", image_ascend="zoo-operator/workload-ascend:t")
Body = dict[str, Any]


def with_spec(base: Body, path: str, value: Any) -> Body:
    """base with spec.<path> (dotted) set to value."""
    body = copy.deepcopy(base)
    node = body["spec"]
    *parents, last = path.split(".")
    for key in parents:
        node = node.setdefault(key, {})
    node[last] = value
    return body


def env(n: int, size: int = 8) -> list[dict[str, str]]:
    return [{"name": f"E{i}", "value": "x" * size} for i in range(n)]


BOMB = (
    "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: [*b, *b, *b, *b, *b]"
)
DEEP = "[" * 20 + "]" * 20


def pod_env(body: Body) -> dict[str, Any]:
    j = parse(body, SETTINGS)
    return {e["name"]: e.get("value") for e in render.pod(j, 0, 0)["spec"]["containers"][0]["env"]}


def command(body: Body) -> list[str]:
    j = parse(body, SETTINGS)
    return render.pod(j, 0, 0)["spec"]["containers"][0]["command"]


def memory(body: Body, index: int | None = 0) -> dict[str, Any]:
    j = parse(body, SETTINGS)
    return render.pod(j, index, 0)["spec"]["containers"][0]["resources"]


# (id, who, what it is, body, ("refused", [fragments]) | ("accepted", check or None))
CASES: list[tuple[str, str, str, Body, tuple[str, Any]]] = [
    # --- size limits
    (
        "env-1mib-value",
        "ztj-only",
        "one podTemplate.env value of 1 MiB",
        with_spec(job(), "podTemplate", {"env": [{"name": "BIG", "value": "x" * (1 << 20)}]}),
        ("refused", ["spec.podTemplate.env[0].value", "32768"]),
    ),
    (
        "env-total-size",
        "ztj-only",
        "200 env values of 1 KiB (200 KiB in all)",
        with_spec(job(), "podTemplate", {"env": env(200, 1024)}),
        ("refused", ["spec.podTemplate.env", str(inputlimits.MAX_ENV_BYTES)]),
    ),
    (
        "env-too-many",
        "ztj-only",
        "300 env entries",
        with_spec(job(), "podTemplate", {"env": env(300)}),
        ("refused", ["spec.podTemplate.env", "256"]),
    ),
    (
        "env-at-limit",
        "ztj-only",
        "256 env entries of 8 bytes (at the limit)",
        with_spec(job(), "podTemplate", {"env": env(256)}),
        ("accepted", lambda b: len(pod_env(b)) > 256),
    ),
    (
        "volumes-too-many",
        "ztj-only",
        "65 podTemplate volumes",
        with_spec(job(), "podTemplate", {"volumes": [{"name": f"v{i}", "emptyDir": {}} for i in range(65)]}),
        ("refused", ["spec.podTemplate.volumes", "64"]),
    ),
    (
        "mounts-too-many",
        "ztj-only",
        "65 podTemplate volumeMounts",
        with_spec(
            job(),
            "podTemplate",
            {"volumeMounts": [{"name": f"v{i}", "mountPath": f"/m{i}"} for i in range(65)]},
        ),
        ("refused", ["spec.podTemplate.volumeMounts", "64"]),
    ),
    (
        "tolerations-too-many",
        "ztj-only",
        "65 tolerations",
        with_spec(
            job(), "podTemplate", {"tolerations": [{"key": f"k{i}", "operator": "Exists"} for i in range(65)]}
        ),
        ("refused", ["spec.podTemplate.tolerations", "64"]),
    ),
    (
        "node-selector-too-many",
        "ztj-only",
        "65 nodeSelector keys",
        with_spec(job(), "podTemplate", {"nodeSelector": {f"k{i}": "v" for i in range(65)}}),
        ("refused", ["spec.podTemplate.nodeSelector", "64"]),
    ),
    (
        "hyper-string-too-long",
        "ztj-only",
        "a 2000-character pretrained path",
        with_spec(job(), "hyperparameters", {"pretrained": "a" * 2000}),
        ("refused", ["spec.hyperparameters.pretrained", "1024"]),
    ),
    (
        "hyper-unknown-huge-key",
        "ztj-only",
        "an unknown hyperparameter with a 100 KB name",
        with_spec(job(), "hyperparameters", {"k" * 100_000: 1}),
        ("refused", ["unknown hyperparameter"]),
    ),
    (
        "hyper-total-size",
        "ztj-only",
        "hyperparameters of 100 KB as JSON",
        with_spec(job(), "hyperparameters", {f"x{i}": "y" * 1000 for i in range(100)}),
        ("refused", ["spec.hyperparameters: too large", str(inputlimits.MAX_HYPERPARAMETER_BYTES)]),
    ),
    (
        "hyper-deep-nesting",
        "ztj-only",
        "a hyperparameter value nested 5 levels deep",
        with_spec(job(), "hyperparameters", {"layers": [[[[[1]]]]]}),
        ("refused", ["spec.hyperparameters.layers", "nested deeper than 3"]),
    ),
    (
        "image-too-long",
        "ztj-only",
        "a 600-character image reference",
        with_spec(job(), "image", "r/" + "a" * 600),
        ("refused", ["spec.image", "512"]),
    ),
    (
        "name-too-long",
        "ztj-only",
        "a job name of 60 characters (pod names would exceed 63)",
        {**job(), "metadata": {**job()["metadata"], "name": "a" * 60}},
        ("refused", ["metadata.name"]),
    ),
    # --- YAML shapes
    (
        "yaml-alias-bomb",
        "ztj-only",
        "a YAML alias bomb as the pretrained value",
        with_spec(job(), "hyperparameters", {"pretrained": BOMB}),
        ("refused", ["spec.hyperparameters.pretrained", "anchors and aliases"]),
    ),
    (
        "yaml-anchor",
        "ztj-only",
        "a YAML anchor in a value",
        with_spec(job(), "hyperparameters", {"pretrained": "&x run/best.ckpt"}),
        ("refused", ["spec.hyperparameters.pretrained", "anchors and aliases"]),
    ),
    (
        "yaml-deep",
        "ztj-only",
        "a string that YAML reads as 20 nested lists",
        with_spec(job(), "hyperparameters", {"pretrained": DEEP}),
        ("refused", ["spec.hyperparameters.pretrained", "nested deeper than"]),
    ),
    (
        "yaml-lookalike",
        "ztj-only",
        "a path with a YAML-special character that is not an anchor",
        with_spec(job(), "hyperparameters", {"pretrained": "run/a&b.ckpt"}),
        ("accepted", lambda b: any("a&b.ckpt" in a for a in command(b))),
    ),
    # --- paths
    (
        "ckpt-path-dotdot",
        "ztj-only",
        "spec.checkpoint.path climbing out with ..",
        with_spec(job(), "checkpoint", {"path": "../../etc"}),
        ("refused", ["spec.checkpoint.path", ".."]),
    ),
    (
        "ckpt-path-absolute",
        "ztj-only",
        "an absolute spec.checkpoint.path",
        with_spec(job(), "checkpoint", {"path": "/etc"}),
        ("refused", ["spec.checkpoint.path", "relative"]),
    ),
    (
        "resume-from-dotdot",
        "ztj-only",
        "spec.checkpoint.resumeFrom with ..",
        with_spec(job(), "checkpoint", {"resumeFrom": "run/../../x.ckpt"}),
        ("refused", ["spec.checkpoint.resumeFrom", ".."]),
    ),
    (
        "resume-from-absolute",
        "ztj-only",
        "an absolute resumeFrom",
        with_spec(job(), "checkpoint", {"resumeFrom": "/proc/self/environ"}),
        ("refused", ["spec.checkpoint.resumeFrom", "relative"]),
    ),
    (
        "resume-from-nul",
        "ztj-only",
        "a NUL byte in resumeFrom",
        with_spec(job(), "checkpoint", {"resumeFrom": "run/x.ckpt\x00.txt"}),
        ("refused", ["spec.checkpoint.resumeFrom", "NUL"]),
    ),
    (
        "pretrained-dotdot",
        "ztj-only",
        "pretrained with .. (relative)",
        with_spec(job(), "hyperparameters", {"pretrained": "../other-job/best.ckpt"}),
        ("refused", ["spec.hyperparameters.pretrained", ".."]),
    ),
    (
        "resume-dotdot-absolute",
        "ztj-only",
        "resume with .. (absolute)",
        with_spec(job(), "hyperparameters", {"resume": "/zoo/checkpoint/../from/x.ckpt"}),
        ("refused", ["spec.hyperparameters.resume", ".."]),
    ),
    (
        "pretrained-unnormal",
        "ztj-only",
        "pretrained a//b/./c.ckpt is normalised",
        with_spec(job(), "hyperparameters", {"pretrained": "runs//a/./best.ckpt"}),
        ("accepted", lambda b: "pretrained=/zoo/checkpoint/runs/a/best.ckpt" in command(b)),
    ),
    (
        "pretrained-image-path",
        "ztj-only",
        "an absolute pretrained path inside the image",
        with_spec(job(), "hyperparameters", {"pretrained": "/opt/weights/r50.ckpt"}),
        ("accepted", lambda b: "pretrained=/opt/weights/r50.ckpt" in command(b)),
    ),
    (
        "train-path-dotdot",
        "ztj-only",
        "dataset.trainPath with ..",
        with_spec(job(), "dataset.trainPath", "../../etc"),
        ("refused", ["spec.dataset.trainPath", ".."]),
    ),
    # --- references
    (
        "from-other-namespace",
        "ztj-only",
        "spec.from with a namespace",
        with_spec(job(), "from", {"job": "victim", "namespace": "other"}),
        ("refused", ["spec.from.namespace", "cross-namespace"]),
    ),
    (
        "from-slash-name",
        "ztj-only",
        "spec.from.job spelled other/victim",
        with_spec(job(), "from", {"job": "other/victim"}),
        ("refused", ["spec.from.job", "DNS subdomain"]),
    ),
    (
        "from-same-namespace",
        "ztj-only",
        "spec.from naming a job of this namespace",
        with_spec(job(), "from", {"job": "finished-run"}),
        ("accepted", None),
    ),
    # --- platform policy (what a ztj-only user may not put into pods)
    (
        "hostpath-root",
        "ztj-only",
        "a hostPath volume of / in podTemplate",
        with_spec(job(), "podTemplate", {"volumes": [{"name": "root", "hostPath": {"path": "/"}}]}),
        ("refused", ["spec.podTemplate.volumes[0]", "hostPath"]),
    ),
    (
        "secret-volume",
        "ztj-only",
        "a Secret volume in podTemplate",
        with_spec(job(), "podTemplate", {"volumes": [{"name": "s", "secret": {"secretName": "db"}}]}),
        ("refused", ["spec.podTemplate.volumes[0]"]),
    ),
    (
        "env-ld-preload",
        "ztj-only",
        "LD_PRELOAD in podTemplate.env",
        with_spec(job(), "podTemplate", {"env": [{"name": "LD_PRELOAD", "value": "/tmp/x.so"}]}),
        ("refused", ["spec.podTemplate.env[0]", "LD_PRELOAD"]),
    ),
    (
        "env-operator-var",
        "ztj-only",
        "overriding the operator's RANK_ID",
        with_spec(job(), "podTemplate", {"env": [{"name": "RANK_ID", "value": "0"}]}),
        ("refused", ["spec.podTemplate.env[0]", "RANK_ID"]),
    ),
    (
        "env-secret-ref",
        "ztj-only",
        "env from a Secret",
        with_spec(
            job(),
            "podTemplate",
            {"env": [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "db", "key": "pw"}}}]},
        ),
        ("refused", ["spec.podTemplate.env[0]"]),
    ),
    (
        "system-priority",
        "ztj-only",
        "priorityClassName system-node-critical",
        with_spec(job(), "scheduling", {"priorityClassName": "system-node-critical"}),
        ("refused", ["system-node-critical"]),
    ),
    # --- memory
    (
        "memory-default",
        "ztj-only",
        "no resources: the table's memory on every rank",
        job(),
        ("accepted", lambda b: memory(b) == {"requests": {"memory": "1Gi"}, "limits": {"memory": "8Gi"}}),
    ),
    (
        "memory-scheduler",
        "ztj-only",
        "the dynamic launch's scheduler gets its own memory",
        job(),
        ("accepted", lambda b: memory(b, None)["limits"]["memory"] == config.SCHEDULER_MEMORY[1]),
    ),
    (
        "memory-override",
        "ztj-only",
        "spec.resources overrides the memory",
        with_spec(job(), "resources", {"requests": {"memory": "3Gi"}, "limits": {"memory": "6Gi"}}),
        ("accepted", lambda b: memory(b) == {"requests": {"memory": "3Gi"}, "limits": {"memory": "6Gi"}}),
    ),
    (
        "memory-request-above-limit",
        "ztj-only",
        "requests.memory above limits.memory",
        with_spec(job(), "resources", {"requests": {"memory": "9Gi"}, "limits": {"memory": "1Gi"}}),
        ("refused", ["spec.resources.requests.memory", "limits.memory"]),
    ),
    (
        "memory-not-a-quantity",
        "ztj-only",
        "limits.memory: lots",
        with_spec(job(), "resources", {"limits": {"memory": "lots"}}),
        ("refused", ["spec.resources.limits.memory", "quantity"]),
    ),
    (
        "memory-negative",
        "ztj-only",
        "limits.memory: -1Gi",
        with_spec(job(), "resources", {"limits": {"memory": "-1Gi"}}),
        ("refused", ["spec.resources.limits.memory", "> 0"]),
    ),
    (
        "shm-within-limit",
        "admin",
        "ZOO_ASCEND_SHM_SIZE 200Gi on a 64Gi rank",
        ascend_job(),
        ("accepted", None),
    ),
    # --- unusual but fine
    (
        "unicode-env",
        "ztj-only",
        "a Unicode env value",
        with_spec(job(), "podTemplate", {"env": [{"name": "GREETING", "value": "grüß dich 👋"}]}),
        ("accepted", lambda b: pod_env(b)["GREETING"] == "grüß dich 👋"),
    ),
    (
        "empty-env-value",
        "ztj-only",
        "an empty env value",
        with_spec(job(), "podTemplate", {"env": [{"name": "EMPTY", "value": ""}]}),
        ("accepted", lambda b: pod_env(b)["EMPTY"] == ""),
    ),
    (
        "network-policy",
        "ztj-only",
        "pods labelled like another job's ranks get nothing from its policy",
        job(),
        (
            "accepted",
            lambda b: (
                netpolicy.network_policy(parse(b, SETTINGS))["spec"]["ingress"][0]["from"]
                == [{"podSelector": {"matchLabels": {"modelzoo.io/job-name": "demo"}}}]
            ),
        ),
    ),
]


@pytest.mark.parametrize(("case_id", "who", "what", "body", "expected"), CASES, ids=[c[0] for c in CASES])
def test_hostile_input(case_id: str, who: str, what: str, body: Body, expected: tuple[str, Any]) -> None:
    outcome, detail = expected
    settings = (
        Settings(image_cpu="c:t", image_ascend="a:t", ascend_shm_size="200Gi") if who == "admin" else SETTINGS
    )
    if outcome == "refused":
        with pytest.raises(InvalidSpec) as info:
            parse(body, settings)
        message = str(info.value)
        for fragment in detail:
            assert fragment in message, f"{case_id}: {fragment!r} not in {message!r}"
        assert len(message) < 8192, "a refusal never repeats a huge value"
        assert "x" * 2000 not in message
    else:
        j = parse(body, settings)
        objects = render.all_objects(j)
        assert objects
        if detail is not None:
            assert detail(body), case_id
    if case_id == "shm-within-limit":
        vols = {v["name"]: v for v in render.pod(parse(body, settings), 0, 0)["spec"]["volumes"]}
        assert vols["zoo-dshm"]["emptyDir"]["sizeLimit"] == "32Gi"  # half of the 64Gi limit, not 200Gi


def test_at_least_forty_cases_and_the_docs_table_lists_each() -> None:
    assert len(CASES) >= 40
    table = (REPO / "docs" / "security.md").read_text()
    missing = [c[0] for c in CASES if f"`{c[0]}`" not in table]
    assert not missing, f"docs/security.md lacks rows for {missing}"


def test_limits_agree_with_the_crd() -> None:
    tmpl = schema.crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"][
        "properties"
    ]["podTemplate"]["properties"]
    assert tmpl["env"]["maxItems"] == inputlimits.MAX_ENV_ENTRIES
    assert tmpl["env"]["items"]["properties"]["value"]["maxLength"] == inputlimits.MAX_ENV_VALUE
    assert tmpl["volumes"]["maxItems"] == inputlimits.MAX_VOLUMES
    assert tmpl["volumeMounts"]["maxItems"] == inputlimits.MAX_VOLUME_MOUNTS
    assert tmpl["tolerations"]["maxItems"] == inputlimits.MAX_TOLERATIONS
    assert tmpl["nodeSelector"]["maxProperties"] == inputlimits.MAX_NODE_SELECTOR


# --- the workload's side: its YAML reader and its checkpoint reader
@pytest.mark.parametrize("text", [BOMB, "&a x", "[*a]", DEEP])
def test_workload_yaml_refuses_aliases_and_depth(text: str) -> None:
    with pytest.raises(config.UnsafeYAML):
        config.safe_yaml(text)
    with pytest.raises(ConfigError, match="--set pretrained"):
        config.parse_set(f"pretrained={text}")


def test_workload_config_file_refuses_a_bomb_and_reads_a_plain_one(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(BOMB)
    with pytest.raises(ConfigError, match="anchors and aliases"):
        config.load_config_file(bomb)
    big = tmp_path / "big.yaml"
    big.write_text("x: " + "y" * (config.MAX_YAML_BYTES + 1))
    with pytest.raises(ConfigError, match="larger than"):
        config.load_config_file(big)
    plain = tmp_path / "plain.yaml"
    plain.write_text("epochs: 3\nlayers: [1, 1, 1, 1]\nlr_mode: cosine\n")
    assert config.load_config_file(plain) == {"epochs": 3, "layers": [1, 1, 1, 1], "lr_mode": "cosine"}
    assert config.parse_value("[1, 2]") == [1, 2] and config.parse_value("yes") is True


def _checkpoint(directory: Path, epoch: int) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    pos = ck.Position(epoch * 5, epoch, 5, 5)
    partial = ck.partial_path(ck.epoch_path(directory, "m", epoch))
    partial.write_bytes(os.urandom(64))
    ck.commit(partial, ck.epoch_path(directory, "m", epoch), pos)
    return ck.epoch_path(directory, "m", epoch)


def test_resume_skips_a_symlinked_checkpoint(tmp_path: Path) -> None:
    run = tmp_path / "run"
    older = _checkpoint(run, 1)
    outside = _checkpoint(tmp_path / "elsewhere", 2)
    # Someone with write access to the shared volume plants a newer "checkpoint" that points elsewhere.
    ck.epoch_path(run, "m", 2).symlink_to(outside)
    ck.manifest_path(ck.epoch_path(run, "m", 2)).symlink_to(ck.manifest_path(outside))
    found = ck.newest_complete(run, "m")
    assert found.path == older
    assert found.skipped and "symbolic link" in found.skipped[0][1]


def test_symlinked_directory_under_the_volume_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "vol"
    real = _checkpoint(tmp_path / "other", 1)
    (root).mkdir()
    (root / "run").symlink_to(real.parent, target_is_directory=True)
    path = root / "run" / real.name
    problem = ck.symlink_problem(path, roots=(root,))
    assert problem is not None and "symbolic link" in problem
    assert ck.symlink_problem(real, roots=(root,)) is None  # outside the volumes: the image's business
    assert ck.symlink_problem(root / ".." / "x", roots=(root,)) is not None


def test_load_refuses_a_symlink_before_reading(tmp_path: Path) -> None:
    real = _checkpoint(tmp_path / "a", 1)
    link = tmp_path / "link.ckpt"
    link.symlink_to(real)
    with pytest.raises(ConfigError, match="symbolic link"):
        ck.load(link)


def test_quantities() -> None:
    q = memlimits.parse_quantity
    assert q("64Gi") == 64 * 2**30 and q("512M") == 512 * 10**6 and q("1e3") == 1000 and q(1024) == 1024
    assert q("0.5Gi") == 2**29 and q("100m") == memlimits.Decimal("0.1")
    for bad in ("lots", "1GB", "", True, None, "1.2.3Gi"):
        with pytest.raises(ValueError, match="not a quantity"):
            q(bad)
    assert memlimits.format_bytes(q("32Gi")) == "32Gi" and memlimits.format_bytes(q("1.5Gi")) == "1536Mi"
    assert memlimits.shm_size("", "64Gi") == "32Gi" and memlimits.shm_size("8Gi", "64Gi") == "8Gi"
    assert memlimits.shm_size("200Gi", "64Gi") == "32Gi"


def test_memory_defaults_come_from_the_workload_table() -> None:
    for model in config.model_names():
        for device in ("CPU", "GPU", "Ascend910"):
            req, lim = config.rank_memory(model, device)
            assert memlimits.parse_quantity(req) <= memlimits.parse_quantity(lim)
    j = parse(ascend_job(), SETTINGS)
    res = render.pod(j, 0, 0)["spec"]["containers"][0]["resources"]
    assert (res["requests"]["memory"], res["limits"]["memory"]) == config.rank_memory(j.model, "Ascend910")
    # A limit set alone caps the request; a request set alone raises the limit.
    assert memlimits.container_memory("resnet50_bam", "Ascend910", {"limits": {"memory": "4Gi"}}) == (
        "4Gi",
        "4Gi",
    )
    assert memlimits.container_memory("resnet50_bam", "CPU", {"requests": {"memory": "20Gi"}}) == (
        "20Gi",
        "20Gi",
    )


def test_docs_cases_match_the_suite_outcomes() -> None:
    table = (REPO / "docs" / "security.md").read_text()
    for case_id, _who, _what, _body, (outcome, _) in CASES:
        row = next(line for line in table.splitlines() if f"`{case_id}`" in line)
        assert re.search(rf"\b{outcome}\b", row), f"{case_id}: docs/security.md says otherwise: {row}"
