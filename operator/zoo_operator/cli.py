"""`zoo-operator`: run the operator, render a job's objects (dry run), generate the CRD files.

Exit codes: 0 success, 1 stale generated files (`generate --check`), 2 bad input (one line on stderr).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from zoo_operator import dryrun, generate
from zoo_operator import settings as settings_mod


def _cmd_generate(args: argparse.Namespace) -> int:
    root = Path(args.root)
    if args.check:
        stale = [
            str(rel)
            for rel, text in generate.outputs().items()
            if not (root / rel).exists() or (root / rel).read_text(encoding="utf-8") != text
        ]
        if stale:
            print(f"stale generated files (run `make generate`): {', '.join(stale)}", file=sys.stderr)
            return 1
        return 0
    for path in generate.write(root):
        print(f"wrote {path}")
    return 0


def _read(path: str) -> str:
    if path == "-":
        return sys.stdin.read()
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as err:
        raise dryrun.RenderError(f"cannot read {path}: {err.strerror}") from None


def _cmd_render(args: argparse.Namespace) -> int:
    try:
        settings = settings_mod.from_env()
        allocations = None if args.allocations is None else _read(args.allocations)
        objs = dryrun.objects(_read(args.filename), settings, allocations)
    except ValueError as err:  # RenderError, and bad ZOO_* settings
        print(f"zoo-operator render: {err}", file=sys.stderr)
        return 2
    sys.stdout.write(dryrun.to_yaml(objs))
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    import kopf  # imported here so `render` and `generate` start fast

    from zoo_operator import handlers

    settings = handlers.SETTINGS
    liveness = settings.listen_url(settings.health_port, "/healthz") if settings.health_port else None
    kopf.configure(verbose=args.verbose)
    kopf.run(
        standalone=True,
        clusterwide=not settings.watch_namespaces,
        namespaces=settings.watch_namespaces,
        liveness_endpoint=liveness,
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every sub-command."""
    parser = argparse.ArgumentParser(prog="zoo-operator", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    gen = sub.add_parser("generate", help="write the CRD into manifests/ and charts/")
    gen.add_argument("--root", default=".", help="repository root (default: .)")
    gen.add_argument("--check", action="store_true", help="only check that the files are up to date")
    gen.set_defaults(func=_cmd_generate)
    ren = sub.add_parser("render", help="print every object the operator would create for a job (dry run)")
    ren.add_argument("-f", "--filename", required=True, help="ZooTrainingJob YAML file ('-' = stdin)")
    ren.add_argument(
        "--allocations", help="JSON list of device-plugin annotations {pod_name, server_id, devices}"
    )
    ren.set_defaults(func=_cmd_render)
    run = sub.add_parser("run", help="run the operator (settings from ZOO_* environment variables)")
    run.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    run.set_defaults(func=_cmd_run)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `zoo-operator` command."""
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
