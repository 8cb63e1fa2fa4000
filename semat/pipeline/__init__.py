"""One pipeline from any mix of words, boxes and clicks to per-object SEMat mattes.

Used by the CLI, the web app, its API and batch jobs; importable without Gradio. The package
holds :mod:`~semat.pipeline.types` (Prompt, results), :mod:`~semat.pipeline.objects` (point
ownership, the derived-box rule), :mod:`~semat.pipeline.cache` and
:mod:`~semat.pipeline.matting` (:class:`MattingPipeline`, the use cases).

Prompt → objects
----------------
1. **Text** (``Prompt.text``, e.g. ``"cat. dog."``) goes to GroundingDINO
   (:mod:`semat.inference.detect`); every detection that survives the thresholds and de-duplication is
   one object (``source="text"``, with its phrase label and score). ``selected`` (indices into
   the detections, in :meth:`MattingPipeline.detect` order) keeps only some of them, for a
   "detect → review → matte" UI. When text finds nothing and there are no boxes or clicks,
   :class:`~semat.inference.detect.NoDetectionError` says to lower the threshold or draw a box; when
   there are boxes or clicks too, a notice says so and the run continues with them.
   Without ``selected``, the ``max_objects`` best detections are matted (default: all, up to
   the box limit ``SEMAT_MAX_BOXES`` less the drawn boxes, with a notice when some are left out).
2. **Boxes** (``Prompt.boxes``, xyxy original pixels) are one object each (``source="box"``).
   They follow :mod:`semat.validate`: a box partly outside the image is clipped (with a
   notice), one with no overlap is refused, duplicates are merged.
3. **Points** (``Prompt.points``, ``(x, y, label)`` with label 1 = include, 0 = exclude) go with
   a box to SEMat's prompt encoder. A point belongs to every box object (text or drawn) whose
   box, grown by 5 % of its size on each side, contains it. Positive points that fall in no box
   form one more object (``source="points"``), together with the negative points that fall in
   no box. Negative points that end up with no object are ignored, with a notice.

Clicks without a box (the derived-box rule)
-------------------------------------------
SEMat needs a box. For a ``points`` object the pipeline runs two passes:

* **pass 1** — the whole-image box ``[0, 0, W, H]`` plus the clicks;
* take pass 1's coarse mask (``mask``, i.e. mask logits > 0; if it misses every positive
  click, ``alpha >= 0.5`` instead), keep the 8-connected components that contain a positive
  click (or, for a click just off the mask, lie within 2 px of it), and take their bounding box. It is grown to include every positive click, padded by
  5 % of its width/height (at least 2 px) on each side, and clipped to the image. If neither
  mask touches a click, the box falls back to the clicks' bounding box padded by 10 % of the
  image's longer side.
* **pass 2** — that derived box plus the same clicks gives the final matte.

Both passes are cached like any other object, so the derived object costs two forwards the
first time and none afterwards.

Caching
-------
Per-object mattes are cached by ``(image hash, variant, box, points)`` in an LRU bounded by
memory (``cache_bytes``, default 1 GiB). Detector forwards are cached by ``(image hash,
detector, normalised text)``, so changing the box/text thresholds only re-runs the cheap
post-processing. Compositing lives in :mod:`semat.compose` and never touches a model. New
objects are batched into one ``predict`` call; ``stats`` report forwards and cache hits.

**Auto human** (:meth:`MattingPipeline.matte_human`) runs SGHM and returns the same
:class:`MatteResult` with one ``source="auto"`` object.

The union alpha is the per-pixel *sum* of the object alphas clipped to 1 (touching objects
whose soft edges share a pixel add up instead of leaving a seam); the union mask is the OR.
"""

from semat.pipeline.cache import DEFAULT_CACHE_BYTES, image_hash
from semat.pipeline.factory import default_pipeline
from semat.pipeline.matting import MattingPipeline, Progress, top_scoring
from semat.pipeline.objects import (
    BOX_POINT_TOLERANCE,
    DERIVED_BOX_FALLBACK_PAD,
    DERIVED_BOX_PAD,
    derive_box,
)
from semat.pipeline.types import SOURCES, MatteResult, ObjectResult, Prompt, union

__all__ = [
    "BOX_POINT_TOLERANCE", "DEFAULT_CACHE_BYTES", "DERIVED_BOX_FALLBACK_PAD", "DERIVED_BOX_PAD", "SOURCES",
    "MatteResult", "MattingPipeline", "ObjectResult", "Progress", "Prompt", "default_pipeline", "derive_box",
    "image_hash", "top_scoring", "union",
]
