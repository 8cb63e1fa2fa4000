"""CPU benchmark of the text→box detectors (a script, not a test).

For each detector architecture (GroundingDINO-T and MM-Grounding-DINO-T; LLMDet-T shares the
MM-Grounding-DINO-T architecture), input size (shortest side 800 and 640 px) and dtype (fp32 and
bf16), the full :meth:`TextDetector.raw_scores` path (processor + forward) on a 1024x768 image
with the prompt "cat. dog.". The hubs are unreachable on the build machines, so the models are the
full-size architectures (Swin-T + BERT-base, 900 queries, 6+6 layers) built from their default
transformers configs with random weights: the compute is that of the released models, the boxes
are meaningless. bf16 is what :class:`TextDetector` runs for an explicit ``--dtype bfloat16``:
matmul weights cast once, forward under autocast.

Settings are interleaved (round-robin, ``--rounds`` times) in one process and the best time per
setting is kept; a 4096² matmul in each dtype is timed between rounds for the same-run peak.

Usage::

    flock /tmp/semat-heavy.lock python benchmarks/bench_detect.py [--rounds 2] [--sizes 800 640]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from harness import matmul_gflops

REPO = Path(__file__).resolve().parents[1]
ARCHS = {"grounding-dino-tiny": "grounding-dino", "mm-grounding-dino-tiny": "mm-grounding-dino"}


def build_detector(name: str, dtype: str, side: int):
    import torch

    from semat.models._compat import import_torchvision

    import_torchvision()  # before transformers' image processors import torchvision
    from transformers import (
        AutoModelForZeroShotObjectDetection,
        BertTokenizer,
        GroundingDinoConfig,
        GroundingDinoImageProcessor,
        GroundingDinoProcessor,
        MMGroundingDinoConfig,
    )

    from semat.inference.detect import TextDetector, write_tiny_vocab
    from semat.runtime import select_runtime

    config = (GroundingDinoConfig if ARCHS[name] == "grounding-dino" else MMGroundingDinoConfig)()
    torch.manual_seed(0)
    model = AutoModelForZeroShotObjectDetection.from_config(config)
    vocab = write_tiny_vocab(tempfile.mkdtemp(prefix="semat-bench-vocab-"))
    processor = GroundingDinoProcessor(image_processor=GroundingDinoImageProcessor(),
                                       tokenizer=BertTokenizer.from_pretrained(str(vocab.parent)))
    return TextDetector(model, processor, select_runtime("cpu", dtype), name=name, shortest_side=side)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--detectors", nargs="+", default=list(ARCHS), choices=list(ARCHS))
    parser.add_argument("--sizes", nargs="+", type=int, default=[800, 640])
    parser.add_argument("--dtypes", nargs="+", default=["float32", "bfloat16"])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    sys.path.insert(0, str(REPO))
    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    from semat.runtime import cpu_bf16_feature

    image = np.random.default_rng(0).integers(0, 256, (768, 1024, 3), dtype=np.uint8)
    detectors = {}
    for name in args.detectors:
        for dtype in args.dtypes:
            detectors[(name, dtype)] = build_detector(name, dtype, args.sizes[0])
    for det in detectors.values():  # warm-up (oneDNN primitive creation) at the smallest size
        det.processor.image_processor.size = {"shortest_edge": min(args.sizes), "longest_edge": 1333}
        det.raw_scores(image, "cat. dog.")
    times: dict[tuple[str, str, int], list[float]] = {}
    mm = {d: [] for d in ("float32", "bfloat16")}
    from semat.inference.detect import set_shortest_side

    for _ in range(args.rounds):
        for d in mm:
            mm[d].append(matmul_gflops(getattr(torch, d)))
        for side in args.sizes:
            for (name, dtype), det in detectors.items():
                set_shortest_side(det.processor, side)
                t = time.perf_counter()
                det.raw_scores(image, "cat. dog.")
                times.setdefault((name, dtype, side), []).append(time.perf_counter() - t)
                print(json.dumps({"detector": name, "dtype": dtype, "side": side,
                                  "seconds": round(times[(name, dtype, side)][-1], 2),
                                  "load_1m": round(os.getloadavg()[0], 2)}), flush=True)

    print(f"\nCPU: {os.cpu_count()} logical cores, bf16 feature {cpu_bf16_feature()}, "
          f"{args.threads} threads; same-run 4096² matmul GFLOP/s (best): "
          f"fp32 {max(mm['float32']):.0f}, bf16 {max(mm['bfloat16']):.0f}")
    print(f"{'detector':24} {'side':>5} {'fp32 s':>8} {'bf16 s':>8} {'bf16/fp32':>9}")
    rows = []
    for name in args.detectors:
        for side in args.sizes:
            t32 = min(times.get((name, "float32", side), [float("nan")]))
            t16 = min(times.get((name, "bfloat16", side), [float("nan")]))
            rows.append({"detector": name, "side": side, "fp32_s": round(t32, 2), "bf16_s": round(t16, 2),
                         "bf16_over_fp32": round(t16 / t32, 2)})
            print(f"{name:24} {side:5d} {t32:8.2f} {t16:8.2f} {t16 / t32:9.2f}")
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "matmul_gflops": mm}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
