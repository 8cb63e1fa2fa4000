"""SAM's prompt encoder (semat-spec §4.2), unchanged in maths, safe for reduced-precision weights.

Upstream builds the random-Fourier features in float32 and starts the sparse embedding from a
float32 tensor; with bfloat16/float16 weights that mixes dtypes. Here the Fourier features are
always computed in float32 (they are cheap and precision-sensitive) and the embeddings come back
in the dtype of the module's weights.
"""

from __future__ import annotations

import numpy as np
import torch

from semat.models._compat import import_torchvision

import_torchvision()
from segment_anything.modeling.prompt_encoder import (  # noqa: E402
    PositionEmbeddingRandom,
    PromptEncoder,
)

__all__ = ["Float32PositionEmbedding", "SEMatPromptEncoder"]


class Float32PositionEmbedding(PositionEmbeddingRandom):
    def _pe_encoding(self, coords: torch.Tensor) -> torch.Tensor:
        coords = 2 * coords.float() - 1
        coords = coords @ self.positional_encoding_gaussian_matrix.float()
        coords = 2 * np.pi * coords
        return torch.cat([torch.sin(coords), torch.cos(coords)], dim=-1)


class SEMatPromptEncoder(PromptEncoder):
    """Upstream prompt encoder (points: label 1 positive, 0 negative, -1 "not a point")."""

    def __init__(self, embed_dim: int = 256, image_embedding_size: tuple[int, int] = (64, 64),
                 input_image_size: tuple[int, int] = (1024, 1024), mask_in_chans: int = 16) -> None:
        super().__init__(embed_dim=embed_dim, image_embedding_size=image_embedding_size,
                         input_image_size=input_image_size, mask_in_chans=mask_in_chans)
        self.pe_layer = Float32PositionEmbedding(embed_dim // 2)

    def get_dense_pe(self) -> torch.Tensor:
        return super().get_dense_pe().to(self.no_mask_embed.weight.dtype)

    def forward(self, points: tuple[torch.Tensor, torch.Tensor] | None, boxes: torch.Tensor | None,
                masks: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        sparse, dense = super().forward(points, boxes, masks)
        dtype = self.no_mask_embed.weight.dtype
        return sparse.to(dtype), dense.to(dtype)
