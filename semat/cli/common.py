"""Helpers shared by the ``semat`` subcommands."""

from __future__ import annotations

import argparse
import sys


def log(msg: str) -> None:
    """A progress or notice line on stderr (stdout stays free for results)."""
    print(msg, file=sys.stderr)


def predictor_from_args(args: argparse.Namespace):
    """The SEMat predictor for ``--variant/--checkpoint/--device/--dtype``; a tiny random model
    under ``SEMAT_TEST_MODELS=tiny`` (test mode, meaningless output)."""
    from semat.inference.predictor import SEMatPredictor
    from semat.weights.hub import tiny_models_requested

    if tiny_models_requested():
        log("semat: SEMAT_TEST_MODELS=tiny: using a random-weight tiny model (test mode; output is meaningless)")
        return SEMatPredictor.tiny(args.variant)
    return SEMatPredictor.from_pretrained(args.variant, checkpoint=args.checkpoint, device=args.device,
                                          dtype=args.dtype, progress=log)
