"""Fast tests of the SEMat (SAM / HQ-SAM) core, loader and predictor on tiny random models."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch

from semat.inference.predictor import BoxError, PointPrompt, SEMatPredictor, validate_boxes
from semat.models.build import VARIANTS, build_semat
from semat.models.frame import box_mask
from semat.runtime import select_runtime
from semat.weights.checkpoint import CheckpointError
from semat.weights.convert import convert_state_dict, load_semat, load_semat_state_dict

SAM_VARIANTS = ("sam", "hq-sam")


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module", params=SAM_VARIANTS)
def tiny_predictor(request) -> SEMatPredictor:
    return SEMatPredictor.tiny(request.param, seed=0)


def _image(h: int = 120, w: int = 160, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(h, w, 3), dtype=np.uint8)


# ----------------------------------------------------------------------------------- model


@pytest.mark.parametrize("variant", SAM_VARIANTS)
def test_forward_shapes_and_batch_independence(variant: str) -> None:
    torch.manual_seed(0)
    model = build_semat(variant, tiny=True)
    s = model.img_size
    images = torch.rand(3, 3, s, s)
    boxes = torch.tensor([[10.0, 20.0, 200.0, 250.0], [0.0, 0.0, s - 1.0, s - 1.0], [50.0, 60.0, 90.0, 70.0]])
    with torch.inference_mode():
        out = model(images, boxes)
        single = [model(images[i:i + 1], boxes[i:i + 1]) for i in range(3)]
    assert out.alpha.shape == (3, 1, s, s)
    assert out.matting_logits.shape == (3, 3, s, s)
    assert out.mask_logits.shape == (3, 1, s, s)
    assert out.image_embedding.shape[0] == 3 and out.image_embedding.shape[-1] == s // 16
    assert float(out.alpha.min()) >= 0.0 and float(out.alpha.max()) <= 1.0
    for i, o in enumerate(single):
        torch.testing.assert_close(out.alpha[i:i + 1], o.alpha, atol=1e-5, rtol=0)
        torch.testing.assert_close(out.matting_logits[i:i + 1], o.matting_logits, atol=1e-4, rtol=1e-4)
    # the box enters the encoder: different boxes on the same image give different embeddings
    assert not torch.allclose(out.image_embedding[0], out.image_embedding[2])


def test_box_mask_truncates_and_excludes_end() -> None:
    m = box_mask(torch.tensor([[1.7, 2.2, 4.9, 5.0]]), 8)[0, 0]
    rows, cols = np.nonzero(m.numpy())
    assert rows.min() == 2 and rows.max() == 4  # int(2.2)=2 .. int(5.0)-1=4
    assert cols.min() == 1 and cols.max() == 3  # int(1.7)=1 .. int(4.9)-1=3


@pytest.mark.parametrize("hw", [(6, 5), (30, 36)])
def test_fused_rel_pos_attention_matches_upstream(hw: tuple[int, int]) -> None:
    """(6, 5): the one-hot-matmul mask in one chunk; (30, 36): 1080 tokens, two chunks of a
    broadcast-add mask (grids at least 32 wide, like the 64x64 global blocks)."""
    from semat.models import sam_encoder  # first: it installs the torchvision shim
    from semat.models.sam_encoder import FusedRelPosAttention

    from segment_anything.modeling.image_encoder import Attention  # isort: skip

    assert 5 < sam_encoder._BROADCAST_MIN_WIDTH <= 36 and 30 * 36 > sam_encoder._MASK_CHUNK
    torch.manual_seed(0)
    ref = Attention(32, num_heads=2, use_rel_pos=True, input_size=hw)
    torch.nn.init.normal_(ref.rel_pos_h, std=0.5)
    torch.nn.init.normal_(ref.rel_pos_w, std=0.5)
    fused = FusedRelPosAttention(32, num_heads=2, use_rel_pos=True, input_size=hw)
    fused.load_state_dict(ref.state_dict())
    x = torch.randn(2, *hw, 32)
    torch.testing.assert_close(fused(x), ref(x), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("hw", [(6, 5), (30, 36)])
def test_mask_buffer_scope_reuses_one_buffer_and_changes_nothing(hw: tuple[int, int]) -> None:
    """Inside an encoder forward every rel-pos mask (each chunk, each block) is written into one
    buffer: bit-identical output, one buffer per dtype, none left once the scope ends."""
    from semat.models import sam_encoder

    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 3, hw[0] * hw[1], 8) for _ in range(3))
    rel_h, rel_w = torch.randn(2 * hw[0] - 1, 8), torch.randn(2 * hw[1] - 1, 8)
    with torch.inference_mode():
        want = sam_encoder.rel_pos_attention(q, k, v, rel_h, rel_w, hw, 0.3)
        with sam_encoder.mask_buffer_scope():
            got = [sam_encoder.rel_pos_attention(q, k, v, rel_h, rel_w, hw, 0.3) for _ in range(2)]
            buffers = sam_encoder._MASK_BUFFER.get()
            assert buffers is not None and list(buffers) == [(torch.float32, torch.device("cpu"))]
            rows = min(sam_encoder._MASK_CHUNK, hw[0] * hw[1])
            assert buffers[(torch.float32, torch.device("cpu"))].numel() == 2 * 3 * rows * hw[0] * hw[1]
    assert sam_encoder._MASK_BUFFER.get() is None
    for out in got:
        assert torch.equal(out, want)
    q.requires_grad_(True)  # where autograd records, the scope builds fresh masks (out= ops cannot)
    with sam_encoder.mask_buffer_scope():
        out = sam_encoder.rel_pos_attention(q, k, v, rel_h, rel_w, hw, 0.3)
        assert sam_encoder._MASK_BUFFER.get() == {}
    out.sum().backward()
    assert q.grad is not None  # (with grad, SDPA may pick another kernel: equal to rounding)
    torch.testing.assert_close(out.detach(), want, atol=1e-5, rtol=1e-5)


def test_folded_form_keeps_its_constant_columns_per_scope_and_changes_nothing() -> None:
    """bf16 on CPU past 1024 tokens takes the folded form. Inside a scope its extended q/k/v live
    in one buffer per shape whose one-hot and zero columns are written once: the output equals
    the freshly built form's bit for bit, on every reuse and with other values in between."""
    from semat.models import sam_encoder

    torch.manual_seed(0)
    hw = (30, 36)
    inputs = [[torch.randn(2, 3, hw[0] * hw[1], 8, dtype=torch.bfloat16) for _ in range(3)] for _ in range(2)]
    rel_h, rel_w = torch.randn(2 * hw[0] - 1, 8), torch.randn(2 * hw[1] - 1, 8)
    with torch.inference_mode():
        assert not sam_encoder._use_bias_mask(inputs[0][0])
        want = [sam_encoder.rel_pos_attention(*qkv, rel_h, rel_w, hw, 0.3) for qkv in inputs]
        with sam_encoder.mask_buffer_scope():
            got = [sam_encoder.rel_pos_attention(*inputs[i % 2], rel_h, rel_w, hw, 0.3) for i in range(3)]
            buffers = sam_encoder._FOLD_BUFFER.get()
            assert buffers is not None and len(buffers) == 1
            (buffer,) = buffers.values()
            assert buffer.shape == (3, 2, 3, hw[0] * hw[1], 8 + 30 + 36 + 6)  # 80: a multiple of 8
        assert sam_encoder._FOLD_BUFFER.get() is None
    for i, out in enumerate(got):
        assert torch.equal(out, want[i % 2])
    q = inputs[0][0].clone().requires_grad_(True)  # where autograd records: a fresh buffer, no reuse
    with sam_encoder.mask_buffer_scope():
        out = sam_encoder.rel_pos_attention(q, *inputs[0][1:], rel_h, rel_w, hw, 0.3)
        assert sam_encoder._FOLD_BUFFER.get() == {}
    out.float().sum().backward()
    assert q.grad is not None  # (with grad, SDPA may pick another kernel: equal to rounding)
    torch.testing.assert_close(out.detach(), want[0])


