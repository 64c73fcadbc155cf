"""Command line of the local cluster: up, down, status, kueue, restart-apiserver, kubelet (run by `up`)."""

from __future__ import annotations

import argparse
import logging
import sys

from zoocluster import config, controlplane


def main(argv: list[str] | None = None) -> int:
    """Run one command; returns the exit status."""
    parser = argparse.ArgumentParser(prog="zoo-cluster", description="The zoo-operator local cluster.")
    parser.add_argument("command", choices=["up", "down", "status", "kueue", "restart-apiserver", "kubelet"])
    parser.add_argument(
        "--down-seconds",
        type=float,
        default=0.0,
        help="restart-apiserver: how long the apiserver stays down before it is started again",
    )
    args = parser.parse_args(argv)
    try:
        cfg = config.from_env()
    except ValueError as exc:
        print(f"zoo-cluster: {exc}", file=sys.stderr)
        return 2
    if args.command == "kubelet":
        from zoocluster.kubelet import Kubelet

        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        Kubelet(cfg).run()
        return 0
    if args.command == "up":
        try:
            controlplane.up(cfg)
        except controlplane.ClusterError as exc:
            print(f"zoo-cluster: {exc}", file=sys.stderr)
            return 1
        print(controlplane.describe(cfg))
        return 0
    if args.command == "kueue":
        from zoocluster import kueue

        try:
            print(kueue.up(cfg))
        except (controlplane.ClusterError, ValueError) as exc:
            print(f"zoo-cluster: {exc}", file=sys.stderr)
            return 1
        return 0
    if args.command == "restart-apiserver":
        try:
            pid = controlplane.restart_apiserver(cfg, args.down_seconds)
        except controlplane.ClusterError as exc:
            print(f"zoo-cluster: {exc}", file=sys.stderr)
            return 1
        print(f"kube-apiserver restarted, pid {pid}")
        return 0
    if args.command == "down":
        controlplane.down(cfg)
        print(f"local cluster down; removed {cfg.state_dir}")
        return 0
    running = controlplane.recorded(cfg)
    for name in controlplane.ORDER:
        print(f"{name:24} {'running, pid ' + str(running[name]) if name in running else 'stopped'}")
    if "kueue" in running:
        print(f"{'kueue':24} running, pid {running['kueue']}")
    return 0 if all(name in running for name in controlplane.ORDER) else 1


if __name__ == "__main__":
    sys.exit(main())
