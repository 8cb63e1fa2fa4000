"""What a batch works on: one :class:`BatchItem` per image, from files, folders and a prompts file.

A prompts file gives each image its own prompt. Two forms, chosen by the file's suffix:

* **CSV** (``.csv``) with a header row naming any of ``image, boxes, points, text`` and the
  optional ``box_threshold, text_threshold`` (only ``image`` is required; an empty cell is the
  command line's value). ``boxes`` is ``x1,y1,x2,y2`` with ``;`` between boxes (or a JSON list
  ``[[x1,y1,x2,y2], ...]``), ``points`` is ``x,y[,1|0]`` with ``;`` between points, ``text``
  the words (``cat. dog.``);
* **JSONL** (``.jsonl`` / ``.ndjson``): one object per line,
  ``{"image": "a.jpg", "boxes": [[10, 20, 200, 300]], "points": [[50, 60, 1]], "text": "cat"}``.

A relative ``image`` is read from the prompts file's folder. When images are also given on the
command line, each one takes the prompt of the row whose ``image`` names the same file (by path
relative to the prompts file, or by file name); images without a row take the command line's
``--text`` / ``--box`` prompt, or are reported and skipped when there is none.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from semat.errors import InputError, PromptError, clip_text
from semat.validate import parse_boxes, parse_points

__all__ = ["IMAGE_EXTS", "BatchItem", "PromptSpec", "collect_items", "collect_paths", "read_prompts",
           "unique_stems"]

IMAGE_EXTS = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif"}


@dataclass(frozen=True)
class PromptSpec:
    """One image's prompt as given (input pixels); :class:`semat.pipeline.Prompt` is built from it
    once the image is loaded (boxes and points are scaled to the working copy)."""

    text: str | None = None
    boxes: tuple[tuple[float, float, float, float], ...] = ()
    points: tuple[tuple[float, float, int], ...] = ()
    box_threshold: float | None = None  # None: the batch's option
    text_threshold: float | None = None

    @property
    def empty(self) -> bool:
        return not (self.text or self.boxes or self.points)

    @property
    def box_only(self) -> bool:
        return bool(self.boxes) and not self.text and not self.points

    def as_dict(self) -> dict:
        d = {"text": self.text, "boxes": [list(b) for b in self.boxes], "points": [list(p) for p in self.points]}
        if self.box_threshold is not None or self.text_threshold is not None:
            d.update(box_threshold=self.box_threshold, text_threshold=self.text_threshold)
        return d


@dataclass(frozen=True)
class BatchItem:
    """An image to matte: where it is (a local path or a pyarrow-filesystem URI), the stem its
    outputs are named after, and its prompt. ``problem`` marks an item that cannot run (no
    prompt); it is reported in the summary without being opened."""

    source: str
    stem: str
    prompt: PromptSpec = field(default_factory=PromptSpec)
    problem: str | None = None


def _spec(row: dict, where: str) -> PromptSpec:
    from semat.validate import check_threshold

    try:
        bxs = _as_boxes(row.get("boxes"))
        pts = _as_points(row.get("points"))
        thr = {}
        for k in ("box_threshold", "text_threshold"):
            v = row.get(k)
            if v is not None and v != "":
                try:
                    thr[k] = check_threshold(float(v), k)
                except (TypeError, ValueError):
                    raise PromptError(f"{k} {clip_text(v, 20)} is not a number between 0 and 1") from None
    except InputError as exc:
        raise PromptError(f"{where}: {exc}") from None
    text = row.get("text")
    words = str(text).strip() if isinstance(text, str) and text.strip() else None
    return PromptSpec(words, tuple(bxs), tuple(pts), **thr)


def _as_boxes(value: object) -> list[tuple[float, float, float, float]]:
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [tuple(b) for b in parse_boxes(value)]  # type: ignore[misc]
    if isinstance(value, (list, tuple)):
        return [tuple(b) for b in parse_boxes(json.dumps(list(value)))]  # type: ignore[misc]
    raise PromptError(f"boxes must be text or a list, got {type(value).__name__}")


def _as_points(value: object) -> list[tuple[float, float, int]]:
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return parse_points(value)
    if isinstance(value, (list, tuple)):
        return parse_points("\n".join(", ".join(str(v) for v in p) if isinstance(p, (list, tuple)) else str(p)
                                      for p in value))
    raise PromptError(f"points must be text or a list, got {type(value).__name__}")


def read_prompts(path: str | os.PathLike) -> list[tuple[str, PromptSpec]]:
    """``(image as written, prompt)`` per row of a CSV or JSONL prompts file (module docstring)."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise InputError(f"--prompts {clip_text(str(path))}: no such file")
    suffix = p.suffix.lower()
    rows: list[tuple[str, PromptSpec]] = []
    try:
        text = p.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"--prompts {p.name}: cannot be read as UTF-8 text ({type(exc).__name__})") from None
    if suffix in (".jsonl", ".ndjson"):
        for n, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except ValueError:
                raise InputError(f"{p.name} line {n}: not a JSON object") from None
            if not isinstance(obj, dict) or not isinstance(obj.get("image"), str) or not obj["image"].strip():
                raise InputError(f"{p.name} line {n}: needs an \"image\" string")
            rows.append((obj["image"].strip(), _spec(obj, f"{p.name} line {n}")))
    elif suffix == ".csv":
        reader = csv.DictReader(text.splitlines())
        header = [h.strip().lower() for h in (reader.fieldnames or [])]
        if "image" not in header:
            raise InputError(f"{p.name}: the first row must name the columns, with at least 'image' "
                             "(and any of boxes, points, text)")
        for n, raw in enumerate(reader, start=2):
            row = {(k or "").strip().lower(): (v or "").strip() for k, v in raw.items() if k is not None}
            if not row.get("image"):
                if any(row.values()):
                    raise InputError(f"{p.name} row {n}: the image column is empty")
                continue
            rows.append((row["image"], _spec(row, f"{p.name} row {n}")))
    else:
        raise InputError(f"--prompts {p.name}: use a .csv or .jsonl file")
    if not rows:
        raise InputError(f"{p.name} has no rows")
    return rows


