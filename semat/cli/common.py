"""Helpers shared by the ``semat`` subcommands: logging, model options, output-path checks."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from semat import registry

DTYPE_CHOICES = ("auto", "float32", "bfloat16", "float16")


def log(msg: str) -> None:
    """A progress or notice line on stderr (stdout stays free for results)."""
    print(msg, file=sys.stderr)


def add_runtime_arguments(p: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """``--device`` and ``--dtype`` (every model command)."""
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default auto)")
    p.add_argument("--dtype", default=None, choices=DTYPE_CHOICES,
                   help="compute precision (default: SEMAT_DTYPE, else the runtime's default)")


def add_semat_arguments(p: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """``--variant`` (choices from the model registry), ``--checkpoint``, ``--device``, ``--dtype``."""
    variants = registry.names("semat")
    p.add_argument("--variant", choices=variants, default=variants[0],
                   help=f"SEMat checkpoint family (default {variants[0]})")
    p.add_argument("--checkpoint", default=None,
                   help="checkpoint file or weights name (default: the released file for the variant)")
    add_runtime_arguments(p)


def dtype_of(args: argparse.Namespace) -> str | None:
    dtype = getattr(args, "dtype", None)
    return None if dtype in (None, "auto") else dtype


def predictor_from_args(args: argparse.Namespace):
    """The SEMat predictor for ``--variant/--checkpoint/--device/--dtype`` through the registry (a
    tiny random model under ``SEMAT_TEST_MODELS=tiny``, said on stderr)."""
    announce_test_mode()
    return registry.load(args.variant, checkpoint=args.checkpoint, device=args.device, dtype=dtype_of(args),
                         progress=log)


def announce_test_mode() -> None:
    from semat.settings import Settings

    if Settings.from_env().test_models:
        log("semat: SEMAT_TEST_MODELS=tiny: using random-weight tiny models (test mode; output is meaningless)")


def check_output_file(path: str | os.PathLike, flag: str = "-o") -> Path:
    """Refuse an output path that cannot be written (a folder, or under a file) before any model work."""
    from semat.cli.main import CLIError

    p = Path(path)
    if p.is_dir():
        raise CLIError(f"{flag} {str(path)[:80]} is a folder; give a file name such as {p / 'alpha.png'}")
    parent = p.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if parent.exists() and not parent.is_dir():
        raise CLIError(f"{flag} {str(path)[:80]}: {parent} is a file, not a folder")
    if parent.exists() and not os.access(parent, os.W_OK):
        raise CLIError(f"{flag} {str(path)[:80]}: cannot write into {parent}")
    return p


def check_output_dir(path: str | os.PathLike, flag: str = "-o") -> Path:
    from semat.cli.main import CLIError

    p = Path(path)
    if p.exists() and not p.is_dir():
        raise CLIError(f"{flag} {str(path)[:80]} is a file; give a folder")
    check_output_file(p / "x", flag)
    return p


def human_from_args(args: argparse.Namespace):
    """SGHM through the registry (``--checkpoint`` or the released weights; tiny under test mode)."""
    announce_test_mode()
    return registry.load(registry.default("human"), checkpoint=args.checkpoint, device=args.device,
                         dtype=dtype_of(args), progress=log)


def max_side_of(args: argparse.Namespace) -> int | None:
    """``--max-side``: None → SGHM's default cap, 0 → no cap, else at least 64."""
    from semat.cli.main import CLIError
    from semat.inference.sghm import DEFAULT_MAX_SIDE

    if args.max_side is None:
        return DEFAULT_MAX_SIDE
    if args.max_side < 0 or 0 < args.max_side < 64:
        raise CLIError("--max-side must be 0 (no cap) or at least 64")
    return args.max_side or None
