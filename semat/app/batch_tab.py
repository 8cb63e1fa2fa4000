"""The Batch tab: many photos, one prompt (words, or Auto human), a gallery and one ZIP.

Each photo is one model call through :mod:`semat.app.zerogpu` (``gpu_matte`` / ``gpu_human``),
so on ZeroGPU every call asks for the duration of one photo (its megapixels × objects × model)
and a long batch never outlives a GPU slot; between photos the run reports progress, can be
cancelled, and an unreadable photo or one where nothing is found goes to the error list while
the others continue. The ZIP grows as photos finish (``<stem>.png`` alpha, ``<stem>_rgba.png``
cut-out per photo, then ``summary.csv`` at the end), so a cancelled run still gives every photo
done so far.

The number of photos per run is capped by ``Settings.batch_max_images``
(``SEMAT_BATCH_MAX_IMAGES``, default :data:`DEFAULT_MAX_IMAGES` while the field is not there).
"""

from __future__ import annotations

import csv
import io
import time
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from semat.errors import InputError, NoDetectionError, SematError

__all__ = ["DEFAULT_MAX_IMAGES", "MODES", "BatchState", "batch_images", "batch_tab", "max_images", "model_controls"]

DEFAULT_MAX_IMAGES = 50
MODES = ("Words", "Auto human")


def max_images(settings: Any) -> int:
    return int(getattr(settings, "batch_max_images", DEFAULT_MAX_IMAGES) or DEFAULT_MAX_IMAGES)


@dataclass
class BatchState:
    """What the tab shows after each photo."""

    total: int
    done: int = 0
    gallery: list[tuple[str, str]] = field(default_factory=list)  # (RGBA path, caption)
    errors: list[list[str]] = field(default_factory=list)  # [photo, problem]
    zip_path: str | None = None
    seconds: float = 0.0
    current: str = ""

    def status(self) -> str:
        if self.done < self.total:
            eta = ""
            if self.done:
                eta = f", about {self.seconds / self.done * (self.total - self.done):.0f} s left"
            return f"⏳ Photo {self.done + 1} of {self.total}: {self.current}{eta}"
        ok = self.done - len(self.errors)
        tail = f"; {len(self.errors)} skipped (see the list)" if self.errors else ""
        return f"✓ {ok} of {self.total} photo(s) matted in {self.seconds:.1f} s{tail}."


def _name(path: str) -> str:
    return Path(str(path)).name or "photo"


def batch_images(paths: Sequence[str], mode: str, words: str | None, box_threshold: float = 0.35,
                 text_threshold: float = 0.25, variant: str | None = None, settings: Any = None,
                 out_dir: Path | None = None) -> Iterator[BatchState]:
    """Matte ``paths`` one photo per model call, yielding the state before the first photo and
    after each one (the Gradio handler streams these; cancelling stops between photos)."""
    from semat import compose, registry
    from semat.app import editor as L
    from semat.app.zerogpu import gpu_human, gpu_matte
    from semat.io.images import encode_png, load_image
    from semat.pipeline import Prompt
    from semat.settings import Settings
    from semat.validate import check_text, check_threshold

    settings = settings or Settings.from_env()
    paths = [p for p in (paths or []) if p]
    if not paths:
        raise InputError("add some photos first")
    cap = max_images(settings)
    if len(paths) > cap:
        raise InputError(f"{len(paths)} photos is more than this Space's {cap} per batch; split them into "
                         "several runs")
    human = mode == MODES[1]
    if not human:
        words = check_text(words)
        box_threshold = check_threshold(box_threshold, "box threshold")
        text_threshold = check_threshold(text_threshold, "text threshold")
    variant = registry.from_label(variant) if variant else registry.default("semat")
    out = out_dir or L.new_output_dir()
    zpath = out / "batch.zip"
    state = BatchState(total=len(paths), zip_path=None)
    rows: list[dict[str, Any]] = []
    used: set[str] = set()
    t0 = time.perf_counter()
    yield state
    for path in paths:
        name = _name(path)
        state.current = name
        stem = Path(name).stem or "photo"
        base, n = stem, 1
        while stem in used:
            stem, n = f"{base}_{n}", n + 1
        used.add(stem)
        t1 = time.perf_counter()
        row: dict[str, Any] = {"photo": name, "stem": stem}
        try:
            loaded = load_image(path)
            image = loaded.rgb
            result = gpu_human(image) if human else gpu_matte(
                image, Prompt(text=words, box_threshold=box_threshold, text_threshold=text_threshold), variant)
            alpha = result.alpha
            cut = compose.rgba(image, alpha, compose.estimate_foreground(image, alpha))
            rgba_path = out / f"{stem}_rgba.png"
            rgba_bytes = encode_png(cut)
            rgba_path.write_bytes(rgba_bytes)
            files = {f"{stem}.png": encode_png(compose.alpha_to_png8(alpha)), f"{stem}_rgba.png": rgba_bytes}
            with zipfile.ZipFile(zpath, "a", compression=zipfile.ZIP_STORED) as zf:
                for k, v in files.items():
                    zf.writestr(k, v)
            labels = ", ".join(o.label for o in result.objects)
            state.gallery.append((str(rgba_path), f"{name} — {labels}" if labels else name))
            row.update(status="ok", objects=len(result.objects), labels=labels,
                       notices=" | ".join(loaded.notices + list(result.notices)))
            if human and any(x.lower().startswith("no person") for x in result.notices):
                row.update(status="nothing found", error="no person found")
                state.errors.append([name, "no person found"])
        except NoDetectionError as exc:
            row.update(status="nothing found", error=str(exc))
            state.errors.append([name, f"nothing found: {exc}"])
        except SematError as exc:  # unreadable photo, bad prompt, model trouble for this photo
            row.update(status="error", error=" ".join(str(exc).split()))
            state.errors.append([name, row["error"]])
        row["seconds"] = f"{time.perf_counter() - t1:.2f}"
        rows.append(row)
        state.done += 1
        state.seconds = time.perf_counter() - t0
        if state.done == state.total:  # the summary goes in last (appending keeps each step cheap)
            with zipfile.ZipFile(zpath, "a", compression=zipfile.ZIP_STORED) as zf:
                zf.writestr("summary.csv", _summary_csv(rows))
        state.zip_path = str(zpath) if zpath.exists() else None
        yield state


