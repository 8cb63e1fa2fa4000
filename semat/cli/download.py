"""``semat download [NAME ...]``: pre-fetch weights into the weights folder."""

from __future__ import annotations

import argparse
import sys

from semat.weights import hub as weights


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("download", help="pre-fetch model weights",
                       description="Download and verify weights. Known names: " + ", ".join(weights.REGISTRY))
    p.add_argument("names", nargs="*", metavar="NAME", help="registry names (default: all)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from semat.cli.main import CLIError

    unknown = [n for n in args.names if n not in weights.REGISTRY]
    if unknown:
        raise CLIError(f"unknown weights {', '.join(unknown)}; known: {', '.join(weights.REGISTRY)}")
    for name in args.names or list(weights.REGISTRY):
        path = weights.resolve(name, progress=lambda m: print(m, file=sys.stderr))
        print(f"{name}: {path}")
    return 0
