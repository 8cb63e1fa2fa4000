"""SAM / HQ-SAM mask decoders with SEMat's three matting tokens (semat-spec §4.3, §5).

:class:`MattingMaskDecoder` extends ``segment_anything``'s :class:`MaskDecoder` (its IoU token,
4 mask tokens, hypernetwork MLPs, upscaling and IoU head keep their upstream names) with

* ``hq=True``: the HQ-SAM parts (``hf_token``, ``hf_mlp``, ``compress_vit_feat``,
  ``embedding_encoder``, ``embedding_maskfeature``);
* always: 3 matting tokens sharing one MLP (``matting_hf_token``, ``matting_hf_mlp``) and their
  own high-resolution feature branch (``matting_compress_vit_feat``, ``matting_embedding_encoder``,
  ``matting_embedding_maskfeature``).

Token order in the transformer: ``[iou, mask×4, (hf), matting×3, prompt tokens...]``.
The two-way transformer is upstream's with attention through ``scaled_dot_product_attention``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from semat.models._compat import import_torchvision

import_torchvision()
from segment_anything.modeling import transformer as _sam_tr  # noqa: E402
from segment_anything.modeling.common import LayerNorm2d  # noqa: E402
from segment_anything.modeling.mask_decoder import MLP, MaskDecoder  # noqa: E402

__all__ = ["MaskDecoderOutput", "MattingMaskDecoder", "SDPAAttention", "SDPATwoWayTransformer"]


class SDPAAttention(_sam_tr.Attention):
    """Upstream two-way-transformer attention (same parameters) through the fused kernel."""

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        q = self._separate_heads(self.q_proj(q), self.num_heads)
        k = self._separate_heads(self.k_proj(k), self.num_heads)
        v = self._separate_heads(self.v_proj(v), self.num_heads)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.out_proj(self._recombine_heads(out))


class SDPATwoWayTransformer(_sam_tr.TwoWayTransformer):
    """Upstream :class:`TwoWayTransformer` whose attention layers are :class:`SDPAAttention`."""

    def __init__(self, depth: int = 2, embedding_dim: int = 256, num_heads: int = 8, mlp_dim: int = 2048,
                 attention_downsample_rate: int = 2) -> None:
        super().__init__(depth=depth, embedding_dim=embedding_dim, num_heads=num_heads, mlp_dim=mlp_dim,
                         attention_downsample_rate=attention_downsample_rate)

        def attn(rate: int) -> SDPAAttention:
            return SDPAAttention(embedding_dim, num_heads, downsample_rate=rate)

        for layer in self.layers:
            layer.self_attn = attn(1)
            layer.cross_attn_token_to_image = attn(attention_downsample_rate)
            layer.cross_attn_image_to_token = attn(attention_downsample_rate)
        self.final_attn_token_to_image = attn(attention_downsample_rate)


def _feature_branches(vit_dim: int, dim: int) -> tuple[nn.Sequential, nn.Sequential, nn.Sequential]:
    """(compress_vit_feat, embedding_encoder, embedding_maskfeature) of an HQ-style token."""
    compress_vit_feat = nn.Sequential(
        nn.ConvTranspose2d(vit_dim, dim, kernel_size=2, stride=2), LayerNorm2d(dim), nn.GELU(),
        nn.ConvTranspose2d(dim, dim // 8, kernel_size=2, stride=2))
    embedding_encoder = nn.Sequential(
        nn.ConvTranspose2d(dim, dim // 4, kernel_size=2, stride=2), LayerNorm2d(dim // 4), nn.GELU(),
        nn.ConvTranspose2d(dim // 4, dim // 8, kernel_size=2, stride=2))
    embedding_maskfeature = nn.Sequential(
        nn.Conv2d(dim // 8, dim // 4, 3, 1, 1), LayerNorm2d(dim // 4), nn.GELU(),
        nn.Conv2d(dim // 4, dim // 8, 3, 1, 1))
    return compress_vit_feat, embedding_encoder, embedding_maskfeature


def _apply_hyper(hyper: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
    """[B,T,c] hypernetwork weights × [B,c,H,W] features -> [B,T,H,W] logits."""
    b, c, h, w = features.shape
    return (hyper @ features.reshape(b, c, h * w)).view(b, -1, h, w)


@dataclass
class MaskDecoderOutput:
    """Logits at 4x the embedding size (256x256 for a 1024 input)."""

    masks_sam: torch.Tensor      # [B,1,H,W] best-IoU mask among SAM's multimask outputs 1..3
    masks_hq: torch.Tensor       # [B,1,H,W] HQ-token mask (HQ-SAM); == masks_sam for plain SAM
    masks_matting: torch.Tensor  # [B,T,H,W] matting-token logits (HQ-SAM: + masks_hq residual)
    iou_pred: torch.Tensor       # [B,4]


class MattingMaskDecoder(MaskDecoder):
    def __init__(self, *, transformer_dim: int = 256, transformer: nn.Module, vit_dim: int = 1024,
                 hq: bool = False, num_matting_tokens: int = 3) -> None:
        super().__init__(transformer_dim=transformer_dim, transformer=transformer, num_multimask_outputs=3,
                         activation=nn.GELU, iou_head_depth=3, iou_head_hidden_dim=256)
        d = transformer_dim
        self.hq = hq
        self.vit_dim = vit_dim
        self.num_matting_tokens = num_matting_tokens
        if hq:
            self.hf_token = nn.Embedding(1, d)
            self.hf_mlp = MLP(d, d, d // 8, 3)
            self.compress_vit_feat, self.embedding_encoder, self.embedding_maskfeature = \
                _feature_branches(vit_dim, d)
        self.matting_hf_token = nn.Embedding(num_matting_tokens, d)
        self.matting_hf_mlp = MLP(d, d, d // 8, 3)
        (self.matting_compress_vit_feat, self.matting_embedding_encoder,
         self.matting_embedding_maskfeature) = _feature_branches(vit_dim, d)

    def forward(self, image_embeddings: torch.Tensor,  # type: ignore[override]
                image_pe: torch.Tensor, sparse_prompt_embeddings: torch.Tensor,
                dense_prompt_embeddings: torch.Tensor, vit_features: torch.Tensor) -> MaskDecoderOutput:
        """image_embeddings ``[B,C,h,w]`` (one per prompt), image_pe ``[1,C,h,w]``, sparse ``[B,n,C]``,
        dense ``[B,C,h,w]``, vit_features: first global-block output, channels-last ``[B,h,w,V]``."""
        b = image_embeddings.shape[0]
        vit = vit_features.permute(0, 3, 1, 2)
        matting_features = self.matting_embedding_encoder(image_embeddings) + self.matting_compress_vit_feat(vit)
        hq_features = (self.embedding_encoder(image_embeddings) + self.compress_vit_feat(vit)) if self.hq else None

        token_weights = [self.iou_token.weight, self.mask_tokens.weight]
        if self.hq:
            token_weights.append(self.hf_token.weight)
        token_weights.append(self.matting_hf_token.weight)
        output_tokens = torch.cat(token_weights, dim=0).unsqueeze(0).expand(b, -1, -1)
        tokens = torch.cat((output_tokens, sparse_prompt_embeddings), dim=1)

        src = image_embeddings + dense_prompt_embeddings
        pos_src = image_pe.expand(b, -1, -1, -1)
        _, c, h, w = src.shape
        hs, src = self.transformer(src, pos_src, tokens)
        src = src.transpose(1, 2).reshape(b, c, h, w)
        upscaled_sam = self.output_upscaling(src)

        n = self.num_mask_tokens  # 4 SAM mask tokens
        sam_tokens = hs[:, 1:1 + n]
        hyper_sam = torch.stack([self.output_hypernetworks_mlps[i](sam_tokens[:, i]) for i in range(n)], dim=1)
        masks_all = _apply_hyper(hyper_sam, upscaled_sam)
        iou_pred = self.iou_prediction_head(hs[:, 0])
        best = iou_pred[:, 1:].argmax(dim=1) + 1  # multimask output: best of tokens 1..3 by IoU
        masks_sam = masks_all[torch.arange(b, device=best.device), best].unsqueeze(1)

        first_matting = 1 + n + (1 if self.hq else 0)
        matting_tokens = hs[:, first_matting:first_matting + self.num_matting_tokens]
        upscaled_matting = self.matting_embedding_maskfeature(upscaled_sam) + matting_features
        masks_matting = _apply_hyper(self.matting_hf_mlp(matting_tokens), upscaled_matting)

        if self.hq:
            assert hq_features is not None
            upscaled_hq = self.embedding_maskfeature(upscaled_sam) + hq_features
            masks_hq = _apply_hyper(self.hf_mlp(hs[:, 1 + n]).unsqueeze(1), upscaled_hq)
            masks_matting = masks_matting + masks_hq  # HQ-SAM: the HQ logits are a residual of all 3
        else:
            masks_hq = masks_sam
        return MaskDecoderOutput(masks_sam, masks_hq, masks_matting, iou_pred)
