"""The product's use cases over the models: text → detections, prompt → mattes, auto human.

:class:`MattingPipeline` is the one place that holds the product policy (which detections are
matted, the box limit and top-k, point ownership, the derived-box rule, caching); the app, the
HTTP API, the examples, the CLI and batch jobs all call it. See :mod:`semat.pipeline` for the
rules in full.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from semat import registry
from semat.errors import NoDetectionError, PromptError
from semat.inference.detect import Detection, TextDetector, normalise_prompt, postprocess
from semat.pipeline.cache import DEFAULT_CACHE_BYTES, Entry, MatteCache, SmallLRU, box_key, image_hash
from semat.pipeline.objects import Job, build_jobs, derive_box
from semat.pipeline.types import MatteResult, ObjectResult, Prompt, union
from semat.validate import (
    DEFAULT_MAX_BOXES,
    check_boxes,
    check_image,
    check_points,
    check_text,
    check_threshold,
)

Progress = Callable[[float, str], Any]


class _Run:
    """Per-call bookkeeping: timings, notices, counters and monotonic progress."""

    def __init__(self, progress: Progress | None):
        self.progress = progress
        self.timings: dict[str, float] = {}
        self.notices: list[str] = []
        self.stats = {"model_forwards": 0, "cache_hits": 0, "detector_forwards": 0}
        self._last = 0.0

    def report(self, frac: float | None, msg: str) -> None:
        if frac is not None:
            self._last = max(self._last, frac)
        if self.progress is not None:
            self.progress(self._last, msg)

    def timed(self, key: str, t0: float) -> None:
        self.timings[key] = self.timings.get(key, 0.0) + time.perf_counter() - t0


class MattingPipeline:
    """Text / boxes / clicks → per-object SEMat mattes, and SGHM auto human, with caches."""

    def __init__(self, predictor_factory: Callable[[str], Any], detector_factory: Callable[[], TextDetector],
                 cache_bytes: int = DEFAULT_CACHE_BYTES, max_loaded_variants: int = 1, batch_size: int = 4,
                 human_factory: Callable[[], Any] | None = None, max_boxes: int = DEFAULT_MAX_BOXES):
        self.predictor_factory = predictor_factory
        self.detector_factory = detector_factory
        self.human_factory = human_factory
        self.max_loaded_variants = max(1, int(max_loaded_variants))
        self.batch_size = batch_size
        self.max_boxes = int(max_boxes)
        self._predictors: OrderedDict[str, Any] = OrderedDict()
        self._model_info: dict[str, tuple[str | None, str]] = {}  # variant → (checkpoint sha256, device)
        self._detector: TextDetector | None = None
        self._human: Any = None
        self._cache = MatteCache(cache_bytes)
        self._det_cache = SmallLRU(32)
        self._lock = threading.RLock()
        self.model_forwards = 0  # objects sent through SEMat (one forward each)
        self.detector_forwards = 0
        self.human_forwards = 0

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

    def human(self) -> Any:
        with self._lock:
            if self._human is None:
                if self.human_factory is None:
                    raise PromptError("this pipeline has no human matting model")
                self._human = self.human_factory()
            return self._human

    def loaded_variants(self) -> list[str]:
        return list(self._predictors)

    def clear_cache(self) -> None:
        with self._lock:
            self._cache.clear()
            self._det_cache.clear()

    # -------------------------------------------------------------------- use cases
    def detect(self, image: np.ndarray, text: str, box_threshold: float = 0.35, text_threshold: float = 0.25,
               raise_if_empty: bool = True, *, image_key: str | None = None) -> list[Detection]:
        """Text → de-duplicated detections. The forward is cached per (image, text)."""
        image = check_image(image)
        text = check_text(text)
        bt, tt = check_threshold(box_threshold, "box threshold"), check_threshold(text_threshold, "text threshold")
        with self._lock:
            det = self.detector()
            key = (image_key or image_hash(image), det.name, normalise_prompt(text))
            raw = self._det_cache.get(key)
            if raw is None:
                raw = det.raw_scores(image, text)
                self.detector_forwards += 1
                self._det_cache.put(key, raw)
        return postprocess(*raw, text, image.shape[:2], bt, tt, raise_if_empty=raise_if_empty)

    def run(self, image: np.ndarray, prompt: Prompt, variant: str | None = None,
            selected: Sequence[int] | None = None, max_objects: int | None = None,
            progress: Progress | None = None) -> MatteResult:
        """Matte every object in ``prompt`` (the rules: :mod:`semat.pipeline`).

        ``selected`` keeps only those text detections (indices in :meth:`detect` order);
        otherwise the ``max_objects`` best (default: all, up to the box limit, with a notice).
        """
        t_start = time.perf_counter()
        variant = variant or registry.default("semat")
        image, prompt, run = self._checked(image, prompt, progress)
        h, w = image.shape[:2]
        with self._lock:
            t0 = time.perf_counter()
            key_img = image_hash(image)
            run.timed("hash", t0)
            detections, chosen = self._text_objects(image, key_img, prompt, selected, max_objects, run)
            jobs = build_jobs([detections[i] for i in chosen], prompt.boxes, prompt.points, (h, w), run.notices)
            if len(jobs) > self.max_boxes:
                raise PromptError(f"too many objects ({len(jobs)}; the limit is {self.max_boxes}); untick some "
                                  "detections or remove boxes")
            self._derive_boxes(image, key_img, variant, jobs, run)
            run.report(0.4, f"Matting {len(jobs)} object(s)...")
            t0 = time.perf_counter()
            mattes = self._mattes(image, key_img, variant, [(j.box, j.points) for j in jobs], run)
            run.timed("semat", t0)
            objects = [ObjectResult(box=tuple(float(v) for v in j.box), label=j.label, score=j.score,
                                    source=j.source, mask=e.mask, alpha=e.alpha, points=j.points,
                                    derived_box=j.derived, cached=hit) for j, (e, hit) in zip(jobs, mattes)]
            sha, device = self._model_info.get(variant, (None, ""))
        return self._result(image, objects, variant, sha, device, prompt, detections, chosen, run, t_start)

    matte = run  # the use-case name; ``run`` is kept for existing callers

    def matte_text(self, image: np.ndarray, text: str, box_threshold: float = 0.35, text_threshold: float = 0.25,
                   variant: str | None = None, max_objects: int | None = None,
                   progress: Progress | None = None) -> MatteResult:
        """Words → detections → mattes, in one call (one scheduled GPU call in the app)."""
        prompt = Prompt(text=text, box_threshold=box_threshold, text_threshold=text_threshold)
        if prompt.text is None:
            raise PromptError('type what to cut out, e.g. "cat" or "glass of water"')
        return self.run(image, prompt, variant, max_objects=max_objects, progress=progress)

    def matte_human(self, image: np.ndarray, progress: Progress | None = None) -> MatteResult:
        """SGHM automatic human matting, as the same :class:`MatteResult` (one ``auto`` object)."""
        from semat.validate import as_rgb

        t_start = time.perf_counter()
        image = as_rgb(image)
        run = _Run(progress)
        run.report(0.1, "Matting people (SGHM)...")
        with self._lock:
            model = self.human()
            hr = model.predict(image)
            self.human_forwards += 1
        alpha = np.clip(np.asarray(hr.alpha, np.float32), 0.0, 1.0)
        mask = np.asarray(hr.segment) > 0.5
        visible = np.argwhere(alpha > 0.01)
        if visible.size:
            (y0, x0), (y1, x1) = visible.min(0), visible.max(0) + 1
            box = (float(x0), float(y0), float(x1), float(y1))
        else:
            box = (0.0, 0.0, float(image.shape[1]), float(image.shape[0]))
            run.notices.append("No person found: SGHM's person mask is empty")
        run.timings.update(hr.timings)
        obj = ObjectResult(box=box, label="person", score=None, source="auto", mask=mask, alpha=alpha)
        runtime = getattr(model, "runtime", None)
        return self._result(image, [obj], "sghm", None, runtime.label if runtime is not None else "", Prompt(),
                            [], [], run, t_start, stats={"human_forwards": 1})

    # ------------------------------------------------------------ across-image batching
    def prefill(self, requests: Sequence[tuple[np.ndarray, Sequence[float]]], variant: str | None = None,
                batch_size: int | None = None, *, image_keys: Sequence[str] | None = None) -> list[bool]:
        """Put the box-only mattes of ``(image, box)`` requests into the matte cache, where the
        image's own :meth:`run` with that box (and no clicks) finds them; images of any size share
        forwards (:meth:`predict_many`). Cached requests cost nothing. ``image_keys`` (one
        :func:`~semat.pipeline.cache.image_hash` per request) saves hashing again. Returns, per
        request, whether it took a model forward."""
        variant = variant or registry.default("semat")
        keys = list(image_keys) if image_keys is not None else [image_hash(im) for im, _ in requests]
        with self._lock:
            todo: dict[tuple, int] = {}
            for i, (k, (_, b)) in enumerate(zip(keys, requests)):
                ck = (k, variant, box_key(b), ())
                if ck not in todo and self._cache.get(ck) is None:
                    todo[ck] = i
            results = self.predict_many([requests[i] for i in todo.values()], variant, batch_size)
            for ck, (alpha, mask) in zip(todo, results):
                self._cache.put(ck, Entry(alpha, mask))
        took = set(todo.values())
        return [i in took for i in range(len(requests))]

    def predict_many(self, requests: Sequence[tuple[np.ndarray, Sequence[float]]], variant: str | None = None,
                     batch_size: int | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
        """``(alpha, mask)`` for each ``(image, box)`` (box-only prompts, the predictor's own pre- and
        post-processing), images of any size mixed in forwards of up to ``batch_size`` objects
        (default :attr:`batch_size`); no cache. Counted in :attr:`model_forwards`."""
        import torch

        from semat.inference.predictor import preprocess_image, validate_boxes

        if not requests:
            return []
        pred = self.predictor(variant or registry.default("semat"))
        size, step = pred.img_size, max(1, int(batch_size or self.batch_size))
        frames: dict[int, tuple] = {}
        prepared = []
        for image, box in requests:
            if id(image) not in frames:
                frames[id(image)] = preprocess_image(image, size)
            padded, new_hw, scale = frames[id(image)]
            b = validate_boxes([box], image.shape[:2])[0]
            fb = np.clip((b * scale + 0.5).astype(np.int64), 0, size - 1).astype(np.float32)
            prepared.append((padded, fb, b, image.shape[:2], new_hw))
        out: list[tuple[np.ndarray, np.ndarray]] = []
        with torch.inference_mode():
            for s in range(0, len(prepared), step):
                group = prepared[s:s + step]
                res = pred.forward_frame(torch.cat([g[0] for g in group]),
                                         torch.from_numpy(np.stack([g[1] for g in group])))
                for j, (_, _, b, hw, new_hw) in enumerate(group):
                    m = pred.postprocess(res, j, b, hw, new_hw, False)  # the predictor's own, per object
                    out.append((np.asarray(m.alpha, np.float32), np.asarray(m.mask, bool)))
                del res
        self.model_forwards += len(requests)
        return out

    # ---------------------------------------------------------------------- steps
    def _checked(self, image: Any, prompt: Prompt, progress: Progress | None) -> tuple[np.ndarray, Prompt, _Run]:
        """Apply the input contract: boxes clipped to the image (with a notice), points inside it."""
        image = check_image(image)
        if not isinstance(prompt, Prompt):
            raise PromptError("prompt must be a semat.pipeline.Prompt")
        if prompt.empty:
            raise PromptError("nothing to cut out: give a text prompt, draw a box or click on the object")
        run = _Run(progress)
        hw = image.shape[:2]
        boxes = check_boxes(prompt.boxes, hw, max_boxes=self.max_boxes, notices=run.notices, allow_empty=True)
        points = check_points(prompt.points, hw)
        dets = [Detection(tuple(float(v) for v in check_boxes(d.box, hw, max_boxes=None)[0]), d.label, d.score)
                for d in prompt.detections]
        prompt = Prompt(text=check_text(prompt.text) if prompt.text else None, boxes=[tuple(b) for b in boxes],
                        points=points,
                        box_threshold=check_threshold(prompt.box_threshold, "box threshold"),
                        text_threshold=check_threshold(prompt.text_threshold, "text threshold"), detections=dets)
        return image, prompt, run

    def _text_objects(self, image: np.ndarray, key_img: str, prompt: Prompt, selected: Sequence[int] | None,
                      max_objects: int | None, run: _Run) -> tuple[list[Detection], list[int]]:
        """The detections and the indices of those to matte (selection, top-k and the box limit)."""
        if prompt.detections:
            detections = list(prompt.detections)
        elif prompt.text:
            detections = self._detect_for(image, key_img, prompt, run)
        else:
            return [], []
        if selected is not None:
            bad = [i for i in selected if not 0 <= int(i) < len(detections)]
            if bad:
                raise PromptError(f"selected detection(s) {bad[:10]} do not exist; there are {len(detections)}")
            return detections, sorted({int(i) for i in selected})
        room = max(0, self.max_boxes - len(prompt.boxes))
        k = room if max_objects is None else min(room, max(1, int(max_objects)))
        chosen = top_scoring(detections, range(len(detections)), k)
        if max_objects is None and len(detections) > k:
            run.notices.append(f"found {len(detections)} objects; matting the {k} highest-scoring (the limit is "
                               f"{self.max_boxes}); raise the box threshold or pick boxes to choose others")
        return detections, chosen

    def _detect_for(self, image: np.ndarray, key_img: str, prompt: Prompt, run: _Run) -> list[Detection]:
        """Run (or reuse from the cache) the detector for the prompt's text."""
        assert prompt.text
        run.report(0.05, f"Detecting '{prompt.text}'...")
        t0 = time.perf_counter()
        before = self.detector_forwards
        detections: list[Detection] = []
        try:
            detections = self.detect(image, prompt.text, prompt.box_threshold, prompt.text_threshold,
                                     image_key=key_img)
        except NoDetectionError as exc:
            if not (prompt.boxes or prompt.points):
                raise
            run.notices.append(f"{exc}; continuing with the boxes/clicks given")
        run.stats["detector_forwards"] = self.detector_forwards - before
        run.timed("detect", t0)
        if run.stats["detector_forwards"] and self._detector is not None:
            run.timings.update(self._detector.last_timings)
        return detections

    def _derive_boxes(self, image: np.ndarray, key_img: str, variant: str, jobs: list[Job], run: _Run) -> None:
        """Pass 1 of the derived-box rule for click-only objects (cached like any object)."""
        derived = [j for j in jobs if j.derived]
        if not derived:
            return
        run.report(0.2, "Finding the clicked object...")
        t0 = time.perf_counter()
        first = self._mattes(image, key_img, variant, [(j.box, j.points) for j in derived], run,
                             stage="Finding the clicked")
        for j, (entry, _) in zip(derived, first):
            j.box, how = derive_box(entry.mask, entry.alpha, j.points)
            if how != "mask":
                run.notices.append(f"clicked object: box derived from the {how} (the first pass's mask did "
                                   "not cover the click)")
        run.timed("derive_box", t0)

    def _mattes(self, image: np.ndarray, key_img: str, variant: str,
                requests: list[tuple[Sequence[float], tuple[tuple[float, float, int], ...]]],
                run: _Run, stage: str = "Matting") -> list[tuple[Entry, bool]]:
        """Cached mattes for (box, points) requests; misses go to the predictor in one call (one
        per object when ``run`` has a progress listener)."""
        from semat.inference.predictor import PointPrompt

        keys = [(key_img, variant, box_key(b), tuple(p)) for b, p in requests]
        out: dict[int, tuple[Entry, bool]] = {}
        missing: dict[tuple, list[int]] = {}
        for i, k in enumerate(keys):
            entry = self._cache.get(k)
            if entry is not None:
                out[i] = (entry, True)
                run.stats["cache_hits"] += 1
            else:
                missing.setdefault(k, []).append(i)
        if missing:
            if variant not in self._predictors:
                run.report(None, f"Loading SEMat ({variant})...")
            t0 = time.perf_counter()
            pred = self.predictor(variant)
            run.timed("load_model", t0)
            todo = list(missing)
            boxes = np.array([requests[missing[k][0]][0] for k in todo], np.float64)
            pts = [PointPrompt(np.array([[x, y] for x, y, _ in p], np.float64).reshape(-1, 2),
                               np.array([lab for _, _, lab in p], np.int64)) if p else None
                   for p in (requests[missing[k][0]][1] for k in todo)]
            # a listener hears of each object ("Matting object 2 of 5..."): one predict call per object
            step = 1 if run.progress is not None else len(todo)
            results = []
            for a in range(0, len(todo), step):
                if run.progress is not None:
                    run.report(None, f"{stage} object {a + 1} of {len(todo)}...")
                chunk = pts[a:a + step]
                results += pred.predict(image, boxes[a:a + step], batch_size=self.batch_size,
                                        points=chunk if any(p is not None for p in chunk) else None)
            self.model_forwards += len(todo)
            run.stats["model_forwards"] += len(todo)
            for k, r in zip(todo, results):
                entry = Entry(np.asarray(r.alpha, np.float32), np.asarray(r.mask, bool))
                self._cache.put(k, entry)
                for i in missing[k]:
                    out[i] = (entry, False)
        return [out[i] for i in range(len(keys))]

    def _result(self, image: np.ndarray, objects: list[ObjectResult], variant: str, sha: str | None, device: str,
                prompt: Prompt, detections: list[Detection], chosen: list[int], run: _Run, t_start: float,
                stats: dict[str, int] | None = None) -> MatteResult:
        run.report(0.9, "Combining...")
        t0 = time.perf_counter()
        alpha, mask = union(objects, image.shape[:2])
        run.timed("union", t0)
        run.timings["total"] = time.perf_counter() - t_start
        run.report(1.0, "Done")
        return MatteResult(image=image, objects=objects, alpha=alpha, mask=mask, variant=variant,
                           checkpoint_sha256=sha, timings=run.timings, notices=run.notices, prompt=prompt,
                           device_label=device, detections=detections, stats={**run.stats, **(stats or {})},
                           detector=self._detector.name if prompt.text and self._detector is not None else None,
                           selected=list(chosen))


def top_scoring(detections: Sequence[Detection], idx: Sequence[int] | range, k: int) -> list[int]:
    """The ``k`` highest-scoring of the detections ``idx``, back in detection order."""
    return sorted(sorted(idx, key=lambda i: -float(detections[i].score))[:max(0, k)])
