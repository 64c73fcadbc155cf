"""The border between operator and workload is written once, in zoo_workloads.contract (issue 20).

No module of either package may spell a fact of the border as its own literal: the shared file names and in-pod
paths, the env names the operator sets, the JSON event names, the exit codes' classes. The facts are read from
the contract module, so a new fact there is checked at once.
"""

from __future__ import annotations

import ast
from pathlib import Path

from zoo_workloads import contract

REPO = Path(__file__).resolve().parents[2]
SHARED = {
    "RANKTABLE_FILE",
    "ATTEMPT_FILE",
    "CONFIG_FILE",
    "RESULT_FILE",
    "TERMINATION_LOG",
    "RANKTABLE_DIR",
    "DATA_DIR",
    "CHECKPOINT_DIR",
    "FROM_DIR",
    "RANK_TABLE_PATH",
}


def _facts() -> set[str]:
    return {
        v
        for k, v in vars(contract).items()
        if isinstance(v, str) and k.isupper() and (k.startswith(("ENV_", "MS_ROLE_")) or k in SHARED)
    }


def _modules() -> list[Path]:
    out = []
    for root in (REPO / "operator" / "zoo_operator", REPO / "workloads" / "zoo_workloads"):
        out += [p for p in root.rglob("*.py") if p.name != "contract.py"]
    return out


def test_no_module_spells_a_border_fact_itself() -> None:
    facts = _facts()
    assert {
        "hccl.json",
        "attempt",
        "config.yaml",
        "/dev/termination-log",
        "RANK_TABLE_FILE",
        "MS_ROLE",
    } <= facts
    copies = []
    for path in _modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in facts:
                copies.append(f"{path.relative_to(REPO)}:{node.lineno}: {node.value!r}")
    assert not copies, "use zoo_workloads.contract instead:\n" + "\n".join(copies)


def test_event_names_and_exit_codes_have_one_home() -> None:
    from zoo_operator import conditions, logparse
    from zoo_workloads import errors, events

    assert events.EVENTS == contract.EVENTS and frozenset(contract.EVENTS) == logparse.EVENTS
    assert conditions.PERMANENT_EXIT_CODES is contract.PERMANENT_EXIT_CODES
    assert (
        errors.ConfigError.exit_code == contract.EXIT_CONFIG
        and errors.Stopped.exit_code == contract.EXIT_STOPPED
    )
    for path in _modules():
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Tuple | ast.Set) and all(isinstance(e, ast.Constant) for e in node.elts):
                values = {e.value for e in node.elts}
                assert not {"start", "step", "epoch", "done"} <= values, f"{path}: a copy of the event names"
