"""CPU-bf16 fusions (semat.models.fusion): same function, fewer passes, nothing changes in fp32.

* ``fold_batchnorm``: conv -> eval BatchNorm equals conv' -> identity (fp32, Conv2d and
  ConvTranspose2d), and the state dict keeps its names.
* ``fuse_cpu_bf16``: the MLP's linear + GELU, conv + GELU and plain linear layers run through
  oneDNN in bf16 and stay within bf16 rounding of the unfused bf16 module; in fp32 it changes
  nothing.
"""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from semat.models import fusion

needs_onednn = pytest.mark.skipif(not torch.backends.mkldnn.is_available(), reason="torch built without oneDNN")


def _randomise_bn(model: nn.Module) -> None:
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.3)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data = torch.randn(m.num_features, generator=g)
            m.bias.data = torch.randn(m.num_features, generator=g)


def _chain() -> nn.Sequential:
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 8, 5, 1, 2), nn.BatchNorm2d(8), nn.GELU(),
        nn.ConvTranspose2d(8, 6, 2, 2), nn.BatchNorm2d(6), nn.GELU(),
        nn.Conv2d(6, 4, 3, 1, 1, bias=False), nn.BatchNorm2d(4),
    ).eval()
    _randomise_bn(model)
    return model


def test_fold_batchnorm_is_exact_in_fp32_and_keeps_the_names() -> None:
    model = _chain()
    x = torch.randn(2, 3, 12, 10)
    with torch.inference_mode():
        want = model(x)
    keys = set(model.state_dict())
    folded = copy.deepcopy(model)
    assert fusion.fold_batchnorm(folded) == 3
    assert set(folded.state_dict()) - keys == {"6.bias"}  # a bias-free conv gains the folded bias
    with torch.inference_mode():
        got = folded(x)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


def test_fold_batchnorm_refuses_training_mode() -> None:
    with pytest.raises(ValueError, match="eval"):
        fusion.fold_batchnorm(_chain().train())


def test_fp32_is_left_alone() -> None:
    from semat.models.build import build_semat

    model = build_semat("sam2", tiny=True).eval()
    classes = [type(m) for m in model.modules()]
    assert fusion.fuse_cpu_bf16(model) == {"conv_gelu": 0, "conv_add_gelu": 0, "mlp_gelu": 0, "linear": 0}
    assert [type(m) for m in model.modules()] == classes


def test_gelu_in_place_is_bit_identical_and_only_after_convs() -> None:
    model = _chain()
    fusion.fold_batchnorm(model)
    x = torch.randn(2, 3, 12, 10)
    with torch.inference_mode():
        want = model(x)
    head = nn.Sequential(nn.GELU(), nn.Conv2d(3, 3, 1))  # a GELU on the Sequential's input stays
    assert fusion.gelu_in_place(model) == 2 and fusion.gelu_in_place(head) == 0
    assert type(head[0]) is nn.GELU
    with torch.inference_mode():
        assert torch.equal(model(x), want)


@pytest.mark.parametrize("variant", ["sam", "sam2"])
def test_gelu_in_place_in_transformer_mlps(variant: str) -> None:
    from semat.models.build import build_semat

    torch.manual_seed(0)
    model = build_semat(variant, tiny=True).eval()
    mlps = [m for m in model.modules() if fusion._fused_class(m) is not None]
    x = torch.randn(3, 7, mlps[0].lin1.in_features if variant == "sam" else mlps[0].layers[0].in_features)
    with torch.inference_mode():
        want = mlps[0](x)
        assert fusion.gelu_in_place(model) >= len(mlps) > 0
        assert all(type(m.act) is fusion._InPlaceGELU for m in mlps)
        assert torch.equal(mlps[0](x), want)


def test_fp32_preparation_folds_and_keeps_the_output() -> None:
    from semat.inference.predictor import SEMatPredictor
    from semat.models.build import build_semat
    from semat.runtime import select_runtime
    from semat.weights.convert import prepare_model

    torch.manual_seed(0)
    model = build_semat("hq-sam", tiny=True).eval()
    _randomise_bn(model)
    runtime = select_runtime("cpu", "float32")
    image = torch.Generator().manual_seed(0)
    img = (torch.rand(64, 80, 3, generator=image) * 255).to(torch.uint8).numpy()
    want = SEMatPredictor(copy.deepcopy(model), runtime, "hq-sam").predict(img, [[5, 6, 50, 40]])[0].alpha
    prepared = prepare_model(model, runtime)
    assert any(isinstance(m, fusion._FoldedBatchNorm) for m in prepared.modules())
    assert sum(isinstance(m, fusion._InPlaceGELU) for m in prepared.modules()) > len(prepared.image_encoder.blocks)
    got = SEMatPredictor(prepared, runtime, "hq-sam").predict(img, [[5, 6, 50, 40]])[0].alpha
    diff = abs(got.astype(float) - want.astype(float))
    assert 0 < want.std() and diff.max() <= 1e-5  # the golden fp32 alpha moves by ~1e-6 (tolerance 1e-4)


