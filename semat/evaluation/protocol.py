"""The model side of the evaluation: the reference and app pre-processing (``Matter``s) and scoring
one prediction under the paper protocol (see :mod:`semat.evaluation.runner`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import cv2
import numpy as np

from semat.errors import InputError, SampleError
from semat.evaluation import metrics as M
from semat.evaluation.datasets import PREPROCESS, _to_unit_float32


# ---------------------------------------------------------------------------------------- the model
@dataclass
class FramePrediction:
    """One prediction: the working-frame alpha cropped to the resized region, and at original size."""

    alpha_frame: np.ndarray       # [new_H, new_W] float32 in [0,1]
    alpha: np.ndarray             # [H, W] float32 in [0,1]
    box: tuple[float, float, float, float]  # the box prompt, in the frame ("reference") or original px ("app")


class Matter(Protocol):
    """What the scoring loop needs from a model: image + ground truth -> :class:`FramePrediction`."""

    img_size: int

    def __call__(self, image: np.ndarray, gt: np.ndarray) -> FramePrediction: ...


def resize_like_reference(alpha: np.ndarray, new_hw: tuple[int, int]) -> np.ndarray:
    """The evaluator's GT preparation: float32 [0,1] alpha -> ``F.interpolate`` bilinear
    (``align_corners=False``) to ``new_hw``; returns float32 [new_H, new_W]."""
    import torch
    import torch.nn.functional as F

    t = torch.from_numpy(np.ascontiguousarray(alpha, dtype=np.float32))[None, None]
    with torch.inference_mode():
        out = F.interpolate(t, size=tuple(int(v) for v in new_hw), mode="bilinear", align_corners=False)
    return out[0, 0].numpy()


def resized_hw(h: int, w: int, size: int) -> tuple[int, int]:
    scale = size * 1.0 / max(h, w)
    return int(h * scale + 0.5), int(w * scale + 0.5)


def tight_box(alpha: np.ndarray) -> tuple[int, int, int, int] | None:
    """Inclusive nonzero extent ``(min_x, min_y, max_x, max_y)``, or None for an all-zero alpha."""
    ys = np.flatnonzero(alpha.any(axis=1))
    if ys.size == 0:
        return None
    xs = np.flatnonzero(alpha.any(axis=0))
    return int(xs[0]), int(ys[0]), int(xs[-1]), int(ys[-1])


class ReferenceMatter:
    """The SEMat evaluator's exact pre-processing around a :class:`~semat.inference.predictor.SEMatPredictor`'s model."""

    def __init__(self, predictor: Any) -> None:
        self.predictor = predictor
        self.img_size = int(predictor.img_size)

    def __call__(self, image: np.ndarray, gt: np.ndarray) -> FramePrediction:
        import torch
        import torch.nn.functional as F

        size = self.img_size
        h, w = gt.shape
        nh, nw = resized_hw(h, w, size)
        img = torch.from_numpy(_to_unit_float32(np.ascontiguousarray(image))).permute(2, 0, 1)[None]
        with torch.inference_mode():
            img = F.interpolate(img, size=(nh, nw), mode="bilinear", align_corners=False)
            frame = torch.zeros((1, 3, size, size), dtype=torch.float32)
            frame[:, :, :nh, :nw] = img
        gt_frame = resize_like_reference(_to_unit_float32(gt), (nh, nw))
        box = tight_box(gt_frame)
        box_f = (0.0, 0.0, 0.0, 0.0) if box is None else tuple(float(v) for v in box)
        boxes = torch.tensor([box_f], dtype=torch.float32)
        # The predictor's frame-level forward moves inputs to its device and applies its
        # precision (autocast for bf16/fp16).
        with torch.inference_mode():
            out = self.predictor.forward_frame(frame, boxes)
            alpha_frame = out.alpha[0, 0, :nh, :nw].float().cpu().numpy()
        alpha = cv2.resize(np.ascontiguousarray(alpha_frame), (w, h), interpolation=cv2.INTER_LINEAR)
        return FramePrediction(alpha_frame, np.clip(alpha, 0.0, 1.0).astype(np.float32), box_f)


class AppMatter:
    """Scores what the app produces: :meth:`SEMatPredictor.predict` with the tight GT box."""

    def __init__(self, predictor: Any) -> None:
        self.predictor = predictor
        self.img_size = int(predictor.img_size)

    def __call__(self, image: np.ndarray, gt: np.ndarray) -> FramePrediction:
        box = tight_box(gt)
        if box is None:
            raise SampleError("the ground-truth alpha is empty, so there is no box to prompt with")
        x0, y0, x1, y1 = box
        box_px = (float(x0), float(y0), float(x1 + 1), float(y1 + 1))
        obj = self.predictor.predict(image, [box_px], return_debug=True)[0]
        nh, nw = obj.debug["resized_hw"]
        frame = np.asarray(obj.debug["alpha_frame"], dtype=np.float32)[:nh, :nw]
        return FramePrediction(frame, obj.alpha, box_px)


def make_matter(predictor: Any, preprocess: str = "reference") -> Matter:
    if preprocess == "reference":
        return ReferenceMatter(predictor)
    if preprocess == "app":
        return AppMatter(predictor)
    raise InputError(f"unknown preprocessing {preprocess!r}; choose one of {', '.join(PREPROCESS)}")


# ------------------------------------------------------------------------------------------ scoring
def quantize(alpha: np.ndarray) -> np.ndarray:
    """The evaluator's rounding: ``uint8(alpha*255 + 0.5)`` (float32 arithmetic, clipped to [0,1] first)."""
    a = np.clip(np.asarray(alpha, dtype=np.float32), 0.0, 1.0)
    return (a * np.float32(255.0) + np.float32(0.5)).astype(np.uint8)


def paper_gt(gt: np.ndarray, new_hw: tuple[int, int]) -> np.ndarray:
    """GT in the working frame as the evaluator scores it: resized float32, ×255 then ÷255 in float32."""
    g = resize_like_reference(_to_unit_float32(gt), new_hw)
    return (g * np.float32(255.0)) / np.float32(255.0)


def score_prediction(pred: FramePrediction, gt: np.ndarray, convention: str = "semat") -> dict[str, float]:
    """Both protocols for one image: keys ``paper_<metric>`` and ``orig_<metric>``."""
    nh, nw = pred.alpha_frame.shape
    if pred.alpha.shape != gt.shape:
        raise SampleError(f"prediction size {pred.alpha.shape} differs from the ground truth {gt.shape}")
    row: dict[str, float] = {}
    for k, v in M.compute_all(quantize(pred.alpha_frame), paper_gt(gt, (nh, nw)), convention=convention).items():
        row[f"paper_{k}"] = v
    # SGHM's test_image.py scores the float32 alpha as is; the SEMat side scores the 8-bit PNG a user saves.
    orig = pred.alpha.astype(np.float32) if convention == "sghm" else quantize(pred.alpha)
    for k, v in M.compute_all(orig, gt, convention=convention).items():
        row[f"orig_{k}"] = v
    return row


