"""`zoo-operator`: run the operator, render a job's objects (dry run), generate the CRD files.

Exit codes: 0 success, 1 stale generated files (`generate --check`), 2 bad input (one line on stderr).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from zoo_operator import generate


def _cmd_generate(args: argparse.Namespace) -> int:
    root = Path(args.root)
    if args.check:
        stale = [str(rel) for rel, text in generate.outputs().items()
                 if not (root / rel).exists() or (root / rel).read_text(encoding="utf-8") != text]
        if stale:
            print(f"stale generated files (run `make generate`): {', '.join(stale)}", file=sys.stderr)
            return 1
        return 0
    for path in generate.write(root):
        print(f"wrote {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every sub-command."""
    parser = argparse.ArgumentParser(prog="zoo-operator", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    gen = sub.add_parser("generate", help="write the CRD into manifests/ and charts/")
    gen.add_argument("--root", default=".", help="repository root (default: .)")
    gen.add_argument("--check", action="store_true", help="only check that the files are up to date")
    gen.set_defaults(func=_cmd_generate)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `zoo-operator` command."""
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
