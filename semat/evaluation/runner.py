"""Benchmark evaluation: the SEMat paper's six test sets, and scoring of any prediction folder.

Two entry points (the ``semat eval`` command wraps both):

* :func:`evaluate_dataset` runs a SEMat model over one of the paper's test sets (:data:`DATASETS`)
  and scores every image twice:

  - ``paper``: the SEMat evaluator's protocol (``AdobeCompositionEvaluator``): metrics on the
    model's working frame (longest side ``img_size`` = 1024 for the released models), padding
    cropped, prediction rounded to 8 bits (``uint8(alpha*255+0.5)``), ground truth resized
    bilinearly (``F.interpolate``, ``align_corners=False``, on the float alpha) and not rounded, whole
    image scored (its "detailmap" is all-unknown);
  - ``orig``: the same metric functions at the original resolution, against the original ground
    truth, with the prediction upsampled to the original size and also rounded to 8 bits (what a
    saved 8-bit PNG holds); with ``convention="sghm"`` the float32 alpha is scored unrounded, as
    SGHM's ``test_image.py`` does.

  The box prompt is the tight extent of the ground-truth alpha, as in the reference evaluation.
  Metrics use :mod:`semat.evaluation.metrics` with the ``semat`` convention by default (the paper's numbers);
  ``convention="sghm"`` switches both protocols to the SGHM conventions.

  Pre-processing (``preprocess``):

  - ``"reference"`` (default) reproduces the evaluator exactly: the image is converted with
    ``to_tensor`` and resized with ``F.interpolate`` (bilinear, float), the alpha likewise, and the
    box is the nonzero extent of the *resized* alpha in the working frame (``[min_x, min_y, max_x,
    max_y]``, inclusive; all zeros for an empty alpha). The model is called directly. The
    original-resolution alpha is the cropped frame resized back with ``cv2.resize`` INTER_LINEAR
    (exactly what :class:`~semat.inference.predictor.SEMatPredictor` does).
  - ``"app"`` scores what the app produces: :meth:`SEMatPredictor.predict` (``cv2.resize`` on the
    uint8 image, as the demo) with the box ``[min_x, min_y, max_x+1, max_y+1]`` of the original
    alpha's nonzero pixels; ``paper`` uses its ``debug["alpha_frame"]`` / ``debug["resized_hw"]``,
    ``orig`` its ``ObjectMatte.alpha``. An empty ground truth cannot be boxed and is skipped.

  Results go to ``out_dir``: ``per_image.csv`` (one row per sample, written as it is scored),
  ``run.json`` (the settings; a rerun with the same settings resumes, skipping scored samples),
  ``summary.json`` and ``summary.md``. Missing, unreadable or mismatched files are reported in the
  CSV and the summary and skipped.

* :func:`score_folders` scores a folder of predicted alphas against a ground-truth folder (optionally
  with trimaps), pairing files by stem; the prediction is scored as stored (no resizing).

Images are read without applying EXIF orientation, like the reference (``PIL.Image.open``), so that
they stay aligned with their ground truth.
"""

from __future__ import annotations

import csv
import json
import math
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np
from PIL import Image

from semat.errors import InputError, SampleError
from semat.evaluation import metrics as M

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
PROTOCOLS = ("paper", "orig")
PREPROCESS = ("reference", "app")


# ------------------------------------------------------------------------------------------ layouts
@dataclass(frozen=True)
class DatasetLayout:
    """Where a test set keeps its images and alphas, relative to ``--root``."""

    name: str
    title: str
    base: str                     # folder under the root ("" for SIM's per-category folders)
    image_dir: str
    alpha_dir: str
    categories: bool = False      # SIM: base/<category>/{image_dir, alpha_dir}
    instance_suffix: bool = False  # RW100: alpha "<image stem>_<k>" belongs to image "<image stem>"

    def describe(self) -> str:
        mid = f"{self.base}/<category>" if self.categories else self.base
        return f"{mid}/{{{self.image_dir},{self.alpha_dir}}}"


