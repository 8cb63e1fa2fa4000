"""SEMat (SAM2) mask decoder: sam2's ``MaskDecoder`` plus three matting tokens (semat-spec §6.4).

``MaskDecoderMattingToken`` subclasses :class:`sam2.modeling.sam.mask_decoder.MaskDecoder`:

* output tokens ``[obj_score_token, iou_token, mask_tokens x4, matting_mask_tokens x3]`` followed by
  the sparse prompt tokens go through sam2's two-way transformer;
* the SAM path upscales with ``output_upscaling`` and the high-res features ``feat_s1``/``feat_s0``;
  only mask token 0 (single-mask output) is returned;
* the matting path upscales the same transformer output with its own ``matting_output_upscaling``
  (same structure, separate weights, same high-res features) and uses one hypernetwork MLP per
  matting token (``matting_output_hypernetworks_mlps.{0,1,2}``); no residual to the SAM path.

The IoU head, the object-score head and the hypernetwork MLPs of mask tokens 1..3 never
influence SEMat's outputs, so they are removed
(their checkpoint keys are ignored by :func:`semat.weights.convert.convert_state_dict`). The
obj-score and IoU *tokens* stay: they are transformer inputs.
"""

from __future__ import annotations

import torch
from sam2.modeling.sam.mask_decoder import MaskDecoder
from sam2.modeling.sam2_utils import MLP, LayerNorm2d
from torch import nn

__all__ = ["MaskDecoderMattingToken"]


def _upscaling(dim: int) -> nn.Sequential:
    return nn.Sequential(
        nn.ConvTranspose2d(dim, dim // 4, kernel_size=2, stride=2), LayerNorm2d(dim // 4), nn.GELU(),
        nn.ConvTranspose2d(dim // 4, dim // 8, kernel_size=2, stride=2), nn.GELU(),
    )


class MaskDecoderMattingToken(MaskDecoder):
    """Returns ``(sam_logits [B,1,4h,4w], matting_logits [B,3,4h,4w])`` for an ``h x w`` embedding."""

    def __init__(self, *, matting_token_num: int = 3, **kwargs) -> None:
        kwargs.setdefault("use_high_res_features", True)
        kwargs.setdefault("pred_obj_scores", True)
        if not kwargs["use_high_res_features"]:
            raise ValueError("SEMat's SAM2 decoder needs the high-resolution features")
        super().__init__(**kwargs)
        dim = self.transformer_dim
        self.matting_token_num = matting_token_num
        self.matting_mask_tokens = nn.Embedding(matting_token_num, dim)
        self.matting_output_hypernetworks_mlps = nn.ModuleList(
            MLP(dim, dim, dim // 8, 3) for _ in range(matting_token_num))
        self.matting_output_upscaling = _upscaling(dim)
        # Not used by SEMat's outputs (no multimask selection, no occlusion score): only mask
        # token 0's hypernetwork is read; the IoU and object-score heads are never read.
        self.output_hypernetworks_mlps = nn.ModuleList([self.output_hypernetworks_mlps[0]])
        del self.iou_prediction_head
        if self.pred_obj_scores:
            del self.pred_obj_score_head

    @staticmethod
    def _upscale(layers: nn.Sequential, src: torch.Tensor, feat_s0: torch.Tensor,
                 feat_s1: torch.Tensor) -> torch.Tensor:
        dc1, ln1, act1, dc2, act2 = layers
        up = act1(ln1(dc1(src) + feat_s1))
        return act2(dc2(up) + feat_s0)

    def forward(self, image_embeddings: torch.Tensor, image_pe: torch.Tensor,  # type: ignore[override]
                sparse_prompt_embeddings: torch.Tensor, dense_prompt_embeddings: torch.Tensor,
                high_res_features: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """image_embeddings [B,C,h,w], image_pe [1,C,h,w], sparse [B,N,C], dense [B,C,h,w],
        high_res_features [feat_s0 [B,C/8,4h,4w], feat_s1 [B,C/4,2h,2w]]."""
        s = 1 if self.pred_obj_scores else 0
        parts = [self.iou_token.weight, self.mask_tokens.weight, self.matting_mask_tokens.weight]
        if self.pred_obj_scores:
            parts.insert(0, self.obj_score_token.weight)
        b = sparse_prompt_embeddings.shape[0]
        if image_embeddings.shape[0] != b:
            raise ValueError(f"{image_embeddings.shape[0]} image embeddings for {b} prompts")
        output_tokens = torch.cat(parts, dim=0).unsqueeze(0).expand(b, -1, -1)
        tokens = torch.cat((output_tokens, sparse_prompt_embeddings), dim=1)

        src = image_embeddings + dense_prompt_embeddings
        pos_src = image_pe.expand(b, -1, -1, -1)
        _, c, h, w = src.shape
        hs, src = self.transformer(src, pos_src, tokens)
        first = s + 1
        sam_token = hs[:, first, :]  # single-mask output token (mask token 0)
        matting_tokens = hs[:, first + self.num_mask_tokens: first + self.num_mask_tokens + self.matting_token_num]

        src = src.transpose(1, 2).reshape(b, c, h, w)
        feat_s0, feat_s1 = high_res_features
        up_sam = self._upscale(self.output_upscaling, src, feat_s0, feat_s1)
        up_matting = self._upscale(self.matting_output_upscaling, src, feat_s0, feat_s1)

        hyper_sam = self.output_hypernetworks_mlps[0](sam_token).unsqueeze(1)  # [B,1,C/8]
        hyper_matting = torch.stack(
            [mlp(matting_tokens[:, i]) for i, mlp in enumerate(self.matting_output_hypernetworks_mlps)], 1)
        _, c8, uh, uw = up_sam.shape
        sam_logits = (hyper_sam @ up_sam.reshape(b, c8, uh * uw)).reshape(b, 1, uh, uw)
        matting_logits = (hyper_matting @ up_matting.reshape(b, c8, uh * uw)).reshape(b, -1, uh, uw)
        return sam_logits, matting_logits
