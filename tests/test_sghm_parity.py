"""Full-size SGHM parity with the reference (golden fixtures in ../shared/golden/sghm)."""

from __future__ import annotations

import json
from collections import OrderedDict

import numpy as np
import pytest
import torch
from PIL import Image

from semat.inference.sghm import HumanPredictor, convert_state_dict, load_sghm
from semat.runtime import select_runtime
from semat.weights.checkpoint import read_state_dict

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def golden_checkpoint(golden_dir, golden_weights_module, tmp_path_factory):
    """The golden weights in the released format: a plain OrderedDict with 'module.' keys."""
    manifest = golden_weights_module.load_manifest(golden_dir / "sghm" / "manifest.json")
    sd = golden_weights_module.golden_state_dict(manifest)
    path = tmp_path_factory.mktemp("sghm") / "SGHM-ResNet50.pth"
    torch.save(OrderedDict((k, torch.from_numpy(v)) for k, v in sd.items()), path)
    return path, manifest


@pytest.fixture(scope="module")
def golden_run(golden_dir, golden_checkpoint):
    torch.set_num_threads(2)
    path, _ = golden_checkpoint
    matter = HumanPredictor.from_pretrained(path, runtime=select_runtime("cpu", "float32"))  # fp32 parity
    image = np.array(Image.open(golden_dir / "sghm" / "input.png").convert("RGB"))
    return matter.predict(image, max_side=None, return_debug=True), matter.predict(image)


def test_every_checkpoint_key_is_consumed(golden_checkpoint):
    path, manifest = golden_checkpoint
    raw = read_state_dict(path)  # weights_only=True, strips module.
    assert set(raw) == {k.removeprefix("module.") for k in manifest}
    model, used = load_sghm(path, fuse=False)  # load_exact: fails on any missing/unexpected key
    assert used == path.resolve()
    assert set(model.state_dict()) == set(convert_state_dict(raw))


def test_arrays_match_reference(golden_dir, golden_run):
    case = json.loads((golden_dir / "sghm" / "case.json").read_text())
    tol = case["recommended_tolerance"]
    expected = np.load(golden_dir / "sghm" / "expected.npz")
    debug_res, _ = golden_run
    actual = dict(debug_res.debug, alpha_fused=debug_res.alpha, segment_orig=debug_res.segment)
    assert debug_res.network_hw == tuple(case["network_input_hw"])
    for name in case["arrays"]:
        e = expected[name].astype(np.float64)
        a = np.asarray(actual[name], dtype=np.float64)
        assert a.shape == e.shape, name
        diff = np.abs(a - e)
        rule = tol[name]
        if "atol" in rule:
            assert np.all(diff <= rule["atol"] + rule["rtol"] * np.abs(e)), (name, diff.max())
        elif name.startswith("logits"):
            assert diff.max() <= 1e-4 * np.abs(e).max(), (name, diff.max() / np.abs(e).max())
        else:
            assert (diff > 1e-3).mean() <= 1e-3, (name, (diff > 1e-3).mean())
            assert diff.mean() <= 1e-3, (name, diff.mean())


def test_default_path_equals_debug_path(golden_run):
    debug_res, fast_res = golden_run
    np.testing.assert_array_equal(fast_res.alpha, debug_res.alpha)
    np.testing.assert_array_equal(fast_res.segment, debug_res.segment)


def test_cli_writes_expected_alpha_png(golden_dir, golden_checkpoint, tmp_path, monkeypatch):
    from semat.cli.main import main

    monkeypatch.delenv("SEMAT_TEST_MODELS", raising=False)
    path, _ = golden_checkpoint
    out = tmp_path / "out"
    assert main(["human", str(golden_dir / "sghm" / "input.png"), "-o", str(out), "--checkpoint", str(path),
                 "--no-progress", "--device", "cpu", "--dtype", "float32"]) == 0
    ours = np.array(Image.open(out / "input.png"))
    expected = np.array(Image.open(golden_dir / "sghm" / "expected_alpha.png"))
    assert ours.dtype == np.uint8 and ours.shape == expected.shape
    assert (ours != expected).mean() <= 1e-3