DATASETS: dict[str, DatasetLayout] = {d.name: d for d in (
    DatasetLayout("AIM500", "AIM-500", "AIM-500", "original", "mask"),
    DatasetLayout("RW100", "RefMatte-RW100", "RefMatte_RW_100", "image", "mask", instance_suffix=True),
    DatasetLayout("AM2K", "AM-2K", "AM-2K/validation", "original", "mask"),
    DatasetLayout("P3M500", "P3M-500-NP", "P3M-10k/validation/P3M-500-NP", "original_image", "mask"),
    DatasetLayout("RWP636", "RWP-636", "RealWorldPortrait-636", "image", "alpha"),
    DatasetLayout("SIM", "SIM", "SIMD/generated_testset", "merged", "alpha", categories=True),
)}


def dataset_layout(name: str) -> DatasetLayout:
    key = name.upper().replace("-", "").replace("_", "")
    aliases = {"AIM": "AIM500", "REFMATTERW100": "RW100", "P3M500NP": "P3M500", "P3M": "P3M500",
               "RWP": "RWP636", "SIMD": "SIM", "AM": "AM2K"}
    key = aliases.get(key, key)
    if key not in DATASETS:
        raise InputError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    return DATASETS[key]


@dataclass
class Sample:
    id: str                       # unique within the dataset (SIM: "<category>/<stem>")
    image: Path | None
    alpha: Path | None


@dataclass
class Problem:
    id: str
    path: str
    reason: str


def _image_files(folder: Path) -> dict[str, list[Path]]:
    by_stem: dict[str, list[Path]] = {}
    if folder.is_dir():
        for p in sorted(folder.iterdir()):
            if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_EXTS:
                by_stem.setdefault(p.stem, []).append(p)
    return by_stem


