"""``semat eval``: benchmark a SEMat model on a paper test set, or score a folder of predictions.

    semat eval --dataset AIM500 --root /data/matting [--variant hq-sam] [--checkpoint PATH]
               [--limit N] [--out DIR] [--convention semat|sghm] [--preprocess reference|app]
    semat eval --pred-dir PRED --gt-dir GT [--trimap-dir TRIMAP] [--json OUT.json]

See :mod:`semat.evaluation.runner` for the protocols and :mod:`semat.evaluation.metrics` for the metric conventions.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from semat.cli.common import add_semat_arguments, log, predictor_from_args
from semat.errors import InputError


def register(sub: argparse._SubParsersAction) -> None:
    from semat.evaluation.metrics import CONVENTIONS
    from semat.evaluation.runner import DATASETS, PREPROCESS

    layouts = "; ".join(f"{d.name}: {d.describe()}" for d in DATASETS.values())
    p = sub.add_parser(
        "eval", help="benchmark on a paper test set, or score a folder of predictions",
        description=("Either run SEMat on a test set (--dataset NAME --root DIR) and score it with the paper's "
                     "protocol and at the original resolution, or score existing predictions "
                     "(--pred-dir P --gt-dir G). Layouts under --root: " + layouts + ". Images and alphas are "
                     "paired by file stem."))
    d = p.add_argument_group("benchmark a model on a test set")
    d.add_argument("--dataset", metavar="NAME", help="one of " + ", ".join(DATASETS))
    d.add_argument("--root", metavar="DIR", help="folder holding the dataset folder (or the dataset folder itself)")
    add_semat_arguments(d)  # --variant (from the registry), --checkpoint, --device, --dtype
    d.add_argument("--limit", type=int, default=None, metavar="N", help="score only the first N images (sorted)")
    d.add_argument("--out", default=None, metavar="DIR",
                   help="results folder (default eval-results/<DATASET>-<variant>); rerunning resumes")
    d.add_argument("--preprocess", choices=PREPROCESS, default="reference",
                   help="reference: the SEMat evaluator's exact resizing and box (default); app: the app's "
                        "predictor (demo pre-processing)")
    d.add_argument("--fresh", action="store_true", help="discard earlier results in --out instead of resuming")
    d.add_argument("--save-alpha", action="store_true", help="also save each predicted alpha (8-bit PNG) under OUT/alpha")
    f = p.add_argument_group("score a folder of predictions")
    f.add_argument("--pred-dir", metavar="DIR", help="predicted alphas (8/16-bit grey, or RGBA: its alpha)")
    f.add_argument("--gt-dir", metavar="DIR", help="ground-truth alphas, same file stems")
    f.add_argument("--trimap-dir", metavar="DIR", help="optional trimaps: score only where trimap == 128")
    f.add_argument("--json", metavar="OUT", help="write per-image scores and means to this JSON file")
    p.add_argument("--convention", choices=CONVENTIONS, default="semat",
                   help="metric conventions: semat (SEMat evaluator, the paper; default) or sghm (SGHM test_image.py)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from semat.cli.main import CLIError

    folder_mode = args.pred_dir is not None or args.gt_dir is not None
    dataset_mode = args.dataset is not None or args.root is not None
    if folder_mode and dataset_mode:
        raise CLIError("use either --dataset/--root (run a model) or --pred-dir/--gt-dir (score predictions), not both")
    if folder_mode:
        if not (args.pred_dir and args.gt_dir):
            raise CLIError("--pred-dir and --gt-dir go together")
        return _run_folders(args)
    if not (args.dataset and args.root):
        raise CLIError("give --dataset NAME and --root DIR, or --pred-dir P and --gt-dir G")
    if args.trimap_dir or args.json:
        raise CLIError("--trimap-dir and --json belong to --pred-dir scoring")
    return _run_dataset(args)


def _run_dataset(args: argparse.Namespace) -> int:
    from semat.evaluation import runner as E

    layout = E.dataset_layout(args.dataset)  # ValueError -> one-line error
    if args.limit is not None and args.limit < 1:
        raise InputError("--limit must be at least 1")
    E.discover(layout.name, args.root)  # fail on a wrong --root before loading a model
    predictor = predictor_from_args(args)
    matter = E.make_matter(predictor, args.preprocess)
    out = Path(args.out) if args.out else Path("eval-results") / f"{layout.name}-{args.variant}"
    ckpt = predictor.checkpoint_path
    settings = {"variant": predictor.variant or args.variant, "preprocess": args.preprocess,
                "checkpoint": str(ckpt) if ckpt is not None else "none (random weights)",
                "checkpoint_sha256": predictor.checkpoint_sha256(),
                "dtype": str(predictor.runtime.dtype).removeprefix("torch.")}
    res = E.evaluate_dataset(layout.name, args.root, matter, out, settings=settings, limit=args.limit,
                             convention=args.convention, fresh=args.fresh, progress=not args.no_progress,
                             save_alpha=args.save_alpha, log=log)
    print(f"{res.title}: {res.n_scored} of {res.n_samples} scored" + (f", {len(res.skipped)} skipped" if res.skipped else ""))
    for proto, means in res.means.items():
        print(f"  {proto:5s} {E.format_means(means, args.convention)}")
    print(f"  per-image CSV: {out / 'per_image.csv'}; summary: {out / 'summary.md'}, {out / 'summary.json'}")
    return 0


def _run_folders(args: argparse.Namespace) -> int:
    from semat.evaluation import runner as E

    res = E.score_folders(args.pred_dir, args.gt_dir, args.trimap_dir, convention=args.convention,
                          progress=not args.no_progress, log=log)
    for s in res.skipped:
        log(f"skipped {s['id']}: {s['reason']}")
    print(f"scored {len(res.rows)} prediction(s)" + (f", {len(res.skipped)} skipped" if res.skipped else "")
          + f" ({args.convention} convention)")
    print("  " + E.format_means(res.means, args.convention))
    if args.json:
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(res.to_json(), indent=1, default=str) + "\n")
        print(f"  written: {path}")
    return 0 if res.rows else 1