# ------------------------------------------------------------- bf16 accuracy budget (issue 14)
# The reference's own bf16 autocast against its fp32, on the public fixture: its forward under
# torch.autocast("cpu", torch.bfloat16), outputs taken to fp32 before its fusion (its
# get_unknown_tensor_from_pred cannot read bf16), everything else as test_image.py. Measured
# with cxgincsu/SemanticGuidedHumanMatting @ 48df35a, torch 2.13.0, 2 threads, on each kind of
# native bf16 (AMX and AVX512-BF16 round their bf16 products differently, so the reference's
# deviation, and ours, depends on which one runs):
#   AVX512-BF16 (AMD EPYC, Zen 4, no AMX): segment max 0.00436, alpha_fused mean 0.00755 with
#     1.80 % of pixels off by more than 1e-3, expected_alpha.png 1.80 % of pixels differing,
#     logits max |diff| / max |logit| 0.0508 (OS1), 0.0376 (OS4), 0.0396 (OS8);
#   AMX-bf16 (Intel Xeon, amx_bf16/amx_tile): segment max 0.00446, alpha_fused mean 0.00785 with
#     1.83 % of pixels off, the PNG 1.83 %, logits 0.0446 (OS1), 0.0320 (OS4), 0.0345 (OS8).
# Each bound below is that figure rounded down. A CPU of neither kind (bf16 emulated) is held to
# the smaller of the two for each figure. The alphas are saturated by the golden weights (0 or 1
# almost everywhere), so a bf16 logit that changes sign flips a pixel: the pixel counts are the
# budget, not a tolerance.
REFERENCE_BF16_SGHM_BY_KIND = {
    "AVX512-BF16": {"segment_max": 0.0043, "alpha_mean": 0.0075, "alpha_off": 0.0179, "png_off": 0.0179,
                    "logits_os1": 0.050, "logits_os4": 0.037, "logits_os8": 0.039},
    "AMX-bf16": {"segment_max": 0.0044, "alpha_mean": 0.0078, "alpha_off": 0.0182, "png_off": 0.0183,
                 "logits_os1": 0.044, "logits_os4": 0.032, "logits_os8": 0.034},
}


def _reference_bf16_budget() -> dict[str, float]:
    """The reference's bf16 deviation measured on this CPU's kind of bf16 (else the smaller of each)."""
    from semat.runtime import cpu_bf16_feature

    kinds = REFERENCE_BF16_SGHM_BY_KIND
    budget = kinds.get(cpu_bf16_feature() or "")
    return budget or {k: min(b[k] for b in kinds.values()) for k in next(iter(kinds.values()))}


def test_bf16_within_the_references_own_bf16_budget(golden_dir, golden_checkpoint):
    """What ``--dtype auto`` runs for SGHM on a native-bf16 CPU (asked for explicitly, so tested on
    every machine) against the fixture, which our fp32 matches (test_arrays_match_reference)."""
    torch.set_num_threads(2)
    path, _ = golden_checkpoint
    matter = HumanPredictor.from_pretrained(path, runtime=select_runtime("cpu", "bfloat16"))
    assert next(matter.model.parameters()).dtype == torch.bfloat16
    image = np.array(Image.open(golden_dir / "sghm" / "input.png").convert("RGB"))
    res = matter.predict(image, max_side=None, return_debug=True)
    np.testing.assert_array_equal(matter.predict(image, max_side=None).alpha, res.alpha)
    expected = np.load(golden_dir / "sghm" / "expected.npz")
    got = dict(res.debug, alpha_fused=res.alpha, segment_orig=res.segment)
    diff = {k: np.abs(np.asarray(got[k], np.float64) - expected[k].astype(np.float64)) for k in expected.files}
    png = np.round(res.alpha * 255).astype(np.uint8)
    measured = {
        "segment_max": max(float(diff["segment"].max()), float(diff["segment_orig"].max())),
        "alpha_mean": float(diff["alpha_fused"].mean()),
        "alpha_off": float((diff["alpha_fused"] > 1e-3).mean()),
        "png_off": float((png != np.array(Image.open(golden_dir / "sghm" / "expected_alpha.png"))).mean()),
        **{k: float(diff[k].max() / np.abs(expected[k]).max()) for k in ("logits_os1", "logits_os4", "logits_os8")},
    }
    budget = _reference_bf16_budget()
    print("\nSGHM bf16 vs reference fp32:", {k: round(v, 5) for k, v in measured.items()}, "budget:", budget)
    over = {k: v for k, v in measured.items() if v > budget[k]}
    assert not over, f"over the reference's own bf16 deviation: {over}"


@pytest.mark.parametrize("kind", ["AMX-bf16", "AVX512-BF16", None])
def test_the_budget_is_the_one_measured_on_this_kind_of_bf16(kind, monkeypatch):
    import semat.runtime

    monkeypatch.setattr(semat.runtime, "cpu_bf16_feature", lambda: kind)
    budget = _reference_bf16_budget()
    if kind is not None:
        assert budget == REFERENCE_BF16_SGHM_BY_KIND[kind]
    else:  # neither measured kind: each figure at the stricter of the two
        amx, avx = REFERENCE_BF16_SGHM_BY_KIND["AMX-bf16"], REFERENCE_BF16_SGHM_BY_KIND["AVX512-BF16"]
        assert budget == {k: min(amx[k], avx[k]) for k in amx} and budget["alpha_mean"] == 0.0075