def _summary_csv(rows: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=["photo", "stem", "status", "objects", "labels", "seconds", "notices", "error"],
                       extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow(r)
    return buf.getvalue()


def model_controls(prefix: str) -> tuple[Any, Any, Any]:
    """The model dropdown and, folded, the box / text threshold sliders (ids ``<prefix>-model``,
    ``<prefix>-box-thr``, ``<prefix>-text-thr``), as the Batch and Video tabs show them."""
    import gradio as gr

    from semat import registry
    from semat.app.api import documented

    labels = [registry.label(n) for n in registry.names("semat")]
    model = documented(gr.Dropdown(labels, value=labels[0], label="Model", elem_id=f"{prefix}-model"),
                       "The SEMat model: " + ", ".join(labels) + ".")
    with gr.Accordion("Thresholds", open=False):
        box_thr = documented(gr.Slider(0.0, 0.95, value=0.35, step=0.01, label="Box threshold",
                                       elem_id=f"{prefix}-box-thr"), "Lowest detection score kept (words only).")
        text_thr = documented(gr.Slider(0.0, 0.95, value=0.25, step=0.01, label="Text threshold",
                                        elem_id=f"{prefix}-text-thr"), "Lowest word-match score kept (words only).")
    return model, box_thr, text_thr


def batch_tab(settings: Any) -> None:
    """Build the Batch tab's components and events (call inside ``gr.Tabs()``)."""
    import gradio as gr

    from semat.app.api import EXAMPLE_IMAGE, documented

    cap = max_images(settings)
    with gr.Tab("Batch", id="batch", elem_id="tab-batch"):
        gr.Markdown(f"Matte up to **{cap} photos** at once with the same words, or let **Auto human** find "
                    "the people. Results appear as each photo finishes; the ZIP holds every alpha, cut-out and "
                    "a summary. A photo that cannot be read or where nothing is found is listed below and "
                    "skipped.")
        with gr.Row():
            with gr.Column(scale=3):
                files = documented(gr.File(label="Photos", file_count="multiple", file_types=["image"],
                                           type="filepath", elem_id="batch-files"),
                                   f"The photos (JPEG, PNG or WebP), at most {cap}.", [EXAMPLE_IMAGE])
            with gr.Column(scale=2):
                mode = documented(gr.Radio(list(MODES), value=MODES[0], label="What to cut out",
                                           elem_id="batch-mode"), "One of: " + ", ".join(MODES) + ".")
                words = documented(gr.Textbox(label="Words (same for every photo)",
                                              placeholder="e.g. product, cat, person", elem_id="batch-words"),
                                   'What to cut out in every photo, e.g. "bus" (ignored for Auto human).', "bus")
                model, box_thr, text_thr = model_controls("batch")
                with gr.Row():
                    run = gr.Button("Matte all ▶", variant="primary", elem_id="batch-run")
                    cancel = gr.Button("Cancel", elem_id="batch-cancel")
        status = gr.Markdown("", elem_id="batch-status")
        gallery = gr.Gallery(label="Cut-outs", columns=6, height="auto", format="png", elem_id="batch-gallery",
                             elem_classes=["semat-outputs"])
        zip_file = gr.File(label="All results (ZIP)", elem_id="batch-zip", interactive=False)
        errors = gr.Dataframe(headers=["photo", "problem"], value=[], label="Skipped photos", interactive=False,
                              elem_id="batch-errors", wrap=True)

        def start(paths, mode_v, words_v, bt, tt, model_v):
            try:
                for st in batch_images(paths or [], mode_v, words_v, bt, tt, model_v, settings=settings):
                    yield st.status(), list(st.gallery), st.zip_path, [list(e) for e in st.errors]
            except InputError as exc:
                raise gr.Error(str(exc), title=getattr(exc, "title", "Check the input"),
                               print_exception=False) from None

        event = run.click(start, [files, mode, words, box_thr, text_thr, model], [status, gallery, zip_file, errors],
                          concurrency_id="models", concurrency_limit=getattr(settings, "concurrency", 1),
                          api_name="matte_batch", show_progress="minimal")
        cancel.click(lambda: "Cancelled; the ZIP holds the photos done so far.", None, [status], cancels=[event],
                     api_visibility="private", queue=False)
        mode.change(lambda m: gr.update(interactive=m == MODES[0]), [mode], [words], api_visibility="private",
                    queue=False, show_progress="hidden")
