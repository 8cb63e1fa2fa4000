"""The six test sets' folder layouts, image/alpha pairing and the readers (see :mod:`semat.evaluation.runner`)."""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from semat.errors import ImageInputError, InputError, SampleError
from semat.io.limits import FROM_SETTINGS, check_bytes, check_header, resolve_limits

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
    """Decode ``path`` under :func:`semat.io.images.load_image`'s input limits: the byte cap
    (``SEMAT_MAX_UPLOAD``), the header's pixel cap (``SEMAT_MAX_INPUT_MEGAPIXELS``) and the size
    rules, all checked before decoding. Nothing else of ``load_image`` applies: scores are taken
    on the stored pixels at their original size (no downscale, no EXIF turn, no compositing, and
    16-bit alphas stay 16-bit), as the reference evaluators read them. A file over a limit is a
    :class:`SampleError`, so the run skips it and goes on."""
    label = f"{what} {path}"
    limits = resolve_limits(None, FROM_SETTINGS)  # a bad setting stops the run (not a sample's fault)
    try:
        check_bytes(path.stat().st_size, label, limits)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # the pixel cap decides
            img = Image.open(path)
            try:
                check_header(img.width, img.height, label, limits)
                img.load()
            except BaseException:
                img.close()
                raise
        return img
    except FileNotFoundError:
        raise SampleError(f"{what} {path} is missing") from None
    except ImageInputError as exc:
        raise SampleError(str(exc)) from None
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


