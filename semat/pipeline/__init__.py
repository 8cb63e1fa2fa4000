"""One pipeline from any mix of words, boxes and clicks to per-object SEMat mattes.

Used by the CLI and the web app; importable without Gradio.

Prompt → objects
----------------
1. **Text** (``Prompt.text``, e.g. ``"cat. dog."``) goes to GroundingDINO
   (:mod:`semat.inference.detect`); every detection that survives the thresholds and de-duplication is
   one object (``source="text"``, with its phrase label and score). ``selected`` (indices into
   the detections, in :meth:`MattingPipeline.detect` order) keeps only some of them, for a
   "detect → review → matte" UI. When text finds nothing and there are no boxes or clicks,
   :class:`~semat.inference.detect.NoDetectionError` says to lower the threshold or draw a box; when
   there are boxes or clicks too, a notice says so and the run continues with them.
2. **Boxes** (``Prompt.boxes``, xyxy original pixels) are one object each (``source="box"``).
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

The union alpha is the per-pixel *sum* of the object alphas clipped to 1 (touching objects
whose soft edges share a pixel add up instead of leaving a seam); the union mask is the OR.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from semat.errors import InputError
from semat.inference.detect import Detection, NoDetectionError, TextDetector, normalise_prompt, postprocess
from semat.weights.hub import tiny_models_requested

Progress = Callable[[float, str], Any]
BOX_POINT_TOLERANCE = 0.05  # a point belongs to a box grown by 5 % of its size per side
DERIVED_BOX_PAD = 0.05  # derived box padding, fraction of its width / height per side
DERIVED_BOX_FALLBACK_PAD = 0.10  # fallback padding around the clicks, fraction of the longer side
DEFAULT_CACHE_BYTES = 1 << 30


@dataclass
class Prompt:
    """What to cut out: any mix of text, boxes (xyxy px) and points ``(x, y, 1|0)``."""

    text: str | None = None
    boxes: list[tuple[float, float, float, float]] = field(default_factory=list)
    points: list[tuple[float, float, int]] = field(default_factory=list)
    box_threshold: float = 0.35
    text_threshold: float = 0.25

    def __post_init__(self) -> None:
        self.text = self.text.strip() if isinstance(self.text, str) and self.text.strip() else None
        self.boxes = [tuple(float(v) for v in b) for b in (self.boxes or [])]  # type: ignore[misc]
        pts = []
        for p in self.points or []:
            p = tuple(p)
            if len(p) == 2:
                p = (*p, 1)
            if len(p) != 3:
                raise InputError(f"a point is (x, y) or (x, y, label), got {p!r}")
            x, y, lab = float(p[0]), float(p[1]), int(p[2])
            if lab not in (0, 1):
                raise InputError(f"point label must be 1 (include) or 0 (exclude), got {p[2]!r}")
            pts.append((x, y, lab))
        self.points = pts
        for b in self.boxes:
            if len(b) != 4:
                raise InputError(f"a box is x1,y1,x2,y2, got {b!r}")

    @property
    def empty(self) -> bool:
        return not (self.text or self.boxes or self.points)


@dataclass
class ObjectResult:
    box: tuple[float, float, float, float]
    label: str
    score: float | None
    source: str  # "text" | "box" | "points"
    mask: np.ndarray  # HxW bool (coarse segmentation)
    alpha: np.ndarray  # HxW float32 in [0, 1]
    points: tuple[tuple[float, float, int], ...] = ()
    derived_box: bool = False  # box derived from clicks (see the module docstring)
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
    detections: list[Detection] = field(default_factory=list)  # all text detections (before `selected`)
    stats: dict[str, int] = field(default_factory=dict)
    detector: str | None = None  # detector name when text was used


@dataclass
class _Entry:
    alpha: np.ndarray
    mask: np.ndarray

    @property
    def nbytes(self) -> int:
        return int(self.alpha.nbytes + self.mask.nbytes)


@dataclass
class _Job:
    box: tuple[float, float, float, float]
    points: tuple[tuple[float, float, int], ...]
    label: str
    score: float | None
    source: str
    derived: bool = False


def image_hash(image: np.ndarray) -> str:
    h = hashlib.blake2b(digest_size=16)
    h.update(str((image.shape, str(image.dtype))).encode())
    h.update(np.ascontiguousarray(image).data)
    return h.hexdigest()


def _box_key(box: Sequence[float]) -> tuple[float, ...]:
    return tuple(round(float(v), 3) for v in box)


def _contains(box: Sequence[float], x: float, y: float, tol: float = BOX_POINT_TOLERANCE) -> bool:
    x1, y1, x2, y2 = box
    mx, my = (x2 - x1) * tol, (y2 - y1) * tol
    return x1 - mx <= x <= x2 + mx and y1 - my <= y <= y2 + my


def derive_box(mask: np.ndarray, alpha: np.ndarray, points: Sequence[tuple[float, float, int]],
               pad: float = DERIVED_BOX_PAD,
               fallback_pad: float = DERIVED_BOX_FALLBACK_PAD) -> tuple[tuple[float, float, float, float], str]:
    """The derived-box rule (module docstring): box of the mask components holding positive clicks.

    Returns the box and which rule produced it (``"mask"``, ``"alpha"`` or ``"clicks"``).
    """
    import cv2

    h, w = mask.shape
    pos = [(x, y) for x, y, lab in points if lab == 1]
    if not pos:
        raise InputError("clicks without a box need at least one positive (include) click")
    pix = [(min(w - 1, max(0, int(x))), min(h - 1, max(0, int(y)))) for x, y in pos]
    for how, binary in (("mask", np.asarray(mask, bool)), ("alpha", np.asarray(alpha) >= 0.5)):
        if not binary.any():
            continue
        _, labels = cv2.connectedComponents(binary.astype(np.uint8), connectivity=8)
        ids: set[int] = set()
        for px, py in pix:
            lab = int(labels[py, px])
            if lab == 0:  # a click just off the mask edge: take the components within 2 px
                win = labels[max(0, py - 2):py + 3, max(0, px - 2):px + 3]
                ids |= {int(v) for v in np.unique(win)} - {0}
            else:
                ids.add(lab)
        if not ids:
            continue
        sel = np.isin(labels, list(ids))
        ys, xs = np.nonzero(sel)
        x1, x2 = float(xs.min()), float(xs.max() + 1)
        y1, y2 = float(ys.min()), float(ys.max() + 1)
        px_arr = np.array(pos, np.float64)
        x1, y1 = min(x1, px_arr[:, 0].min()), min(y1, px_arr[:, 1].min())
        x2, y2 = max(x2, px_arr[:, 0].max() + 1), max(y2, px_arr[:, 1].max() + 1)
        mx, my = max(2.0, pad * (x2 - x1)), max(2.0, pad * (y2 - y1))
        box = (max(0.0, x1 - mx), max(0.0, y1 - my), min(float(w), x2 + mx), min(float(h), y2 + my))
        return box, how
    px_arr = np.array(pos, np.float64)
    m = max(2.0, fallback_pad * max(h, w))
    box = (max(0.0, px_arr[:, 0].min() - m), max(0.0, px_arr[:, 1].min() - m),
           min(float(w), px_arr[:, 0].max() + 1 + m), min(float(h), px_arr[:, 1].max() + 1 + m))
    return box, "clicks"


class MattingPipeline:
    """Text / boxes / clicks → per-object SEMat mattes, with per-object and detector caches."""

    def __init__(self, predictor_factory: Callable[[str], Any], detector_factory: Callable[[], TextDetector],
                 cache_bytes: int = DEFAULT_CACHE_BYTES, max_loaded_variants: int = 1,
                 batch_size: int = 4):
        self.predictor_factory = predictor_factory
        self.detector_factory = detector_factory
        self.cache_bytes = int(cache_bytes)
        self.max_loaded_variants = max(1, int(max_loaded_variants))
        self.batch_size = batch_size
        self._predictors: OrderedDict[str, Any] = OrderedDict()
        self._model_info: dict[str, tuple[str | None, str]] = {}  # variant → (checkpoint sha256, device)
        self._detector: TextDetector | None = None
        self._cache: OrderedDict[tuple, _Entry] = OrderedDict()
        self._cache_used = 0
        self._det_cache: OrderedDict[tuple, tuple[np.ndarray, np.ndarray, list[int]]] = OrderedDict()
        self._lock = threading.RLock()
        self.model_forwards = 0  # objects sent through SEMat (one forward each)
        self.detector_forwards = 0

    # ------------------------------------------------------------------------ models
    def predictor(self, variant: str) -> Any:
        with self._lock:
            if variant in self._predictors:
                self._predictors.move_to_end(variant)
                return self._predictors[variant]
            while len(self._predictors) >= self.max_loaded_variants:
                self._predictors.popitem(last=False)  # free the old model before loading
            pred = self.predictor_factory(variant)
            self._predictors[variant] = pred
            runtime = getattr(pred, "runtime", None)
            self._model_info[variant] = (pred.checkpoint_sha256(), runtime.label if runtime is not None else "")
            return pred

    def detector(self) -> TextDetector:
        with self._lock:
            if self._detector is None:
                self._detector = self.detector_factory()
            return self._detector

    def clear_cache(self) -> None:
        with self._lock:
            self._cache.clear()
            self._det_cache.clear()
            self._cache_used = 0

    # --------------------------------------------------------------------- detection
    def detect(self, image: np.ndarray, text: str, box_threshold: float = 0.35, text_threshold: float = 0.25,
               raise_if_empty: bool = True, _hash: str | None = None) -> list[Detection]:
        """Text → de-duplicated detections. The forward is cached per (image, text)."""
        image = _check_image(image)
        key_text = normalise_prompt(text)
        with self._lock:
            det = self.detector()
            key = (_hash or image_hash(image), det.name, key_text)
            raw = self._det_cache.get(key)
            if raw is None:
                raw = det.raw_scores(image, text)
                self.detector_forwards += 1
                self._det_cache[key] = raw
                while len(self._det_cache) > 32:
                    self._det_cache.popitem(last=False)
            else:
                self._det_cache.move_to_end(key)
        return postprocess(*raw, text, image.shape[:2], box_threshold, text_threshold,
                           raise_if_empty=raise_if_empty)

    # ---------------------------------------------------------------------------- run
    def run(self, image: np.ndarray, prompt: Prompt, variant: str = "hq-sam", selected: list[int] | None = None,
            progress: Progress | None = None) -> MatteResult:
        """Matte every object in ``prompt``; see the module docstring for the rules."""
        from semat.inference.predictor import validate_boxes

        t_start = time.perf_counter()
        image = _check_image(image)
        if not isinstance(prompt, Prompt):
            raise TypeError("prompt must be a semat.pipeline.Prompt")
        if prompt.empty:
            raise InputError("nothing to cut out: give a text prompt, draw a box or click on the object")
        h, w = image.shape[:2]
        if prompt.boxes:
            validate_boxes(np.array(prompt.boxes, np.float64), (h, w))
        for x, y, _ in prompt.points:
            if not (0 <= x <= w and 0 <= y <= h):
                raise InputError(f"point ({x:g}, {y:g}) is outside the {w}x{h} image")
        timings: dict[str, float] = {}
        notices: list[str] = []
        stats = {"model_forwards": 0, "cache_hits": 0, "detector_forwards": 0}

        last = [0.0]

        def report(frac: float | None, msg: str) -> None:
            if frac is not None:
                last[0] = max(last[0], frac)
            if progress is not None:
                progress(last[0], msg)

        with self._lock:
            t0 = time.perf_counter()
            key_img = image_hash(image)
            timings["hash"] = time.perf_counter() - t0

            # 1. text → detections
            detections: list[Detection] = []
            chosen: list[Detection] = []
            if prompt.text:
                report(0.05, f"Finding '{prompt.text}'...")
                t0 = time.perf_counter()
                before = self.detector_forwards
                try:
                    detections = self.detect(image, prompt.text, prompt.box_threshold, prompt.text_threshold,
                                             raise_if_empty=True, _hash=key_img)
                except NoDetectionError as exc:
                    if not (prompt.boxes or prompt.points):
                        raise
                    notices.append(f"{exc}; continuing with the boxes/clicks given")
                stats["detector_forwards"] = self.detector_forwards - before
                timings["detect"] = time.perf_counter() - t0
                if self._detector is not None and stats["detector_forwards"]:
                    for k, v in self._detector.last_timings.items():
                        timings[k] = v
                if selected is not None:
                    bad = [i for i in selected if not 0 <= int(i) < len(detections)]
                    if bad:
                        raise InputError(f"selected detection(s) {bad} do not exist; "
                                         f"there are {len(detections)} detection(s)")
                    chosen = [detections[int(i)] for i in sorted(set(selected))]
                else:
                    chosen = list(detections)

            # 2. objects: detections, then drawn boxes, then clicks outside every box
            jobs: list[_Job] = [_Job(tuple(d.box), (), d.label, d.score, "text") for d in chosen]
            jobs += [_Job(tuple(b), (), f"box {i + 1}", None, "box") for i, b in enumerate(prompt.boxes)]
            if not jobs and not prompt.points:
                raise InputError("every detection was deselected: select at least one, draw a box or click")
            loose: list[tuple[float, float, int]] = []
            for pt in prompt.points:
                owners = [j for j in jobs if _contains(j.box, pt[0], pt[1])]
                for j in owners:
                    j.points = (*j.points, pt)
                if not owners:
                    loose.append(pt)
            loose_pos = [p for p in loose if p[2] == 1]
            if loose_pos:
                jobs.append(_Job((0.0, 0.0, float(w), float(h)), tuple(loose), "clicked object", None,
                                 "points", derived=True))
            elif loose:
                if jobs:
                    notices.append(f"{len(loose)} exclude click(s) outside every box were ignored")
                else:
                    raise InputError("only exclude (negative) clicks were given: add an include click or a box")

            predictor = None

            def get_predictor() -> Any:
                nonlocal predictor
                if predictor is None:
                    report(None, f"Loading SEMat ({variant})...")
                    t = time.perf_counter()
                    predictor = self.predictor(variant)
                    timings["load_model"] = timings.get("load_model", 0.0) + time.perf_counter() - t
                return predictor

            # 3. derived boxes for click-only objects (pass 1, cached)
            derived = [j for j in jobs if j.derived]
            if derived:
                report(0.2, "Finding the clicked object...")
                t0 = time.perf_counter()
                first = self._mattes(image, key_img, variant, [(j.box, j.points) for j in derived],
                                     get_predictor, stats)
                for j, (entry, _) in zip(derived, first):
                    j.box, how = derive_box(entry.mask, entry.alpha, j.points)
                    if how != "mask":
                        notices.append(f"clicked object: box derived from the {how} (the first pass's "
                                       "mask did not cover the click)")
                timings["derive_box"] = time.perf_counter() - t0

            # 4. final mattes (cache hits are free; misses run in one batch)
            report(0.4, f"Matting {len(jobs)} object(s)...")
            t0 = time.perf_counter()
            mattes = self._mattes(image, key_img, variant, [(j.box, j.points) for j in jobs], get_predictor, stats)
            timings["semat"] = time.perf_counter() - t0

            report(0.9, "Combining...")
            t0 = time.perf_counter()
            objects = [ObjectResult(box=tuple(float(v) for v in j.box), label=j.label, score=j.score,
                                    source=j.source, mask=e.mask, alpha=e.alpha, points=j.points,
                                    derived_box=j.derived, cached=hit)
                       for j, (e, hit) in zip(jobs, mattes)]
            union = np.zeros((h, w), np.float32)
            umask = np.zeros((h, w), bool)
            for o in objects:
                union += o.alpha
                umask |= o.mask
            np.clip(union, 0.0, 1.0, out=union)
            timings["union"] = time.perf_counter() - t0

            sha, device = self._model_info.get(variant, (None, ""))
        timings["total"] = time.perf_counter() - t_start
        report(1.0, "Done")
        return MatteResult(image=image, objects=objects, alpha=union, mask=umask, variant=variant,
                           checkpoint_sha256=sha, timings=timings, notices=notices, prompt=prompt,
                           device_label=device, detections=detections, stats=stats,
                           detector=self._detector.name if prompt.text and self._detector is not None else None)

    def _mattes(self, image: np.ndarray, key_img: str, variant: str,
                requests: list[tuple[Sequence[float], tuple[tuple[float, float, int], ...]]],
                get_predictor: Callable[[], Any], stats: dict[str, int]) -> list[tuple[_Entry, bool]]:
        """Cached mattes for (box, points) requests; misses go to the predictor in one call."""
        from semat.inference.predictor import PointPrompt

        keys = [(key_img, variant, _box_key(b), tuple(p)) for b, p in requests]
        out: list[tuple[_Entry, bool] | None] = [None] * len(keys)
        missing: dict[tuple, list[int]] = {}
        for i, k in enumerate(keys):
            entry = self._cache.get(k)
            if entry is not None:
                self._cache.move_to_end(k)
                out[i] = (entry, True)
                stats["cache_hits"] += 1
            else:
                missing.setdefault(k, []).append(i)
        if missing:
            pred = get_predictor()
            todo = list(missing)
            boxes = np.array([requests[missing[k][0]][0] for k in todo], np.float64)
            pts = []
            for k in todo:
                p = requests[missing[k][0]][1]
                pts.append(PointPrompt(np.array([[x, y] for x, y, _ in p], np.float64).reshape(-1, 2),
                                       np.array([lab for _, _, lab in p], np.int64)) if p else None)
            results = pred.predict(image, boxes, points=pts if any(p is not None for p in pts) else None,
                                   batch_size=self.batch_size)
            self.model_forwards += len(todo)
            stats["model_forwards"] += len(todo)
            for k, r in zip(todo, results):
                entry = _Entry(np.asarray(r.alpha, np.float32), np.asarray(r.mask, bool))
                self._store(k, entry)
                for i in missing[k]:
                    out[i] = (entry, False)
        return [o for o in out if o is not None]

    def _store(self, key: tuple, entry: _Entry) -> None:
        if entry.nbytes > self.cache_bytes:
            return
        self._cache[key] = entry
        self._cache_used += entry.nbytes
        while self._cache_used > self.cache_bytes and self._cache:
            _, old = self._cache.popitem(last=False)
            self._cache_used -= old.nbytes


def _check_image(image: Any) -> np.ndarray:
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        shape = getattr(image, "shape", None)
        raise InputError(f"expected an RGB uint8 image array HxWx3, got {type(image).__name__} {shape}")
    return np.ascontiguousarray(image)


def detector_factory(name: str | None = None, runtime: Any = None,
                     progress: Callable[[str], Any] | None = None) -> Callable[[], TextDetector]:
    """A lazy detector factory: tiny random model under ``SEMAT_TEST_MODELS=tiny``, else
    ``name`` / ``SEMAT_DETECTOR`` / ``grounding-dino-tiny`` from the weights folder."""
    if tiny_models_requested():
        return lambda: TextDetector.tiny()
    chosen = name or os.environ.get("SEMAT_DETECTOR", "grounding-dino-tiny")
    return lambda: TextDetector.from_pretrained(chosen, runtime=runtime, progress=progress)


def default_pipeline(device: str = "auto", dtype: Any = None, detector: str | None = None,
                     progress: Callable[[str], Any] | None = None) -> MattingPipeline:
    """The app/CLI pipeline: released SEMat checkpoints and GroundingDINO (``detector`` or
    ``SEMAT_DETECTOR``, default ``grounding-dino-tiny``; ``grounding-dino-base`` selectable),
    loaded lazily on first use.

    With ``SEMAT_TEST_MODELS=tiny`` (never the default) it uses tiny random-weight models.
    """
    if tiny_models_requested():
        from semat.inference.predictor import SEMatPredictor

        return MattingPipeline(lambda v: SEMatPredictor.tiny(v), detector_factory())
    from semat.inference.predictor import SEMatPredictor
    from semat.runtime import select_runtime

    runtime = select_runtime(device, dtype)

    def make_predictor(variant: str) -> Any:
        return SEMatPredictor.from_pretrained(variant, device=str(runtime.device), dtype=runtime.dtype,
                                              progress=progress)

    return MattingPipeline(make_predictor, detector_factory(detector, runtime, progress))
