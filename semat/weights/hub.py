"""Registry of known weights, on-demand download with verification, and offline errors.

Every model file the app uses is listed in :data:`REGISTRY`. :func:`resolve` turns a registry
name *or* a local path into a verified local file:

* a path to an existing file is always accepted as is;
* a registry name looks in the weights folder (``$SEMAT_WEIGHTS_DIR`` or ``./weights``), then
  downloads from the Hugging Face Hub (with a progress bar) and checks size and sha256 where
  they are known;
* when the file is not there and cannot be downloaded, :class:`WeightsUnavailable` says in one
  message which file to get and where to put it.
"""

from __future__ import annotations

from semat.errors import WeightsCorrupt, WeightsUnavailable

import hashlib
import json
import os
import shutil
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse


@dataclass(frozen=True)
class WeightsEntry:
    name: str
    repo_id: str
    filename: str
    description: str
    size: int | None = None
    sha256: str | None = None
    source_note: str = ""
    kind: str = "file"  # "file": one checkpoint file; "repo": a whole Hub model repo (snapshot)

    @property
    def url(self) -> str:
        if self.kind == "repo":
            return f"https://huggingface.co/{self.repo_id}"
        return f"https://huggingface.co/{self.repo_id}/resolve/main/{self.filename}"


REGISTRY: dict[str, WeightsEntry] = {
    e.name: e
    for e in [
        WeightsEntry("semat-sam", "XiaRho/SEMat", "SEMat_SAM.pth",
                     "SEMat (SAM ViT-L), about 1.34 GB"),
        WeightsEntry("semat-hq-sam", "XiaRho/SEMat", "SEMat_HQ-SAM.pth",
                     "SEMat (HQ-SAM ViT-L), about 1.35 GB"),
        WeightsEntry("semat-sam2", "XiaRho/SEMat", "SEMat_SAM2.pth",
                     "SEMat (SAM2 Hiera-L), about 970 MB"),
        WeightsEntry("sghm", "endorno/SGHM", "SGHM-ResNet50.pth",
                     "SGHM ResNet-50 human matting, 176 MB",
                     size=176_284_285,
                     sha256="e61ddbda08bd556912dc0b1eca95dc90b830194c741e3350cc26a287cdbc0cfe",
                     source_note="official release: the Google Drive folder linked from "
                                 "github.com/cxgincsu/SemanticGuidedHumanMatting"),
        WeightsEntry("grounding-dino-tiny", "IDEA-Research/grounding-dino-tiny", "",
                     "GroundingDINO Swin-T (transformers format), about 690 MB", kind="repo"),
        WeightsEntry("grounding-dino-base", "IDEA-Research/grounding-dino-base", "",
                     "GroundingDINO Swin-B (transformers format), about 930 MB", kind="repo"),
    ]
}

Progress = Callable[[str], None]


def tiny_models_requested() -> bool:
    """True when ``SEMAT_TEST_MODELS=tiny`` asks for tiny random-weight models (tests only)."""
    return os.environ.get("SEMAT_TEST_MODELS", "").strip().lower() == "tiny"


def weights_dir() -> Path:
    return Path(os.environ.get("SEMAT_WEIGHTS_DIR", "weights")).expanduser().resolve()


def sha256_of(path: Path, chunk: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def file_sha256(path: Path) -> str:
    """sha256 of ``path``, cached in a sidecar keyed by size and mtime (big files hash slowly)."""
    path = Path(path)
    st = path.stat()
    sidecar = path.with_name(path.name + ".sha256.json")
    try:
        data = json.loads(sidecar.read_text())
        if data["size"] == st.st_size and data["mtime_ns"] == st.st_mtime_ns:
            return data["sha256"]
    except (OSError, ValueError, KeyError):
        pass
    digest = sha256_of(path)
    try:
        sidecar.write_text(json.dumps({"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": digest}))
    except OSError:
        pass
    return digest


def verify(entry: WeightsEntry, path: Path) -> None:
    if entry.size is not None and path.stat().st_size != entry.size:
        raise WeightsCorrupt(
            f"{path} has {path.stat().st_size:,} bytes, expected {entry.size:,} for {entry.filename}; "
            "delete it and download again")
    if entry.sha256 is not None and file_sha256(path) != entry.sha256:
        raise WeightsCorrupt(f"{path} does not match the known sha256 of {entry.filename}; "
                             "delete it and download again")


def _offline_message(entry: WeightsEntry, target: Path, cause: BaseException | None) -> str:
    where = f"put it at {target}" if entry.kind == "file" else f"save the repository files in {target}/"
    extra = f" ({entry.source_note})" if entry.source_note else ""
    why = f" ({cause})" if isinstance(cause, HubUnreachable) else f" [{type(cause).__name__}]" if cause else ""
    return (f"{entry.description}: '{entry.filename or entry.repo_id}' is not available locally and "
            f"could not be downloaded{why}. Download it from {entry.url}{extra} and {where} "
            "(or set SEMAT_WEIGHTS_DIR to the folder that holds it).")


def local_target(entry: WeightsEntry) -> Path:
    base = weights_dir()
    return base / entry.filename if entry.kind == "file" else base / entry.repo_id.replace("/", "--")


def resolve(name_or_path: str | os.PathLike, progress: Progress | None = None) -> Path:
    """Return a verified local path for a registry name or an existing file/folder path."""
    p = Path(name_or_path).expanduser()
    if str(name_or_path) not in REGISTRY:
        if p.exists():
            return p.resolve()
        known = ", ".join(REGISTRY)
        raise WeightsUnavailable(f"{name_or_path}: no such file, and not a known weights name ({known})")
    entry = REGISTRY[str(name_or_path)]
    target = local_target(entry)
    if entry.kind == "repo" and (target / "config.json").is_file():
        return target
    if entry.kind == "file" and target.is_file():
        verify(entry, target)
        return target
    try:
        _check_hub_reachable()
        if progress:
            progress(f"Downloading {entry.filename or entry.repo_id} from {entry.repo_id} ...")
        path = _download(entry, target)
    except Exception as exc:  # offline, DNS failure, 404, hub outage: all end the same way
        raise WeightsUnavailable(_offline_message(entry, target, exc)) from exc
    if entry.kind == "file":
        verify(entry, path)
    return path


class HubUnreachable(OSError):
    """The Hub's host name does not resolve (no network): fail at once instead of retrying."""


def _check_hub_reachable() -> None:
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        raise HubUnreachable("HF_HUB_OFFLINE is set")
    host = urlparse(constants.ENDPOINT).hostname or "huggingface.co"
    try:
        socket.getaddrinfo(host, 443)
    except OSError as exc:  # huggingface_hub would retry this for ~25 s with a log line per try
        raise HubUnreachable(f"cannot resolve {host}: no network") from exc


def _download(entry: WeightsEntry, target: Path) -> Path:
    from huggingface_hub import hf_hub_download, snapshot_download  # tqdm progress bars built in


    target.parent.mkdir(parents=True, exist_ok=True)
    if entry.kind == "repo":
        return Path(snapshot_download(entry.repo_id, local_dir=target))
    path = Path(hf_hub_download(entry.repo_id, entry.filename, local_dir=target.parent))
    if path.resolve() != target.resolve():
        shutil.move(str(path), target)
    return target


def download(names: list[str] | None = None, progress: Progress | None = None) -> list[Path]:
    """Pre-fetch weights (all registry entries when ``names`` is empty)."""
    return [resolve(n, progress) for n in (names or list(REGISTRY))]
