"""SEMat's matting detail decoder: a small U-Net that turns image + matting logits into alpha.

Shared by the three SEMat variants (semat-spec §7). Two forms:

* SAM / HQ-SAM (``sam2_multi_scale=False``): four channels-last ViT features are projected
  (``vit_feat_proj.{0..3}``, 1x1), concatenated and aggregated (``vit_feat_aggregation``, 3x3)
  into the bottleneck next to the deepest down-block output (``mid_layer``, 1x1).
* SAM2 (``sam2_multi_scale=True``): the two high-resolution SAM2 features join before down
  blocks 2 and 3 (``mid_layer.0`` / ``mid_layer.1``), the image embedding joins at the
  bottleneck (``mid_layer.2`` then ``mid_layer.3``). ``vit_feat_aggregation`` still exists,
  unused, because the released checkpoint carries it.

Parameter names equal the released checkpoint's ``matting_decoder.*`` keys. Normalisation is
``BatchNorm2d`` (detectron2's NaiveSyncBatchNorm is exactly that in eval mode), so the module
must be in ``eval()`` for inference.

Layout: every 2-D convolution runs on channels-last (NHWC) tensors, which oneDNN executes
noticeably faster on CPU for these shapes (large spatial extent, few channels) and which avoids
reorders between consecutive convolutions. The maths is unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from semat.models.fusion import conv_add_gelu
from semat.models.precision import fp32_island

__all__ = ["MattingDetailDecoder"]

_CL = torch.channels_last


def _conv_bn_gelu(cin: int, cout: int, k: int, stride: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, k, stride, k // 2), nn.BatchNorm2d(cout), nn.GELU()]


class _DownBlock(nn.Module):
    """Stride-2 residual block: GELU(main(x) + res_layer(x)), main = two conv-BN pairs twice."""

    def __init__(self, cin: int, cout: int, k: int = 5) -> None:
        super().__init__()
        self.basic_layer = nn.Sequential(
            nn.Sequential(*_conv_bn_gelu(cin, cout, k, 2), nn.Conv2d(cout, cout, k, 1, k // 2),
                          nn.BatchNorm2d(cout)),
            nn.GELU(),
            nn.Sequential(*_conv_bn_gelu(cout, cout, k), nn.Conv2d(cout, cout, k, 1, k // 2),
                          nn.BatchNorm2d(cout)),
        )
        self.res_layer = nn.Conv2d(cin, cout, k, 2, k // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return conv_add_gelu(self.res_layer, x, self.basic_layer(x))


class _UpBlock(nn.Module):
    """x2 residual block on (x + skip): main starts with a 2x2 transposed conv; the identity is
    a bilinear x2 upsample followed by a 3x3 conv (``res_layer``)."""

    def __init__(self, cin: int, cout: int, k: int = 3) -> None:
        super().__init__()
        self.basic_layer = nn.Sequential(
            nn.Sequential(nn.ConvTranspose2d(cin, cout, 2, 2), nn.BatchNorm2d(cout), nn.GELU(),
                          nn.Conv2d(cout, cout, k, 1, k // 2), nn.BatchNorm2d(cout)),
            nn.GELU(),
            nn.Sequential(*_conv_bn_gelu(cout, cout, k), nn.Conv2d(cout, cout, k, 1, k // 2),
                          nn.BatchNorm2d(cout)),
        )
        self.res_layer = nn.Conv2d(cin, cout, k, 1, k // 2)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = x + skip
        out = self.basic_layer(x)
        identity = F.interpolate(x, size=out.shape[-2:], mode="bilinear", align_corners=False)
        return conv_add_gelu(self.res_layer, identity.contiguous(memory_format=_CL), out)


class MattingDetailDecoder(nn.Module):
    """Alpha matte from the normalised image, the 3 matting logits and encoder features.

    Args:
        sam2_multi_scale: SAM2 form (high-res features + image embedding) instead of 4 ViT features.
        vit_dim: channels of each ViT feature (SAM/HQ: 1024). In the SAM2 form this only sizes the
            dead ``vit_feat_aggregation`` (1024 in the released checkpoint).
        num_vit_feats: number of ViT features (4: the global-attention block outputs).
        base: channel unit; the released model uses 32 (down blocks 32/64/128/256, big-kernel
            16/32, head 16). ``tiny=True`` uses 8.
        embed_dim: SAM2 image-embedding channels (256).
        high_res_dims: SAM2 high-res feature channels (32 at S/4, 64 at S/8).
        norm_mask_logits: the matting logits are divided by this before concatenation.
        tiny: small channel plan for fast tests (sets ``base=8`` unless given).
    """

    def __init__(self, sam2_multi_scale: bool = False, *, vit_dim: int = 1024, num_vit_feats: int = 4,
                 base: int | None = None, embed_dim: int = 256, high_res_dims: Sequence[int] = (32, 64),
                 norm_mask_logits: float = 6.5, tiny: bool = False) -> None:
        super().__init__()
        b = base if base is not None else (8 if tiny else 32)
        if b % 2:
            raise ValueError(f"base must be even, got {b}")
        self.sam2_multi_scale = sam2_multi_scale
        self.norm_mask_logits = float(norm_mask_logits)
        self.num_vit_feats = num_vit_feats
        down = (b, 2 * b, 4 * b, 8 * b)
        img_in = 3 + 3  # normalised RGB + 3 matting logits

        self.big_kernel_process = nn.Sequential(
            nn.Conv2d(img_in, b // 2, 13, 1, 6), nn.BatchNorm2d(b // 2), nn.GELU(),
            nn.Conv2d(b // 2, b, 13, 1, 6), nn.BatchNorm2d(b), nn.GELU(),
        )
        proj = vit_dim // num_vit_feats
        if not sam2_multi_scale:
            self.vit_feat_proj = nn.ModuleDict(
                {str(i): nn.Conv2d(vit_dim, proj, 1) for i in range(num_vit_feats)})
        # Unused in the SAM2 form, but present in its checkpoint.
        self.vit_feat_aggregation = nn.Sequential(*_conv_bn_gelu(proj * num_vit_feats, down[3], 3))

        if sam2_multi_scale:
            h0, h1 = (int(c) for c in high_res_dims)
            ins = (b, down[0], down[1] + h0, down[2] + h1)
        else:
            ins = (b, down[0], down[1], down[2])
        self.down_blks = nn.ModuleList(_DownBlock(i, o, 5) for i, o in zip(ins, down))

        if sam2_multi_scale:
            self.mid_layer = nn.ModuleList([
                nn.Sequential(*_conv_bn_gelu(h0, h0, 1)),
                nn.Sequential(*_conv_bn_gelu(h1, h1, 1)),
                nn.Sequential(*_conv_bn_gelu(embed_dim, down[3], 1)),
                nn.Sequential(*_conv_bn_gelu(2 * down[3], down[3], 3)),
            ])
        else:
            self.mid_layer = nn.Sequential(*_conv_bn_gelu(2 * down[3], down[3], 1))

        up = ((down[3], down[2]), (down[2], down[1]), (down[1], down[0]), (down[0], b // 2))
        self.up_blks = nn.ModuleList(_UpBlock(i, o, 3) for i, o in up)
        self.matting_head = nn.Conv2d(b // 2, 1, 3, 1, 1)
        # Reduced precision: the head (a 3x3 conv to one channel, 0.3 GFLOP at 1024²) and the
        # sigmoid run in fp32 from the last features, so the alpha is not rounded to bf16 before
        # the sigmoid (see semat.models.precision).
        self.matting_head.keep_fp32 = True

    def _bottleneck_sam(self, d3: torch.Tensor, feats: Sequence[torch.Tensor]) -> torch.Tensor:
        if len(feats) < self.num_vit_feats:
            raise ValueError(f"expected {self.num_vit_feats} ViT features, got {len(feats)}")
        projected = []
        for i in range(self.num_vit_feats):
            f = feats[i]  # [B,h,w,C] channels-last; a 1x1 conv is a linear map over C
            conv = self.vit_feat_proj[str(i)]
            y = F.linear(f, conv.weight.flatten(1), conv.bias)
            projected.append(y.permute(0, 3, 1, 2))
        agg = self.vit_feat_aggregation(torch.cat(projected, 1).contiguous(memory_format=_CL))
        return self.mid_layer(torch.cat((d3, agg), 1))

    def forward(self, images: torch.Tensor, hq_features: torch.Tensor,
                vit_intern_feat: Sequence[torch.Tensor] | Mapping[str, object]) -> torch.Tensor:
        """images [B,3,S,S] normalised; hq_features [B,3,S,S] matting logits; returns alpha [B,1,S,S].

        ``vit_intern_feat``: SAM/HQ form, a list of channels-last ``[B,S/16,S/16,C]``; SAM2 form, a
        dict ``{'image_embed': [B,256,S/16,S/16], 'high_res_feats': [[B,32,S/4,S/4], [B,64,S/8,S/8]]}``.
        """
        x = torch.cat((images, hq_features / self.norm_mask_logits), 1).contiguous(memory_format=_CL)
        x = self.big_kernel_process(x)
        details = []
        if self.sam2_multi_scale:
            if not isinstance(vit_intern_feat, Mapping):
                raise TypeError("the SAM2 detail decoder expects a dict with 'image_embed' and 'high_res_feats'")
            high_res = vit_intern_feat["high_res_feats"]
            for i, blk in enumerate(self.down_blks):
                if i in (2, 3):
                    extra = self.mid_layer[i - 2](high_res[i - 2].contiguous(memory_format=_CL))
                    x = torch.cat((x, extra), 1)
                x = blk(x)
                details.append(x)
            emb = self.mid_layer[2](vit_intern_feat["image_embed"].contiguous(memory_format=_CL))
            out = self.mid_layer[3](torch.cat((x, emb), 1))
        else:
            for blk in self.down_blks:
                x = blk(x)
                details.append(x)
            out = self._bottleneck_sam(x, vit_intern_feat)  # type: ignore[arg-type]
        for i, blk in enumerate(self.up_blks):
            out = blk(out, details[-i - 1])
        with fp32_island(out):
            alpha = torch.sigmoid(self.matting_head(out.to(self.matting_head.weight.dtype)))
        return alpha.contiguous()