def _dataset_base(layout: DatasetLayout, root: Path) -> Path:
    """``root/<base>``, or ``root`` itself when it already is that folder."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"dataset root {root} is not a folder")
    for cand in (root / layout.base, root):
        if not cand.is_dir():
            continue
        if layout.categories:
            if any((c / layout.alpha_dir).is_dir() for c in cand.iterdir() if c.is_dir()):
                return cand
        elif (cand / layout.image_dir).is_dir() and (cand / layout.alpha_dir).is_dir():
            return cand
    raise InputError(f"{layout.title} not found under {root}: expected {layout.describe()}")


def _pair_folder(image_dir: Path, alpha_dir: Path, prefix: str, instance_suffix: bool,
                 samples: list[Sample], problems: list[Problem]) -> None:
    images, alphas = _image_files(image_dir), _image_files(alpha_dir)
    used_images: set[str] = set()
    for stem, paths in alphas.items():
        sid = prefix + stem
        if len(paths) > 1:
            problems.append(Problem(sid, str(paths[0]), "several alpha files with this name: "
                                    + ", ".join(p.name for p in paths)))
            continue
        key = stem
        if key not in images and instance_suffix:
            m = re.fullmatch(r"(.+)_\d+", stem)
            key = m.group(1) if m else stem
        if key not in images:
            problems.append(Problem(sid, str(paths[0]), f"no image named {key}.* in {image_dir}"))
            continue
        if len(images[key]) > 1:
            problems.append(Problem(sid, str(images[key][0]), "several images with this name: "
                                    + ", ".join(p.name for p in images[key])))
            used_images.add(key)
            continue
        used_images.add(key)
        samples.append(Sample(sid, images[key][0], paths[0]))
    for stem, paths in images.items():
        if stem not in used_images:
            problems.append(Problem(prefix + stem, str(paths[0]), f"no alpha named {stem}.* in {alpha_dir}"))


def discover(name: str, root: str | Path) -> tuple[DatasetLayout, list[Sample], list[Problem]]:
    """All (image, alpha) pairs of a test set, sorted by id, plus the files that could not be paired."""
    layout = dataset_layout(name)
    base = _dataset_base(layout, Path(root))
    samples: list[Sample] = []
    problems: list[Problem] = []
    if layout.categories:
        for cat in sorted(c for c in base.iterdir() if c.is_dir()):
            if (cat / layout.alpha_dir).is_dir() or (cat / layout.image_dir).is_dir():
                _pair_folder(cat / layout.image_dir, cat / layout.alpha_dir, f"{cat.name}/",
                             layout.instance_suffix, samples, problems)
    else:
        _pair_folder(base / layout.image_dir, base / layout.alpha_dir, "", layout.instance_suffix,
                     samples, problems)
    samples.sort(key=lambda s: s.id)
    problems.sort(key=lambda p: p.id)
    return layout, samples, problems


# ------------------------------------------------------------------------------------------ reading
def _open(path: Path, what: str) -> Image.Image:
    try:
        img = Image.open(path)
        img.load()
        return img
    except FileNotFoundError:
        raise SampleError(f"{what} {path} is missing") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise SampleError(f"{what} {path} could not be read ({' '.join(str(exc).split()) or type(exc).__name__})") from None


def read_rgb(path: Path) -> np.ndarray:
    """uint8 HxWx3 RGB, no EXIF orientation (as the reference's ``Image.open``)."""
    return np.asarray(_open(path, "image").convert("RGB"))


def read_alpha(path: Path, what: str = "alpha") -> np.ndarray:
    """An alpha map as uint8 (or uint16 for 16-bit grey files).

    Grey files are used as they are and colour files through ``convert('L')``, as the reference
    evaluators read them. RGBA/LA files (cut-outs written by other tools) give their alpha band,
    unless that band is fully opaque, in which case the colour channels hold the matte.
    """
    img = _open(path, what)
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        a = np.asarray(img)
        if a.dtype != np.uint16:
            if a.min() < 0 or a.max() > 65535:
                raise SampleError(f"{what} {path} has values outside 0..65535")
            a = a.astype(np.uint16)
        return a
    if img.mode in ("RGBA", "LA", "PA"):
        band = np.asarray(img.getchannel("A"))
        if band.min() < 255:
            return band
    if img.mode == "F":
        raise SampleError(f"{what} {path} is a float image; save alphas as 8- or 16-bit PNG")
    return np.asarray(img.convert("L"))


def _to_unit_float32(a: np.ndarray) -> np.ndarray:
    """uint8/uint16 -> float32 in [0,1], computed as torchvision's ``to_tensor`` does (float32 divide)."""
    scale = 255.0 if a.dtype == np.uint8 else 65535.0
    return a.astype(np.float32) / np.float32(scale)


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


# -------------------------------------------------------------------------------- results bookkeeping
BASE_COLUMNS = ["id", "status", "message", "image", "alpha", "width", "height", "box", "seconds"]


def metric_columns(convention: str) -> list[str]:
    return [f"{p}_{k}" for p in PROTOCOLS for k in M.METRIC_KEYS[convention]]


def _read_rows(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        return []
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _row_metrics(row: dict[str, Any], columns: Sequence[str]) -> dict[str, float]:
    out = {}
    for c in columns:
        v = row.get(c)
        if v not in (None, ""):
            try:
                out[c] = float(v)
            except (TypeError, ValueError):
                pass
    return out


@dataclass
class EvalResult:
    """What :func:`evaluate_dataset` returns (and writes to ``summary.json``)."""

    dataset: str
    title: str
    out_dir: str
    settings: dict[str, Any]
    n_samples: int
    n_scored: int
    skipped: list[dict[str, str]] = field(default_factory=list)
    means: dict[str, dict[str, float]] = field(default_factory=dict)   # protocol -> metric -> mean (raw)
    seconds: float = 0.0
    resumed: int = 0

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["units"] = M.UNITS[self.settings.get("convention", "semat")]
        d["paper_units"] = {p: M.paper_units(m, self.settings.get("convention", "semat"))
                            for p, m in self.means.items()}
        return d


def _fmt(v: float) -> str:
    return "—" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.4f}"


def markdown_summary(res: EvalResult) -> str:
    conv = res.settings.get("convention", "semat")
    keys = M.METRIC_KEYS[conv]
    labels = {"MSE": "MSE ×10⁻³", "MAD": "MAD ×10⁻³", "SAD": "SAD", "Grad": "Grad", "Conn": "Conn", "IoU": "IoU %"}
    s = res.settings
    lines = [f"# {res.title}: SEMat ({s.get('variant', '?')}) evaluation", "",
             f"- checkpoint: `{s.get('checkpoint') or 'n/a'}`" + (f" (sha256 {s['checkpoint_sha256'][:12]}…)"
                                                                   if s.get("checkpoint_sha256") else ""),
             f"- images scored: {res.n_scored} of {res.n_samples}" + (f"; skipped {len(res.skipped)}" if res.skipped else ""),
             f"- metrics convention: `{conv}`; pre-processing: `{s.get('preprocess')}`; "
             f"working size {s.get('img_size')}; box = tight ground-truth extent",
             f"- time: {res.seconds:.1f} s", ""]
    lines += ["| protocol | " + " | ".join(labels[k] if conv == "semat" else k for k in keys) + " |",
              "|---|" + "---:|" * len(keys)]
    desc = {"paper": "paper (working frame, 8-bit pred)", "orig": "original resolution"}
    for proto, means in res.means.items():
        shown = M.paper_units(means, conv)
        lines.append(f"| {desc.get(proto, proto)} | " + " | ".join(_fmt(shown.get(k)) for k in keys) + " |")
    lines += ["", "Units: " + ("MSE and MAD ×10⁻³ (raw means ×1000); SAD, Grad and Conn are sums ÷1000, as "
                               "the SEMat evaluator returns them." if conv == "semat"
                               else "SGHM convention: MAD/MSE ×10⁻³, Grad/Conn sums ÷1000, IoU percent."), ""]
    if res.skipped:
        lines += ["## Skipped", ""] + [f"- `{p['id']}`: {p['reason']}" for p in res.skipped] + [""]
    return "\n".join(lines)


def _progress(total: int, initial: int, enabled: bool, desc: str):
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, disable=not enabled, desc=desc, unit="img", dynamic_ncols=True)


