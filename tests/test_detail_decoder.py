"""MattingDetailDecoder: checkpoint key/shape equality and tiny forward shapes."""

from __future__ import annotations

import json

import pytest
import torch

from semat.models.detail_decoder import MattingDetailDecoder

PREFIX = "matting_decoder."


def _manifest_entries(golden_dir, model: str) -> dict[str, tuple[int, ...]]:
    data = json.loads((golden_dir / model / "manifest.json").read_text())
    data = data.get("state_dict", data)
    return {k[len(PREFIX):]: tuple(v["shape"] if isinstance(v, dict) else v)
            for k, v in data.items() if k.startswith(PREFIX)}


@pytest.mark.parametrize(("model", "sam2"), [("semat_sam", False), ("semat_hq-sam", False),
                                             ("semat_sam2", True)])
def test_keys_and_shapes_match_manifest(golden_dir, model, sam2):
    expected = _manifest_entries(golden_dir, model)
    assert expected, f"no {PREFIX}* keys in {model}/manifest.json"
    got = {k: tuple(v.shape) for k, v in MattingDetailDecoder(sam2_multi_scale=sam2).state_dict().items()}
    assert sorted(got) == sorted(expected)
    assert got == expected


def test_full_size_parameter_count():
    # semat-spec §10: 14,639,096 entries in the SAM2 matting decoder state dict (incl. BN buffers)
    n = sum(v.numel() for v in MattingDetailDecoder(sam2_multi_scale=True).state_dict().values())
    assert n == 14_639_096


@torch.inference_mode()
@pytest.mark.parametrize("size", [64, 128])
def test_tiny_forward_sam_form(size):
    torch.manual_seed(0)
    dec = MattingDetailDecoder(tiny=True, vit_dim=32).eval()
    b, g = 2, size // 16
    feats = [torch.randn(b, g, g, 32) for _ in range(4)]
    alpha = dec(torch.randn(b, 3, size, size), torch.randn(b, 3, size, size), feats)
    assert alpha.shape == (b, 1, size, size)
    assert alpha.is_contiguous()
    assert float(alpha.min()) >= 0.0 and float(alpha.max()) <= 1.0


@torch.inference_mode()
def test_tiny_forward_sam2_form():
    torch.manual_seed(0)
    s, b = 128, 1
    dec = MattingDetailDecoder(sam2_multi_scale=True, tiny=True, vit_dim=32, embed_dim=16,
                               high_res_dims=(4, 8)).eval()
    feats = {"image_embed": torch.randn(b, 16, s // 16, s // 16),
             "high_res_feats": [torch.randn(b, 4, s // 4, s // 4), torch.randn(b, 8, s // 8, s // 8)]}
    alpha = dec(torch.randn(b, 3, s, s), torch.randn(b, 3, s, s), feats)
    assert alpha.shape == (b, 1, s, s)
    with pytest.raises(TypeError):
        dec(torch.randn(b, 3, s, s), torch.randn(b, 3, s, s), [feats["image_embed"]])


@torch.inference_mode()
def test_memory_format_does_not_change_the_result():
    """Channels-last inside the decoder is a layout choice only: NCHW inputs give the same alpha."""
    torch.manual_seed(1)
    dec = MattingDetailDecoder(tiny=True, vit_dim=32).eval()
    s = 64
    img, logits = torch.randn(1, 3, s, s), torch.randn(1, 3, s, s) * 5
    feats = [torch.randn(1, s // 16, s // 16, 32) for _ in range(4)]
    a = dec(img, logits, feats)
    b = dec(img.contiguous(memory_format=torch.channels_last), logits, feats)
    torch.testing.assert_close(a, b, atol=1e-6, rtol=0)
