"""Text-to-alpha timing, end to end, stage by stage (CPU by default).

Builds full-size models with *random* weights (no download needed; the arithmetic is the same
as with the released weights):

* GroundingDINO-tiny architecture: ``GroundingDinoConfig()`` defaults (Swin-T backbone +
  BERT-base text encoder, 900 queries), with the released model's preprocessing
  (shortest edge 800, longest 1333) and a small WordPiece vocab for tokenising;
* SEMat ``--variant`` (default hq-sam) at its real 1024 px working size.

The image is a synthetic 1024x1024 photo written to PNG, then run through the same code path
as the CLI and the app: ``imageio.load_image`` → ``MattingPipeline.run`` (text → boxes →
SEMat) → ``compose`` (foreground estimation, composite, RGBA/alpha PNGs, ZIP). Random
detector weights give random boxes, so the box threshold is 0 and ``--objects`` of the
detections are kept (one SEMat forward each).

Run (heavy: wrap it in the shared lock)::

    flock /tmp/semat-heavy.lock .venv/bin/python benchmarks/bench_pipeline.py [--variant hq-sam]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def synthetic_photo(size: int, seed: int = 0) -> np.ndarray:
    """A smooth background with a few soft-edged blobs (compresses like a photo, not noise)."""
    import cv2

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    img = np.stack([80 + 100 * xx, 120 + 60 * yy, 160 - 80 * xx * yy], axis=2)
    for _ in range(6):
        cx, cy, r = rng.uniform(0.2, 0.8), rng.uniform(0.2, 0.8), rng.uniform(0.05, 0.2)
        blob = np.clip(1.5 - np.hypot(xx - cx, yy - cy) / r, 0, 1)[..., None]
        img = img * (1 - blob) + rng.uniform(0, 255, 3) * blob
    img += rng.normal(0, 4, img.shape)
    return cv2.GaussianBlur(np.clip(img, 0, 255).astype(np.uint8), (3, 3), 0)


def build_detector(runtime):
    import torch

    from semat.inference.detect import TextDetector, write_tiny_vocab
    from semat.models._compat import import_torchvision

    import_torchvision()
    from transformers import (
        BertTokenizer,
        GroundingDinoConfig,
        GroundingDinoForObjectDetection,
        GroundingDinoImageProcessor,
        GroundingDinoProcessor,
    )

    vocab = write_tiny_vocab(tempfile.mkdtemp(prefix="bench-vocab-"))
    tokenizer = BertTokenizer.from_pretrained(str(vocab.parent))
    processor = GroundingDinoProcessor(
        image_processor=GroundingDinoImageProcessor(size={"shortest_edge": 800, "longest_edge": 1333}),
        tokenizer=tokenizer)
    torch.manual_seed(0)
    model = GroundingDinoForObjectDetection(GroundingDinoConfig())
    return TextDetector(model, processor, runtime, name="grounding-dino-tiny-random")


def build_semat(variant: str, runtime):
    import torch

    from semat.inference.predictor import SEMatPredictor
    from semat.models.build import build_semat as build
    from semat.weights.convert import prepare_model

    torch.manual_seed(0)
    return SEMatPredictor(prepare_model(build(variant), runtime), runtime, variant=variant)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--variant", default="hq-sam", choices=("sam", "hq-sam", "sam2"))
    ap.add_argument("--size", type=int, default=1024, help="square image side in pixels (default 1024)")
    ap.add_argument("--objects", type=int, default=1, help="detections to matte (default 1)")
    ap.add_argument("--text", default="cat. dog.")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--json", default=None, help="also write the numbers here")
    args = ap.parse_args(argv)

    import torch

    from semat import compose
    from semat.io.images import load_image, save_png
    from semat.pipeline import MattingPipeline, Prompt
    from semat.runtime import select_runtime

    torch.set_num_threads(args.threads)
    runtime = select_runtime(args.device, "float32")
    stages: dict[str, float] = {}

    t = time.perf_counter()
    detector = build_detector(runtime)
    stages["build_detector (random weights)"] = time.perf_counter() - t
    t = time.perf_counter()
    predictor = build_semat(args.variant, runtime)
    stages[f"build_semat_{args.variant} (random weights)"] = time.perf_counter() - t
    n_det = sum(p.numel() for p in detector.model.parameters()) / 1e6
    n_sem = sum(p.numel() for p in predictor.model.parameters()) / 1e6

    work = Path(tempfile.mkdtemp(prefix="bench-pipeline-"))
    src = save_png(work / "photo.png", synthetic_photo(args.size))
    pipe = MattingPipeline(lambda v: predictor, lambda: detector)

    t_e2e = time.perf_counter()
    t = time.perf_counter()
    loaded = load_image(src)
    stages["load_image"] = time.perf_counter() - t
    prompt = Prompt(text=args.text, box_threshold=0.0, text_threshold=0.0)
    result = pipe.run(loaded.rgb, prompt, variant=args.variant, selected=list(range(args.objects)))
    for k, v in result.timings.items():
        stages[f"pipeline.{k}"] = v
    t = time.perf_counter()
    fg = compose.estimate_foreground(result.image, result.alpha)
    stages["foreground_estimation"] = time.perf_counter() - t
    t = time.perf_counter()
    compose.composite(result.image, result.alpha, "white", foreground=fg)
    stages["composite_white"] = time.perf_counter() - t
    t = time.perf_counter()
    save_png(work / "cutout.png", compose.rgba(result.image, result.alpha, fg))
    compose.save_alpha_png(work / "alpha.png", result.alpha)
    compose.save_alpha_png(work / "alpha16.png", result.alpha, bits=16)
    stages["write_rgba_and_alpha_pngs"] = time.perf_counter() - t
    t = time.perf_counter()
    compose.write_zip(result, work / "mattes.zip")
    stages["write_zip (incl. fg estimation per object)"] = time.perf_counter() - t
    end_to_end = time.perf_counter() - t_e2e

    t = time.perf_counter()
    pipe.run(loaded.rgb, prompt, variant=args.variant, selected=list(range(args.objects)))
    cached_rerun = time.perf_counter() - t
    t = time.perf_counter()
    compose.composite(result.image, result.alpha, "checker", foreground=fg)
    recomposite = time.perf_counter() - t

    print(f"text-to-alpha at {args.size}x{args.size}, device {runtime.label}, torch threads {args.threads}")
    print(f"models: GroundingDINO-tiny arch {n_det:.1f} M params, SEMat {args.variant} {n_sem:.1f} M params "
          f"(random weights); objects matted: {len(result.objects)}")
    width = max(len(k) for k in stages)
    for k, v in stages.items():
        print(f"  {k:<{width}}  {v:8.3f} s")
    print(f"  {'END TO END (load → zip, models built)':<{width}}  {end_to_end:8.3f} s")
    print(f"  {'re-run, all cached':<{width}}  {cached_rerun:8.3f} s")
    print(f"  {'recomposite (checker, cached fg)':<{width}}  {recomposite:8.3f} s")
    if args.json:
        Path(args.json).write_text(json.dumps({"stages_s": stages, "end_to_end_s": end_to_end,
                                               "cached_rerun_s": cached_rerun, "recomposite_s": recomposite,
                                               "variant": args.variant, "size": args.size,
                                               "objects": len(result.objects)}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
