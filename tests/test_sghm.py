"""Fast SGHM tests: checkpoint layout, SN/BN folding, size rule, tiled OS1, pipeline contract."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from semat.inference.sghm import (
    DEFAULT_MAX_SIDE,
    HumanPredictor,
    HumanResult,
    _tile_runs,
    convert_state_dict,
    network_size,
)
from semat.models.sghm import SGHM, SGHMConfig, fold_spectral_norm
from semat.weights.checkpoint import CheckpointError, load_exact


def _manifest_sd(golden_dir) -> dict[str, torch.Tensor]:
    manifest = json.loads((golden_dir / "sghm" / "manifest.json").read_text())
    sd = {}
    for k, shape in manifest.items():
        sd[k] = torch.ones(shape) if k.endswith((".weight_u", ".weight_v", ".weight_bar")) else torch.zeros(shape)
    return sd


def test_manifest_is_the_layout_the_loader_accepts(golden_dir):
    sd = _manifest_sd(golden_dir)
    assert all(k.startswith("module.") for k in sd)
    converted = convert_state_dict(sd)  # strips module., folds the 41 SN triples
    model = SGHM()
    expected = model.state_dict()
    assert set(converted) == set(expected)
    assert all(tuple(converted[k].shape) == tuple(expected[k].shape) for k in expected)
    assert len(sd) - len(converted) == 2 * 41  # three SN entries became one weight, 41 times
    load_exact(model, converted, source="manifest")


def test_loader_names_missing_and_unexpected_keys(golden_dir):
    sd = convert_state_dict(_manifest_sd(golden_dir))
    sd.pop("refine.refine_OS1.3.bias")
    sd["refine.extra.weight"] = torch.zeros(1)
    with pytest.raises(CheckpointError, match=r"refine\.refine_OS1\.3\.bias.*refine\.extra\.weight"):
        load_exact(SGHM(), sd, source="x.pth")


def test_incomplete_spectral_norm_triple_is_a_checkpoint_error():
    sd = {"shortcut.0.0.module.weight_bar": torch.ones(2, 1, 3, 3), "shortcut.0.0.module.weight_u": torch.ones(2)}
    with pytest.raises(CheckpointError, match=r"shortcut\.0\.0"):
        convert_state_dict(sd)


def test_spectral_norm_fold_is_eval_mode_sigma():
    g = torch.Generator().manual_seed(1)
    w = torch.randn(8, 4, 3, 3, generator=g)
    u, v = torch.randn(8, generator=g), torch.randn(36, generator=g)
    out = fold_spectral_norm({"a.module.weight_bar": w, "a.module.weight_u": u, "a.module.weight_v": v,
                              "b.bias": torch.ones(1)})
    sigma = float(u.double() @ (w.double().reshape(8, -1) @ v.double()))
    torch.testing.assert_close(out["a.weight"].double(), w.double() / sigma, rtol=1e-5, atol=0)
    assert set(out) == {"a.weight", "b.bias"}


@pytest.mark.parametrize("hw", [(128, 192), (64, 64)])
def test_fused_model_equals_unfused(hw):
    ref = HumanPredictor.tiny(fuse=False).model
    fused = HumanPredictor.tiny(fuse=False).model.fuse_(channels_last=True)
    x = torch.rand(1, 3, *hw, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        a, b = ref(x), fused(x.contiguous(memory_format=torch.channels_last))
    for k in a:
        scale = a[k].abs().max().item() + 1e-6
        assert (a[k] - b[k]).abs().max().item() <= 1e-4 * scale, k


def test_network_needs_multiples_of_64():
    model = SGHM(SGHMConfig.tiny()).eval()
    with pytest.raises(ValueError, match="multiples of 64"):
        model.coarse(torch.rand(1, 3, 96, 128))


def test_network_size_rules(golden_dir):
    case = json.loads((golden_dir / "sghm" / "case.json").read_text())
    w, h = case["image"]["width"], case["image"]["height"]
    assert list(network_size(h, w, max_side=None)) == case["network_input_hw"]
    assert network_size(1080, 1920, max_side=None) == (1280, 2240)  # spec §1.1 example
    assert network_size(1000, 4000, max_side=None) == (1280, 5120)  # reference: no cap
    assert network_size(1000, 4000) == (640, DEFAULT_MAX_SIDE)  # our default cap
    assert network_size(4000, 1000) == (DEFAULT_MAX_SIDE, 640)
    assert network_size(512, 512) == (1280, 1280)  # small images are upscaled like the reference
    assert network_size(1080, 1920, upscale=False) == (1024, 1920)  # reference video rule
    assert network_size(720, 1280, upscale=False) == (704, 1280)
    assert network_size(10, 1000) == (64, 2560)  # degenerate strip: sides never below 64
    with pytest.raises(ValueError):
        network_size(100, 100, max_side=10)


def test_tile_runs_cover_region_and_merge_neighbours():
    region = np.zeros((40, 64), bool)
    region[3, 5] = region[3, 20] = region[39, 63] = True
    boxes = _tile_runs(region, 8)
    assert boxes == [(0, 8, 0, 8), (0, 8, 16, 24), (32, 40, 56, 64)]
    region[3, 9] = True  # joins the first two tiles into one run
    assert _tile_runs(region, 8)[0] == (0, 8, 0, 24)


def test_tiled_os1_equals_full_os1_on_the_region():
    matter = HumanPredictor.tiny()
    x = torch.rand(1, 3, 256, 320, generator=torch.Generator().manual_seed(3))
    rs = np.random.RandomState(0)
    region = np.zeros((256, 320), bool)
    for _ in range(5):  # scattered blobs, including image borders
        y, xx = rs.randint(0, 256), rs.randint(0, 320)
        region[max(0, y - 6):y + 6, max(0, xx - 6):xx + 6] = True
    region[-3:, -3:] = True
    with torch.inference_mode():
        c = matter.model.coarse(x)
        full = matter.model.fine(c.feat4, matter.model.shortcut0(x, c.mask))
        full_alpha = ((torch.tanh(full) + 1) / 2)[0, 0][torch.from_numpy(region)]
        tiled = matter._os1_on_region(c, x, region)
    assert len(_tile_runs(region.reshape(64, 4, 80, 4).any(axis=(1, 3)), matter.tile)) > 1
    torch.testing.assert_close(tiled, full_alpha, atol=1e-5, rtol=0)


def test_banded_shortcut0_equals_whole():
    model = HumanPredictor.tiny().model
    x = torch.rand(1, 3, 192, 128, generator=torch.Generator().manual_seed(4))
    mask = (torch.rand(1, 1, 192, 128, generator=torch.Generator().manual_seed(5)) > 0.3).float()
    with torch.inference_mode():
        torch.testing.assert_close(model.shortcut0(x, mask, band=50), model.shortcut0(x, mask), atol=1e-5, rtol=1e-5)


def test_predict_contract_and_lazy_equals_full():
    matter = HumanPredictor.tiny()
    image = np.random.RandomState(0).randint(0, 256, (90, 70, 3), dtype=np.uint8)
    res = matter.predict(image)
    assert isinstance(res, HumanResult)
    assert res.alpha.shape == res.segment.shape == (90, 70)
    assert res.alpha.dtype == res.segment.dtype == np.float32
    assert 0 <= res.alpha.min() and res.alpha.max() <= 1 and 0 <= res.segment.min() and res.segment.max() <= 1
    assert res.network_hw == network_size(90, 70, short_side=128)
    assert res.timings["total"] > 0
    dbg = matter.predict(image, return_debug=True)
    np.testing.assert_allclose(res.alpha, dbg.alpha, atol=1e-6)
    for k in ("segment", "alpha_os1", "alpha_os4", "alpha_os8", "logits_os1", "alpha_fused_net"):
        assert dbg.debug[k].shape == res.network_hw
    assert dbg.debug["logits_os4"].shape == (res.network_hw[0] // 4, res.network_hw[1] // 4)
    assert dbg.debug["logits_os8"].shape == (res.network_hw[0] // 8, res.network_hw[1] // 8)


def test_fusion_follows_the_reference_rule():
    """Fused alpha = OS8 away from the uncertain band, OS4/OS1 inside it (spec §1.4 / §8.6)."""
    import cv2

    matter = HumanPredictor.tiny()
    image = np.random.RandomState(1).randint(0, 256, (128, 192, 3), dtype=np.uint8)
    d = matter.predict(image, return_debug=True).debug
    a = d["alpha_os8"].copy()

    def region(alpha, k):
        u = (~((alpha < 1 / 255) | (alpha > 1 - 1 / 255))).astype(np.uint8)
        return cv2.dilate(u, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))).astype(bool)

    r4 = region(a, 15)
    a[r4] = d["alpha_os4"][r4]
    r1 = region(a, 7)
    a[r1] = d["alpha_os1"][r1]
    np.testing.assert_array_equal(a, d["alpha_fused_net"])


def test_bad_images_raise_value_error():
    matter = HumanPredictor.tiny()
    with pytest.raises(ValueError):
        matter.predict(np.zeros((10, 10, 3), np.float32))
    with pytest.raises(ValueError):
        matter.predict(np.zeros((10, 10, 5), np.uint8))
    with pytest.raises(ValueError):
        matter.predict("not an image")  # type: ignore[arg-type]
    assert matter.predict(np.zeros((40, 30), np.uint8)).alpha.shape == (40, 30)  # gray is accepted


def test_registry_human_model_honours_test_models(monkeypatch):
    from semat import registry

    monkeypatch.setenv("SEMAT_TEST_MODELS", "tiny")
    matter = registry.load(registry.default("human"))
    assert isinstance(matter, HumanPredictor) and matter.model.cfg == SGHMConfig.tiny()