def evaluate_dataset(name: str, root: str | Path, matter: Matter, out_dir: str | Path, *,
                     settings: dict[str, Any] | None = None, limit: int | None = None,
                     convention: str = "semat", fresh: bool = False, progress: bool = True,
                     save_alpha: bool = False, log: Callable[[str], None] | None = None) -> EvalResult:
    """Run ``matter`` on a test set and score it (see the module doc). Resumable via ``out_dir``."""
    if convention not in M.CONVENTIONS:
        raise InputError(f"unknown metrics convention {convention!r}; choose one of {', '.join(M.CONVENTIONS)}")
    if limit is not None and limit < 1:
        raise InputError("--limit must be at least 1")
    layout, samples, problems = discover(name, root)
    if limit is not None:
        samples = samples[:limit]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    settings = {"dataset": layout.name, "root": str(Path(root).resolve()), "convention": convention,
                "img_size": int(matter.img_size), **(settings or {})}
    run_file, csv_file = out / "run.json", out / "per_image.csv"
    columns = BASE_COLUMNS + metric_columns(convention)

    done: dict[str, dict[str, str]] = {}
    if not fresh and run_file.is_file():
        try:
            previous = json.loads(run_file.read_text())
        except (OSError, ValueError):
            previous = None
        if previous is not None:
            # The root and checkpoint path may move between runs; the weights' hash may not.
            ignore = {"root"} | ({"checkpoint"} if settings.get("checkpoint_sha256") else set())
            changed = [k for k in settings if k not in ignore and previous.get(k) != settings[k]]
            if changed:
                k = changed[0]
                raise InputError(f"{out} holds results of a different run ({k}: {previous.get(k)!r} there, "
                                 f"{settings[k]!r} now); use another --out or --fresh to start over")
            done = {r["id"]: r for r in _read_rows(csv_file) if r.get("status") == "ok"}
    run_file.write_text(json.dumps(settings, indent=1, default=str) + "\n")

    wanted = {s.id for s in samples}
    done = {k: v for k, v in done.items() if k in wanted}
    # Rewrite the CSV with the kept rows only (failed rows are retried).
    with csv_file.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        for s in samples:
            if s.id in done:
                writer.writerow(done[s.id])
        for p in problems:
            writer.writerow({"id": p.id, "status": "skipped", "message": p.reason, "image": p.path})

    if log and done:
        log(f"resuming: {len(done)} of {len(samples)} images already scored in {csv_file}")
    alpha_dir = out / "alpha"
    rows: dict[str, dict[str, Any]] = {k: dict(v) for k, v in done.items()}
    skipped: list[dict[str, str]] = [{"id": p.id, "reason": p.reason} for p in problems]
    t_start = time.perf_counter()
    todo = [s for s in samples if s.id not in done]
    bar = _progress(len(samples), len(done), progress, layout.title)
    try:
        with csv_file.open("a", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
            for s in todo:
                t0 = time.perf_counter()
                row: dict[str, Any] = {"id": s.id, "image": str(s.image), "alpha": str(s.alpha)}
                try:
                    gt = read_alpha(s.alpha, "alpha")  # type: ignore[arg-type]
                    image = read_rgb(s.image)  # type: ignore[arg-type]
                    if image.shape[:2] != gt.shape:
                        raise SampleError(f"image is {image.shape[1]}x{image.shape[0]} but its alpha is "
                                          f"{gt.shape[1]}x{gt.shape[0]}")
                    pred = matter(image, gt)
                    row.update(score_prediction(pred, gt, convention))
                    row.update(status="ok", width=gt.shape[1], height=gt.shape[0],
                               box=" ".join(f"{v:g}" for v in pred.box))
                    if save_alpha:
                        target = alpha_dir / f"{s.id}.png"
                        target.parent.mkdir(parents=True, exist_ok=True)
                        Image.fromarray(quantize(pred.alpha)).save(target)
                except SampleError as exc:
                    row.update(status="skipped", message=str(exc))
                    skipped.append({"id": s.id, "reason": str(exc)})
                    if log:
                        bar.write(f"skipped {s.id}: {exc}")
                row["seconds"] = round(time.perf_counter() - t0, 3)
                writer.writerow(row)
                f.flush()
                rows[s.id] = row
                bar.update(1)
    finally:
        bar.close()

    ok_rows = [rows[s.id] for s in samples if s.id in rows and rows[s.id].get("status") == "ok"]
    means = {}
    for proto in PROTOCOLS:
        cols = [f"{proto}_{k}" for k in M.METRIC_KEYS[convention]]
        m = M.mean_metrics([_row_metrics(r, cols) for r in ok_rows], keys=cols)
        means[proto] = {c.split("_", 1)[1]: v for c, v in m.items()}
    result = EvalResult(dataset=layout.name, title=layout.title, out_dir=str(out), settings=settings,
                        n_samples=len(samples) + len(problems), n_scored=len(ok_rows), skipped=skipped,
                        means=means, seconds=round(sum(_seconds(r) for r in ok_rows), 3), resumed=len(done))
    (out / "summary.json").write_text(json.dumps(result.to_json(), indent=1, default=_json_default) + "\n")
    (out / "summary.md").write_text(markdown_summary(result))
    if log:
        log(f"scored {len(ok_rows)} image(s) in {time.perf_counter() - t_start:.1f} s; results in {out}")
    return result


def _seconds(row: dict[str, Any]) -> float:
    try:
        return float(row.get("seconds") or 0.0)
    except (TypeError, ValueError):
        return 0.0


def _json_default(o: Any) -> Any:
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(type(o).__name__)


# ------------------------------------------------------------------------------------ folder scoring
@dataclass
class FolderScore:
    rows: list[dict[str, Any]]            # per pair: id, pred, gt, metrics
    skipped: list[dict[str, str]]
    means: dict[str, float]
    convention: str

    def to_json(self) -> dict[str, Any]:
        return {"convention": self.convention, "units": M.UNITS[self.convention], "n_scored": len(self.rows),
                "means": self.means, "paper_units": M.paper_units(self.means, self.convention),
                "skipped": self.skipped, "per_image": self.rows}


def score_folders(pred_dir: str | Path, gt_dir: str | Path, trimap_dir: str | Path | None = None,
                  convention: str = "semat", progress: bool = False,
                  log: Callable[[str], None] | None = None) -> FolderScore:
    """Score every prediction in ``pred_dir`` against the same-stem file in ``gt_dir``."""
    if convention not in M.CONVENTIONS:
        raise InputError(f"unknown metrics convention {convention!r}; choose one of {', '.join(M.CONVENTIONS)}")
    dirs = {"--pred-dir": Path(pred_dir), "--gt-dir": Path(gt_dir)}
    if trimap_dir is not None:
        dirs["--trimap-dir"] = Path(trimap_dir)
    for flag, d in dirs.items():
        if not d.is_dir():
            raise InputError(f"{flag} {d} is not a folder")
    preds, gts = _image_files(Path(pred_dir)), _image_files(Path(gt_dir))
    tris = _image_files(Path(trimap_dir)) if trimap_dir is not None else {}
    if not preds:
        raise InputError(f"no image files ({', '.join(IMAGE_EXTS)}) in {pred_dir}")
    rows: list[dict[str, Any]] = []
    skipped: list[dict[str, str]] = []
    for stem in sorted(set(gts) - set(preds)):
        skipped.append({"id": stem, "reason": f"no prediction for ground truth {gts[stem][0].name}"})
    stems = sorted(preds)
    bar = _progress(len(stems), 0, progress, "scoring")
    try:
        for stem in stems:
            bar.update(1)
            try:
                if len(preds[stem]) > 1 or len(gts.get(stem, [])) > 1:
                    raise SampleError("several files share this name: "
                                      + ", ".join(p.name for p in preds[stem] + gts.get(stem, [])))
                if stem not in gts:
                    raise SampleError(f"no ground truth named {stem}.* in {gt_dir}")
                pred = read_alpha(preds[stem][0], "prediction")
                gt = read_alpha(gts[stem][0], "ground truth")
                if pred.shape != gt.shape:
                    raise SampleError(f"prediction is {pred.shape[1]}x{pred.shape[0]} but the ground truth is "
                                      f"{gt.shape[1]}x{gt.shape[0]}")
                trimap = None
                if trimap_dir is not None:
                    if stem not in tris:
                        raise SampleError(f"no trimap named {stem}.* in {trimap_dir}")
                    trimap = read_alpha(tris[stem][0], "trimap")
                    if trimap.shape != gt.shape:
                        raise SampleError(f"trimap is {trimap.shape[1]}x{trimap.shape[0]} but the ground truth is "
                                          f"{gt.shape[1]}x{gt.shape[0]}")
                    if trimap.dtype != np.uint8:
                        raise SampleError("trimaps must be 8-bit (128 = unknown)")
                scores = M.compute_all(pred, gt, trimap=trimap, convention=convention)
            except SampleError as exc:
                skipped.append({"id": stem, "reason": str(exc)})
                if log:
                    bar.write(f"skipped {stem}: {exc}")
                continue
            rows.append({"id": stem, "pred": str(preds[stem][0]), "gt": str(gts[stem][0]), **scores})
    finally:
        bar.close()
    means = M.mean_metrics(rows, keys=M.METRIC_KEYS[convention])
    return FolderScore(rows=rows, skipped=skipped, means=means, convention=convention)


def format_means(means: dict[str, float], convention: str) -> str:
    """One line such as ``MSE ×1e-3 1.2345  SAD 12.3456 ...`` in paper units."""
    shown = M.paper_units(means, convention)
    lab = (lambda k: f"{k} x1e-3" if k in ("MSE", "MAD") else k) if convention == "semat" else (lambda k: k)
    return "  ".join(f"{lab(k)} {_fmt(v)}" for k, v in shown.items())


def iter_dataset_names() -> Iterable[str]:
    return iter(DATASETS)
