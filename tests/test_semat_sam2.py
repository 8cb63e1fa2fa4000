"""SEMat (SAM2): key conversion, tiny forward behaviour, and reference parity on the golden case."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from semat.models.frame import box_mask
from semat.models.outputs import SEMatOutput
from semat.models.semat_sam2 import IGNORE_PREFIXES, SEMatSAM2, build_semat_sam2
from semat.weights.checkpoint import load_exact, read_state_dict
from semat.weights.convert import convert_sam2_state_dict as convert_state_dict


def _manifest(golden_dir) -> dict[str, list[int]]:
    data = json.loads((golden_dir / "semat_sam2" / "manifest.json").read_text())
    data = data.get("state_dict", data)
    return {k: (v["shape"] if isinstance(v, dict) else v) for k, v in data.items()}


# ---------------------------------------------------------------------------------------------
# Fast tests


def test_box_mask_truncates_and_excludes_end():
    m = box_mask(torch.tensor([[1.9, 2.2, 5.7, 4.0], [0.0, 0.0, 8.0, 8.0]], dtype=torch.float64), 8)
    assert m.shape == (2, 1, 8, 8) and m.dtype == torch.float32
    expected = torch.zeros(8, 8)
    expected[2:4, 1:5] = 1.0  # rows int(2.2)..int(4.0)-1, cols int(1.9)..int(5.7)-1
    assert torch.equal(m[0, 0], expected)
    assert float(m[1].sum()) == 64.0


def test_full_config_key_set_equals_converted_manifest(golden_dir):
    """Every manifest key is either loaded or deliberately ignored, and nothing is missing."""
    manifest = _manifest(golden_dir)
    sd = {k: torch.empty(s) for k, s in manifest.items()}
    converted, ignore = convert_state_dict(sd)
    assert ignore == IGNORE_PREFIXES
    kept = {k: tuple(v.shape) for k, v in converted.items() if not k.startswith(ignore)}
    model = SEMatSAM2()
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert kept == expected
    ignored = sorted(k for k in converted if k.startswith(ignore))
    assert all(not k.startswith(("image_encoder.", "sam_prompt_encoder.point", "no_mem_embed"))
               for k in ignored)
    # each ignore prefix matches something in the released layout (no stale entries)
    for prefix in ignore:
        assert any(k.startswith(prefix) for k in converted), prefix


def test_convert_is_idempotent_wrt_generic_lora_merge(golden_dir, golden_weights_module):
    from semat.weights.checkpoint import merge_lora

    manifest = {k: s for k, s in _manifest(golden_dir).items() if "blocks.0." in k or "patch_embed" in k}
    sd = {k: torch.from_numpy(v) for k, v in golden_weights_module.golden_state_dict(manifest).items()}
    a, _ = convert_state_dict(sd)
    b, _ = convert_state_dict(merge_lora(sd))
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert "image_encoder.trunk.blocks.0.attn.qkv.weight" in a
    assert not any("lora" in k or "base_layer" in k for k in a)


@pytest.fixture(scope="module")
def tiny_model() -> SEMatSAM2:
    torch.manual_seed(0)
    model = build_semat_sam2(tiny=True)
    # random BN statistics so the detail decoder is not an identity-like map
    for mod in model.modules():
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.running_mean.uniform_(-0.1, 0.1)
            mod.running_var.uniform_(0.5, 1.5)
    return model


@torch.inference_mode()
def test_tiny_forward_shapes(tiny_model):
    s = tiny_model.img_size
    g = torch.Generator().manual_seed(0)
    images = torch.rand(2, 3, s, s, generator=g)
    boxes = torch.tensor([[10.0, 20.0, 200.0, 180.0], [0.0, 0.0, s - 1.0, s - 1.0]])
    out = tiny_model(images, boxes)
    assert isinstance(out, SEMatOutput)
    assert out.alpha.shape == (2, 1, s, s)
    assert out.matting_logits.shape == (2, 3, s, s)
    assert out.mask_logits.shape == (2, 1, s, s)
    assert out.image_embedding.shape == (2, tiny_model.config.d_model, s // 16, s // 16)
    assert torch.isfinite(out.alpha).all() and 0.0 <= float(out.alpha.min()) <= float(out.alpha.max()) <= 1.0
    # batch items are independent: item 0 alone gives the same result
    single = tiny_model(images[:1], boxes[:1])
    torch.testing.assert_close(single.alpha, out.alpha[:1], atol=1e-5, rtol=0)


@torch.inference_mode()
def test_tiny_points_change_the_prediction_but_not_the_encoder(tiny_model):
    s = tiny_model.img_size
    images = torch.rand(1, 3, s, s, generator=torch.Generator().manual_seed(1))
    boxes = torch.tensor([[30.0, 40.0, 220.0, 230.0]])
    base = tiny_model(images, boxes)
    pts = (torch.tensor([[[100.0, 120.0], [50.0, 60.0]]]), torch.tensor([[1, 0]]))
    with_points = tiny_model(images, boxes, pts)
    assert with_points.alpha.shape == base.alpha.shape
    assert not torch.allclose(with_points.mask_logits, base.mask_logits)
    # the image embedding does not depend on the points (only the box enters the encoder)
    torch.testing.assert_close(with_points.image_embedding, base.image_embedding)
    # label -1 entries (padding, for batches with different point counts) are accepted
    padded = tiny_model(images, boxes, (torch.zeros(1, 1, 2), torch.tensor([[-1]])))
    assert padded.alpha.shape == base.alpha.shape and torch.isfinite(padded.alpha).all()


@torch.inference_mode()
def test_tiny_box_changes_the_encoder_output(tiny_model):
    s = tiny_model.img_size
    images = torch.rand(1, 3, s, s, generator=torch.Generator().manual_seed(2))
    a = tiny_model(images, torch.tensor([[10.0, 10.0, 100.0, 100.0]]))
    b = tiny_model(images, torch.tensor([[120.0, 120.0, 250.0, 250.0]]))
    assert not torch.allclose(a.image_embedding, b.image_embedding)


def test_tiny_rejects_bad_shapes(tiny_model):
    s = tiny_model.img_size
    with pytest.raises(ValueError, match="images"):
        tiny_model(torch.rand(1, 3, s // 2, s // 2), torch.zeros(1, 4))
    with pytest.raises(ValueError, match="boxes"):
        tiny_model(torch.rand(1, 3, s, s), torch.zeros(2, 4))
    with pytest.raises(ValueError, match="labels"):
        tiny_model(torch.rand(1, 3, s, s), torch.zeros(1, 4), (torch.zeros(1, 2, 2), torch.zeros(1, 3)))


# ---------------------------------------------------------------------------------------------
# Reference parity (full size, golden weights)


def _close(name, actual: np.ndarray, expected: np.ndarray, tol: dict) -> None:
    exp = expected.astype(np.float64)
    diff = np.abs(actual.astype(np.float64) - exp)
    bound = tol["atol"] + tol["rtol"] * np.abs(exp)
    bad = int((diff > bound).sum())
    assert bad == 0, f"{name}: {bad} elements out of tolerance, max |diff| {diff.max():.3g}"


@pytest.mark.slow
def test_golden_parity(golden_dir, golden_weights_module, tmp_path):
    import cv2

    case_dir = golden_dir / "semat_sam2"
    case = json.loads((case_dir / "case.json").read_text())
    manifest = _manifest(golden_dir)

    sd = {k: torch.from_numpy(v) for k, v in golden_weights_module.golden_state_dict(manifest).items()}
    ckpt = tmp_path / "SEMat_SAM2.pth"
    torch.save({"model": sd}, ckpt)
    del sd
    converted, ignore = convert_state_dict(read_state_dict(ckpt))
    ckpt.unlink()
    model = build_semat_sam2()
    load_exact(model, converted, source="golden SEMat_SAM2", ignore_prefixes=ignore)
    del converted
    model.eval()

    rgb = cv2.cvtColor(cv2.imread(str(case_dir / "input.png"), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    h, w = rgb.shape[:2]
    side = model.img_size
    scale = side / max(h, w)
    new_w, new_h = int(w * scale + 0.5), int(h * scale + 0.5)
    assert [new_w, new_h] == case["resized_wh"]
    resized = cv2.resize(rgb, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    padded = np.zeros((side, side, 3), np.uint8)
    padded[:new_h, :new_w] = resized
    images = torch.from_numpy(padded).permute(2, 0, 1)[None].float() / 255.0
    box = np.clip([int(v * scale + 0.5) for v in case["box_xyxy_original"]], 0, side - 1).astype(np.float64)
    assert box.tolist() == case["box_xyxy_1024"]

    with torch.inference_mode():
        out = model(images, torch.from_numpy(box)[None])

    expected = np.load(case_dir / "expected.npz")
    tol = case["recommended_tolerance"]
    _close("image_embedding", out.image_embedding[0].numpy(), expected["image_embedding"], tol["image_embedding"])
    _close("sam_mask_logits", out.mask_logits[0, 0].numpy(), expected["sam_mask_logits"], tol["sam_mask_logits"])
    _close("matting_logits", out.matting_logits[0].numpy(), expected["matting_logits"], tol["matting_logits"])
    alpha = out.alpha[0, 0].numpy()
    _close("alpha_1024", alpha, expected["alpha_1024"], tol["alpha_1024"])
    assert float(np.abs(alpha.astype(np.float64) - expected["alpha_1024"]).mean()) <= 1e-5
