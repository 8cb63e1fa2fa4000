"""Text → boxes with the GroundingDINO family (the transformers implementations, no custom CUDA op).

``TextDetector.from_pretrained("mm-grounding-dino-tiny")`` (the default: OpenMMLab's
MM-Grounding-DINO Swin-T, 50.6 COCO / 40.5 LVIS-minival zero-shot AP against GroundingDINO-T's
48.4 / 28.8), ``"grounding-dino-tiny"`` / ``"grounding-dino-base"`` (IDEA-Research's originals) or
``"llmdet-tiny"`` fetch the model repository through :mod:`semat.weights.hub` into the weights
folder, like every other checkpoint. All of them load through transformers'
``AutoModelForZeroShotObjectDetection`` (``GroundingDinoForObjectDetection`` /
``MMGroundingDinoForObjectDetection``) with a ``GroundingDinoProcessor`` (BERT tokenizer), so the
forward and the post-processing below are the same. :meth:`TextDetector.detect` returns
labelled, scored, de-duplicated boxes in original image pixels.

Input size: the processor resizes the shortest side to 800 px (longest at most 1333), as the
models were trained; ``shortest_side=640`` (or any size) trades some accuracy on small objects
for ~1.5x less compute, e.g. on CPU (see ``benchmarks/bench_detect.py``).

Prompt text. Phrases are separated by ``.`` (GroundingDINO's convention, ``"cat. dog."``);
commas, semicolons and new lines are accepted as separators too, and a trailing ``.`` is added.

Post-processing (our own, so it does not depend on the drifting
``post_process_grounded_object_detection`` keyword names):

* a query's **score** is its highest token probability over the prompt's tokens; queries with
  ``score <= box_threshold`` are dropped;
* its **label** is the phrase (as the user wrote it) that holds its highest-probability token
  among the tokens with probability ``> text_threshold``; a query with no token above
  ``text_threshold`` is dropped (it is not grounded in any phrase);
* boxes are converted to ``xyxy`` pixels, clipped to the image, and boxes under 2 px dropped;
* **duplicates**: greedy NMS, by score, removes a box overlapping a kept box of the *same label*
  with IoU > ``iou_threshold`` (0.5), or of *any label* with IoU > ``cross_label_iou`` (0.85),
  so "cat. animal." does not return the same cat twice; at most ``max_detections`` remain.

When nothing survives, :class:`NoDetectionError` says what to change (lower the box threshold,
or draw a box) and reports the best candidate's score.
"""

from __future__ import annotations

import re
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from semat.errors import InputError, NoDetectionError
from semat.testing import TINY_MODEL_TYPES, tiny_config, write_tiny_vocab
from semat.validate import check_image, check_threshold

DETECTOR_NAMES = ("mm-grounding-dino-tiny", "grounding-dino-tiny", "grounding-dino-base", "llmdet-tiny")
DEFAULT_DETECTOR = "mm-grounding-dino-tiny"
# transformers model types that run through this wrapper (same processor, same outputs).
MODEL_TYPES = ("grounding-dino", "mm-grounding-dino")
DEFAULT_SHORTEST_SIDE = 800
_LONGEST_PER_SHORTEST = 1333 / 800  # the processors' default longest_edge for shortest_edge 800
# HF GroundingDINO hard-codes these token ids ([CLS], [SEP], '.', '?') for phrase splitting.
SPECIAL_TOKEN_IDS = (101, 102, 1012, 1029)
MAX_TEXT_TOKENS = 256


@dataclass(frozen=True)
class Detection:
    box: tuple[float, float, float, float]  # x1, y1, x2, y2 in original pixels
    label: str
    score: float


def split_phrases(text: str) -> list[str]:
    """``"a cat. dog, the ball"`` → ``["a cat", "dog", "the ball"]`` (empty parts dropped)."""
    parts = re.split(r"[.,;\n?]+", text or "")
    return [" ".join(p.split()) for p in parts if p.strip()]


def normalise_prompt(text: str) -> str:
    """The GroundingDINO form of a prompt: lower case, phrases joined by ``". "``, final ``"."``."""
    phrases = split_phrases(text)
    if not phrases:
        raise InputError("the text prompt is empty; type what to cut out, e.g. 'cat' or 'cat. dog.'")
    return ". ".join(p.lower() for p in phrases) + "."


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of ``[N,4]`` and ``[M,4]`` xyxy boxes."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def deduplicate(detections: list[Detection], iou_threshold: float = 0.5, cross_label_iou: float = 0.85,
                max_detections: int | None = None) -> list[Detection]:
    """Greedy NMS by score: same-label overlaps above ``iou_threshold`` and any-label overlaps
    above ``cross_label_iou`` are removed. Returns the kept detections by decreasing score."""
    if not detections:
        return []
    order = sorted(range(len(detections)), key=lambda i: -detections[i].score)
    boxes = np.array([detections[i].box for i in order], np.float64)
    iou = box_iou(boxes, boxes)
    kept: list[int] = []
    for j in range(len(order)):
        dup = False
        for k in kept:
            same = detections[order[j]].label == detections[order[k]].label
            if iou[j, k] > (iou_threshold if same else cross_label_iou):
                dup = True
                break
        if not dup:
            kept.append(j)
            if max_detections is not None and len(kept) >= max_detections:
                break
    return [detections[order[j]] for j in kept]


