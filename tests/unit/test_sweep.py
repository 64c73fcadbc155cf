"""The pure parts of sweeps: grid order, seeded random sampling, trial bodies, median stopping, compare rows,
and `kubectl ztj sweep --dry-run` / `compare` on real job dicts (no cluster)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from operator_jobs import job

from zoo_operator.client import runner, sweep
from zoo_operator.spec import InvalidSpec


def test_grid_is_every_combination_last_key_fastest() -> None:
    assert sweep.grid({"lr": [0.1, 0.01], "bs": [4, 8]}) == [
        {"lr": 0.1, "bs": 4},
        {"lr": 0.1, "bs": 8},
        {"lr": 0.01, "bs": 4},
        {"lr": 0.01, "bs": 8},
    ]


@pytest.mark.parametrize("space", [{"lr": []}, {"lr": "0.1"}, {"lr": 0.1}])
def test_grid_names_the_bad_parameter(space: dict[str, Any]) -> None:
    with pytest.raises(sweep.SweepError, match="grid parameter lr"):
        sweep.grid(space)


def test_grid_refuses_too_many_points() -> None:
    with pytest.raises(sweep.SweepError, match="at most"):
        sweep.grid({"a": list(range(40)), "b": list(range(40))})


def test_random_is_reproducible_and_in_range() -> None:
    space = {
        "lr": {"min": 1e-4, "max": 1e-1, "log": True},
        "bs": [4, 8],
        "warm": {"min": 0, "max": 3, "int": True},
    }
    first = sweep.random_points(space, 20, seed=7)
    assert first == sweep.random_points(space, 20, seed=7)
    assert first != sweep.random_points(space, 20, seed=8)
    for p in first:
        assert (
            1e-4 <= p["lr"] <= 1e-1
            and p["bs"] in (4, 8)
            and isinstance(p["warm"], int)
            and 0 <= p["warm"] <= 3
        )
    # log-uniform: about half the draws fall below the geometric middle (1e-2.5), not 3 % as uniform would give.
    low = sum(p["lr"] < 10**-2.5 for p in sweep.random_points(space, 400, seed=1))
    assert 150 < low < 250


@pytest.mark.parametrize(
    ("space", "match"),
    [
        ({"lr": {"min": 1, "max": 0}}, "min 1.0 > max"),
        ({"lr": {"min": 0, "max": 1, "log": True}}, "log scale needs min > 0"),
        ({"lr": {"max": 1}}, "random parameter lr"),
    ],
)
def test_random_names_the_bad_parameter(space: dict[str, Any], match: str) -> None:
    with pytest.raises(sweep.SweepError, match=match):
        sweep.random_points(space, 2, seed=0)


def test_flag_parsers() -> None:
    assert sweep.parse_grid_flag("lr_max=0.1,0.01") == ("lr_max", [0.1, 0.01])
    assert sweep.parse_grid_flag("optimizer=sgd,adamw") == ("optimizer", ["sgd", "adamw"])
    assert sweep.parse_random_flag("lr=1e-4:0.1:log") == (
        "lr",
        {"min": 1e-4, "max": 0.1, "log": True, "int": False},
    )
    assert sweep.parse_random_flag("bs=4,8") == ("bs", [4, 8])
    for bad in ("lr", "lr=", "lr=1:2:cube", "lr=a:b"):
        with pytest.raises(sweep.SweepError):
            sweep.parse_random_flag(bad)


def test_trial_body_merges_point_names_and_labels() -> None:
    template = job("ignored", hyperparameters={"epochs": 1, "lr_max": 0.5})
    template["metadata"]["generateName"] = "x-"
    body = sweep.trial_body(template, "lr", 3, {"lr_max": 0.01})
    assert body["metadata"]["name"] == "lr-3" and "generateName" not in body["metadata"]
    assert body["metadata"]["labels"] == {sweep.LABEL_SWEEP: "lr", sweep.LABEL_TRIAL: "3"}
    assert json.loads(body["metadata"]["annotations"][sweep.ANNOTATION_PARAMS]) == {"lr_max": 0.01}
    assert body["spec"]["hyperparameters"] == {"epochs": 1, "lr_max": 0.01}
    assert template["spec"]["hyperparameters"]["lr_max"] == 0.5  # the template is not changed


def test_sweep_bodies_are_validated_by_the_operator_spec() -> None:
    ok = runner.Sweep("s", job(), [{"lr_max": 0.1}])
    assert [b["metadata"]["name"] for b in ok.bodies()] == ["s-0"]
    with pytest.raises(InvalidSpec, match="spec.hyperparameters.no_such"):
        runner.Sweep("s", job(), [{"no_such": 1}]).bodies()
    with pytest.raises(sweep.SweepError, match="sweep name"):
        runner.Sweep("Bad_Name", job(), [{}]).bodies()
    assert runner.Sweep("s", job(scheduling={"queue": "team"}), []).queued
    assert not runner.Sweep("s", job(), []).queued


def h(*top1: float) -> list[dict[str, Any]]:
    return [{"epoch": i + 1, "top1": v, "loss": 1 - v} for i, v in enumerate(top1)]


def test_median_rule_stops_the_trial_below_the_others_median() -> None:
    rule = sweep.StopRule("top1", after=2, min_peers=2)
    histories = {"a": h(0.1, 0.5), "b": h(0.2, 0.4), "c": h(0.1, 0.15), "d": h(0.3)}
    # At epoch 2: a best 0.5 vs median(b 0.4, c 0.15) -> keep; b 0.4 vs median(0.5, 0.15)=0.325 -> keep;
    # c 0.15 vs median(0.5, 0.4) -> stop; d is at epoch 1 < after.
    assert sweep.losers(histories, rule) == ["c"]
    assert sweep.losers(histories, rule, finished=frozenset({"c"})) == []
    # Too few peers at that epoch: no decision.
    assert sweep.losers({"a": h(0.1, 0.2), "b": h(0.3, 0.4)}, rule) == []


def test_median_rule_on_loss_is_lower_is_better() -> None:
    rule = sweep.StopRule("loss", after=1, min_peers=2)
    histories = {"a": h(0.9), "b": h(0.5), "c": h(0.6)}  # loss a 0.1 b 0.5 c 0.4
    # a 0.1 vs median(0.5, 0.4) keeps; b 0.5 vs median(0.1, 0.4)=0.25 and c 0.4 vs median(0.1, 0.5)=0.3 stop.
    assert sweep.losers(histories, rule) == ["b", "c"]


def test_best_so_far_looks_only_up_to_the_epoch() -> None:
    assert sweep.best_so_far(h(0.1, 0.9, 0.3), "top1", 1) == 0.1
    assert sweep.best_so_far(h(0.1, 0.9, 0.3), "top1", 3) == 0.9
    assert sweep.best_so_far(h(0.1, 0.9), "loss", 2) == pytest.approx(0.1)
    assert sweep.best_so_far([], "top1", 3) is None


def trial(
    name: str, index: int, point: dict[str, Any], phase: str, history: list[dict[str, Any]]
) -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "labels": {sweep.LABEL_TRIAL: str(index)},
            "annotations": {sweep.ANNOTATION_PARAMS: json.dumps(point)},
        },
        "status": {"phase": phase, "history": history},
    }


def test_compare_rows_best_first_unknown_last() -> None:
    jobs = [
        trial("s-0", 0, {"lr": 0.1}, "Succeeded", h(0.2, 0.3)),
        trial("s-1", 1, {"lr": 0.01}, "Succeeded", h(0.4, 0.35)),
        trial("s-2", 2, {"lr": 0.001}, "Pending", []),
    ]
    header, rows = sweep.compare_rows(jobs)
    assert header == ["TRIAL", "PHASE", "lr", "EPOCHS", "BEST TOP1", "FINAL LOSS"]
    assert rows == [
        ["s-1", "Succeeded", "0.01", "2", "0.4", "0.65"],
        ["s-0", "Succeeded", "0.1", "2", "0.3", "0.7"],
        ["s-2", "Pending", "0.001", "0", "-", "-"],
    ]
    _, by_loss = sweep.compare_rows(jobs, "loss")
    assert [r[0] for r in by_loss] == ["s-1", "s-0", "s-2"]


def test_ctl_sweep_dry_run_prints_the_trials(tmp_path: Any, capsys: Any) -> None:
    import yaml

    from zoo_operator.ctl import main

    path = tmp_path / "t.yaml"
    path.write_text(yaml.safe_dump(job()))
    assert (
        main.main(["sweep", "-f", str(path), "--name", "lr", "--grid", "lr_max=0.1,0.01", "--dry-run"]) == 0
    )
    out = capsys.readouterr().out.splitlines()
    assert out == ['lr-0 {"lr_max": 0.1}', 'lr-1 {"lr_max": 0.01}']
    assert main.main(["sweep", "-f", str(path), "--name", "lr", "--grid", "nope=1", "--dry-run"]) == 1
    assert "spec.hyperparameters.nope" in capsys.readouterr().err


def test_compare_png_has_one_line_per_trial(tmp_path: Any) -> None:
    from zoo_operator.ctl import main

    out = tmp_path / "s.png"
    main.write_compare_png(out, "sweep s", {"s-0": h(0.1, 0.2), "s-1": h(0.3, 0.4), "s-2": []})
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
