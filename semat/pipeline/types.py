"""The pipeline's data: what to cut out (:class:`Prompt`) and what comes back (:class:`MatteResult`).

Every use case (text, boxes and clicks, auto human) returns a :class:`MatteResult`, so the app,
the API, the examples, the CLI and batch code share one result type.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from semat.errors import PointError, PromptError
from semat.inference.detect import Detection

__all__ = ["SOURCES", "MatteResult", "ObjectResult", "Prompt"]

#: Where an object came from: a text detection, a drawn box, clicks only, or SGHM (auto human).
SOURCES = ("text", "box", "points", "auto")


@dataclass
class Prompt:
    """What to cut out: any mix of text, boxes (xyxy px) and points ``(x, y, 1|0)``.

    Only the shape is checked here; the image-dependent rules (boxes clipped to the image,
    points inside it, limits) are applied by the pipeline through :mod:`semat.validate`.
    """

    text: str | None = None
    boxes: list[tuple[float, float, float, float]] = field(default_factory=list)
    points: list[tuple[float, float, int]] = field(default_factory=list)
    box_threshold: float = 0.35
    text_threshold: float = 0.25
    #: detections of ``text`` reviewed earlier (e.g. after the app's Detect): matted as they are,
    #: without running the detector again (one GPU call per user action on ZeroGPU)
    detections: list[Detection] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.text = self.text.strip() if isinstance(self.text, str) and self.text.strip() else None
        self.detections = [d if isinstance(d, Detection) else Detection(tuple(d["box"]), str(d["label"]),
                                                                         float(d["score"]))
                           for d in self.detections or []]
        boxes = []
        for b in self.boxes or []:
            b = tuple(b)
            if len(b) != 4:
                raise PromptError(f"a box is x1, y1, x2, y2, got {len(b)} number(s)")
            boxes.append(tuple(float(v) for v in b))
        self.boxes = boxes  # type: ignore[assignment]
        pts = []
        for p in self.points or []:
            p = tuple(p)
            if len(p) == 2:
                p = (*p, 1)
            if len(p) != 3:
                raise PointError(f"a point is (x, y) or (x, y, label), got {len(p)} number(s)")
            if p[2] not in (0, 1):
                raise PointError(f"point label must be 1 (include) or 0 (exclude), got {str(p[2])[:20]!r}")
            pts.append((float(p[0]), float(p[1]), int(p[2])))
        self.points = pts

    @property
    def empty(self) -> bool:
        return not (self.text or self.boxes or self.points or self.detections)


@dataclass
class ObjectResult:
    box: tuple[float, float, float, float]
    label: str
    score: float | None
    source: str  # one of SOURCES
    mask: np.ndarray  # HxW bool (coarse segmentation)
    alpha: np.ndarray  # HxW float32 in [0, 1]
    points: tuple[tuple[float, float, int], ...] = ()
    derived_box: bool = False  # box derived from clicks (see semat.pipeline.objects)
    cached: bool = False  # served from the cache, no model call


@dataclass
class MatteResult:
    image: np.ndarray
    objects: list[ObjectResult]
    alpha: np.ndarray  # union, clipped to 1
    mask: np.ndarray  # union
    variant: str
    checkpoint_sha256: str | None
    timings: dict[str, float]
    notices: list[str]
    prompt: Prompt
    device_label: str = ""
    detections: list[Detection] = field(default_factory=list)  # all text detections (before selection)
    stats: dict[str, int] = field(default_factory=dict)
    detector: str | None = None  # detector name when text was used
    selected: list[int] = field(default_factory=list)  # indices into `detections` that were matted


def union(objects: list[ObjectResult], hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """The union alpha (per-pixel sum clipped to 1, so touching soft edges add up instead of
    leaving a seam) and the union mask (OR)."""
    alpha = np.zeros(hw, np.float32)
    mask = np.zeros(hw, bool)
    for o in objects:
        alpha += o.alpha
        mask |= o.mask
    np.clip(alpha, 0.0, 1.0, out=alpha)
    return alpha, mask