@pytest.mark.parametrize(("hw", "window"), [((8, 8), 4), ((9, 13), 4), ((5, 3), 7), ((28, 14), 14)])
def test_window_partition_equals_upstream_pad_and_partition(hw: tuple[int, int], window: int) -> None:
    """One-copy partition (padding set to a fill value) and unpartition (from per-head outputs)
    are upstream's window_partition / window_unpartition, bit for bit."""
    from semat.models import sam_encoder

    from segment_anything.modeling.image_encoder import window_partition, window_unpartition  # isort: skip

    torch.manual_seed(0)
    x, fill = torch.randn(2, *hw, 6), torch.randn(6)
    pad_h, pad_w = (-hw[0]) % window, (-hw[1]) % window
    padded = fill.expand(2, hw[0] + pad_h, hw[1] + pad_w, 6).clone()
    padded[:, :hw[0], :hw[1]] = x
    want, pad_hw = window_partition(padded, window)
    got = sam_encoder.window_partition(x, window, fill)
    assert got.is_contiguous() and torch.equal(got, want)
    heads = torch.randn(want.shape[0], 2, window * window, 3)  # [windows, heads, tokens, d]
    merged = heads.transpose(1, 2).reshape(want.shape[0], window, window, 6)
    assert torch.equal(sam_encoder.window_unpartition(heads, window, hw),
                       window_unpartition(merged, window, pad_hw, hw))


