"""Command line of the local cluster: up, down, status, kueue, restart-apiserver, kubelet (run by `up`), and the
injected faults of issue 23: npu-fault NODE DEVICE [--heal], node-down NODE, node-up NODE (faults.py)."""

from __future__ import annotations

import argparse
import logging
import sys

from zoocluster import config, controlplane, faults, nodes

FAULT_COMMANDS = ("npu-fault", "node-down", "node-up")


def inject(cfg: config.ClusterConfig, command: str, target: list[str], heal: bool) -> str:
    """Record a fault for the running kubelet to act on (faults.py); returns what was done."""
    want = 2 if command == "npu-fault" else 1
    if len(target) != want:
        usage = "NODE DEVICE" if want == 2 else "NODE"
        raise ValueError(f"{command}: expected {usage}, got {' '.join(target) or 'nothing'}")
    known = {
        s.name: int(s.capacity.get(nodes.NPU_RESOURCE, "0"))
        for s in nodes.load_nodes(cfg.nodes_file.read_text())
    }
    node = target[0]
    device = None
    if command == "npu-fault":
        if not target[1].isdigit():
            raise ValueError(f"npu-fault: DEVICE must be a physical NPU id (0, 1, ...), got {target[1]!r}")
        device = int(target[1])
    faults.check_target(node, device, known)
    path = faults.path_in(cfg.state_dir / "kubelet")
    now = faults.load(path)
    if device is not None:
        faults.save(path, faults.with_npu(now, node, device, healthy=heal))
        return f"NPU {device} of {node} reported {'healthy' if heal else 'unhealthy'}"
    faults.save(path, faults.with_node(now, node, down=command == "node-down"))
    return f"node {node} {'lost: heartbeats stopped, pods killed' if command == 'node-down' else 'back'}"


def main(argv: list[str] | None = None) -> int:
    """Run one command; returns the exit status."""
    parser = argparse.ArgumentParser(prog="zoo-cluster", description="The zoo-operator local cluster.")
    parser.add_argument(
        "command",
        choices=[
            "up",
            "down",
            "status",
            "kueue",
            "restart-apiserver",
            "kubelet",
            *FAULT_COMMANDS,
        ],
    )
    parser.add_argument("target", nargs="*", help="npu-fault: NODE DEVICE; node-down, node-up: NODE")
    parser.add_argument("--heal", action="store_true", help="npu-fault: report the NPU healthy again")
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
    if args.command in FAULT_COMMANDS:
        try:
            print(inject(cfg, args.command, args.target, args.heal))
        except ValueError as exc:
            print(f"zoo-cluster: {exc}", file=sys.stderr)
            return 2
        return 0
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
