"""Folder batch throughput: images per second of the batch against the ways one would do it by hand.

One run, interleaved on the same images, prints images/s of

* ``loop-cli``: one ``semat matte IMAGE --box ... -o ...`` process per image (what a shell loop
  does: Python start, imports and model load every time);
* ``loop-pipeline``: one process, ``MattingPipeline.run`` per image and the same two files
  written (models loaded once, one SEMat forward per image);
* ``batch``: :func:`semat.batch.run_batch` (the same, with the SEMat forwards of a chunk batched
  across images, files and the summary written);
* ``ray`` (when Ray is installed): :func:`semat.batch.ray_engine.run_batch_ray` on a local Ray
  with ``--ray-cpus`` CPUs, timed with its start-up, and again on the running Ray;

and the ratios batch / loop-cli, batch / loop-pipeline and ray / batch. Tiny random-weight
models by default (``SEMAT_TEST_MODELS=tiny``): they measure the overheads the batch removes,
not the model time, which dominates with the released weights (15 s per forward on 2 cores).

Usage: ``python benchmarks/bench_batch.py [--images 12] [--size 320x240] [--cli-images 3]``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("SEMAT_TEST_MODELS", "tiny")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    ap.add_argument("--images", type=int, default=12)
    ap.add_argument("--cli-images", type=int, default=3, help="images for the (slow) loop of processes")
    ap.add_argument("--size", default="320x240")
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--ray-cpus", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    w, h = (int(v) for v in args.size.split("x"))

    import torch

    from semat import compose
    from semat.batch import BatchOptions, PromptSpec, collect_items, run_batch
    from semat.io.images import load_image, save_png
    from semat.pipeline import Prompt, default_pipeline

    torch.set_num_threads(args.threads)
    box = (w * 0.1, h * 0.1, w * 0.8, h * 0.9)
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        folder = root / "photos"
        folder.mkdir()
        paths = [save_png(folder / f"p{i:03d}.png", rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
                 for i in range(args.images)]
        env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
        rate: dict[str, float] = {}

        t0 = time.perf_counter()
        for i, p in enumerate(paths[:args.cli_images]):
            subprocess.run([sys.executable, "-m", "semat.cli.main", "matte", str(p), "--box",
                            ",".join(f"{v:.0f}" for v in box), "--variant", "sam", "-o", str(root / f"cli{i}.png"),
                            "--rgba", str(root / f"cli{i}_rgba.png")], env=env, check=True, capture_output=True)
        rate["loop-cli"] = args.cli_images / (time.perf_counter() - t0)

        pipe = default_pipeline()
        pipe.run(load_image(paths[0]).rgb, Prompt(boxes=[box]), variant="sam")  # load the model first
        pipe.clear_cache()
        t0 = time.perf_counter()
        for i, p in enumerate(paths):  # the same files as the batch: alpha + cut-out
            img = load_image(p).rgb
            r = pipe.run(img, Prompt(boxes=[box]), variant="sam")
            compose.save_alpha_png(root / f"loop{i}.png", r.alpha)
            compose.save_rgba_png(root / f"loop{i}_rgba.png", img, r.alpha)
        rate["loop-pipeline"] = args.images / (time.perf_counter() - t0)
        pipe.clear_cache()

        items, _ = collect_items([str(folder)], PromptSpec(boxes=(box,)))
        opts = BatchOptions(variant="sam", rgba=True, foreground_estimation=True, batch_size=args.batch_size,
                            chunk=2 * args.batch_size)
        run_batch(items[:1], pipe, root / "warm", opts)  # the foreground estimator's JIT, once
        pipe.clear_cache()
        t0 = time.perf_counter()
        s = run_batch(items, pipe, root / "batch", opts)
        rate["batch"] = s.ok / (time.perf_counter() - t0)
        opts1 = BatchOptions(**{**opts.__dict__, "batch_size": 1})
        pipe.clear_cache()
        t0 = time.perf_counter()
        s = run_batch(items, pipe, root / "batch1", opts1)
        rate["batch (batch_size 1)"] = s.ok / (time.perf_counter() - t0)

        try:
            import ray

            from semat.batch.ray_engine import RayConfig, run_batch_ray
        except ImportError:
            ray = None
        if ray is not None:
            t0 = time.perf_counter()
            ray.init(num_cpus=args.ray_cpus, include_dashboard=False, log_to_driver=False,
                     runtime_env={"env_vars": {"SEMAT_TEST_MODELS": os.environ["SEMAT_TEST_MODELS"]}})
            s = run_batch_ray(items, str(root / "ray"), opts, RayConfig(cpus_per_worker=1))
            rate["ray (cold: start + actors)"] = s.ok / (time.perf_counter() - t0)
            t0 = time.perf_counter()
            s = run_batch_ray(items, str(root / "ray2"), opts, RayConfig(cpus_per_worker=1))
            rate["ray (Ray running)"] = s.ok / (time.perf_counter() - t0)
            ray.shutdown()

    print(f"{args.images} images {w}x{h}, one box each, tiny models, {args.threads} threads, batch size "
          f"{args.batch_size}")
    for k, v in rate.items():
        print(f"  {k:<28} {v:7.2f} images/s")
    print(f"  batch / loop-cli             {rate['batch'] / rate['loop-cli']:7.2f}x")
    print(f"  batch / loop-pipeline        {rate['batch'] / rate['loop-pipeline']:7.2f}x")
    for k in ("ray (cold: start + actors)", "ray (Ray running)"):
        if k in rate:
            print(f"  {k} / batch  {rate[k] / rate['batch']:7.2f}x")


if __name__ == "__main__":
    main()
