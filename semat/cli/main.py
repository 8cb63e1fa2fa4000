"""Entry point of the ``semat`` console script.

Each subcommand lives in its own module under :mod:`semat.cli` and exposes
``register(subparsers)``, which adds its parser and sets ``func=handler(args) -> int``.
Expected failures raise a :class:`semat.errors.SematError` (bad input, missing or corrupt weights,
a checkpoint that does not fit) and end as one ``semat: error: ...`` line with exit status 2; any
other exception is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from semat.errors import InputError, SematError

SUBCOMMAND_MODULES = ["download", "matte", "batch", "human", "human_video", "video", "eval"]


class CLIError(InputError):
    """A user-facing failure found by the CLI itself (bad option combination, unusable output path)."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="semat", description="Natural image matting: SEMat and SGHM.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in SUBCOMMAND_MODULES:
        try:
            module = importlib.import_module(f"semat.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"semat.cli.{name}":
                continue
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("semat: interrupted", file=sys.stderr)
        return 130
    except SematError as exc:  # anything else is a bug and keeps its traceback
        msg = " ".join(str(exc).split()) or exc.__class__.__name__
        print(f"semat: error: {msg}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