def set_shortest_side(processor: Any, shortest_side: int | None) -> None:
    """Resize inputs to ``shortest_side`` px (longest side at most 1333/800 of it); None keeps the
    processor's own setting (800 for the released models)."""
    if shortest_side is None:
        return
    side = int(shortest_side)
    if not 32 <= side <= 4096:
        raise InputError(f"detector input size must be between 32 and 4096 px, got {shortest_side!r}")
    processor.image_processor.size = {"shortest_edge": side, "longest_edge": round(side * _LONGEST_PER_SHORTEST)}


class TextDetector:
    """GroundingDINO-family wrapper: ``detect(image, "cat. dog.")`` → list of :class:`Detection`.

    Precision: the runtime's dtype (under ``auto``, bf16 on CUDA and on native-bf16 CPUs, where it
    was measured 0.60-0.69x the fp32 time on AMX and on AVX512-BF16; see :mod:`semat.runtime`).
    A reduced dtype casts the weights once and runs the forward under autocast, so ops without a
    fast bf16 kernel stay fp32; on CPU the linear layers then run through oneDNN with
    the bias in the matmul's epilogue (:func:`semat.models.precision.reduce_precision`, bit-identical).
    """

    def __init__(self, model: Any, processor: Any, runtime: Any = None, name: str = "",
                 shortest_side: int | None = None):
        import torch

        from semat.models.precision import reduce_precision
        from semat.runtime import Runtime, select_runtime

        self.runtime: Runtime = runtime or select_runtime("cpu")
        self.model = model.to(self.runtime.device).eval()
        if self.runtime.dtype != torch.float32:
            reduce_precision(self.model, self.runtime.dtype)
        self.processor = processor
        self.name = name
        self.calls = 0  # model forwards, for cache tests and timing reports
        self.last_timings: dict[str, float] = {}
        self._lock = threading.Lock()
        set_shortest_side(processor, shortest_side)

    @property
    def shortest_side(self) -> int | None:
        size = getattr(self.processor.image_processor, "size", None)
        side = size.get("shortest_edge") if isinstance(size, dict) else getattr(size, "shortest_edge", None)
        return int(side) if side else None

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_pretrained(cls, name: str = DEFAULT_DETECTOR, runtime: Any = None, progress: Any = None,
                        device: str = "auto", dtype: Any = None, shortest_side: int | None = None) -> TextDetector:
        """Load a registered detector (``mm-grounding-dino-tiny``, ``grounding-dino-tiny``,
        ``grounding-dino-base``, ``llmdet-tiny``; also ``tiny``/``base`` and the Hub ids) or a local
        folder in transformers format holding a GroundingDINO or MM-Grounding-DINO model.
        ``shortest_side``: input resize (None: the model's own, 800 px)."""
        import json

        from semat.models._compat import import_torchvision
        from semat.runtime import select_runtime
        from semat.weights.hub import resolve

        key = _registry_key(name)
        folder = resolve(key, progress)
        if not folder.is_dir() or not (folder / "config.json").is_file():
            raise InputError(f"{name}: not a GroundingDINO model folder (config.json missing); "
                             f"use one of {', '.join(DETECTOR_NAMES)} or a transformers-format folder")
        try:
            model_type = json.loads((folder / "config.json").read_text(encoding="utf-8")).get("model_type")
        except (OSError, ValueError) as exc:
            raise InputError(f"{name}: unreadable config.json ({exc})") from None
        if model_type not in MODEL_TYPES:
            raise InputError(f"{name}: model type {model_type!r} is not a GroundingDINO-family detector "
                             f"(supported: {', '.join(MODEL_TYPES)})")
        import_torchvision()
        from transformers import AutoModelForZeroShotObjectDetection, GroundingDinoProcessor

        runtime = runtime or select_runtime(device, dtype)
        processor = GroundingDinoProcessor.from_pretrained(str(folder))
        model = AutoModelForZeroShotObjectDetection.from_pretrained(str(folder))
        return cls(model, processor, runtime, name=key, shortest_side=shortest_side)

    @classmethod
    def tiny(cls, seed: int = 0, vocab_file: str | Path | None = None, image_size: int = 96,
             runtime: Any = None, name: str = DEFAULT_DETECTOR, shortest_side: int | None = None) -> TextDetector:
        """Random-weight tiny stand-in of the registered detector ``name`` (its model class, a
        ~2 M-parameter config) with a tokenizer from ``vocab_file`` (a small vocab is written to a
        temporary folder when None; ``shortest_side`` overrides the tiny input size). Boxes are
        random: for tests only."""
        import torch

        from semat.models._compat import import_torchvision

        key = _registry_key(name)
        if key not in TINY_MODEL_TYPES:
            raise InputError(f"no tiny stand-in for detector {name!r}; choose one of {', '.join(TINY_MODEL_TYPES)}")
        model_type = TINY_MODEL_TYPES[key]
        import_torchvision()
        from transformers import (
            AutoModelForZeroShotObjectDetection,
            BertTokenizer,
            GroundingDinoImageProcessor,
            GroundingDinoProcessor,
        )

        if vocab_file is None:
            vocab_file = write_tiny_vocab(tempfile.mkdtemp(prefix="semat-tiny-vocab-"))
        vocab_file = Path(vocab_file)
        tokenizer = BertTokenizer.from_pretrained(str(vocab_file.parent)) if vocab_file.name == "vocab.txt" \
            else BertTokenizer(vocab=str(vocab_file))
        ids = tokenizer.convert_tokens_to_ids(["[CLS]", "[SEP]", ".", "?"])
        if tuple(ids) != SPECIAL_TOKEN_IDS:
            raise InputError(f"{vocab_file}: [CLS] [SEP] . ? must have ids {SPECIAL_TOKEN_IDS}, got {tuple(ids)}")
        image_processor = GroundingDinoImageProcessor(
            size={"shortest_edge": image_size * 2 // 3, "longest_edge": image_size})
        processor = GroundingDinoProcessor(image_processor=image_processor, tokenizer=tokenizer)
        with torch.random.fork_rng(devices=[]):  # CPU only: ZeroGPU's emulated CUDA must not be touched
            torch.manual_seed(seed)
            model = AutoModelForZeroShotObjectDetection.from_config(tiny_config(len(tokenizer), model_type))
        return cls(model, processor, runtime, name=f"{key}-random", shortest_side=shortest_side)

    # -------------------------------------------------------------------- inference
    def raw_scores(self, image: np.ndarray, text: str) -> tuple[np.ndarray, np.ndarray, list[int]]:
        """One forward: per-query token probabilities ``[Q, T]``, boxes ``[Q, 4]`` (xyxy px),
        and the prompt's token ids (length T)."""
        import torch

        image = check_image(image)
        prompt = normalise_prompt(text)
        h, w = image.shape[:2]
        t0 = time.perf_counter()
        inputs = self.processor(images=image, text=prompt, return_tensors="pt")
        if inputs["input_ids"].shape[1] > MAX_TEXT_TOKENS:
            raise InputError(f"the text prompt is too long ({inputs['input_ids'].shape[1]} tokens, "
                             f"at most {MAX_TEXT_TOKENS}); use fewer or shorter phrases")
        inputs = {k: v.to(self.runtime.device) for k, v in inputs.items()}
        t1 = time.perf_counter()
        dtype = self.runtime.dtype
        with self._lock, torch.inference_mode(), torch.autocast(self.runtime.device.type, dtype=dtype,
                                                                enabled=dtype != torch.float32):
            out = self.model(**inputs)
            self.calls += 1
        t2 = time.perf_counter()
        ids = inputs["input_ids"][0].tolist()
        logits = out.logits[0, :, : len(ids)].float()
        probs = torch.sigmoid(logits).cpu().numpy()
        cxcywh = out.pred_boxes[0].float().cpu().numpy().astype(np.float64)
        boxes = np.stack([cxcywh[:, 0] - cxcywh[:, 2] / 2, cxcywh[:, 1] - cxcywh[:, 3] / 2,
                          cxcywh[:, 0] + cxcywh[:, 2] / 2, cxcywh[:, 1] + cxcywh[:, 3] / 2], 1)
        boxes *= np.array([w, h, w, h], np.float64)
        self.last_timings = {"detect_preprocess": t1 - t0, "detect_forward": t2 - t1}
        return probs, boxes, ids

    def detect(self, image: np.ndarray, text: str, box_threshold: float = 0.35, text_threshold: float = 0.25,
               iou_threshold: float = 0.5, cross_label_iou: float = 0.85, max_detections: int | None = 20,
               raise_if_empty: bool = True) -> list[Detection]:
        """Labelled, scored, de-duplicated boxes for ``text`` (see the module docstring).

        Raises :class:`NoDetectionError` when nothing passes (unless ``raise_if_empty=False``).
        """
        image = check_image(image)
        check_threshold(box_threshold, "box threshold")  # fail before the (slow) forward
        check_threshold(text_threshold, "text threshold")
        probs, boxes, ids = self.raw_scores(image, text)
        t0 = time.perf_counter()
        dets = postprocess(probs, boxes, ids, text, image.shape[:2], box_threshold, text_threshold,
                           iou_threshold, cross_label_iou, max_detections, raise_if_empty)
        self.last_timings["detect_postprocess"] = time.perf_counter() - t0
        return dets


def _registry_key(name: str) -> str:
    """Registry name for ``name`` (also the short forms ``tiny``/``base`` and the Hub ids)."""
    key = str(name).strip()
    if key in ("tiny", "base"):
        return f"grounding-dino-{key}"
    if key in ("mm-tiny", "openmmlab-community/mm_grounding_dino_tiny_o365v1_goldg_v3det"):
        return "mm-grounding-dino-tiny"
    if key == "iSEE-Laboratory/llmdet_tiny":
        return "llmdet-tiny"
    return key.removeprefix("IDEA-Research/")


def postprocess(probs: np.ndarray, boxes: np.ndarray, ids: list[int], text: str, image_hw: tuple[int, int],
                box_threshold: float = 0.35, text_threshold: float = 0.25, iou_threshold: float = 0.5,
                cross_label_iou: float = 0.85, max_detections: int | None = 20,
                raise_if_empty: bool = True) -> list[Detection]:
    """Thresholds, labels and de-duplication on one forward's output (:meth:`TextDetector.raw_scores`).

    Separate from the forward so a caller can cache the forward and re-threshold for free.
    """
    bt = check_threshold(box_threshold, "box threshold")
    tt = check_threshold(text_threshold, "text threshold")
    dets, best = decode(probs, boxes, ids, split_phrases(text), bt, tt, image_hw)
    dets = deduplicate(dets, iou_threshold, cross_label_iou, max_detections)
    if not dets and raise_if_empty:
        raise NoDetectionError(no_detection_message(text, bt, best, tt), best)
    return dets


def phrase_index_per_token(ids: list[int], n_phrases: int) -> np.ndarray:
    """For each token: the index of the phrase it belongs to, or -1 for special/separator tokens."""
    out = np.full(len(ids), -1, np.int64)
    k = 0
    for i, t in enumerate(ids):
        if t in (101, 0):  # [CLS], [PAD]
            continue
        if t == 102:  # [SEP]
            break
        if t in (1012, 1029):  # '.' / '?' end a phrase
            k += 1
            continue
        if k < n_phrases:
            out[i] = k
    return out


def decode(probs: np.ndarray, boxes: np.ndarray, ids: list[int], phrases: list[str], box_threshold: float,
           text_threshold: float, image_hw: tuple[int, int]) -> tuple[list[Detection], float]:
    """Turn per-query token probabilities into detections (before de-duplication).

    Returns the detections and the best score among all queries (for the no-detection message).
    """
    h, w = image_hw
    token_phrase = phrase_index_per_token(ids, len(phrases))
    valid = token_phrase >= 0
    if not valid.any():
        return [], 0.0
    p = np.where(valid[None, :], probs, 0.0)
    scores = p.max(1)
    best = float(scores.max()) if len(scores) else 0.0
    dets: list[Detection] = []
    for q in np.nonzero(scores > box_threshold)[0]:
        above = (p[q] > text_threshold) & valid
        if not above.any():
            continue
        tok = int(np.argmax(np.where(above, p[q], -1.0)))
        label = phrases[int(token_phrase[tok])]
        x1, y1, x2, y2 = boxes[q]
        x1, x2 = float(np.clip(x1, 0, w)), float(np.clip(x2, 0, w))
        y1, y2 = float(np.clip(y1, 0, h)), float(np.clip(y2, 0, h))
        if x2 - x1 < 2 or y2 - y1 < 2:
            continue
        dets.append(Detection((x1, y1, x2, y2), label, float(scores[q])))
    return dets, best


def no_detection_message(text: str, box_threshold: float, best_score: float | None,
                         text_threshold: float | None = None) -> str:
    """One line: what was not found, the best candidate's score, and what to change."""
    shown = "; ".join(split_phrases(text)) or text
    best = f" (best candidate scored {best_score:.2f})" if best_score is not None else ""
    if best_score is not None and best_score > box_threshold and text_threshold is not None:
        advice = f"lower the text threshold (now {text_threshold:.2f})"
    elif best_score:
        advice = f"lower the box threshold to about {max(0.01, np.floor(best_score * 100) / 100 - 0.01):.2f}"
    else:
        advice = "lower the box threshold"
    return (f"no '{shown}' found at box threshold {box_threshold:.2f}{best}; {advice}, rephrase the "
            "prompt, or draw a box around the object instead")
