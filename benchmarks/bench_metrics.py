"""Time the matting metrics on full-HD prediction/ground-truth pairs.

    .venv/bin/python benchmarks/bench_metrics.py [--pairs 100] [--size 1920x1080] [--convention semat]

Pairs are synthetic (soft blobs with hair-like strands, the prediction a blurred, shifted, noisy
copy) and built before the clock starts. Prints the total and the per-metric time per pair.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from semat.evaluation import metrics as M


def make_pair(rng: np.random.Generator, h: int, w: int, worst_case: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """A matting-like pair: an object with soft edges and hair strands on an exact-0 background.

    ``worst_case`` instead fills the frame with many soft blobs and adds noise everywhere, so that
    almost no pixel is exactly 0 or 1 and every Conn threshold has hundreds of components.
    """
    import cv2

    if worst_case:
        small = rng.random((h // 16 + 1, w // 16 + 1))
        field = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
        gt = np.clip((field - 0.45) * 6, 0, 1)
    else:
        gt = np.zeros((h, w), np.float64)
        cx, cy = w * rng.uniform(0.4, 0.6), h * rng.uniform(0.45, 0.6)
        cv2.ellipse(gt, (int(cx), int(cy)), (int(w * 0.18), int(h * 0.4)), 0, 0, 360, 1.0, -1, cv2.LINE_AA)
        cv2.circle(gt, (int(cx), int(cy - h * 0.35)), int(h * 0.13), 1.0, -1, cv2.LINE_AA)
        gt = cv2.GaussianBlur(gt, (0, 0), 1.5)
    for _ in range(60):  # thin strands: soft 1 px lines
        x0 = int(rng.integers(int(w * 0.3), int(w * 0.7)))
        y0 = int(rng.integers(0, int(h * 0.6)))
        x1, y1 = x0 + int(rng.integers(-150, 150)), y0 + int(rng.integers(-150, 150))
        cv2.line(gt, (x0, y0), (x1, y1), float(rng.uniform(0.3, 1.0)), 1, cv2.LINE_AA)
    gt = np.clip(gt, 0, 1)
    pred = cv2.GaussianBlur(np.roll(gt, (2, 3), axis=(0, 1)), (5, 5), 1.5)
    if worst_case:
        pred = pred + rng.normal(0, 0.02, pred.shape)
    else:  # errors only near the object, as a matting model makes them
        band = cv2.dilate((pred > 0.01).astype(np.uint8), np.ones((9, 9), np.uint8)).astype(bool)
        pred = pred + band * rng.normal(0, 0.02, pred.shape)
    pred = np.clip(pred, 0, 1)
    # As the SEMat evaluator: prediction rounded to 8 bits, ground truth float (here 8-bit levels).
    return np.uint8(pred * 255 + 0.5), np.round(gt * 255) / 255


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", type=int, default=100)
    ap.add_argument("--size", default="1920x1080", help="W x H")
    ap.add_argument("--convention", default="semat", choices=M.CONVENTIONS)
    ap.add_argument("--distinct", type=int, default=4, help="distinct synthetic pairs to cycle through")
    ap.add_argument("--worst-case", action="store_true",
                    help="noise everywhere and blobs over the whole frame instead of one matting-like object")
    args = ap.parse_args(argv)
    w, h = (int(v) for v in args.size.lower().split("x"))

    try:
        import torch

        torch.set_num_threads(2)
    except ImportError:
        pass
    rng = np.random.default_rng(0)
    pairs = [make_pair(rng, h, w, args.worst_case) for _ in range(max(1, min(args.distinct, args.pairs)))]

    per_metric = {"MSE+SAD+MAD": 0.0, "Grad": 0.0, "Conn": 0.0}
    conv = args.convention
    t0 = time.perf_counter()
    rows = []
    for i in range(args.pairs):
        pred, gt = pairs[i % len(pairs)]
        rows.append(M.compute_all(pred, gt, convention=conv))
    total = time.perf_counter() - t0

    # A separate pass on a few pairs to split the time by metric.
    n_split = min(10, args.pairs)
    for i in range(n_split):
        pred, gt = pairs[i % len(pairs)]
        t = time.perf_counter()
        M.mse(pred, gt, convention=conv), M.sad(pred, gt), M.mad(pred, gt, convention=conv)
        per_metric["MSE+SAD+MAD"] += time.perf_counter() - t
        t = time.perf_counter()
        M.grad(pred, gt, convention=conv)
        per_metric["Grad"] += time.perf_counter() - t
        t = time.perf_counter()
        M.conn(pred, gt, convention=conv)
        per_metric["Conn"] += time.perf_counter() - t

    mean = M.mean_metrics(rows)
    kind = "worst-case (noise everywhere)" if args.worst_case else "matting-like"
    print(f"metrics benchmark: {args.pairs} {kind} pairs of {w}x{h}, convention {conv}, "
          f"{os.cpu_count()} CPU cores visible")
    print(f"  total {total:.2f} s  ({total / args.pairs * 1000:.0f} ms per pair, compute_all)")
    print("  per pair: " + ", ".join(f"{k} {v / n_split * 1000:.0f} ms" for k, v in per_metric.items()))
    print("  mean scores: " + ", ".join(f"{k} {v:.4g}" for k, v in mean.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
