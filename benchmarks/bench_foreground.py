"""Foreground colour estimation: time at 12 MP and error against a known foreground, old vs new.

    .venv/bin/python benchmarks/bench_foreground.py [--repeats 3] [--size 4000x3000] [--threads N]

Synthetic composites with a KNOWN foreground: smooth-coloured F with fine grain, B with smooth
colour and hard-edged stripes, and an alpha with a soft elliptical edge plus a ring of thin
"hair" strands; ``I = alpha F + (1 - alpha) B`` rounded to 8 bits. The error is the mean absolute
difference between the estimated and the true F (0..255 levels, mean over RGB), weighted by
alpha over the unknown band ``0 < alpha < 1`` (a pixel counts as much as it shows).

Compared, interleaved in one run so machine load hits all alike:

* ``old``: the previous ``compose.estimate_foreground`` (pymatting ``estimate_foreground_ml`` on
  the bounding box of the visible matte plus 32 px), kept verbatim below;
* ``ml``: the current default, the same estimator on the unknown band only, in parallel strips;
* ``blur-fusion``: the Forte & Pitié approximate estimator, on the band;
* ``raw``: no estimation (the image colour), for scale.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from semat.compose import estimate_foreground
from semat.compose.foreground import foreground_colours, unknown_band


def old_estimate_foreground(image: np.ndarray, alpha: np.ndarray, margin: int = 32) -> np.ndarray:
    """The previous implementation (bounding box of the visible matte, pymatting ML), verbatim."""
    out = image.copy()
    a = alpha
    soft = (a > 0.0) & (a < 1.0)
    if not soft.any():
        return out
    visible = np.argwhere(a > 0.0)
    (y0, x0), (y1, x1) = visible.min(0), visible.max(0) + 1
    h, w = a.shape
    y0, x0 = max(0, y0 - margin), max(0, x0 - margin)
    y1, x1 = min(h, y1 + margin), min(w, x1 + margin)
    from pymatting import estimate_foreground_ml

    crop = image[y0:y1, x0:x1].astype(np.float64) / 255.0
    fg = estimate_foreground_ml(crop, a[y0:y1, x0:x1].astype(np.float64))
    fg8 = np.clip(np.rint(np.asarray(fg) * 255.0), 0, 255).astype(np.uint8)
    region = out[y0:y1, x0:x1]
    keep = a[y0:y1, x0:x1] >= 1.0
    region[~keep] = fg8[~keep]
    return out


# ---------------------------------------------------------------------------------- synthetic


def _smooth(h: int, w: int, rng: np.random.Generator, cell: int, channels: int = 3) -> np.ndarray:
    small = rng.random((max(2, h // cell), max(2, w // cell), channels)).astype(np.float32)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC).reshape(h, w, channels)


def synthetic(h: int, w: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(image uint8, alpha float32, true foreground float32 in [0, 1])."""
    rng = np.random.default_rng(seed)
    s = min(h, w)
    fg = (0.25 + 0.5 * _smooth(h, w, rng, max(4, s // 12))) * np.array([1.1, 0.8, 0.6], np.float32)
    grain = cv2.GaussianBlur(rng.random((h, w)).astype(np.float32), (0, 0), 1.0)
    fg = np.clip(fg + 0.15 * (grain[..., None] - 0.5), 0, 1)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    stripes = ((xx // max(2, s // 20) + yy // max(2, s // 15)) % 2)[..., None]
    bg = np.clip(0.6 * _smooth(h, w, rng, max(4, s // 6)) + 0.4 * stripes * np.array([0.2, 0.9, 0.3], np.float32),
                 0, 1)
    cy, cx, ry, rx = h * 0.55, w * 0.5, h * 0.35, w * 0.28
    d = np.sqrt(((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2)  # 1 on the ellipse
    theta = np.arctan2(yy - cy, xx - cx)
    core = np.clip((1.0 - d) * s / max(1.0, s * 0.004) * 0.1 + 0.5, 0, 1)
    ring = np.clip(1.0 - (d - 1.0) / 0.12, 0, 1) * (d > 0.95)
    wobble = 3 * _smooth(h, w, rng, max(4, s // 10), 1)[..., 0]
    strands = (0.5 + 0.5 * np.sin(theta * (s / 6.0) + wobble)) ** 2
    alpha = np.clip(np.maximum(core, strands * ring ** 1.5), 0, 1).astype(np.float32)
    image = np.rint((alpha[..., None] * fg + (1 - alpha[..., None]) * bg) * 255).astype(np.uint8)
    return image, alpha, fg.astype(np.float32)


def fg_error(estimate: np.ndarray, fg_true: np.ndarray, alpha: np.ndarray) -> float:
    """Alpha-weighted mean |F_est - F_true| over 0 < alpha < 1, in 0..255 levels."""
    band = (alpha > 0) & (alpha < 1)
    err = np.abs(estimate[band].astype(np.float32) - fg_true[band] * 255.0).mean(-1)
    return float((err * alpha[band]).sum() / alpha[band].sum())


def cpu_name() -> str:
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or "unknown CPU"
    name = next((ln.split(":", 1)[1].strip() for ln in info.splitlines() if ln.startswith("model name")), "?")
    flags = next((ln.split(":", 1)[1].split() for ln in info.splitlines() if ln.startswith("flags")), [])
    extras = [f for f in ("avx2", "avx512f", "amx_bf16") if f in flags]
    return f"{name} ({', '.join(extras) or 'no avx2'}), {os.cpu_count()} logical CPUs"


# ---------------------------------------------------------------------------------------- main


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", default="4000x3000", help="WxH of the timed image (default 12 MP)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seeds", type=int, default=3, help="small composites for the error table")
    args = ap.parse_args()
    w, h = (int(v) for v in args.size.lower().split("x"))
    print(f"CPU: {cpu_name()}; Python {platform.python_version()}, OpenCV {cv2.__version__}")

    methods = {
        "old": lambda i, a: old_estimate_foreground(i, a),
        "ml": lambda i, a: estimate_foreground(i, a, method="ml"),
        "blur-fusion": lambda i, a: estimate_foreground(i, a, method="blur-fusion"),
    }
    warm_i, warm_a, _ = synthetic(96, 128, 9)
    for fn in methods.values():  # imports and numba's first call stay out of the timings
        fn(warm_i, warm_a)

    print("\nError vs the known foreground (alpha-weighted mean abs, 0-255 levels, unknown band):")
    print(f"{'composite':>22} " + " ".join(f"{k:>12}" for k in (*methods, "raw")))
    errors: dict[str, list[float]] = {k: [] for k in (*methods, "raw")}
    cases = [(900, 1200, seed) for seed in range(args.seeds)] + [(h, w, 0)]
    big = None
    for ch, cw, seed in cases:
        image, alpha, fg_true = synthetic(ch, cw, seed)
        if (ch, cw) == (h, w):
            big = (image, alpha, fg_true)
        row = {k: fg_error(fn(image, alpha), fg_true, alpha) for k, fn in methods.items()}
        row["raw"] = fg_error(image, fg_true, alpha)
        for k, v in row.items():
            errors[k].append(v)
        print(f"{f'{cw}x{ch} seed {seed}':>22} " + " ".join(f"{row[k]:12.2f}" for k in errors))
    print(f"{'mean':>22} " + " ".join(f"{statistics.mean(v):12.2f}" for v in errors.values()))

    assert big is not None
    image, alpha, _ = big
    band = unknown_band(alpha)
    soft = (alpha > 0) & (alpha < 1)
    visible = np.argwhere(alpha > 0)
    (y0, x0), (y1, x1) = visible.min(0), visible.max(0) + 1
    print(f"\nTiming at {w}x{h} ({w * h / 1e6:.1f} MP): unknown band {soft.mean():.1%} of the frame "
          f"({band.mean():.1%} dilated), bounding box of the visible matte {(y1 - y0) * (x1 - x0) / alpha.size:.1%}")
    times: dict[str, list[float]] = {k: [] for k in methods}
    outputs: dict[str, np.ndarray] = {}
    for _ in range(args.repeats):
        for k, fn in methods.items():  # interleaved
            t0 = time.perf_counter()
            outputs[k] = fn(image, alpha)
            times[k].append(time.perf_counter() - t0)
    base = statistics.median(times["old"])
    for k, ts in times.items():
        med = statistics.median(ts)
        print(f"  {k:>12}: median {med:6.2f} s (min {min(ts):.2f}, max {max(ts):.2f})  old/this = {base / med:5.2f}x")
    diff = np.abs(outputs["ml"].astype(int) - outputs["old"].astype(int))[soft]
    print(f"  ml vs old in the band: mean {diff.mean():.3f} levels, 99.9th pct {np.percentile(diff, 99.9):.0f}, "
          f"max {diff.max()}; opaque pixels identical: "
          f"{np.array_equal(outputs['ml'][alpha >= 1], image[alpha >= 1])}")

    print("\nEdge cases:")
    for label, a in (("all-0 alpha", np.zeros_like(alpha)), ("all-1 alpha", np.ones_like(alpha))):
        t0 = time.perf_counter()
        out = estimate_foreground(image, a)
        print(f"  {label} at {w}x{h}: {time.perf_counter() - t0:.3f} s, unchanged: {np.array_equal(out, image)}")
    for size in ((1, 1), (2, 2), (1, 7)):
        ti = np.full((*size, 3), 200, np.uint8)
        ta = np.full(size, 0.5, np.float32)
        shapes = [foreground_colours(ti, ta, m).shape for m in ("ml", "blur-fusion")]
        print(f"  {size[0]}x{size[1]} image, alpha 0.5: ml and blur-fusion give {shapes[0]} and {shapes[1]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
