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
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from semat.errors import InputError, SampleError
from semat.evaluation import metrics as M
from semat.evaluation.datasets import (  # noqa: F401 - re-exported: the runner is the entry point
    DATASETS,
    IMAGE_EXTS,
    PREPROCESS,
    PROTOCOLS,
    DatasetLayout,
    Problem,
    Sample,
    _image_files,
    dataset_layout,
    discover,
    read_alpha,
    read_rgb,
)
from semat.evaluation.protocol import (  # noqa: F401 - re-exported: the runner is the entry point
    AppMatter,
    FramePrediction,
    Matter,
    ReferenceMatter,
    make_matter,
    paper_gt,
    quantize,
    resize_like_reference,
    resized_hw,
    score_prediction,
    tight_box,
)

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
