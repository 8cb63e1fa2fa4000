"""Precision: the ``auto`` dtype rule, weights cast once at load, and the bf16 accuracy budget.

Fast tests check the rule (bf16 exactly where the hardware multiplies it natively, SEMAT_DTYPE and
explicit dtypes win, the label says which) and that casting the weights at load is bit-identical
to plain autocast on every tiny variant (the oneDNN fusions on top are tested in test_fusion.py).

The slow test is the accuracy budget of issue 14 on the golden fixtures: our bf16 alpha (what
``auto`` runs on AMX / AVX512-BF16 CPUs and bf16 GPUs) may differ from our fp32 alpha by no more
than the reference implementation's own bf16 autocast differs from its fp32 on the same fixture.
Measured with the reference on the public SEMat-SAM fixture (1024 frame): mean 0.058, max 0.28.
No reference bf16 figure exists for the HQ-SAM and SAM2 fixtures; they are held to the same
ceiling. Our fp32 alpha is represented by ``expected.npz``'s ``alpha_1024``, which
test_semat_parity proves our fp32 matches within 1e-4 (max) / 1e-5 (mean); that slack is taken
off the budget, so the bound holds against our own fp32 too. The golden weights are synthetic
and far less forgiving of bf16 than trained weights: this is a ceiling, not an aim.
"""

from __future__ import annotations

import copy
import gc
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from semat import runtime as rt
from semat.runtime import Runtime, select_runtime

REFERENCE_BF16_BUDGET = {"mean": 0.058, "max": 0.28}  # reference bf16 autocast vs its fp32, SAM fixture
FP32_PARITY_SLACK = {"mean": 1e-5, "max": 1e-4}        # our fp32 vs the fixture (test_semat_parity)


# ------------------------------------------------------------------------------- the rule
@pytest.fixture
def caps(monkeypatch: pytest.MonkeyPatch):
    """Pretend the CPU has the given capability flags."""

    def set_caps(**flags: bool) -> None:
        monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: dict(flags))

    monkeypatch.delenv("SEMAT_DTYPE", raising=False)
    return set_caps


@pytest.mark.parametrize("flags, feature, dtype", [
    ({"amx_tile": True, "amx_bf16": True, "avx512_bf16": True}, "AMX-bf16", torch.bfloat16),
    ({"avx512_bf16": True}, "AVX512-BF16", torch.bfloat16),
    ({"avx512_f": True, "avx2": True}, None, torch.float32),
    ({"avx2": True}, None, torch.float32),
])
def test_auto_is_bf16_exactly_on_native_bf16_cpus(caps, flags, feature, dtype) -> None:
    caps(**flags)
    assert rt.cpu_bf16_feature() == feature
    for arg in (None, "auto", "AUTO", ""):
        r = select_runtime("cpu", arg)
        assert r.dtype == dtype and r.auto
    label = select_runtime("cpu").label
    assert label.startswith(f"CPU, {str(dtype).removeprefix('torch.')}") and "auto" in label
    if feature:
        assert feature in label


def test_explicit_dtype_and_env_override_auto(caps, monkeypatch: pytest.MonkeyPatch) -> None:
    caps(amx_tile=True, amx_bf16=True)
    assert select_runtime("cpu", "float32") == Runtime(torch.device("cpu"), torch.float32)
    assert select_runtime("cpu", "float32").label == "CPU, float32"
    monkeypatch.setenv("SEMAT_DTYPE", "float32")
    assert select_runtime("cpu").dtype == torch.float32 and not select_runtime("cpu").auto
    assert select_runtime("cpu", "auto").dtype == torch.float32  # SEMAT_DTYPE overrides auto
    assert select_runtime("cpu", "bfloat16").dtype == torch.bfloat16  # an explicit argument wins
    monkeypatch.setenv("SEMAT_DTYPE", "auto")
    assert select_runtime("cpu").dtype == torch.bfloat16
    caps(avx2=True)
    monkeypatch.setenv("SEMAT_DTYPE", "bfloat16")
    assert select_runtime("cpu").dtype == torch.bfloat16  # asked for: honoured even if emulated
    with pytest.raises(ValueError, match="auto, float32, bfloat16 or float16"):
        select_runtime("cpu", "int8")


def test_this_machine_is_detected_through_torch() -> None:
    caps = torch.cpu.get_capabilities()
    native = bool(caps.get("avx512_bf16") or (caps.get("amx_tile") and caps.get("amx_bf16")))
    assert rt.native_bf16("cpu") == native


