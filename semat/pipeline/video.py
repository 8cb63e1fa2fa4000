"""Objects through a video: boxes carried from frame to frame by the previous frame's alpha.

:class:`ObjectTracker` turns a stream of RGB frames into one alpha per frame for the objects
named by words (GroundingDINO on the first frame) or given as boxes. The rule per frame:

1. **Boxes.** Frame 0 takes the detections (``text``) or the given boxes. Every later frame
   takes, per object, the bounding box of the previous frame's alpha (``alpha >= 0.5``) grown by
   ``margin`` of its width/height on each side (at least ``min_margin_px``), clipped to the
   frame — the *propagated* box. ``rule="independent"`` instead detects on every frame (the
   comparison in ``benchmarks/bench_video.py``).
2. **SEMat** runs once per frame on all objects' boxes (one batched ``predict``).
3. **Re-detection** (words only) every ``redetect_every`` frames, and at once, on the same frame,
   for an object whose alpha *vanished* (its area fell below ``vanish_ratio`` of the previous
   frame's, or to nothing) or *jumped* (the IoU of its alpha box with the previous one fell below
   ``jump_iou``). Detections are matched to objects by label and box IoU (greedy, best first,
   at least ``match_iou``); a matched object whose propagated box still overlaps its detection by
   ``keep_iou`` keeps the propagated box (no flicker at re-detection frames), otherwise it takes
   the detection's box and SEMat runs again for it. Unmatched detections become new objects
   (up to ``max_objects``); an object lost and not re-found for ``patience`` frames is dropped.
   With boxes only there is no detector: a lost object keeps its last good box.

The frame's alpha is the union of the objects' alphas (sum clipped to 1), as for a photo.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from semat.errors import InputError, NoDetectionError

__all__ = ["FrameResult", "ObjectTracker", "Track", "TrackConfig", "alpha_box", "box_iou", "grow_box"]

Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class TrackConfig:
    margin: float = 0.10
    min_margin_px: float = 4.0
    redetect_every: int = 30  # frames; 0: only when an object is lost
    vanish_ratio: float = 0.25
    jump_iou: float = 0.3
    match_iou: float = 0.3
    keep_iou: float = 0.5
    patience: int = 15
    alpha_threshold: float = 0.5
    rule: str = "propagate"  # or "independent" (detect on every frame)

    def __post_init__(self) -> None:
        if self.rule not in ("propagate", "independent"):
            raise InputError(f"unknown box rule {self.rule!r}; use propagate or independent")
        if self.margin < 0 or self.redetect_every < 0 or self.patience < 0:
            raise InputError("margin, redetect_every and patience must not be negative")


@dataclass
class Track:
    id: int
    label: str
    box: Box  # the box SEMat gets on the next frame
    score: float | None = None
    area: float = 0.0  # pixels of the last alpha >= threshold
    alpha_box: Box | None = None  # last frame's alpha box
    lost: int = 0  # consecutive frames without a usable alpha


@dataclass
class FrameResult:
    index: int
    alpha: np.ndarray  # HxW float32, union
    tracks: list[dict]  # id, label, box used, score, area, redetected
    redetected: bool
    timings: dict[str, float] = field(default_factory=dict)


def box_iou(a: Box | None, b: Box | None) -> float:
    if a is None or b is None:
        return 0.0
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def alpha_box(alpha: np.ndarray, threshold: float = 0.5) -> tuple[Box | None, float]:
    """The bounding box (xyxy, exclusive right/bottom) of ``alpha >= threshold`` and its area."""
    on = alpha >= threshold
    area = float(on.sum())
    if not area:
        return None, 0.0
    rows, cols = np.flatnonzero(on.any(1)), np.flatnonzero(on.any(0))
    return (float(cols[0]), float(rows[0]), float(cols[-1] + 1), float(rows[-1] + 1)), area


def _centre(b: Box) -> tuple[float, float]:
    return (b[0] + b[2]) / 2, (b[1] + b[3]) / 2


def grow_box(box: Box, hw: tuple[int, int], margin: float, min_px: float) -> Box:
    h, w = hw
    x1, y1, x2, y2 = box
    mx, my = max(min_px, (x2 - x1) * margin), max(min_px, (y2 - y1) * margin)
    return (max(0.0, x1 - mx), max(0.0, y1 - my), min(float(w), x2 + mx), min(float(h), y2 + my))


class ObjectTracker:
    """Per-frame SEMat mattes of the objects named by ``text`` or given as ``boxes`` (module
    docstring). ``pipeline`` is a :class:`~semat.pipeline.MattingPipeline` (its detector and its
    SEMat predictors are used directly; frames are not cached)."""

    def __init__(self, pipeline: Any, *, text: str | None = None, boxes: list[Box] | None = None,
                 variant: str | None = None, box_threshold: float = 0.35, text_threshold: float = 0.25,
                 max_objects: int | None = None, config: TrackConfig | None = None, batch_size: int = 4):
        from semat import registry
        from semat.validate import check_text, check_threshold

        self.pipe = pipeline
        self.text = check_text(text) if text is not None else None
        self.initial_boxes = [tuple(float(v) for v in b) for b in (boxes or [])]
        if not self.text and not self.initial_boxes:
            raise InputError("give words (--text) or a box (--box) to say what to follow")
        self.variant = variant or registry.default("semat")
        self.box_threshold = check_threshold(box_threshold, "box threshold")
        self.text_threshold = check_threshold(text_threshold, "text threshold")
        self.max_objects = min(int(max_objects or pipeline.max_boxes), pipeline.max_boxes)
        self.config = config or TrackConfig()
        if self.config.rule == "independent" and not self.text:
            raise InputError("the independent rule detects on every frame, so it needs words")
        self.batch_size = batch_size
        self.tracks: list[Track] = []
        self._next_id = 0
        self.index = -1
        self.stats = {"frames": 0, "detections": 0, "semat_objects": 0, "redetect_lost": 0}

    def __getstate__(self) -> dict[str, Any]:
        """Pickled without its pipeline: the app's ZeroGPU worker gets the tracker between chunks
        of frames and sets ``pipe`` to its own before stepping it."""
        return {**self.__dict__, "pipe": None}

    # ------------------------------------------------------------------------------ pieces
    def _detect(self, frame: np.ndarray) -> list[Any]:
        self.stats["detections"] += 1
        try:
            dets = self.pipe.detect(frame, self.text, self.box_threshold, self.text_threshold, raise_if_empty=False)
        except NoDetectionError:
            dets = []
        return sorted(dets, key=lambda d: -float(d.score))

    def _new_track(self, box: Box, label: str, score: float | None) -> Track:
        t = Track(self._next_id, label, box, score)
        self._next_id += 1
        return t

    def _matte(self, frame: np.ndarray, boxes: list[Box]) -> list[np.ndarray]:
        from semat.validate import check_boxes

        if not boxes:
            return []
        hw = frame.shape[:2]
        checked = check_boxes(boxes, hw, max_boxes=None, notices=[], dedupe=False)
        pred = self.pipe.predictor(self.variant)
        out = pred.predict(frame, checked, batch_size=self.batch_size)
        self.stats["semat_objects"] += len(boxes)
        return [np.asarray(o.alpha, np.float32) for o in out]

    def _match(self, dets: list[Any], candidates: list[Track], lost: bool = False) -> dict[int, Any]:
        """Track id → detection: same label, greedy by IoU (at least ``match_iou``). A *lost*
        object may also take, failing that, the nearest same-label detection that no other
        object's box overlaps (it moved further than its box)."""
        others = [t for t in self.tracks if t not in candidates]
        pairs = []
        for t in candidates:
            ref = t.alpha_box or t.box
            for j, d in enumerate(dets):
                if d.label != t.label and t.label:
                    continue
                iou = box_iou(ref, tuple(d.box))
                if iou >= self.config.match_iou:
                    pairs.append((1.0 + iou, t.id, j))
                elif lost and not any(box_iou(tuple(d.box), o.alpha_box or o.box) >= self.config.match_iou
                                      for o in others):
                    (ax, ay), (bx, by) = _centre(ref), _centre(tuple(d.box))
                    pairs.append((1.0 / (1.0 + float(np.hypot(ax - bx, ay - by))), t.id, j))
        used_t, used_d, out = set(), set(), {}
        for _, tid, j in sorted(pairs, reverse=True):
            if tid in used_t or j in used_d:
                continue
            used_t.add(tid)
            used_d.add(j)
            out[tid] = dets[j]
        return out

    # -------------------------------------------------------------------------------- step
    def step(self, frame: np.ndarray) -> FrameResult:
        """The alpha of the next frame."""
        from semat.validate import check_image

        frame = check_image(frame)
        self.index += 1
        self.stats["frames"] += 1
        hw = frame.shape[:2]
        cfg = self.config
        t0 = time.perf_counter()
        timings = {"detect": 0.0, "semat": 0.0}
        redetected = False
        redone: set[int] = set()

        def detect_now() -> list[Any]:
            nonlocal redetected
            t = time.perf_counter()
            dets = self._detect(frame)
            timings["detect"] += time.perf_counter() - t
            redetected = True
            return dets

        if self.index == 0:
            if self.text:
                dets = detect_now()
                if not dets and not self.initial_boxes:
                    raise NoDetectionError(f"no {self.text!r} found on the first frame at box threshold "
                                           f"{self.box_threshold:.2f}; lower --box-threshold or give --box")
                self.tracks = [self._new_track(tuple(d.box), d.label, float(d.score))
                               for d in dets[:self.max_objects]]
            self.tracks += [self._new_track(b, f"box {i + 1}", None) for i, b in enumerate(self.initial_boxes)]
            self.tracks = self.tracks[:self.max_objects]
        elif self.text and (cfg.rule == "independent"
                            or (cfg.redetect_every and self.index % cfg.redetect_every == 0)):
            self._apply_detections(detect_now(), hw, redone, replace_all=cfg.rule == "independent")

        alphas = self._run(frame, timings)
        # vanished or jumped: re-detect on this same frame and redo those objects
        bad = [t for t, a in zip(self.tracks, alphas) if self._lost(t, a)]
        if bad and self.text and cfg.rule == "propagate":
            self.stats["redetect_lost"] += 1
            ids = self._apply_detections(detect_now(), hw, redone, only=bad)
            if ids:
                fresh = self._run(frame, timings, only=ids)
                alphas = [fresh.get(t.id, a) if t.id in ids else a for t, a in zip(self.tracks, alphas)]
                if len(alphas) < len(self.tracks):  # new objects found by the re-detection
                    alphas += [fresh[t.id] for t in self.tracks[len(alphas):]]
        return self._finish(frame, alphas, redetected, redone, timings, t0)

    def _run(self, frame: np.ndarray, timings: dict, only: set[int] | None = None):
        t = time.perf_counter()
        todo = [tr for tr in self.tracks if only is None or tr.id in only]
        alphas = self._matte(frame, [tr.box for tr in todo])
        timings["semat"] += time.perf_counter() - t
        if only is None:
            return alphas
        return {tr.id: a for tr, a in zip(todo, alphas)}

    def _lost(self, t: Track, alpha: np.ndarray) -> bool:
        box, area = alpha_box(alpha, self.config.alpha_threshold)
        if box is None:
            return True
        if t.area and area < self.config.vanish_ratio * t.area:
            return True
        return t.alpha_box is not None and box_iou(box, t.alpha_box) < self.config.jump_iou

    def _apply_detections(self, dets: list[Any], hw: tuple[int, int], redone: set[int],
                          only: list[Track] | None = None, replace_all: bool = False) -> set[int]:
        """Match detections to tracks; returns the ids whose box changed (to be matted again)."""
        if replace_all:  # independent rule: this frame's detections are the objects
            return self._replace_all(dets, redone)
        candidates = only if only is not None else self.tracks
        matched = self._match(dets, candidates, lost=only is not None)
        changed: set[int] = set()
        for t in candidates:
            d = matched.get(t.id)
            if d is None:
                continue
            if replace_all or only is not None or box_iou(t.box, tuple(d.box)) < self.config.keep_iou:
                t.box, t.score = tuple(float(v) for v in d.box), float(d.score)
                changed.add(t.id)
        taken = {id(d) for d in matched.values()}
        # objects the detector finds that no track owns (not during the independent rule's
        # replacement of the same objects)
        for d in dets:
            if len(self.tracks) >= self.max_objects:
                break
            if id(d) in taken or any(box_iou(tuple(d.box), t.alpha_box or t.box) >= self.config.match_iou
                                     for t in self.tracks):
                continue
            t = self._new_track(tuple(float(v) for v in d.box), d.label, float(d.score))
            self.tracks.append(t)
            changed.add(t.id)
        redone |= changed
        return changed

    def _replace_all(self, dets: list[Any], redone: set[int]) -> set[int]:
        """Every object takes this frame's detection (ids kept by IoU with the last detection box);
        objects without one are dropped."""
        pairs = sorted(((box_iou(t.box, tuple(d.box)), t.id, j) for t in self.tracks for j, d in enumerate(dets)
                        if d.label == t.label), reverse=True)
        by_id = {t.id: t for t in self.tracks}
        used_t, used_d, keep = set(), set(), []
        for iou, tid, j in pairs:
            if iou < self.config.match_iou or tid in used_t or j in used_d:
                continue
            used_t.add(tid)
            used_d.add(j)
            t = by_id[tid]
            t.box, t.score = tuple(float(v) for v in dets[j].box), float(dets[j].score)
            keep.append(t)
        for j, d in enumerate(dets):
            if j not in used_d and len(keep) < self.max_objects:
                keep.append(self._new_track(tuple(float(v) for v in d.box), d.label, float(d.score)))
        self.tracks = keep
        ids = {t.id for t in keep}
        redone |= ids
        return ids

    def _finish(self, frame, alphas, redetected, redone, timings, t0) -> FrameResult:
        hw = frame.shape[:2]
        cfg = self.config
        union = np.zeros(hw, np.float32)
        report, keep = [], []
        for t, a in zip(self.tracks, alphas):
            used = t.box
            union += a
            box, area = alpha_box(a, cfg.alpha_threshold)
            if box is None or (t.area and area < cfg.vanish_ratio * t.area):
                t.lost += 1  # keep the last good box (and area) for the next frame
            else:
                t.lost, t.area, t.alpha_box = 0, area, box
                if cfg.rule == "propagate":
                    t.box = grow_box(box, hw, cfg.margin, cfg.min_margin_px)
            report.append({"id": t.id, "label": t.label, "box": [round(v, 1) for v in used], "score": t.score,
                           "area": area, "redetected": t.id in redone})
            if not (self.text and t.lost > cfg.patience):
                keep.append(t)
        self.tracks = keep
        np.clip(union, 0.0, 1.0, out=union)
        timings["total"] = time.perf_counter() - t0
        return FrameResult(self.index, union, report, redetected, timings)
