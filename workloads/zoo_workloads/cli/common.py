"""What every MindSpore entry point shares: quiet native logs, the failure path and its exit code.

`guarded(fn)` runs an entry point: a known failure prints one line (no traceback), writes the failure
termination message and exits with its code (docs/contracts.md); an unexpected one also prints the traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Callable

from zoo_workloads.errors import EXIT_CONFIG, ZooError, classify
from zoo_workloads.events import failure_message, write_termination

DEVICES = ("Ascend", "GPU", "CPU")


def quiet_native_logs() -> None:
    """MindSpore's C++ logs go to stderr at WARNING by default; keep only errors unless the user chose."""
    os.environ.setdefault("GLOG_v", "3")


class _Parser(argparse.ArgumentParser):
    """argparse whose usage errors exit 64 (a configuration error) instead of 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        print(f"{self.prog}: error: {message}", file=sys.stderr, flush=True)
        write_termination(
            {"status": "failed", "reason": "ConfigError", "message": message, "retryable": False}
        )
        raise SystemExit(EXIT_CONFIG)


def parser(prog: str, description: str) -> argparse.ArgumentParser:
    """An argument parser whose usage errors are configuration errors (exit 64)."""
    return _Parser(prog=prog, description=description)


def add_run_config_args(p: argparse.ArgumentParser) -> None:
    """--device, --config and --set: how every entry point picks its device and resolves hyperparameters."""
    p.add_argument("--device", default="CPU", choices=DEVICES)
    p.add_argument(
        "--config", default=None, help="YAML file of hyperparameters overriding the model's defaults"
    )
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one hyperparameter (value parsed as YAML); repeatable",
    )


def guarded(fn: Callable[[], int]) -> int:
    """Run fn; map failures to a one-line error, a termination message and an exit code."""
    try:
        return fn()
    except SystemExit:
        raise
    except BaseException as exc:  # noqa: BLE001 - every failure must become an exit code and a message
        failure = classify(exc)
        if not isinstance(exc, ZooError) and failure.reason == "UnexpectedError":
            traceback.print_exc()
        print(f"error: {failure.message}", file=sys.stderr, flush=True)
        write_termination(failure_message(failure))
        return failure.exit_code
