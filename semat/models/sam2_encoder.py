"""SEMat (SAM2) image encoder: the SAM2 Hiera trunk with SEMat's box-mask patch embedding.

Built on the ``sam2`` package (1.1.0) modules. ``HieraBBoxMask`` subclasses
:class:`sam2.modeling.backbones.hieradet.Hiera` and adds one 4-channel patch embedding
(``bbox_mask_patch_embed``: Conv 4->C, k7 s4 p3) over ``concat(normalised image, box mask)``
(:func:`semat.models.frame.box_mask`),
added to the ordinary patch embedding before the position embedding (semat-spec §6.1). The box
therefore enters the backbone once, and features cannot be reused across boxes.

``FpnNeckNoPos`` is sam2's ``FpnNeck`` without the sine position encodings: SEMat's image path
never reads them (they only feed SAM2's memory attention), so skipping them saves a
[B,256,S/4,S/4] tensor per forward without touching any output.

Differences between the sam2 1.1.0 classes and the SAM 2.0 copy in SEMat (semat-spec §12) that
could matter here were checked: Hiera blocks, the FPN neck, the prompt encoder and the mask
decoder base compute the same functions (1.1.0 only adds a CUDA-only position-encoding cache
warm-up, ``torch.where`` instead of in-place label masking, and an optional ``weights_path``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from sam2.modeling.backbones.hieradet import Hiera
from sam2.modeling.backbones.image_encoder import FpnNeck
from sam2.modeling.backbones.utils import PatchEmbed

__all__ = ["FpnNeckNoPos", "HieraBBoxMask"]


class HieraBBoxMask(Hiera):
    """Hiera trunk whose forward takes ``(images, box_mask)``; ``box_mask=None`` skips the box path."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.bbox_mask_patch_embed = PatchEmbed(in_chans=4, embed_dim=self.patch_embed.proj.out_channels)
        self._pos_cache: tuple[tuple, torch.Tensor] | None = None

    def _get_pos_embed(self, hw: tuple[int, int]) -> torch.Tensor:
        """Upstream's position embedding (bicubic resize of ``pos_embed`` plus the tiled window
        embedding), cached under inference mode: it depends only on the weights and the size,
        and its bicubic resize of 144 channels to 256x256 is ~0.2 s per forward on 2 CPU cores."""
        if not torch.is_inference_mode_enabled():
            return super()._get_pos_embed(hw)
        params = (self.pos_embed, self.pos_embed_window)
        key = (tuple(hw), *((p.data_ptr(), p._version, p.dtype, p.device) for p in params))
        if self._pos_cache is None or self._pos_cache[0] != key:
            # Row-major like the tokens (upstream returns a permuted view, which made the add
            # below walk it across the grain on every forward).
            self._pos_cache = (key, super()._get_pos_embed(hw).contiguous())
        return self._pos_cache[1]

    def forward(self, x: torch.Tensor | Sequence[torch.Tensor | None],  # type: ignore[override]
                box_mask: torch.Tensor | None = None) -> list[torch.Tensor]:
        # sam2's ImageEncoder passes one positional "sample": accept (images, box_mask) pairs too.
        if isinstance(x, (tuple, list)):
            x, box_mask = x
        assert isinstance(x, torch.Tensor)
        tokens = self.patch_embed(x).contiguous()  # [B,H,W,C] row-major (a permuted conv output
        # would keep the residual stream strided through every block: see SEMatImageEncoder)
        if box_mask is not None:
            cond = torch.cat((x, box_mask.to(x.dtype)), dim=1)
            tokens = tokens + self.bbox_mask_patch_embed(cond)
        tokens = tokens + self._get_pos_embed(tokens.shape[1:3])

        outputs = []
        last = self.stage_ends[-1]
        for i, blk in enumerate(self.blocks):
            tokens = blk(tokens)
            if i == last or (i in self.stage_ends and self.return_interm_layers):
                outputs.append(tokens.permute(0, 3, 1, 2))
        return outputs


class FpnNeckNoPos(FpnNeck):
    """sam2 ``FpnNeck`` that returns ``None`` position encodings (unused on SEMat's path)."""

    def forward(self, xs: list[torch.Tensor]):  # type: ignore[override]
        n = len(self.convs) - 1
        if len(xs) != n + 1:
            raise ValueError(f"expected {n + 1} trunk features, got {len(xs)}")
        out: list[torch.Tensor | None] = [None] * (n + 1)
        prev = None
        for i in range(n, -1, -1):
            lateral = self.convs[n - i](xs[i])
            if i in self.fpn_top_down_levels and prev is not None:
                top_down = F.interpolate(
                    prev.to(dtype=torch.float32), scale_factor=2.0, mode=self.fpn_interp_model,
                    align_corners=None if self.fpn_interp_model == "nearest" else False, antialias=False)
                prev = lateral + top_down
                if self.fuse_type == "avg":
                    prev = prev / 2
            else:
                prev = lateral
            out[i] = prev
        return out, [None] * (n + 1)