@pytest.mark.parametrize("window", [0, 4, 5, 11])
def test_block_matches_upstream_block(window: int) -> None:
    """Window blocks (with and without window padding) and global blocks equal upstream's."""
    from functools import partial

    from segment_anything.modeling.image_encoder import Block

    from semat.models.sam_encoder import SEMatBlock

    torch.manual_seed(0)
    norm = partial(torch.nn.LayerNorm, eps=1e-6)
    ref = Block(32, 2, mlp_ratio=2.0, norm_layer=norm, use_rel_pos=True, window_size=window, input_size=(8, 8))
    for p in (ref.attn.rel_pos_h, ref.attn.rel_pos_w, ref.attn.qkv.bias):
        torch.nn.init.normal_(p, std=0.5)
    ours = SEMatBlock(32, 2, mlp_ratio=2.0, norm_layer=norm, window_size=window, input_size=(8, 8))
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(2, 8, 8, 32)
    torch.testing.assert_close(ours(x), ref(x), atol=1e-5, rtol=1e-5)


# ------------------------------------------------------------------------------- predictor


def test_predict_several_boxes_matches_one_at_a_time(tiny_predictor: SEMatPredictor) -> None:
    image = _image()
    boxes = [[10, 5, 90, 100], [0, 0, 160, 120], [100, 40, 150, 110]]
    together = tiny_predictor.predict(image, boxes, batch_size=4)
    chunked = tiny_predictor.predict(image, boxes, batch_size=2)
    alone = [tiny_predictor.predict(image, [b])[0] for b in boxes]
    assert len(together) == 3
    for t, c, a, b in zip(together, chunked, alone, boxes):
        assert t.alpha.shape == (120, 160) and t.alpha.dtype == np.float32
        assert t.mask.shape == (120, 160) and t.mask.dtype == np.bool_
        np.testing.assert_array_equal(t.box, np.asarray(b, dtype=np.float64))
        np.testing.assert_allclose(t.alpha, a.alpha, atol=1e-5)
        np.testing.assert_allclose(c.alpha, a.alpha, atol=1e-5)


def test_box_touching_border_and_debug(tiny_predictor: SEMatPredictor) -> None:
    image = _image(90, 200)
    res = tiny_predictor.predict(image, np.array([[0, 0, 200, 90]]), return_debug=True)[0]
    s = tiny_predictor.img_size
    new_h, new_w = res.debug["resized_hw"]
    assert (new_h, new_w) == (int(90 * s / 200 + 0.5), s)
    assert res.debug["alpha_frame"].shape == (s, s)
    assert res.debug["matting_logits"].shape == (3, s, s)
    assert res.debug["mask_logits"].shape == (s, s)
    assert res.alpha.shape == (90, 200)
    assert 0.0 <= res.alpha.min() and res.alpha.max() <= 1.0


def test_points_with_box(tiny_predictor: SEMatPredictor) -> None:
    image = _image()
    boxes = [[10, 5, 90, 100], [20, 20, 120, 110], [30, 10, 60, 50]]
    pts = [PointPrompt([[40, 50]], [1]), None, PointPrompt([[25, 20], [50, 40]], [1, 0])]
    mixed = tiny_predictor.predict(image, boxes, points=pts)
    alone = [tiny_predictor.predict(image, [b], points=[p])[0] for b, p in zip(boxes, pts)]
    for m, a in zip(mixed, alone):
        np.testing.assert_allclose(m.alpha, a.alpha, atol=1e-5)
    plain = tiny_predictor.predict(image, [boxes[0]])[0]
    assert np.abs(plain.alpha - mixed[0].alpha).max() > 1e-6  # the click changes the prompt
    with pytest.raises(ValueError, match="one entry per box"):
        tiny_predictor.predict(image, boxes, points=pts[:2])
    with pytest.raises(ValueError, match="labels"):
        PointPrompt([[1, 2]], [3])


