"""Entry point of the ``semat`` console script.

Each subcommand lives in its own module under :mod:`semat.cli` and exposes
``register(subparsers)``, which adds its parser and sets ``func=handler(args) -> int``.
Expected failures (bad input, missing weights, bad checkpoint) raise :class:`CLIError` or one
of the known error types and end as one ``semat: error: ...`` line with exit status 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys

SUBCOMMAND_MODULES = ["download", "matte", "human", "human_video", "eval"]


class CLIError(Exception):
    """An expected, user-facing failure: printed as one line, exit status 2."""


def _user_errors() -> tuple[type[BaseException], ...]:
    from semat.checkpoint import CheckpointError
    from semat.weights import WeightsCorrupt, WeightsUnavailable

    errors: list[type[BaseException]] = [CLIError, CheckpointError, WeightsUnavailable, WeightsCorrupt,
                                         FileNotFoundError, ValueError]
    try:
        from semat.imageio import ImageInputError

        errors.append(ImageInputError)
    except ImportError:
        pass
    return tuple(errors)


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
    except _user_errors() as exc:
        msg = " ".join(str(exc).split()) or exc.__class__.__name__
        print(f"semat: error: {msg}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
