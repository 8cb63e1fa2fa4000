"""Object video matting: temporal flicker of the box rules, and frames per second on this machine.

One run prints:

1. **Flicker** on a synthetic clip (a soft-edged object with a known alpha moving over a
   textured background), for the two box rules of :mod:`semat.pipeline.video`:
   ``propagate`` (the previous frame's alpha box grown by the margin; a detection on the first
   frame and every N frames) and ``independent`` (a fresh detection on every frame). The
   detector is a stand-in: the true box with Gaussian jitter of ``--jitter`` of its size per
   coordinate (GroundingDINO's frame-to-frame jitter on a still object is a few per cent). Two
   matters: ``oracle`` (the known alpha inside the given box: shows what box placement alone
   does) and ``tiny-semat`` (the SEMat network with random weights: a real architecture's
   sensitivity to its box, not a quality figure). Flicker is the mean absolute change of the
   *error* from one frame to the next, ``|(a_t - g_t) - (a_{t-1} - g_{t-1})|``, in 8-bit levels,
   so the object's own motion does not count; MAD is the mean error against the known alpha.
2. **fps of ``semat video``** end to end (decode, track, SEMat, composite, encode) with the
   tiny models on this CPU, and the per-frame cost to expect with the released weights.

Usage: ``python benchmarks/bench_video.py [--frames 24] [--size 160x120]``.
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

os.environ.setdefault("SEMAT_TEST_MODELS", "tiny")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def clip_frame(i: int, w: int, h: int, rng_tex: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    cx, cy = w * 0.25 + i * w * 0.01, h * 0.5 + 0.08 * h * np.sin(i / 6)
    r = 0.18 * min(w, h)
    d = np.hypot((xx - cx) / 1.3, yy - cy)
    alpha = np.clip((r - d) / 4.0, 0, 1)  # 4 px soft edge
    fg = np.stack([200 + 40 * np.sin(xx / 5), 80 + 0 * xx, 60 + 30 * np.cos(yy / 7)], -1)
    rgb = alpha[..., None] * fg + (1 - alpha[..., None]) * rng_tex
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8), alpha.astype(np.float32)


class StandIn:
    """A pipeline-shaped stand-in: jittered true boxes as detections, a chosen matter."""

    max_boxes = 16

    def __init__(self, truth, matter, jitter: float, seed: int = 0):
        self.truth, self.matter, self.jitter = truth, matter, jitter
        self.rng = np.random.default_rng(seed)

    def detect(self, frame, text, bt, tt, raise_if_empty=True):
        from semat.inference.detect import Detection
        from semat.pipeline.video import alpha_box

        box, _ = alpha_box(self.truth(frame))
        if box is None:
            return []
        x1, y1, x2, y2 = box
        s = self.jitter * np.array([x2 - x1, y2 - y1, x2 - x1, y2 - y1])
        b = np.array(box) + self.rng.normal(0, 1, 4) * s
        h, w = frame.shape[:2]
        b = np.clip(b, 0, [w, h, w, h])
        return [Detection(tuple(float(v) for v in b), "object", 0.9)]

    def predictor(self, variant):
        return self

    def predict(self, frame, boxes, batch_size=4):
        return [SimpleNamespace(alpha=self.matter(frame, b)) for b in boxes]


def oracle(truth):
    def matter(frame, box):
        a = truth(frame)
        x1, y1, x2, y2 = (round(float(v)) for v in box)
        out = np.zeros_like(a)
        out[y1:y2, x1:x2] = a[y1:y2, x1:x2]
        return out
    return matter


def tiny_semat():
    from semat.inference.predictor import SEMatPredictor

    pred = SEMatPredictor.tiny("sam")

    def matter(frame, box):
        return pred.predict(frame, [box])[0].alpha
    return matter


def flicker(alphas, truths) -> tuple[float, float]:
    err = [a - g for a, g in zip(alphas, truths)]
    fl = np.mean([np.abs(e1 - e0).mean() for e0, e1 in itertools.pairwise(err)]) * 255
    mad = np.mean([np.abs(e).mean() for e in err]) * 255
    return float(fl), float(mad)


def run_rule(rule, frames, truths, matter_factory, jitter, redetect):
    from semat.pipeline.video import ObjectTracker, TrackConfig

    lookup = {f.tobytes(): g for f, g in zip(frames, truths)}

    def truth(f):
        return lookup[f.tobytes()]
    pipe = StandIn(truth, matter_factory(truth), jitter)
    tracker = ObjectTracker(pipe, text="object", config=TrackConfig(rule=rule, redetect_every=redetect))
    t0 = time.perf_counter()
    alphas = [tracker.step(f).alpha for f in frames]
    return (*flicker(alphas, truths), time.perf_counter() - t0, tracker.stats["detections"])


def write_clip(path: Path, n: int, w: int, h: int) -> Path:
    import av

    rng = np.random.default_rng(1)
    tex = rng.integers(0, 255, (h, w, 3)).astype(np.float32)
    c = av.open(str(path), "w")
    s = c.add_stream("libx264", rate=25)
    s.width, s.height, s.pix_fmt = w, h, "yuv420p"
    for i in range(n):
        for p in s.encode(av.VideoFrame.from_ndarray(clip_frame(i, w, h, tex)[0], format="rgb24")):
            c.mux(p)
    for p in s.encode(None):
        c.mux(p)
    c.close()
    return path


def bench_cli_fps(n: int, w: int, h: int) -> tuple[float, int]:
    from semat.cli.main import main

    with tempfile.TemporaryDirectory() as d:
        src = write_clip(Path(d) / "in.mp4", n, w, h)
        t0 = time.perf_counter()
        rc = main(["video", str(src), "--text", "object", "--box-threshold", "0", "--text-threshold", "0",
                   "--max-objects", "1", "--variant", "sam", "-o", str(Path(d) / "out.mp4"), "--no-progress"])
        return n / (time.perf_counter() - t0), rc


def bench_tab_vs_cli(n: int, w: int, h: int, rounds: int = 3) -> tuple[float, float]:
    """Frames/s of ``semat video --box`` and of the app's Video tab (its two passes: chunked
    matting with the alphas on disk, then decode + composite + encode) on the same clip and box,
    interleaved; the best of ``rounds`` each."""
    from semat.app.video_tab import MODES, matte_clip
    from semat.cli.main import main

    box = f"{w * 0.2:.0f},{h * 0.2:.0f},{w * 0.7:.0f},{h * 0.8:.0f}"
    cli, tab = [], []
    with tempfile.TemporaryDirectory() as d:
        src = write_clip(Path(d) / "in.mp4", n, w, h)
        for r in range(rounds):
            t0 = time.perf_counter()
            main(["video", str(src), "--box", box, "--variant", "sam", "-o", str(Path(d) / f"cli{r}.mp4"),
                  "--alpha-video", str(Path(d) / f"cli{r}_a.mp4"), "--no-progress"])
            cli.append(n / (time.perf_counter() - t0))
            t0 = time.perf_counter()
            for _ in matte_clip(str(src), MODES[1], box_text=box, variant="SEMat SAM", out_dir=Path(d) / f"tab{r}"):
                pass
            tab.append(n / (time.perf_counter() - t0))
    return max(cli), max(tab)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    ap.add_argument("--frames", type=int, default=24)
    ap.add_argument("--size", default="160x120")
    ap.add_argument("--jitter", type=float, default=0.03)
    ap.add_argument("--redetect-every", type=int, default=30)
    ap.add_argument("--matters", default="oracle,tiny-semat", help="comma-separated: oracle, tiny-semat")
    ap.add_argument("--no-fps", action="store_true", help="skip the semat video fps run")
    args = ap.parse_args()
    w, h = (int(v) for v in args.size.split("x"))
    import torch

    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    rng = np.random.default_rng(0)
    tex = np.clip(rng.normal(128, 40, (h, w, 3)), 0, 255).astype(np.float32)
    clip = [clip_frame(i, w, h, tex) for i in range(args.frames)]
    frames, truths = [f for f, _ in clip], [g for _, g in clip]
    print(f"synthetic clip: {args.frames} frames {w}x{h}, detector jitter {args.jitter:.0%} of the box per "
          f"coordinate, re-detect every {args.redetect_every} frames")
    print(f"{'matter':<11} {'rule':<12} {'flicker (levels)':>16} {'MAD (levels)':>13} {'detections':>10} {'s':>6}")
    results = {}
    wanted = set(args.matters.split(","))
    for name, factory in (("oracle", oracle), ("tiny-semat", lambda truth: tiny_semat())):
        if name not in wanted:
            continue
        for rule in ("propagate", "independent"):
            fl, mad, secs, dets = run_rule(rule, frames, truths, factory, args.jitter, args.redetect_every)
            results[(name, rule)] = fl
            print(f"{name:<11} {rule:<12} {fl:>16.3f} {mad:>13.3f} {dets:>10d} {secs:>6.1f}")
        p, i = results[(name, "propagate")], results[(name, "independent")]
        print(f"{name:<11} flicker independent / propagate = {i / p:.2f}" if p > 0 else
              f"{name:<11} propagate has no flicker; independent {i:.3f} levels")
    if args.no_fps:
        return
    fps, rc = bench_cli_fps(12, w, h)
    print(f"semat video (tiny models, {w}x{h}, 1 object, CPU): {fps:.2f} frames/s end to end (rc {rc})")
    os.environ["SEMAT_VIDEO_MAX_FRAMES_CPU"] = "100000"  # the tab's CPU cap would cut the clip
    cli, tab = bench_tab_vs_cli(24, w, h)
    print(f"same box, same clip ({w}x{h}, 24 frames): semat video {cli:.2f} frames/s, Video tab {tab:.2f} "
          f"frames/s, tab / CLI = {tab / cli:.2f}")
    print("released weights, 2 CPU cores, 1024 px working frame: one SEMat forward per object per frame, "
          "about 15 s (HQ-SAM) / 9 s (SAM2) -> 0.07-0.11 frames/s per object (README 'CPU speed')")


if __name__ == "__main__":
    main()
