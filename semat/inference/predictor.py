"""SEMat predictor: RGB image + boxes (+ points) in original pixels -> alpha mattes at original size.

Pre- and post-processing follow the reference demo exactly (semat-spec §1, golden README):

* ``scale = S / max(H, W)``; ``cv2.resize`` INTER_LINEAR on the uint8 image to
  ``int(side*scale + 0.5)``; zero padding at the bottom/right to ``S x S``; ``/255``
  (normalisation happens inside the model, after padding);
* box coordinate ``int(v*scale + 0.5)`` clipped to ``[0, S-1]``; point coordinates ``v*scale``
  (as SAM's ``ResizeLongestSide``);
* alpha cropped to ``[:new_H, :new_W]`` and resized back to ``(W, H)`` with ``cv2.resize``
  INTER_LINEAR (the demo stops at the resized size; this is the documented clean-demo step).

Every box needs its own encoder pass (the box is injected into the ViT), so boxes run as one
batch (in ``batch_size`` chunks), grouped by their number of points.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch import nn

from semat.errors import BoxError, InputError, PointError
from semat.models.outputs import SEMatOutput
from semat.runtime import Runtime, select_runtime
from semat.validate import check_boxes, check_image
from semat.weights.integrity import check_finite_output

__all__ = ["BoxError", "ObjectMatte", "PointPrompt", "SEMatPredictor", "preprocess_image", "validate_boxes"]


@dataclass
class PointPrompt:
    """Clicks for one object, in original pixels: coords ``[K,2]`` (x, y), labels ``[K]`` 1 / 0."""

    coords: np.ndarray
    labels: np.ndarray

    def __post_init__(self) -> None:
        self.coords = np.asarray(self.coords, dtype=np.float64).reshape(-1, 2)
        self.labels = np.asarray(self.labels, dtype=np.int64).reshape(-1)
        if len(self.coords) != len(self.labels):
            raise PointError(f"{len(self.coords)} point(s) but {len(self.labels)} label(s)")
        if not np.isfinite(self.coords).all():
            raise PointError("point coordinates must be finite numbers")
        if not np.isin(self.labels, (0, 1)).all():
            raise PointError("point labels must be 1 (foreground) or 0 (background)")


@dataclass
class ObjectMatte:
    box: np.ndarray           # [4] as given, original pixels
    alpha: np.ndarray         # HxW float32 in [0,1], original size
    mask: np.ndarray          # HxW bool, segmentation mask logits > 0, original size
    debug: dict[str, Any] | None = field(default=None, repr=False)


def validate_boxes(boxes: Any, image_hw: tuple[int, int], notices: list[str] | None = None) -> np.ndarray:
    """The contract's box rule (:func:`semat.validate.check_boxes`): clipped to the image, with no
    count limit or merging of duplicates here (one result per box given; the pipeline applies
    the product's limits)."""
    return check_boxes(boxes, image_hw, max_boxes=None, notices=notices, dedupe=False)


def resized_hw(h: int, w: int, size: int) -> tuple[int, int, float]:
    scale = size / max(h, w)
    return int(h * scale + 0.5), int(w * scale + 0.5), scale


def preprocess_image(image: np.ndarray, size: int) -> tuple[torch.Tensor, tuple[int, int], float]:
    """uint8 HxWx3 RGB -> ``[1,3,S,S]`` float32 in [0,1], zero-padded; plus (new_H, new_W), scale."""
    h, w = image.shape[:2]
    new_h, new_w, scale = resized_hw(h, w, size)
    resized = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    padded = np.zeros((size, size, 3), dtype=np.uint8)
    padded[:new_h, :new_w] = resized
    tensor = torch.from_numpy(padded).permute(2, 0, 1).float().div_(255.0)
    return tensor.unsqueeze(0), (new_h, new_w), scale


class SEMatPredictor:
    """Runs a SEMat model (any variant) on numpy images with box / point prompts."""

    def __init__(self, model: nn.Module, runtime: Runtime, variant: str = "",
                 checkpoint_path: Path | None = None) -> None:
        self.model = model.eval()
        self.runtime = runtime
        self.variant = variant
        self.checkpoint_path = Path(checkpoint_path) if checkpoint_path is not None else None
        self._sha256: str | None = None

    @classmethod
    def from_pretrained(cls, variant: str = "hq-sam", checkpoint: str | Path | None = None,
                        device: str = "auto", dtype: str | torch.dtype | None = None,
                        progress=None) -> SEMatPredictor:
        from semat.weights.convert import load_semat

        runtime = select_runtime(device, dtype)
        loaded = load_semat(variant, checkpoint=checkpoint, runtime=runtime, progress=progress)
        return cls(loaded.model, loaded.runtime, variant=loaded.variant, checkpoint_path=loaded.checkpoint_path)

    @classmethod
    def tiny(cls, variant: str = "sam", seed: int = 0, device: str = "cpu") -> SEMatPredictor:
        """A random-weight tiny model (tests, ``SEMAT_TEST_MODELS=tiny``); never a real matte."""
        from semat.models.build import build_semat
        from semat.weights.convert import prepare_model

        runtime = select_runtime(device, "float32")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = build_semat(variant, tiny=True)
        return cls(prepare_model(model, runtime), runtime, variant=variant)

    @property
    def img_size(self) -> int:
        return int(self.model.img_size)

    def checkpoint_sha256(self) -> str | None:
        if self._sha256 is None and self.checkpoint_path is not None:
            from semat.weights.hub import file_sha256

            self._sha256 = file_sha256(self.checkpoint_path)
        return self._sha256

    def forward_frame(self, images: torch.Tensor, boxes: torch.Tensor,
                      points: tuple[torch.Tensor, torch.Tensor] | None = None) -> SEMatOutput:
        """One model forward on inputs already in the padded working frame.

        ``images`` ``[B,3,S,S]`` in [0,1], ``boxes`` ``[B,4]`` in frame pixels (see the model's
        ``forward``). Moves them to the runtime's device and applies its precision; for callers
        with their own preprocessing (e.g. the paper's evaluation protocol). Call it under
        ``torch.inference_mode()``.
        """
        dev = self.runtime.device
        images, boxes = images.to(dev), boxes.to(dev)
        if points is not None:
            points = (points[0].to(dev), points[1].to(dev))
        if self.runtime.dtype == torch.float32:
            return self.model(images, boxes, points)
        # Reduced precision through autocast: matmuls/convolutions run in bf16/fp16 while
        # normalisation, position embeddings, the residual streams and softmax statistics stay
        # fp32. Models from prepare_model hold their matmul weights already cast (once, at load),
        # so autocast finds them in its dtype and copies nothing; an fp32 model works too.
        with torch.autocast(device_type=dev.type, dtype=self.runtime.dtype):
            return self.model(images, boxes, points)

    def predict(self, image: np.ndarray, boxes: Any, points: Sequence[PointPrompt | None] | None = None,
                batch_size: int = 4, return_debug: bool = False) -> list[ObjectMatte]:
        """One :class:`ObjectMatte` per box (same order). ``points``: one entry per box or None."""
        image = check_image(image)
        h, w = image.shape[:2]
        box_arr = validate_boxes(boxes, (h, w))
        n = len(box_arr)
        if points is not None and len(points) != n:
            raise InputError(f"got {len(points)} point prompt(s) for {n} box(es); give one entry per box")
        if batch_size < 1:
            raise InputError("batch_size must be at least 1")
        size = self.img_size
        padded, (new_h, new_w), scale = preprocess_image(image, size)
        frame_boxes = np.clip((box_arr * scale + 0.5).astype(np.int64), 0, size - 1).astype(np.float32)

        # Group by number of points: extra prompt tokens change the decoder, so only boxes with the
        # same point count share a batch (results are then independent of the grouping).
        groups: dict[int, list[int]] = {}
        for i in range(n):
            k = 0 if points is None or points[i] is None else len(points[i].labels)
            groups.setdefault(k, []).append(i)

        results: list[ObjectMatte | None] = [None] * n
        with torch.inference_mode():
            for k, members in groups.items():
                for start in range(0, len(members), batch_size):
                    idx = members[start:start + batch_size]
                    b = len(idx)
                    pts = None
                    if k:
                        assert points is not None
                        coords = np.stack([points[i].coords for i in idx]) * scale  # type: ignore[union-attr]
                        labels = np.stack([points[i].labels for i in idx])  # type: ignore[union-attr]
                        pts = (torch.from_numpy(coords.astype(np.float32)), torch.from_numpy(labels))
                    out = self.forward_frame(padded.expand(b, -1, -1, -1), torch.from_numpy(frame_boxes[idx]), pts)
                    for j, i in enumerate(idx):
                        results[i] = self.postprocess(out, j, box_arr[i], (h, w), (new_h, new_w), return_debug)
                    del out
        return [r for r in results if r is not None]

    @staticmethod
    def postprocess(out: SEMatOutput, j: int, box: np.ndarray, hw: tuple[int, int], new_hw: tuple[int, int],
                     debug: bool) -> ObjectMatte:
        """Object ``j`` of a batched forward ``out`` back to the image: crop the padding of the
        ``new_hw`` model frame, resize to the original ``hw`` and clip the alpha to ``box``. Public
        so across-image batching (``MattingPipeline.predict_many``) reuses the predictor's own."""
        h, w = hw
        new_h, new_w = new_hw
        alpha_frame = check_finite_output(out.alpha[j, 0].float().cpu().numpy(), "the SEMat alpha")
        mask_frame = out.mask_logits[j, 0].float().cpu().numpy()
        alpha = cv2.resize(np.ascontiguousarray(alpha_frame[:new_h, :new_w]), (w, h),
                           interpolation=cv2.INTER_LINEAR)
        mask = cv2.resize(np.ascontiguousarray(mask_frame[:new_h, :new_w]), (w, h),
                          interpolation=cv2.INTER_LINEAR) > 0
        info = None
        if debug:
            info = {
                "alpha_frame": alpha_frame,
                "matting_logits": out.matting_logits[j].float().cpu().numpy(),
                "mask_logits": mask_frame,
                "image_embedding": out.image_embedding[j].float().cpu().numpy(),
                "resized_hw": (new_h, new_w),
            }
        return ObjectMatte(box=np.asarray(box, dtype=np.float64).copy(),
                           alpha=np.clip(alpha, 0.0, 1.0).astype(np.float32), mask=mask, debug=info)