@pytest.mark.parametrize(("box", "message"), [
    ([700, 10, 800, 50], "outside"),
    ([-50, 10, 0, 50], "outside"),
    ([10, 10, 10, 50], "zero area"),
    ([10, 30, 50, 30], "zero area"),
    ([50, 10, 10, 50], "reversed"),
    ([10, 50, 50, 10], "reversed"),
    ([10, 10, 50], "shape"),
    ([10, float("nan"), 50, 60], "non-finite"),
])
def test_bad_boxes(tiny_predictor: SEMatPredictor, box, message: str) -> None:
    with pytest.raises(BoxError, match=message) as info:
        tiny_predictor.predict(_image(), [box])
    assert "\n" not in str(info.value)


def test_boxes_partly_outside_are_clipped_with_a_notice() -> None:
    """The one box rule (semat.validate): clip a partial overlap, refuse only no overlap."""
    notices: list[str] = []
    out = validate_boxes([[-5, 10, 50, 50], [10, 10, 50, 121]], (120, 160), notices)
    np.testing.assert_array_equal(out, [[0, 10, 50, 50], [10, 10, 50, 120]])
    assert len(notices) == 2 and all("clipped" in n for n in notices)


def test_validate_boxes_accepts_flat_box() -> None:
    assert validate_boxes([0, 0, 160, 120], (120, 160)).shape == (1, 4)


def test_bad_image_rejected(tiny_predictor: SEMatPredictor) -> None:
    with pytest.raises(ValueError, match="uint8"):
        tiny_predictor.predict(_image().astype(np.float32), [[0, 0, 10, 10]])
    with pytest.raises(ValueError, match="HxWx3"):
        tiny_predictor.predict(np.zeros((10, 10), np.uint8), [[0, 0, 5, 5]])


# ---------------------------------------------------------------------------------- loader

_LORA_TARGETS = re.compile(r"^(patch_embed\.proj|blocks\.\d+\.attn\.(qkv|proj))\.(weight|bias)$")


def released_layout(sd: dict[str, torch.Tensor], peft: str = "base_layer", frozen: bool = False,
                    seed: int = 0) -> dict[str, torch.Tensor]:
    """A model state dict in the released SEMat (SAM/HQ) layout, with non-zero LoRA pairs whose
    merge gives back ``sd`` exactly (up to float rounding)."""
    g = torch.Generator().manual_seed(seed)
    out: dict[str, torch.Tensor] = {}
    for key, value in sd.items():
        if not key.startswith("image_encoder."):
            prefix = "" if key.split(".")[0] in ("condition_layer", "matting_decoder") else "sam_model."
            out[prefix + key] = value.clone()
            continue
        rest = key[len("image_encoder."):]
        m = _LORA_TARGETS.match(rest)
        base = "sam_model.image_encoder.base_model.model."
        if not m:
            out[base + rest] = value.clone()
            continue
        layer, leaf = rest.rsplit(".", 1)
        out[f"{base}{layer}{'.base_layer' if peft == 'base_layer' else ''}.{leaf}"] = value.clone()
        if leaf == "weight":
            r = 4
            a = torch.randn((r, *value.shape[1:]), generator=g) * 0.1
            b = torch.randn((value.shape[0], r, *(1, 1)[: value.dim() - 2]), generator=g) * 0.1
            delta = (b.flatten(1).double() @ a.flatten(1).double()).reshape(value.shape)
            out[f"{base}{layer}{'.base_layer' if peft == 'base_layer' else ''}.weight"] = \
                (value.double() - delta).float()
            out[f"{base}{layer}.lora_A.default.weight"] = a
            out[f"{base}{layer}.lora_B.default.weight"] = b
    if frozen:
        for key, value in sd.items():
            if key.startswith("mask_decoder."):
                out["sam_model.frozen_" + key] = value.clone()
    return out