def collect_paths(inputs: Iterable[str], recursive: bool = False) -> tuple[list[str], list[str]]:
    """Image files from files, folders and URIs (kept as given), plus one problem line per
    unusable argument. A folder contributes its image files sorted by name."""
    files: list[str] = []
    problems: list[str] = []
    for item in inputs:
        if "://" in item:
            files.append(item)
            continue
        p = Path(item).expanduser()
        if p.is_dir():
            found = sorted(f for f in (p.rglob("*") if recursive else p.iterdir())
                           if f.is_file() and f.suffix.lower() in IMAGE_EXTS)
            if not found:
                problems.append(f"{p}: folder has no image files")
            files += [str(f) for f in found]
        elif p.exists():
            files.append(str(p))
        else:
            problems.append(f"{p}: no such file or folder")
    return files, problems


def unique_stems(sources: Sequence[str]) -> list[str]:
    """Output stems, one per source: the file stem, with ``_1``, ``_2``... for repeats
    (``a.jpg`` and ``a.png`` in one run become ``a`` and ``a_1``)."""
    used: set[str] = set()
    out = []
    for s in sources:
        base = Path(s.rsplit("/", 1)[-1]).stem or "image"
        stem, n = base, 1
        while stem in used:
            stem, n = f"{base}_{n}", n + 1
        used.add(stem)
        out.append(stem)
    return out


def _merge(default: PromptSpec, row: PromptSpec) -> PromptSpec:
    """A row with no prompt of its own takes the default prompt, keeping its thresholds."""
    return PromptSpec(default.text, default.boxes, default.points,
                      row.box_threshold if row.box_threshold is not None else default.box_threshold,
                      row.text_threshold if row.text_threshold is not None else default.text_threshold)


def collect_items(inputs: Sequence[str], default: PromptSpec | None = None, prompts_file: str | None = None,
                  recursive: bool = False) -> tuple[list[BatchItem], list[str]]:
    """The batch's items, in input order, and the problem lines for unusable arguments.

    ``default`` is the command line's prompt (``--text`` / ``--box`` / ``--point``), used for
    every image without a row in ``prompts_file``.
    """
    default = default or PromptSpec()
    table: list[tuple[str, PromptSpec]] = read_prompts(prompts_file) if prompts_file else []
    base = Path(prompts_file).expanduser().resolve().parent if prompts_file else Path.cwd()

    def resolve(name: str) -> str:
        if "://" in name or Path(name).expanduser().is_absolute():
            return str(Path(name).expanduser()) if "://" not in name else name
        return str(base / name)

    problems: list[str] = []
    if inputs:
        sources, problems = collect_paths(inputs, recursive)
        by_path = {os.path.normpath(resolve(n)): spec for n, spec in table}
        by_name: dict[str, PromptSpec] = {}
        for n, spec in table:
            by_name.setdefault(Path(n).name, spec)
        specs = []
        for s in sources:
            key = os.path.normpath(str(Path(s).resolve())) if "://" not in s else s
            row = by_path.get(key) or by_name.get(Path(s).name)
            specs.append(default if row is None else row if not row.empty else _merge(default, row))
    else:
        sources = [resolve(n) for n, _ in table]
        specs = [spec if not spec.empty else _merge(default, spec) for _, spec in table]
    items = []
    for s, stem, spec in zip(sources, unique_stems(sources), specs):
        problem = None if not spec.empty else "no prompt for this image (give --text, --box or a prompts-file row)"
        items.append(BatchItem(s, stem, spec, problem))
    return items, problems
