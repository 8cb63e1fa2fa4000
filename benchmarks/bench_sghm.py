"""SGHM pipeline time and peak RSS, ours vs the reference pipeline.

Usage (the heavy lock keeps other jobs off the cores while timing):

    flock /tmp/semat-heavy.lock .venv/bin/python benchmarks/bench_sghm.py [--checkpoint PATH]

Every (mode, image size) runs in a fresh process: load, one warm-up, then ``--repeat`` timed
calls of the whole image pipeline (uint8 image in -> alpha and segment at the original size
out); peak RSS is the process maximum (``ru_maxrss``), load included. Modes:

* ``reference`` - the reference pipeline, op for op: unfused model (BN and SN as separate
  layers), channels-first tensors, ``torch.no_grad``, every branch at full resolution, fusion on
  the three full-size alphas. Our own re-implementation, which matches the reference to float
  rounding (see tests/test_sghm_parity.py); it gives a same-machine baseline.
* ``ours-full`` - :class:`semat.inference.sghm.HumanPredictor` with the OS1 branch forced over the whole
  image (``lazy_os1=False``): the cost when the fusion needs OS1 everywhere (worst case).
* ``ours`` - the default pipeline (OS1 only on tiles the fusion uses). Its cost depends on the
  weights and image: with the golden stand-in weights the OS1 region is empty.

``--dtypes`` runs the ``ours*`` modes in each dtype (the reference stays fp32, as released):
bfloat16 is what ``--dtype auto`` gives SGHM on a native-bf16 CPU (AMX or AVX512-BF16), the whole
model cast once at load. The table adds each row's time over the same size's fp32 ``ours`` row.

Without ``--checkpoint``, the model gets random weights (timings of ``reference`` and
``ours-full`` do not depend on the weights). The spec's reference figures (AMD EPYC, 2 threads):
1024x1024 image about 3 s and 1.65 GB, 1920x1080 image 5-6 s and 2.4 GB.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from harness import cpu_name

REPO = Path(__file__).resolve().parents[1]
SPEC = {"1024x1024": (3.0, 1.65), "1920x1080": (5.6, 2.40)}  # seconds, GB (sghm-spec.md §4)


def _image(w: int, h: int) -> np.ndarray:
    rs = np.random.RandomState(0)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.stack([xx / w, yy / h, 0.5 + 0.5 * np.sin(xx / 37.0) * np.cos(yy / 23.0)], -1) * 255
    disc = ((xx - w / 2) ** 2 / (0.2 * w) ** 2 + (yy - 0.6 * h) ** 2 / (0.35 * h) ** 2) < 1
    img[disc] = [200, 150, 120]
    img += rs.normal(0, 4, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def _reference_like(model, image: np.ndarray):
    import cv2
    import torch
    import torch.nn.functional as F

    h, w = image.shape[:2]
    from semat.inference.sghm import network_size

    rh, rw = network_size(h, w, max_side=None)
    with torch.no_grad():
        x = torch.from_numpy(image).permute(2, 0, 1).unsqueeze(0).float().div(255)
        x = F.interpolate(x, size=(rh, rw), mode="bilinear", align_corners=False)
        pred = model(x)
        a = pred["alpha_os8"].clone()
        for key, k in (("alpha_os4", 15), ("alpha_os1", 7)):
            u = (~((a < 1 / 255) | (a > 1 - 1 / 255)))[0, 0].to(torch.uint8).numpy()
            u = cv2.dilate(u, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
            m = torch.from_numpy(u.astype(bool))
            a[0, 0][m] = pred[key][0, 0][m]
        alpha = F.interpolate(a, size=(h, w), mode="bilinear", align_corners=False)
        seg = F.interpolate(pred["segment"], size=(h, w), mode="bilinear", align_corners=False)
    return alpha[0, 0].numpy(), seg[0, 0].numpy()


def run_one(mode: str, size: str, checkpoint: str | None, repeat: int, threads: int,
            dtype: str = "float32") -> dict:
    import torch

    torch.set_num_threads(threads)
    from semat.inference.sghm import HumanPredictor, load_sghm
    from semat.models.sghm import SGHM
    from semat.runtime import Runtime

    rt = Runtime(torch.device("cpu"), torch.float32 if mode == "reference" else getattr(torch, dtype))
    fuse = mode != "reference"
    if checkpoint:
        model, _ = load_sghm(checkpoint, rt, fuse=fuse)
    else:
        torch.manual_seed(0)
        model = SGHM().eval()
        if fuse:
            model.fuse_()
        model.to(dtype=rt.dtype)
    w, h = (int(v) for v in size.split("x"))
    image = _image(w, h)
    if mode == "reference":
        def call():
            return _reference_like(model, image)
    else:
        matter = HumanPredictor(model, rt)
        matter.lazy_os1 = mode == "ours"

        def call():
            r = matter.predict(image)
            return r.alpha, r.segment
    call()  # warm-up (oneDNN primitive creation)
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        alpha, _seg = call()
        times.append(time.perf_counter() - t)
    rss_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9
    return {"mode": mode, "dtype": str(rt.dtype).removeprefix("torch."), "size": size, "times": times,
            "best": min(times), "median": float(np.median(times)), "peak_rss_gb": rss_gb, "alpha_mean": float(alpha.mean())}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoint", help="SGHM checkpoint (default: random weights)")
    ap.add_argument("--sizes", nargs="+", default=["1024x1024", "1920x1080"])
    ap.add_argument("--modes", nargs="+", default=["reference", "ours-full", "ours"],
                    choices=["reference", "ours-full", "ours"])
    ap.add_argument("--dtypes", nargs="+", default=["float32", "bfloat16"], choices=["float32", "bfloat16"],
                    help="dtypes for the ours* modes (the reference runs in fp32)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--one", nargs=3, metavar=("MODE", "SIZE", "DTYPE"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.one:
        mode, size, dtype = args.one
        print(json.dumps(run_one(mode, size, args.checkpoint, args.repeat, args.threads, dtype)))
        return 0
    settings = [(mode, dtype) for mode in args.modes for dtype in (["float32"] if mode == "reference" else args.dtypes)]
    results: dict[tuple[str, str, str], dict] = {}
    for size in args.sizes:
        for mode, dtype in settings:
            cmd = [sys.executable, __file__, "--one", mode, size, dtype, "--repeat", str(args.repeat),
                   "--threads", str(args.threads)] + (["--checkpoint", args.checkpoint] if args.checkpoint else [])
            out = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=REPO).stdout
            results[(mode, size, dtype)] = r = json.loads(out.strip().splitlines()[-1])
            print(f"{size:>10} {mode:>10} {dtype:>9}: best {r['best']:.2f} s, median {r['median']:.2f} s, "
                  f"peak RSS {r['peak_rss_gb']:.2f} GB", flush=True)
    from semat.runtime import cpu_bf16_feature

    print(f"\nCPU: {cpu_name()}; native bf16: {cpu_bf16_feature() or 'none'}; {args.threads} threads")
    print("size        mode        dtype      time (s)  peak RSS (GB)  vs reference  /ours fp32  (spec reference: s, GB)")
    for size in args.sizes:
        ref = results.get(("reference", size, "float32"))
        base = results.get(("ours", size, "float32"))
        spec = SPEC.get(size)
        for mode, dtype in settings:
            r = results[(mode, size, dtype)]
            speed = f"{ref['median'] / r['median']:.2f}x" if ref else "-"
            rel = f"{r['median'] / base['median']:.2f}" if base else "-"
            spec_s = f"{spec[0]:.1f} s, {spec[1]:.2f} GB" if spec else "-"
            print(f"{size:<11} {mode:<11} {dtype:<9} {r['median']:>9.2f}  {r['peak_rss_gb']:>13.2f}  {speed:>12}"
                  f"  {rel:>10}  ({spec_s})")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    sys.exit(main())