@pytest.mark.parametrize("variant", SAM_VARIANTS)
@pytest.mark.parametrize(("peft", "wrap", "frozen"), [("base_layer", True, True), ("old", False, False)])
def test_loader_round_trip(tmp_path, variant: str, peft: str, wrap: bool, frozen: bool) -> None:
    torch.manual_seed(1)
    source = build_semat(variant, tiny=True)
    released = released_layout(source.state_dict(), peft=peft, frozen=frozen)
    assert any(".lora_A." in k for k in released)
    path = tmp_path / "ckpt.pth"
    torch.save({"model": released} if wrap else released, path)

    # load_semat builds the full-size model; exercise the same conversion on the tiny one
    target = build_semat(variant, tiny=True)
    sd = torch.load(path, weights_only=True)
    load_semat_state_dict(target, variant, sd["model"] if wrap else sd)
    for key, value in source.state_dict().items():
        torch.testing.assert_close(target.state_dict()[key], value, atol=2e-6, rtol=0, msg=key)
    image = torch.rand(1, 3, 256, 256)
    box = torch.tensor([[20.0, 30.0, 200.0, 220.0]])
    with torch.inference_mode():
        torch.testing.assert_close(target(image, box).alpha, source(image, box).alpha, atol=1e-5, rtol=0)


@pytest.mark.parametrize("variant", SAM_VARIANTS)
def test_loader_names_missing_and_unexpected_keys(variant: str) -> None:
    model = build_semat(variant, tiny=True)
    released = released_layout(model.state_dict())
    missing = dict(released)
    del missing["sam_model.mask_decoder.iou_token.weight"]
    with pytest.raises(CheckpointError, match=r"missing 1 key\(s\): mask_decoder\.iou_token\.weight"):
        load_semat_state_dict(model, variant, missing)
    extra = dict(released)
    extra["sam_model.mask_decoder.surprise.weight"] = torch.zeros(3)
    with pytest.raises(CheckpointError, match=r"unexpected 1 key\(s\): mask_decoder\.surprise\.weight"):
        load_semat_state_dict(model, variant, extra)
    wrong = dict(released)
    wrong["condition_layer.patch_embed.proj.bias"] = torch.zeros(5)
    with pytest.raises(CheckpointError, match=r"shape mismatch: condition_layer\.patch_embed\.proj\.bias"):
        load_semat_state_dict(model, variant, wrong)


def test_load_semat_errors_are_one_line(tmp_path) -> None:
    from semat.weights.hub import WeightsUnavailable

    with pytest.raises(WeightsUnavailable):
        load_semat("sam", checkpoint=tmp_path / "nope.pth", runtime=select_runtime("cpu"))
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="not a readable PyTorch checkpoint"):
        load_semat("sam", checkpoint=bad, runtime=select_runtime("cpu"))
    with pytest.raises(ValueError, match="unknown SEMat variant"):
        load_semat("vit-h", checkpoint=bad)


def _meta_model(variant: str) -> torch.nn.Module:
    if variant == "sam2":  # its upstream Hiera constructor calls .item(); build it for real
        return build_semat(variant)
    with torch.device("meta"):
        return build_semat(variant)


@pytest.mark.parametrize("variant", [
    "sam", "hq-sam", pytest.param("sam2", marks=pytest.mark.slow)])
def test_manifest_keys_equal_loader_keys(golden_dir, variant: str) -> None:
    """Every key of the reference state dict (the golden manifest) is consumed or ignored by design,
    and every model parameter comes from it, with the right shape."""
    manifest = json.loads((golden_dir / f"semat_{variant}" / "manifest.json").read_text())
    manifest = manifest.get("state_dict", manifest)
    assert variant in VARIANTS
    sd = {k: torch.empty(s, device="meta") for k, s in manifest.items()}
    converted, ignore = convert_state_dict(variant, sd)
    model = _meta_model(variant)
    used = {k for k in converted if not k.startswith(ignore)}
    expected = model.state_dict()
    assert used == set(expected)
    for key in used:
        assert tuple(converted[key].shape) == tuple(expected[key].shape), key
    if variant != "sam2":
        assert ignore == ("frozen_mask_decoder.",)
        assert len(used) == len(manifest) - 2 * 49  # only the 49 LoRA pairs fold away


def test_non_finite_output_is_a_model_error(tiny_predictor: SEMatPredictor) -> None:
    """A damaged checkpoint must not turn into a silent all-zero alpha (issue 13 M5)."""
    import torch

    from semat.errors import ModelError

    param = next(tiny_predictor.model.parameters())
    saved = param.detach().clone()
    with torch.no_grad():
        param.fill_(float("nan"))
    try:
        with pytest.raises(ModelError, match="non-finite"):
            tiny_predictor.predict(_image(), [[10, 10, 60, 60]])
    finally:
        with torch.no_grad():
            param.copy_(saved)
