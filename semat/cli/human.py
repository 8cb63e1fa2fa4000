"""``semat human INPUT... -o OUT_DIR``: automatic human mattes with SGHM for images and folders.

INPUT is any mix of image files and folders (a folder contributes its image files, sorted by
name; ``--recursive`` descends into sub-folders). For every image, OUT_DIR/<stem>.png gets the
8-bit alpha at the image's original size (rounded). ``--rgba`` adds <stem>_rgba.png (cut-out with
estimated foreground colours), ``--composite SPEC`` adds <stem>_composite.png on a colour,
``blur``, ``checker`` or an image. An unreadable file is reported and skipped; the others go on
(exit status 1 when any failed). ``--gt-dir DIR`` scores each alpha against DIR/<stem>.<ext> and
prints per-image and mean MSE, SAD, MAD, Grad and Conn (written to OUT_DIR/metrics.json too).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from semat.cli.common import add_runtime_arguments, human_from_args, max_side_of


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("human", help="automatic human matting (SGHM) of images and folders",
                       description=__doc__.split("\n\n", 1)[1] if __doc__ else None)
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files and/or folders")
    p.add_argument("-o", "--output-dir", required=True, metavar="OUT_DIR", help="folder for the results")
    p.add_argument("--checkpoint", default=None, help="SGHM checkpoint file (default: SGHM-ResNet50.pth "
                                                      "from the weights folder, downloaded if needed)")
    p.add_argument("--rgba", action="store_true", help="also write <stem>_rgba.png cut-outs")
    p.add_argument("--composite", default=None, metavar="COLOR",
                   help="also write <stem>_composite.png on this background (#RRGGBB, a colour name, "
                        "blur, checker or an image path)")
    p.add_argument("--gt-dir", default=None, metavar="DIR", help="ground-truth alphas (<stem>.*) to score against")
    p.add_argument("--metrics-convention", choices=("semat", "sghm"), default="semat",
                   help="metric scales (semat: MSE, SAD, MAD, Grad, Conn; sghm: test_image.py's, no SAD)")
    p.add_argument("--max-side", type=int, default=None,
                   help="cap on the longer network side (default 2560; 0 = no cap, as the reference)")
    p.add_argument("--recursive", action="store_true", help="descend into sub-folders")
    add_runtime_arguments(p)
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=run)


def collect_inputs(items: list[str], recursive: bool = False) -> tuple[list[Path], list[str]]:
    """Image paths from files and folders, plus one problem line per unusable argument (the batch
    job's rule, :func:`semat.batch.items.collect_paths`; ``semat human`` reads local files only)."""
    from semat.batch.items import collect_paths

    files, problems = collect_paths([str(Path(i).expanduser()) for i in items], recursive)
    return [Path(f) for f in files], problems


def _unique_stem(path: Path, used: set[str]) -> str:
    stem, n = path.stem, 1
    while stem in used:
        stem = f"{path.stem}_{n}"
        n += 1
    used.add(stem)
    return stem


def _find_gt(gt_dir: Path, stem: str) -> Path | None:
    for ext in (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp"):
        cand = gt_dir / f"{stem}{ext}"
        if cand.is_file():
            return cand
    return None


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from semat.cli.main import CLIError
    from semat.compose import alpha_to_png8, composite, estimate_foreground, parse_background, rgba
    from semat.io.images import ImageInputError, load_image, save_png

    max_side = max_side_of(args)
    background = parse_background(args.composite, allow_path=True) if args.composite else None
    gt_dir = Path(args.gt_dir).expanduser() if args.gt_dir else None
    if gt_dir is not None and not gt_dir.is_dir():
        raise CLIError(f"--gt-dir {gt_dir}: no such folder")
    files, problems = collect_inputs(args.inputs, args.recursive)
    for line in problems:
        print(f"semat: warning: {line}", file=sys.stderr)
    if not files:
        raise CLIError("no input images found")
    out_dir = Path(args.output_dir).expanduser()
    out_dir.mkdir(parents=True, exist_ok=True)
    matter = human_from_args(args)

    failures = len(problems)
    used: set[str] = set()
    scores: list[dict] = []
    bar = tqdm(files, desc="human matting", unit="img", disable=args.no_progress, file=sys.stderr)
    for path in bar:
        bar.set_postfix_str(path.name[:30])
        try:
            image = load_image(path, max_megapixels=None).rgb
        except ImageInputError as exc:
            tqdm.write(f"semat: skipped {path}: {' '.join(str(exc).split())}", file=sys.stderr)
            failures += 1
            continue
        result = matter.predict(image, max_side=max_side)
        stem = _unique_stem(path, used)
        save_png(out_dir / f"{stem}.png", alpha_to_png8(result.alpha))
        if args.rgba or background is not None:
            fg = estimate_foreground(image, result.alpha)
            if args.rgba:
                save_png(out_dir / f"{stem}_rgba.png", rgba(image, result.alpha, fg))
            if background is not None:
                save_png(out_dir / f"{stem}_composite.png",
                         composite(image, result.alpha, background, foreground=fg))
        if gt_dir is not None:
            row = _score(path, stem, result.alpha, gt_dir, args.metrics_convention)
            if row is None:
                tqdm.write(f"semat: warning: no ground truth {stem}.* in {gt_dir}", file=sys.stderr)
            else:
                scores.append(row)
    bar.close()
    done = len(files) - (failures - len(problems))
    if gt_dir is not None:
        _report_scores(scores, out_dir, args.metrics_convention)
    print(f"{done} alpha matte(s) written to {out_dir}" + (f"; {failures} input(s) failed" if failures else ""))
    if done == 0:
        raise CLIError("no image could be processed")
    return 1 if failures else 0


def _score(path: Path, stem: str, alpha, gt_dir: Path, convention: str) -> dict | None:
    from semat.compose import alpha_to_png8
    from semat.evaluation.metrics import compute_all
    from semat.io.images import ImageInputError, load_image

    gt_path = _find_gt(gt_dir, stem if (gt_dir / f"{stem}.png").exists() else path.stem)
    if gt_path is None:
        return None
    try:
        gt = load_image(gt_path, max_megapixels=None).rgb[:, :, 0]
    except ImageInputError as exc:
        print(f"semat: warning: {exc}", file=sys.stderr)
        return None
    if gt.shape != alpha.shape:
        print(f"semat: warning: {gt_path.name} is {gt.shape[1]}x{gt.shape[0]}, the image is "
              f"{alpha.shape[1]}x{alpha.shape[0]}; not scored", file=sys.stderr)
        return None
    # score the 8-bit alpha that was written, as the reference evaluators read saved PNGs
    return {"image": path.name, **compute_all(alpha_to_png8(alpha), gt, convention=convention)}


def _report_scores(rows: list[dict], out_dir: Path, convention: str) -> None:
    from semat.evaluation.metrics import METRIC_KEYS, mean_metrics

    keys = METRIC_KEYS[convention]
    if not rows:
        print("no image had a ground-truth alpha; nothing scored")
        return
    width = max(len(r["image"]) for r in [*rows, {"image": "mean"}])
    print(f"{'image':<{width}}  " + "  ".join(f"{k:>10}" for k in keys))
    for r in rows:
        print(f"{r['image']:<{width}}  " + "  ".join(f"{r[k]:>10.5g}" for k in keys))
    mean = mean_metrics(rows, keys)
    print(f"{'mean':<{width}}  " + "  ".join(f"{mean[k]:>10.5g}" for k in keys))
    (out_dir / "metrics.json").write_text(json.dumps(
        {"convention": convention, "per_image": rows, "mean": mean, "count": len(rows)}, indent=2))