@needs_onednn
def test_conv_gelu_and_linear_fusions_match_unfused_bf16() -> None:
    from semat.models.precision import cast_matmul_weights

    model = nn.Sequential(_chain(), nn.Flatten(2), nn.Linear(20 * 24, 16), nn.GELU(), nn.Linear(16, 5)).eval()
    x = torch.randn(2, 3, 10, 12)
    ref = copy.deepcopy(model)
    with torch.inference_mode():
        want = model(x)
    fusion.fold_batchnorm(model)
    cast_matmul_weights(model, torch.bfloat16)
    cast_matmul_weights(ref, torch.bfloat16)
    counts = fusion.fuse_cpu_bf16(model)
    # The first conv (-> folded BN -> GELU) fuses; the ConvTranspose2d and the last conv (no GELU)
    # do not; a Sequential's Linear -> GELU is not an MLP module, so both linears are plain ones.
    assert counts == {"conv_gelu": 1, "conv_add_gelu": 0, "mlp_gelu": 0, "linear": 2}
    assert isinstance(model[0][0], fusion._ConvGELU) and isinstance(model[0][2], fusion._AppliedGELU)
    with torch.inference_mode(), torch.autocast("cpu", torch.bfloat16):
        got, unfused = model(x).float(), ref(x).float()
    scale = float(want.abs().max())
    assert float((got - want).abs().max()) <= 0.05 * scale
    assert float((got - want).abs().max()) <= 2 * float((unfused - want).abs().max()) + 1e-3 * scale


@needs_onednn
@pytest.mark.parametrize("variant, mlps", [("sam", "MLPBlock"), ("sam2", "MLP")])
def test_transformer_mlps_fuse_their_gelu(variant: str, mlps: str) -> None:
    from semat.inference.predictor import SEMatPredictor
    from semat.models.build import build_semat
    from semat.runtime import select_runtime
    from semat.weights.convert import prepare_model

    torch.manual_seed(0)
    model = build_semat(variant, tiny=True).eval()
    keys = list(model.state_dict())
    gelu_mlps = [m for m in model.modules() if type(m).__name__ == mlps and fusion._fused_class(m) is not None]
    assert gelu_mlps  # the encoder's MLPs (the mask decoder's use ReLU and stay as they are)
    bf16 = select_runtime("cpu", "bfloat16")
    fused = prepare_model(copy.deepcopy(model), bf16)
    assert [k for k in fused.state_dict() if k in keys] == keys
    swapped = [m for m in fused.modules() if isinstance(m, (fusion._FusedSamMLP, fusion._FusedSam2MLP))]
    assert len(swapped) == len(gelu_mlps)
    import numpy as np

    image = np.random.default_rng(0).integers(0, 256, (120, 160, 3), dtype=np.uint8)
    box = [10, 20, 140, 110]
    fp32 = SEMatPredictor(model, select_runtime("cpu", "float32"), variant).predict(image, [box])[0].alpha
    got = SEMatPredictor(fused, bf16, variant).predict(image, [box])[0].alpha
    assert float(np.abs(got - fp32).max()) < 0.05


@needs_onednn
def test_linear_gelu_equals_gelu_of_linear() -> None:
    torch.manual_seed(0)
    lin = nn.Linear(64, 96).to(torch.bfloat16)
    x = torch.randn(3, 7, 64)
    with torch.inference_mode():
        got = fusion.linear_gelu(x, lin).float()
        want = torch.nn.functional.gelu(torch.nn.functional.linear(x, lin.weight.float(), lin.bias.float()))
    assert got.shape == (3, 7, 96) and got.dtype == torch.float32
    torch.testing.assert_close(got, want, atol=0.05, rtol=0.02)


@needs_onednn
def test_residual_blocks_add_in_the_conv_epilogue() -> None:
    """The detail decoder's residual blocks (gelu(basic(x) + res(x))): prepared for bf16, the sum
    is the res conv's epilogue; within bf16 rounding of the unfused bf16 blocks, and an unmarked
    conv (an unprepared model) keeps the plain ops bit for bit."""
    from semat.models.detail_decoder import _DownBlock, _UpBlock
    from semat.models.precision import cast_matmul_weights, reduce_precision

    torch.manual_seed(0)
    blocks = nn.ModuleList([_DownBlock(6, 8), _UpBlock(8, 4)]).eval()
    _randomise_bn(blocks)
    x = torch.randn(1, 6, 24, 20).contiguous(memory_format=torch.channels_last)
    ref = copy.deepcopy(blocks)
    fold_only = copy.deepcopy(blocks)

    def run(m: nn.ModuleList) -> torch.Tensor:
        with torch.inference_mode(), torch.autocast("cpu", torch.bfloat16):
            d = m[0](x)
            return m[1](d, d).float()

    with torch.inference_mode():
        want = blocks[1](blocks[0](x), blocks[0](x))
    fusion.fold_batchnorm(fold_only)
    cast_matmul_weights(fold_only, torch.bfloat16)
    cast_matmul_weights(ref, torch.bfloat16)
    plain = run(fold_only)
    reduce_precision(blocks, torch.bfloat16)
    assert [type(b.res_layer) for b in blocks] == [fusion._ConvAddGELU] * 2
    got, unfused = run(blocks), run(ref)
    scale = float(want.abs().max())
    assert float((got - want).abs().max()) <= 2 * float((unfused - want).abs().max()) + 1e-3 * scale
    assert float((got - plain).abs().max()) <= 0.02 * scale
    # Called directly: the marked conv fuses, the plain one is gelu(other + conv(x)) exactly.
    conv = blocks[0].res_layer
    xb = x.to(torch.bfloat16)
    with torch.inference_mode():
        other = torch.randn(1, 8, 12, 10, dtype=torch.bfloat16).contiguous(memory_format=torch.channels_last)
        expect = torch.nn.functional.gelu(other + torch.nn.functional.conv2d(xb, conv.weight, conv.bias, 2, 2))
        plain_conv = nn.Conv2d(6, 8, 5, 2, 2).to(torch.bfloat16)
        plain_conv.load_state_dict(conv.state_dict())
        assert torch.equal(fusion.conv_add_gelu(plain_conv, xb, other.clone()), expect)
        fused = fusion.conv_add_gelu(conv, xb, other.clone())
    assert float((fused.float() - expect.float()).abs().max()) <= 0.02 * float(expect.abs().max())
