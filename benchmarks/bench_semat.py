"""CPU benchmark of the three SEMat variants (a script, not a test).

For each variant and precision mode, in its own subprocess (so peak RSS is per setting), with 2
threads, a full-size model (random weights, 1024x1024 image, one box, through
:meth:`SEMatPredictor.predict`, i.e. including pre/post-processing):

* ``fp32``: float32 weights and compute;
* ``autocast``: float32 weights, bf16 autocast in the forward (the previous bf16 path);
* ``auto``: what ``--dtype auto`` runs on this machine (on AMX / AVX512-BF16 CPUs: matmul
  weights cast to bf16 once at load, forward under autocast; elsewhere fp32).

Each setting reports forward seconds (wall and process CPU) of a warm forward (after
``--warmup`` untimed ones, default 1: the first forward of a process also builds oneDNN's kernels
for each shape and faults in the heap, 0.1-0.9 s more in bf16 on a 2-core AMX CPU depending on
the run, once per server process; its time is printed as ``first``), peak RSS of its process (model build
+ forwards), achieved GFLOP/s from the spec's FLOP counts (semat-spec §0 / performance-anchors:
SAM 3.61 T, HQ-SAM 3.63 T, SAM2 2.4 T incl. the SDPA attention a CPU counter misses), and that
rate as a fraction of 4096² matmuls run in the same process in the compute dtype, 2 s back to
back before the model is built and 2 s after the forward (``of mm``: against the rate sustained over those 4 s;
``of b.``: against the fastest single product, the burst peak, which on a contended machine can
be 2-3x the sustained rate). The table adds the auto/fp32 time ratio (target <= 0.4 on AMX).

Settings run interleaved (variant by variant, fp32 / autocast / auto alternately, ``--rounds``
times) and the best round is kept, because the build machines are shared.

With ``--deviation`` it also loads the golden weights (``../shared/golden`` or
``$SEMAT_GOLDEN_DIR``) and reports the auto-vs-fp32 max/mean |alpha| deviation in the 1024 frame
(``tests/test_dtype.py`` holds it to the reference's own bf16 budget).

Usage (wrap in the heavy-job lock on shared machines)::

    flock /tmp/semat-heavy.lock python benchmarks/bench_semat.py [--variants sam hq-sam sam2]
        [--rounds 1] [--modes fp32 autocast auto] [--deviation] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness import cpu_name, matmul_rates, peak_rss_gb, release_free_heap

REPO = Path(__file__).resolve().parents[1]
SPEC_TFLOPS = {"sam": 3.61, "hq-sam": 3.63, "sam2": 2.4}
MODES = ("fp32", "autocast", "auto")


def _time_predict(predictor, image, box, repeats: int, warmup: int = 0) -> tuple[float, float, float | None]:
    """Best (wall seconds, process CPU seconds) over ``repeats`` forwards after ``warmup`` untimed
    ones, and the first forward's wall seconds where there was a warm-up (else None)."""
    first = None
    for i in range(warmup):
        t = time.perf_counter()
        predictor.predict(image, [box])
        if i == 0:
            first = time.perf_counter() - t
    best, best_cpu = float("inf"), float("inf")
    for _ in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        predictor.predict(image, [box])
        best, best_cpu = min(best, time.perf_counter() - t), min(best_cpu, time.process_time() - c)
    return best, best_cpu, first


def _predictor(variant: str, mode: str, model=None, tiny: bool = False):
    """The predictor of one precision mode; ``model``: fp32 weights to use (default: random)."""
    from semat.inference.predictor import SEMatPredictor
    from semat.models.build import build_semat
    from semat.runtime import select_runtime
    from semat.weights.convert import prepare_model

    if model is None:
        torch_seed()
        model = build_semat(variant, tiny=tiny)
    if mode == "fp32":
        runtime = select_runtime("cpu", "float32")
        return SEMatPredictor(prepare_model(model, runtime), runtime, variant)
    if mode == "autocast":  # fp32 weights, autocast in the forward
        return SEMatPredictor(model.eval(), select_runtime("cpu", "bfloat16"), variant)
    runtime = select_runtime("cpu", "auto")
    return SEMatPredictor(prepare_model(model, runtime), runtime, variant)


def torch_seed() -> None:
    import torch

    torch.manual_seed(0)


