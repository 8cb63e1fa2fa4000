"""GPU benchmark of the whole chain, for a lent CUDA device (a script, not a test; < 8 min on H100/H200).

One table, all from the same run:

* a bf16 (and fp16, fp32/TF32-off) 8192² matmul: the same-run peak each row is compared with;
* each SEMat variant's forward at 1024² (one box; also a batch of 4 boxes in bf16) in fp32, bf16
  and fp16: median milliseconds over ``--iters`` timed runs after warm-up (CUDA events), achieved
  TFLOP/s from the spec's FLOP counts and its fraction of the same-run bf16 matmul, peak GPU memory;
* text→alpha end to end (MM-Grounding-DINO-T detect + SEMat-HQ-SAM matte through
  :class:`semat.pipeline`-free public APIs: ``TextDetector.detect`` then ``SEMatPredictor.predict``),
  1024x768 image, bf16: the issue's target is <= 150 ms on an H100/H200-class GPU.

Checks printed next to the table (they fail loudly rather than silently slowing down):

* fused attention: one bf16 forward per variant under ``sdpa_kernel([FLASH, EFFICIENT])``, which
  raises if any attention call would fall back to the unfused math kernel;
* no host synchronisation inside the forward: one forward under
  ``torch.cuda.set_sync_debug_mode("error")`` (``.cpu()``, ``.item()``, ``nonzero`` ... raise).

Weights are random (hubs are unreachable from the lent machines); the compute is that of the
released models. ``--dry-run`` runs the same code on CPU with the tiny test models in seconds
(fp16 skipped: unsupported on CPU), so the script is kept working without a GPU.

Usage::

    python benchmarks/bench_gpu.py [--iters 20] [--json out.json]
    python benchmarks/bench_gpu.py --dry-run
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SPEC_TFLOPS = {"sam": 3.61, "hq-sam": 3.63, "sam2": 2.4}
VARIANTS = ("sam", "hq-sam", "sam2")


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_ms(fn, device, iters: int, warmup: int) -> float:
    """Median milliseconds of ``fn()`` (CUDA events on GPU, perf_counter on CPU)."""
    import torch

    for _ in range(warmup):
        fn()
    _sync(device)
    samples = []
    for _ in range(iters):
        if device.type == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            samples.append(start.elapsed_time(end))
        else:
            t = time.perf_counter()
            fn()
            samples.append((time.perf_counter() - t) * 1e3)
    return statistics.median(samples)


def matmul_tflops(device, dtype, n: int, iters: int) -> float:
    import torch

    a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
    ms = time_ms(lambda: torch.mm(a, b), device, iters, warmup=3)
    return 2 * n**3 / (ms / 1e3) / 1e12


def peak_gb(device) -> float:
    import torch

    return torch.cuda.max_memory_allocated(device) / 1e9 if device.type == "cuda" else float("nan")


def reset_peak(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


@contextlib.contextmanager
def fused_attention_only():
    from torch.nn.attention import SDPBackend, sdpa_kernel

    with sdpa_kernel([SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION]):
        yield


@contextlib.contextmanager
def no_host_sync(device):
    import torch

    if device.type != "cuda":
        yield
        return
    torch.cuda.set_sync_debug_mode("error")
    try:
        yield
    finally:
        torch.cuda.set_sync_debug_mode("default")


def build_predictor(variant: str, dtype, device, tiny: bool):
    import torch

    from semat.inference.predictor import SEMatPredictor
    from semat.models.build import build_semat
    from semat.runtime import Runtime
    from semat.weights.convert import prepare_model

    torch.manual_seed(0)
    with torch.device(device):  # random init on the device: seconds, not a minute on the host
        model = build_semat(variant, tiny=tiny)
    runtime = Runtime(device, dtype)
    return SEMatPredictor(prepare_model(model, runtime), runtime, variant)


def check(fn, name: str, notes: list[str]) -> bool:
    try:
        fn()
    except Exception as exc:  # report any failure of a check, keep benchmarking
        notes.append(f"{name}: FAILED ({type(exc).__name__}: {str(exc).splitlines()[0][:160]})")
        return False
    notes.append(f"{name}: ok")
    return True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dry-run", action="store_true", help="CPU, tiny models: check the script runs")
    parser.add_argument("--iters", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    sys.path.insert(0, str(REPO))
    import numpy as np
    import torch

    t_start = time.perf_counter()
    tiny = args.dry_run
    if tiny:
        torch.set_num_threads(1)  # tiny ops on a shared CPU: threads only spin
        device, iters, warmup, mm_n = torch.device("cpu"), 1, 0, 512
    else:
        if not torch.cuda.is_available():
            print("no CUDA device; use --dry-run to check the script on CPU", file=sys.stderr)
            return 2
        device, iters, warmup, mm_n = torch.device("cuda"), args.iters, args.warmup, 8192
        torch.backends.cuda.matmul.allow_tf32 = False  # fp32 rows are strict fp32
        torch.backends.cudnn.allow_tf32 = False
    dtypes = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
    if device.type == "cpu":
        dtypes.pop("fp16")
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU (dry run, tiny models)"
    mm = {k: matmul_tflops(device, dt, mm_n, iters) for k, dt in dtypes.items()}
    notes: list[str] = []
    rows: list[dict] = []
    size = 256 if tiny else 1024
    box = [size * 0.2, size * 0.15, size * 0.8, size * 0.9]

    for variant in args.variants:
        for key, dt in dtypes.items():
            reset_peak(device)
            pred = build_predictor(variant, dt, device, tiny)
            frame = torch.rand(1, 3, size, size, device=device)
            frame_box = torch.tensor([box], device=device)

            def forward(b: int = 1, pred=pred, frame=frame, frame_box=frame_box) -> None:
                with torch.inference_mode():
                    pred.forward_frame(frame.expand(b, -1, -1, -1), frame_box.expand(b, -1))

            ms = time_ms(forward, device, iters, warmup)
            row = {"what": f"{variant} forward", "dtype": key, "boxes": 1, "ms": round(ms, 2),
                   "tflops": round(SPEC_TFLOPS[variant] / (ms / 1e3), 1), "peak_gb": round(peak_gb(device), 2)}
            rows.append(row)
            if key == "bf16":
                ms4 = time_ms(functools.partial(forward, 4), device, max(2, iters // 2), 1)
                rows.append({"what": f"{variant} forward", "dtype": key, "boxes": 4, "ms": round(ms4, 2),
                             "tflops": round(4 * SPEC_TFLOPS[variant] / (ms4 / 1e3), 1),
                             "peak_gb": round(peak_gb(device), 2)})
                if device.type == "cuda":
                    def fused(forward=forward) -> None:
                        with fused_attention_only():
                            forward()

                    check(fused, f"{variant} bf16 fused SDPA only", notes)

                    def synced(forward=forward) -> None:
                        with no_host_sync(device):
                            forward()

                    check(synced, f"{variant} bf16 forward without host syncs", notes)
            del pred, forward
            print(json.dumps(rows[-1]), flush=True)

    # text -> alpha end to end (bf16 where the device has it, as dtype=auto would choose)
    from semat.inference.detect import TextDetector
    from semat.runtime import select_runtime

    runtime = select_runtime(device.type, "auto")
    if tiny:
        detector = TextDetector.tiny(runtime=runtime)
    else:
        from semat.models._compat import import_torchvision

        import_torchvision()  # before transformers' image processors import torchvision
        from transformers import (
            AutoModelForZeroShotObjectDetection,
            BertTokenizer,
            GroundingDinoImageProcessor,
            GroundingDinoProcessor,
            MMGroundingDinoConfig,
        )

        from semat.inference.detect import write_tiny_vocab

        torch.manual_seed(0)
        with torch.device(device):
            det_model = AutoModelForZeroShotObjectDetection.from_config(MMGroundingDinoConfig())
        vocab = write_tiny_vocab(tempfile.mkdtemp(prefix="semat-bench-vocab-"))
        processor = GroundingDinoProcessor(image_processor=GroundingDinoImageProcessor(),
                                           tokenizer=BertTokenizer.from_pretrained(str(vocab.parent)))
        detector = TextDetector(det_model, processor, runtime, name="mm-grounding-dino-tiny (random)")
    matter = build_predictor("hq-sam", runtime.dtype, device, tiny)
    photo = np.random.default_rng(1).integers(0, 256, ((size * 3) // 4, size, 3), dtype=np.uint8)

    def text_to_alpha() -> None:
        dets = detector.detect(photo, "cat. dog.", box_threshold=0.0, text_threshold=0.0, raise_if_empty=False)
        boxes = [dets[0].box] if dets else [box]
        matter.predict(photo, boxes)

    reset_peak(device)
    ms = time_ms(text_to_alpha, device, max(2, iters // 2), 2)
    rows.append({"what": "text→alpha (MM-GDINO-T + HQ-SAM)", "dtype": runtime.dtype_name.replace("bfloat16", "bf16"),
                 "boxes": 1, "ms": round(ms, 2), "tflops": None, "peak_gb": round(peak_gb(device), 2),
                 "detect_ms": round(detector.last_timings.get("detect_forward", float("nan")) * 1e3, 2)})
    print(json.dumps(rows[-1]), flush=True)

    print(f"\n{name}; same-run {mm_n}² matmul TFLOP/s: " + ", ".join(f"{k} {v:.1f}" for k, v in mm.items())
          + f"; total {time.perf_counter() - t_start:.0f} s")
    print("| what | dtype | boxes | ms | TFLOP/s | of bf16 matmul | peak GB |\n|---|---|---|---|---|---|---|")
    for r in rows:
        frac = f"{r['tflops'] / mm['bf16']:.2f}" if r["tflops"] is not None else "-"
        tf = f"{r['tflops']:.1f}" if r["tflops"] is not None else "-"
        print(f"| {r['what']} | {r['dtype']} | {r['boxes']} | {r['ms']:.1f} | {tf} | {frac} | {r['peak_gb']:.2f} |")
    for note in notes:
        print("-", note)
    if args.json:
        args.json.write_text(json.dumps({"device": name, "matmul_tflops": mm, "rows": rows, "checks": notes},
                                        indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
