"""Where a batch writes: the output folder (local or any pyarrow filesystem), the per-image file
names, and the summary CSV that the resume rule reads.

Per image ``<stem>``: ``<stem>.png`` (8-bit alpha, the union of the objects, at the original
size), ``<stem>_rgba.png`` (the cut-out) unless switched off, and ``<stem>.zip`` (layers and
manifest) when asked. ``summary.csv`` gets one row per image as soon as its files are written.

**Resume rule.** An image is done, and skipped by a rerun into the same folder, when
``summary.csv`` has a row for its output stem whose status is ``ok`` or ``nothing found``, whose
``signature`` (a hash of the prompt and every option that changes the pixels) matches this run,
and every file in the row's ``outputs`` exists. Anything else is done again: a failed image, an
image whose files were deleted, or one whose prompt, model or thresholds changed. Rows of
images done again are replaced, so the summary keeps one row per image.
"""

from __future__ import annotations

import csv
import io
import os
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path

__all__ = ["DONE_STATUSES", "SUMMARY", "SUMMARY_FIELDS", "ArrowDir", "LocalDir", "OutputDir", "done_rows",
           "open_output", "output_names"]

SUMMARY = "summary.csv"
SUMMARY_FIELDS = ["image", "stem", "status", "objects", "labels", "scores", "boxes", "width", "height",
                  "seconds_load", "seconds_detect", "seconds_semat", "seconds_write", "seconds_total",
                  "outputs", "notices", "error", "signature"]
#: statuses a rerun does not redo (same signature, files present)
DONE_STATUSES = ("ok", "nothing found")


def output_names(stem: str, rgba: bool, zip_layers: bool) -> list[str]:
    names = [f"{stem}.png"]
    if rgba:
        names.append(f"{stem}_rgba.png")
    if zip_layers:
        names.append(f"{stem}.zip")
    return names


class OutputDir:
    """The folder a batch writes into. Subclasses: :class:`LocalDir`, :class:`ArrowDir`."""

    uri: str

    def exists(self, name: str) -> bool:  # pragma: no cover - interface
        raise NotImplementedError

    def write_bytes(self, name: str, data: bytes) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def write_file(self, name: str, local: Path) -> None:
        """Move a finished local file (e.g. a ZIP) into place."""
        self.write_bytes(name, local.read_bytes())
        local.unlink(missing_ok=True)

    def read_text(self, name: str) -> str | None:  # pragma: no cover - interface
        raise NotImplementedError

    def write_text(self, name: str, text: str) -> None:
        self.write_bytes(name, text.encode("utf-8"))

    def append_text(self, name: str, text: str) -> None:
        self.write_text(name, (self.read_text(name) or "") + text)

    def local_path(self, name: str) -> Path | None:
        """A local path for ``name`` when the folder is local (writers may use it directly)."""
        return None

    def path_of(self, name: str) -> str:
        return f"{self.uri.rstrip('/')}/{name}"


class LocalDir(OutputDir):
    def __init__(self, root: str | os.PathLike):
        self.root = Path(root).expanduser()
        self.root.mkdir(parents=True, exist_ok=True)
        self.uri = str(self.root)

    def exists(self, name: str) -> bool:
        return (self.root / name).is_file()

    def write_bytes(self, name: str, data: bytes) -> None:
        target = self.root / name
        tmp = target.with_name(target.name + ".part")
        tmp.write_bytes(data)
        os.replace(tmp, target)

    def write_file(self, name: str, local: Path) -> None:
        target = self.root / name
        if Path(local).resolve() != target.resolve():
            shutil.move(str(local), target)

    def read_text(self, name: str) -> str | None:
        p = self.root / name
        return p.read_text(encoding="utf-8") if p.is_file() else None

    def append_text(self, name: str, text: str) -> None:
        with open(self.root / name, "a", encoding="utf-8", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())

    def local_path(self, name: str) -> Path:
        return self.root / name

    def path_of(self, name: str) -> str:
        return str(self.root / name)


class ArrowDir(OutputDir):
    """A folder on any filesystem pyarrow opens from a URI (``s3://bucket/prefix``, ``gs://``,
    ``hdfs://``, ``file://``). Appending rewrites the object, which S3 requires anyway."""

    def __init__(self, uri: str):
        from pyarrow import fs

        self.uri = uri
        self.fs, self.base = fs.FileSystem.from_uri(uri)
        self.fs.create_dir(self.base, recursive=True)

    def _p(self, name: str) -> str:
        return f"{self.base.rstrip('/')}/{name}"

    def exists(self, name: str) -> bool:
        from pyarrow import fs

        return self.fs.get_file_info(self._p(name)).type == fs.FileType.File

    def write_bytes(self, name: str, data: bytes) -> None:
        with self.fs.open_output_stream(self._p(name)) as f:
            f.write(data)

    def read_text(self, name: str) -> str | None:
        if not self.exists(name):
            return None
        with self.fs.open_input_stream(self._p(name)) as f:
            return f.read().decode("utf-8")


def open_output(target: str | os.PathLike) -> OutputDir:
    """A local folder for a path, an :class:`ArrowDir` for a URI (``scheme://...``)."""
    text = os.fspath(target)
    if "://" in text and not text.startswith("file://"):
        return ArrowDir(text)
    if text.startswith("file://"):
        text = text[len("file://"):]
    return LocalDir(text)


def read_rows(out: OutputDir) -> list[dict[str, str]]:
    text = out.read_text(SUMMARY)
    if not text:
        return []
    return [dict(r) for r in csv.DictReader(io.StringIO(text))]


def done_rows(out: OutputDir, signatures: dict[str, str]) -> dict[str, dict[str, str]]:
    """Rows (by stem) of images that are done under the resume rule; ``signatures``: stem → this
    run's signature for it."""
    done: dict[str, dict[str, str]] = {}
    for row in read_rows(out):
        stem = row.get("stem", "")
        if stem not in signatures or row.get("status") not in DONE_STATUSES:
            continue
        if row.get("signature") != signatures[stem]:
            continue
        files = [f for f in (row.get("outputs") or "").split(";") if f]
        if all(out.exists(f) for f in files):
            done[stem] = row
    return done


def format_rows(rows: Iterable[dict], header: bool) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=SUMMARY_FIELDS, extrasaction="ignore", lineterminator="\n")
    if header:
        w.writeheader()
    for r in rows:
        w.writerow({k: r.get(k, "") for k in SUMMARY_FIELDS})
    return buf.getvalue()


def start_summary(out: OutputDir, keep: Iterable[dict]) -> None:
    """Rewrite ``summary.csv`` with the header and the rows kept from an earlier run."""
    out.write_text(SUMMARY, format_rows(keep, header=True))


def append_rows(out: OutputDir, rows: Iterable[dict]) -> None:
    text = format_rows(rows, header=False)
    if text:
        out.append_text(SUMMARY, text)


def scratch_dir() -> Path:
    return Path(tempfile.mkdtemp(prefix="semat-batch-"))