def worker_time(variant: str, repeats: int, mode: str, tiny: bool = False, warmup: int = 1) -> dict:
    import numpy as np

    from semat.runtime import select_runtime

    dtype = {"fp32": "float32", "autocast": "bfloat16"}.get(mode) or \
        str(select_runtime("cpu", "auto").dtype).removeprefix("torch.")
    # The first matmul probe runs before the model is built, and its freed memory is handed back:
    # run between build and forward, its 64 MB blocks stayed in the heap and the forward, laid out
    # around them, peaked about 0.4 GB higher than the same forward without it (HQ-SAM fp32).
    sustained_before, burst_before = matmul_rates(dtype)
    release_free_heap()
    t = time.perf_counter()
    predictor = _predictor(variant, mode, tiny=tiny)
    build_s = time.perf_counter() - t
    assert str(predictor.runtime.dtype).removeprefix("torch.") == dtype
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, size=(1024, 1024, 3), dtype=np.uint8)
    box = [200, 150, 800, 900]
    seconds, cpu_seconds, first = _time_predict(predictor, image, box, repeats, warmup)
    rss = peak_rss_gb()
    sustained_after, burst_after = matmul_rates(dtype)
    # The machine may be shared: bracket the forward with 2 s of back-to-back matmuls each side.
    mm = (sustained_before + sustained_after) / 2
    burst = max(burst_before, burst_after)
    achieved = SPEC_TFLOPS[variant] * 1e3 / seconds
    return {"variant": variant, "mode": mode, "dtype": dtype, "build_s": round(build_s, 2),
            "forward_s": round(seconds, 2), "forward_cpu_s": round(cpu_seconds, 2),
            "first_forward_s": None if first is None else round(first, 2), "peak_rss_gb": round(rss, 2),
            "achieved_gflops": round(achieved, 1), "matmul_gflops": round(mm, 1),
            "fraction_of_matmul": round(achieved / mm, 3), "burst_matmul_gflops": round(burst, 1),
            "fraction_of_burst": round(achieved / burst, 3), "load_avg_1m": round(os.getloadavg()[0], 2)}


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
    a32 = fp32.predict(image, [box], return_debug=True)[0].debug["alpha_frame"]
    t32 = time.perf_counter() - t
    auto = _predictor(variant, "auto", loaded.model)
    t = time.perf_counter()
    a16 = auto.predict(image, [box], return_debug=True)[0].debug["alpha_frame"]
    t16 = time.perf_counter() - t
    diff = np.abs(a32.astype(np.float64) - a16)
    return {"variant": variant, "golden_fp32_s": round(t32, 2), "golden_auto_s": round(t16, 2),
            "auto_alpha_max_dev": float(diff.max()), "auto_alpha_mean_dev": float(diff.mean())}


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
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    parser.add_argument("--repeats", type=int, default=1, help="timed forwards per process (best is kept)")
    parser.add_argument("--rounds", type=int, default=1, help="interleaved rounds over the modes (best is kept)")
    parser.add_argument("--warmup", type=int, default=1,
                        help="untimed forwards per process before the timed ones (the first is reported as 'first')")
    parser.add_argument("--deviation", action="store_true", help="auto-vs-fp32 alpha deviation on golden fixtures")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument("--worker", nargs=2, metavar=("KIND", "VARIANT"), help=argparse.SUPPRESS)
    parser.add_argument("--mode", default="fp32", help=argparse.SUPPRESS)
    parser.add_argument("--tiny", action="store_true", help="tiny random models (a smoke test of this script)")
    args = parser.parse_args()

    if args.worker:
        sys.path.insert(0, str(REPO))
        import torch

        torch.set_num_threads(2)
        kind, variant = args.worker
        result = (worker_time(variant, args.repeats, args.mode, args.tiny, args.warmup) if kind == "time"
                  else worker_deviation(variant))
        print(json.dumps(result))
        return 0

    sys.path.insert(0, str(REPO))
    from semat.runtime import cpu_bf16_feature, select_runtime

    best: dict[tuple[str, str], dict] = {}
    deviations: dict[str, dict] = {}
    for variant in args.variants:
        for _ in range(args.rounds):
            for mode in args.modes:
                r = run_worker(["--worker", "time", variant, "--repeats", str(args.repeats), "--mode", mode,
                                "--warmup", str(args.warmup),
                                *(["--tiny"] if args.tiny else [])])
                print(json.dumps(r), flush=True)
                if (variant, mode) not in best or r["forward_s"] < best[(variant, mode)]["forward_s"]:
                    best[(variant, mode)] = r
        if args.deviation:
            deviations[variant] = run_worker(["--worker", "deviation", variant])
            print(json.dumps(deviations[variant]), flush=True)

    print(f"\nCPU: {cpu_name()}; native bf16: {cpu_bf16_feature() or 'none'}; auto dtype here: "
          f"{select_runtime('cpu', 'auto').dtype_name}; 2 threads; best of {args.rounds} interleaved round(s)")
    print(f"{'variant':8} {'mode':9} {'dtype':9} {'first':>6} {'wall s':>7} {'CPU s':>7} {'RSS GB':>7} {'GFLOP/s':>8} "
          f"{'mm GFLOP/s':>10} {'of mm':>6} {'burst':>7} {'of b.':>6} {'/fp32':>6}")
    rows = []
    for variant in args.variants:
        base = best.get((variant, "fp32"))
        for mode in args.modes:
            r = best[(variant, mode)]
            r["over_fp32"] = round(r["forward_s"] / base["forward_s"], 3) if base else None
            rows.append(r)
            ratio = f"{r['over_fp32']:6.2f}" if r["over_fp32"] is not None else "     -"
            first = f"{r['first_forward_s']:6.2f}" if r["first_forward_s"] is not None else "     -"
            print(f"{variant:8} {mode:9} {r['dtype']:9} {first} {r['forward_s']:7.2f} {r['forward_cpu_s']:7.2f} "
                  f"{r['peak_rss_gb']:7.2f} {r['achieved_gflops']:8.1f} {r['matmul_gflops']:10.1f} "
                  f"{r['fraction_of_matmul']:6.3f} {r['burst_matmul_gflops']:7.1f} {r['fraction_of_burst']:6.3f} {ratio}")
        if variant in deviations:
            d = deviations[variant]
            print(f"{'':8} auto vs fp32 alpha on the golden fixture: mean {d['auto_alpha_mean_dev']:.4f}, "
                  f"max {d['auto_alpha_max_dev']:.4f}")
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "deviation": deviations}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
