"""CPU benchmark of the three SEMat variants (a script, not a test).

For each variant, in its own subprocess (so peak RSS is per variant):

* fp32 forward seconds of the full-size model (random weights, 1024x1024 image, one box,
  through :meth:`SEMatPredictor.predict`, i.e. including pre/post-processing), with 2 threads;
* peak RSS of that process (model build + forward);
* achieved GFLOP/s from the spec's FLOP counts (semat-spec §0: SAM 3.61 T, HQ-SAM 3.63 T,
  SAM2 2.23 T), next to the GFLOP/s of a 4096x4096 fp32 matmul timed in the same process, and
  their ratio (how close the model gets to the machine's dense-matmul peak);
* bfloat16 forward seconds (autocast).

With ``--deviation`` it also loads the golden weights (``../shared/golden`` or
``$SEMAT_GOLDEN_DIR``) and reports the bf16-vs-fp32 max/mean |alpha| deviation on the golden
input (original-size alpha).

Usage (wrap in the heavy-job lock on shared machines)::

    flock /tmp/semat-heavy.lock python benchmarks/bench_semat.py [--variants sam hq-sam sam2]
        [--repeats 1] [--deviation] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SPEC_TFLOPS = {"sam": 3.61, "hq-sam": 3.63, "sam2": 2.23}
REFERENCE_SECONDS = {"sam": "40-60", "hq-sam": "40-60", "sam2": "20-35"}


def _peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6  # Linux: KiB


def matmul_gflops(n: int = 4096, repeats: int = 3) -> float:
    import torch

    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best / 1e9


def _time_predict(predictor, image, box, repeats: int) -> tuple[float, float]:
    """Best (wall seconds, process CPU seconds) over ``repeats`` forwards."""
    best, best_cpu = float("inf"), float("inf")
    for _ in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        predictor.predict(image, [box])
        best, best_cpu = min(best, time.perf_counter() - t), min(best_cpu, time.process_time() - c)
    return best, best_cpu


def worker_time(variant: str, repeats: int, dtype: str) -> dict:
    import numpy as np
    import torch

    from semat.inference.predictor import SEMatPredictor
    from semat.models.build import build_semat
    from semat.runtime import select_runtime

    torch.manual_seed(0)
    t = time.perf_counter()
    model = build_semat(variant)
    build_s = time.perf_counter() - t
    predictor = SEMatPredictor(model, select_runtime("cpu", dtype), variant)
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, size=(1024, 1024, 3), dtype=np.uint8)
    box = [200, 150, 800, 900]
    mm_before = matmul_gflops()
    seconds, cpu_seconds = _time_predict(predictor, image, box, repeats)
    rss = _peak_rss_gb()
    mm = (mm_before + matmul_gflops()) / 2  # the machine may be shared: bracket the forward
    achieved = SPEC_TFLOPS[variant] * 1e3 / seconds
    return {"variant": variant, "dtype": dtype, "build_s": round(build_s, 2), "forward_s": round(seconds, 2),
            "forward_cpu_s": round(cpu_seconds, 2), "peak_rss_gb": round(rss, 2),
            "achieved_gflops": round(achieved, 1), "matmul_gflops": round(mm, 1),
            "ratio": round(achieved / mm, 3), "load_avg_1m": round(os.getloadavg()[0], 2)}


def worker_deviation(variant: str) -> dict:
    import importlib.util

    import numpy as np
    import torch
    from PIL import Image

    from semat.inference.predictor import SEMatPredictor
    from semat.runtime import select_runtime
    from semat.weights.convert import load_semat

    golden = Path(os.environ.get("SEMAT_GOLDEN_DIR", REPO.parent / "shared" / "golden"))
    spec = importlib.util.spec_from_file_location("golden_weights", golden / "golden_weights.py")
    gw = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(gw)
    case_dir = golden / f"semat_{variant}"
    case = json.loads((case_dir / "case.json").read_text())
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "golden.pth"
        sd = {k: torch.from_numpy(v) for k, v in gw.golden_state_dict(gw.load_manifest(case_dir / "manifest.json")).items()}
        torch.save({"model": sd}, path)
        del sd
        loaded = load_semat(variant, checkpoint=path, runtime=select_runtime("cpu", "float32"))
    image = np.asarray(Image.open(case_dir / case["image"]["file"]).convert("RGB"))
    box = case["box_xyxy_original"]
    fp32 = SEMatPredictor(loaded.model, select_runtime("cpu", "float32"), variant)
    t = time.perf_counter()
    a32 = fp32.predict(image, [box])[0].alpha
    t32 = time.perf_counter() - t
    bf16 = SEMatPredictor(loaded.model, select_runtime("cpu", "bfloat16"), variant)
    t = time.perf_counter()
    a16 = bf16.predict(image, [box])[0].alpha
    t16 = time.perf_counter() - t
    diff = np.abs(a32.astype(np.float64) - a16)
    return {"variant": variant, "golden_fp32_s": round(t32, 2), "golden_bf16_s": round(t16, 2),
            "bf16_alpha_max_dev": float(diff.max()), "bf16_alpha_mean_dev": float(diff.mean()),
            "bf16_png_levels_max": int(np.abs(np.rint(a32 * 255) - np.rint(a16 * 255)).max())}


def run_worker(args: list[str]) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="2")
    proc = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, env=env,
                          cwd=REPO)
    if proc.returncode != 0:
        raise RuntimeError(f"worker {args} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variants", nargs="+", default=["sam", "hq-sam", "sam2"])
    parser.add_argument("--repeats", type=int, default=1, help="timed forwards per setting (best is kept)")
    parser.add_argument("--no-bf16", action="store_true", help="skip the bfloat16 timing")
    parser.add_argument("--deviation", action="store_true", help="bf16-vs-fp32 alpha deviation on golden fixtures")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument("--worker", nargs=2, metavar=("KIND", "VARIANT"), help=argparse.SUPPRESS)
    parser.add_argument("--dtype", default="float32", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        sys.path.insert(0, str(REPO))
        import torch

        torch.set_num_threads(2)
        kind, variant = args.worker
        result = worker_time(variant, args.repeats, args.dtype) if kind == "time" else worker_deviation(variant)
        print(json.dumps(result))
        return 0

    rows = []
    for variant in args.variants:
        row = run_worker(["--worker", "time", variant, "--repeats", str(args.repeats)])
        if not args.no_bf16:
            bf = run_worker(["--worker", "time", variant, "--repeats", str(args.repeats), "--dtype", "bfloat16"])
            row.update(bf16_forward_s=bf["forward_s"], bf16_peak_rss_gb=bf["peak_rss_gb"])
        if args.deviation:
            row.update({k: v for k, v in run_worker(["--worker", "deviation", variant]).items() if k != "variant"})
        row["reference_cpu_s"] = REFERENCE_SECONDS[variant]
        rows.append(row)
        print(json.dumps(row), flush=True)

    print(f"\n{'variant':8} {'fp32 s':>7} {'CPU s':>7} {'bf16 s':>7} {'RSS GB':>7} {'GFLOP/s':>8} "
          f"{'mm GFLOP/s':>10} {'ratio':>6} {'ref s':>6} {'bf16 max|mean dev':>20}")
    for r in rows:
        dev = (f"{r['bf16_alpha_max_dev']:.2e}|{r['bf16_alpha_mean_dev']:.1e}"
               if "bf16_alpha_max_dev" in r else "-")
        print(f"{r['variant']:8} {r['forward_s']:7.2f} {r['forward_cpu_s']:7.2f} "
              f"{r.get('bf16_forward_s', float('nan')):7.2f} "
              f"{r['peak_rss_gb']:7.2f} {r['achieved_gflops']:8.1f} {r['matmul_gflops']:10.1f} "
              f"{r['ratio']:6.3f} {r['reference_cpu_s']:>6} {dev:>20}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
