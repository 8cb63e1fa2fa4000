"""The import-time half of ZeroGPU with the real ``spaces`` package (issue 10).

In ZeroGPU mode (``SPACES_ZERO_GPU=true``) ``spaces`` emulates CUDA at import: the app must import,
preload every model onto the (emulated) GPU, build the demo and pack its tensors without error.
That needs the CUDA build of torch a Space gets, so the test runs in the venv that
``scripts/space_venv.sh`` builds the Space's way; ``SEMAT_SPACE_PYTHON`` names its python (CI sets
it and ``SEMAT_REQUIRE_SPACE=1``, which turns a missing interpreter into a failure).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from semat.settings import ZERO_GPU_CONCURRENCY

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow

SCRIPT = r"""
import inspect, json, os, time
t0 = time.perf_counter()
import app  # imports spaces first, preloads (SEMAT_PRELOAD=all), builds the demo
import torch
import spaces.zero.torch as zt
from semat.app.services import SERVICES
from semat.app.zerogpu import on_zero_gpu, _gpu_matte
pipe = SERVICES.pipeline()
devices = {v: next(p.model.parameters()).device.type for v, p in pipe._predictors.items()}
devices["detector"] = next(pipe.detector().model.parameters()).device.type
devices["human"] = next(pipe.human().model.parameters()).device.type
import_s = time.perf_counter() - t0
zt.pack()
packed = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(os.environ["ZEROGPU_OFFLOAD_DIR"]) for f in fs)
print("RESULT " + json.dumps({"zero_gpu": on_zero_gpu(), "cuda": torch.cuda.is_available(), "devices": devices,
      "unavailable": SERVICES.unavailable, "demo": type(app.demo).__name__, "wrapped": _gpu_matte.__module__,
      "streams": inspect.isgeneratorfunction(_gpu_matte) and hasattr(_gpu_matte, "zerogpu"),
      "packed_bytes": packed, "import_s": round(import_s, 1),
      "model_concurrency": sorted({fn.concurrency_limit for fn in app.demo.fns.values() if fn.concurrency_id == "models"})}))
"""


def _space_python() -> str:
    py = os.environ.get("SEMAT_SPACE_PYTHON", "")
    if not py or not Path(py).is_file():
        msg = ("no Space interpreter: set SEMAT_SPACE_PYTHON to the python of `bash scripts/space_venv.sh` "
               "(a Python 3.12 venv with the Space's CUDA-build torch and the spaces package)")
        if os.environ.get("SEMAT_REQUIRE_SPACE") == "1":
            pytest.fail(msg)
        pytest.skip(msg)
    return py


def test_app_imports_preloads_and_packs_under_zerogpu_emulation(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SEMAT_", "GRADIO_"))}
    env.update({"SPACES_ZERO_GPU": "true", "SPACES_ZERO_DEVICE_API_URL": "http://127.0.0.1:9",
                "ZEROGPU_OFFLOAD_DIR": str(tmp_path / "tensors"), "SEMAT_TEST_MODELS": "tiny",
                "SEMAT_PRELOAD": "all", "SEMAT_WEIGHTS_DIR": str(tmp_path / "weights"),
                "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1", "HOME": str(tmp_path),
                "GRADIO_EXAMPLES_CACHE": str(tmp_path / "examples")})
    proc = subprocess.run([_space_python(), "-c", SCRIPT], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=600)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stderr[-4000:]
    res = json.loads(lines[-1].removeprefix("RESULT "))
    print(f"\nZeroGPU emulation: {res}")
    assert res["zero_gpu"] and res["cuda"]
    assert res["devices"] == {"hq-sam": "cuda", "sam": "cuda", "sam2": "cuda", "detector": "cuda", "human": "cuda"}
    assert res["unavailable"] == {} and res["demo"] == "Blocks"
    assert res["streams"], "the matte call is wrapped as a ZeroGPU generator (its stages cross as items)"
    assert res["packed_bytes"] > 1_000_000  # every preloaded model's tensors were packed
    assert res["model_concurrency"] == [ZERO_GPU_CONCURRENCY]  # model events run side by side on ZeroGPU