# ------------------------------------------------------------------- cast once at load
@pytest.mark.usefixtures("one_thread")
@pytest.mark.parametrize("variant", ["sam", "hq-sam", "sam2"])
def test_cast_at_load_equals_autocast(variant: str) -> None:
    from semat.inference.predictor import SEMatPredictor
    from semat.models.build import build_semat
    from semat.models.precision import cast_matmul_weights, weights_dtype
    from semat.weights.convert import prepare_model

    torch.manual_seed(0)
    model = build_semat(variant, tiny=True).eval()
    bf16 = select_runtime("cpu", "bfloat16")
    plain = SEMatPredictor(model, bf16, variant)  # fp32 weights, autocast in the forward
    cast_model = copy.deepcopy(model)
    cast_matmul_weights(cast_model, torch.bfloat16)
    cast = SEMatPredictor(cast_model, bf16, variant)
    assert weights_dtype(cast.model) == torch.bfloat16 and weights_dtype(model) == torch.float32
    head = cast.model.matting_decoder.matting_head
    assert head.weight.dtype == torch.float32  # the alpha head stays fp32
    norms = [m for m in cast.model.modules() if isinstance(m, (torch.nn.LayerNorm, torch.nn.BatchNorm2d))]
    assert norms and all(p.dtype == torch.float32 for m in norms for p in m.parameters())
    image = np.random.default_rng(0).integers(0, 256, (200, 240, 3), dtype=np.uint8)
    box = [20, 30, 180, 190]
    a_plain = plain.predict(image, [box], return_debug=True)[0]
    a_cast = cast.predict(image, [box], return_debug=True)[0]
    np.testing.assert_array_equal(a_cast.alpha, a_plain.alpha)
    np.testing.assert_array_equal(a_cast.debug["matting_logits"], a_plain.debug["matting_logits"])
    fp32 = SEMatPredictor(model, select_runtime("cpu", "float32"), variant).predict(image, [box])[0]
    assert float(np.abs(fp32.alpha - a_cast.alpha).max()) < 0.05
    # What the app loads: the cast plus BatchNorm folding and the oneDNN epilogues
    # (semat.models.fusion; tested there): as close to fp32 as the plain cast.
    loaded = SEMatPredictor(prepare_model(copy.deepcopy(model), bf16), bf16, variant)
    assert weights_dtype(loaded.model) == torch.bfloat16
    assert float(np.abs(fp32.alpha - loaded.predict(image, [box])[0].alpha).max()) < 0.05


# ------------------------------------------------------------- accuracy budget (golden)
@pytest.mark.slow
@pytest.mark.parametrize("variant", ["sam", "hq-sam", "sam2"])
def test_bf16_alpha_within_the_references_own_bf16_budget(variant: str, golden_dir: Path,
                                                         golden_weights_module, tmp_path: Path) -> None:
    from semat.inference.predictor import SEMatPredictor
    from semat.weights.convert import load_semat

    case_dir = golden_dir / f"semat_{variant}"
    case = json.loads((case_dir / "case.json").read_text())
    gw = golden_weights_module
    sd = {k: torch.from_numpy(v) for k, v in gw.golden_state_dict(gw.load_manifest(case_dir / "manifest.json")).items()}
    path = tmp_path / "golden.pth"
    torch.save({"model": sd}, path)
    del sd
    gc.collect()
    # What auto runs where bf16 is native (asked for explicitly, so it is tested on every machine).
    loaded = load_semat(variant, checkpoint=path, runtime=select_runtime("cpu", "bfloat16"))
    path.unlink()
    predictor = SEMatPredictor(loaded.model, loaded.runtime, variant)
    image = np.asarray(Image.open(case_dir / case["image"]["file"]).convert("RGB"))
    got = predictor.predict(image, [case["box_xyxy_original"]], return_debug=True)[0].debug["alpha_frame"]
    del predictor, loaded
    gc.collect()
    want = np.load(case_dir / "expected.npz")["alpha_1024"].astype(np.float64)
    diff = np.abs(np.asarray(got, np.float64) - want)
    mean, worst = float(diff.mean()), float(diff.max())
    print(f"\n{variant}: bf16 vs fp32 alpha (1024 frame) mean {mean:.4f} max {worst:.4f} "
          f"(budget mean {REFERENCE_BF16_BUDGET['mean']} max {REFERENCE_BF16_BUDGET['max']})")
    assert mean <= REFERENCE_BF16_BUDGET["mean"] - FP32_PARITY_SLACK["mean"], f"{variant}: mean {mean:.4f}"
    assert worst <= REFERENCE_BF16_BUDGET["max"] - FP32_PARITY_SLACK["max"], f"{variant}: max {worst:.4f}"
