"""Registry of known weights, where to find them, on-demand download with verification, and
offline errors.

Every model file the app uses is listed in :data:`REGISTRY`. :func:`resolve` turns a registry
name *or* a local path into a verified local file or folder. The order:

1. a path to an existing file or folder (not a registry name) is used as given;
2. the weights folder (``$SEMAT_WEIGHTS_DIR``, default ``./weights``): ``<dir>/<filename>`` for a
   file, ``<dir>/<org>--<repo>`` for a model repository (files put there keep working);
3. the Hugging Face cache (``$HF_HUB_CACHE``, ``$HF_HOME/hub``, default
   ``~/.cache/huggingface/hub``), looked up with ``local_files_only=True``: no network, so it
   works offline and finds weights that a Space's ``preload_from_hub:`` entry baked into the
   image at build time;
4. a download from the Hub **into the Hugging Face cache** (with a progress bar).

Files are checked against their known size and sha256 where the registry has them; every
checkpoint is also checked by :mod:`semat.weights.integrity` when it is read (zip CRC-32 of
every record, finite weights). A model folder must hold its config, weights, image-processor
and tokenizer files (:func:`check_model_folder`): a partial one is :class:`WeightsCorrupt`
naming what is missing. When a file is not there and cannot be downloaded,
:class:`WeightsUnavailable` says in one message which file to get and where to put it; an
unreachable Hub (``HF_HUB_OFFLINE``, no DNS) fails at once instead of retrying for 25 s.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from semat.errors import WeightsCorrupt, WeightsUnavailable, clip_text
from semat.settings import Settings
from semat.weights import integrity
from semat.weights.integrity import file_sha256, verify_file

__all__ = [
    "REGISTRY", "HubUnreachable", "Progress", "WeightsCorrupt", "WeightsEntry", "WeightsUnavailable",
    "check_model_folder", "download", "file_sha256", "local_target", "resolve", "sha256_of",
    "tiny_models_requested", "verify", "verify_file", "weights_dir",
]

#: Files a transformers GroundingDINO folder needs; each tuple lists alternatives.
TRANSFORMERS_DETECTOR_FILES: tuple[tuple[str, ...], ...] = (
    ("config.json",),
    ("model.safetensors", "pytorch_model.bin", "model.safetensors.index.json", "pytorch_model.bin.index.json"),
    ("preprocessor_config.json",),
    ("tokenizer.json", "vocab.txt"),
)

_SEMAT_NOTE = ("the size and sha256 of the released file are not recorded yet (the Hub was not reachable "
               "when this registry was written); until they are, the file is checked on first load by the "
               "zip CRC-32 of every record and for non-finite weights")


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
    #: For ``kind="repo"``: files the folder must hold (each tuple: alternatives, one is enough).
    required: tuple[tuple[str, ...], ...] = (("config.json",),)
    #: How the file is checked when size/sha256 are unknown (shown by ``semat download``, docs).
    note: str = ""

    @property
    def url(self) -> str:
        if self.kind == "repo":
            return f"https://huggingface.co/{self.repo_id}"
        return f"https://huggingface.co/{self.repo_id}/resolve/main/{self.filename}"


REGISTRY: dict[str, WeightsEntry] = {
    e.name: e
    for e in [
        WeightsEntry("semat-sam", "XiaRho/SEMat", "SEMat_SAM.pth",
                     "SEMat (SAM ViT-L), about 1.34 GB", note=_SEMAT_NOTE),
        WeightsEntry("semat-hq-sam", "XiaRho/SEMat", "SEMat_HQ-SAM.pth",
                     "SEMat (HQ-SAM ViT-L), about 1.35 GB", note=_SEMAT_NOTE),
        WeightsEntry("semat-sam2", "XiaRho/SEMat", "SEMat_SAM2.pth",
                     "SEMat (SAM2 Hiera-L), about 970 MB", note=_SEMAT_NOTE),
        WeightsEntry("sghm", "endorno/SGHM", "SGHM-ResNet50.pth",
                     "SGHM ResNet-50 human matting, 176 MB",
                     size=176_284_285,
                     sha256="e61ddbda08bd556912dc0b1eca95dc90b830194c741e3350cc26a287cdbc0cfe",
                     source_note="official release: the Google Drive folder linked from "
                                 "github.com/cxgincsu/SemanticGuidedHumanMatting"),
        WeightsEntry("grounding-dino-tiny", "IDEA-Research/grounding-dino-tiny", "",
                     "GroundingDINO Swin-T (transformers format), about 690 MB", kind="repo",
                     required=TRANSFORMERS_DETECTOR_FILES),
        WeightsEntry("grounding-dino-base", "IDEA-Research/grounding-dino-base", "",
                     "GroundingDINO Swin-B (transformers format), about 930 MB", kind="repo",
                     required=TRANSFORMERS_DETECTOR_FILES),
        WeightsEntry("mm-grounding-dino-tiny", "openmmlab-community/mm_grounding_dino_tiny_o365v1_goldg_v3det", "",
                     "MM-Grounding-DINO Swin-T, O365v1+GoldG+V3Det (transformers format), about 0.7 GB",
                     kind="repo", required=TRANSFORMERS_DETECTOR_FILES),
        WeightsEntry("llmdet-tiny", "iSEE-Laboratory/llmdet_tiny", "",
                     "LLMDet Swin-T (MM-Grounding-DINO architecture, transformers format), about 0.7 GB",
                     kind="repo", required=TRANSFORMERS_DETECTOR_FILES),
    ]
}

Progress = Callable[[str], None]


def tiny_models_requested() -> bool:
    """True when ``SEMAT_TEST_MODELS=tiny`` asks for tiny random-weight models (tests only)."""
    return Settings.from_env().test_models


def weights_dir() -> Path:
    """The weights folder (``SEMAT_WEIGHTS_DIR``, default ``./weights``), read at call time."""
    return Path(Settings.from_env().weights_dir).expanduser().resolve()


def sha256_of(path: Path, chunk: int = 1 << 22) -> str:
    """sha256 of ``path``, always computed (no cache)."""
    return verify_file(path, use_cache=False).sha256


def verify(entry: WeightsEntry, path: Path) -> None:
    """Known size and sha256 of a registry file (the sha256 comes from the same verification
    pass that checks the zip CRCs; an unchanged file is not read again)."""
    size = path.stat().st_size
    if entry.size is not None and size != entry.size:
        raise WeightsCorrupt(
            f"{path} has {size:,} bytes, expected {entry.size:,} for {entry.filename}; "
            f"{integrity.fix_hint(path)}")
    if entry.sha256 is not None and file_sha256(path) != entry.sha256:
        raise WeightsCorrupt(f"{path} does not match the known sha256 of {entry.filename}; "
                             f"{integrity.fix_hint(path)}")


def missing_model_files(folder: Path, required: tuple[tuple[str, ...], ...]) -> list[str]:
    """What a model folder lacks: one item per unmet requirement ("a or b"), empty or absent
    files count as missing; a sharded index also needs every shard it names."""
    def present(name: str) -> bool:
        f = folder / name
        try:
            return f.is_file() and f.stat().st_size > 0
        except OSError:
            return False

    missing: list[str] = []
    for options in required:
        found = [o for o in options if present(o)]
        if not found:
            missing.append(" or ".join(options))
            continue
        for index in (o for o in found if o.endswith(".index.json")):
            try:
                shards = sorted(set(json.loads((folder / index).read_text())["weight_map"].values()))
            except (OSError, ValueError, KeyError, TypeError, AttributeError):
                missing.append(f"a readable {index}")
                continue
            missing += [s for s in shards if not present(s)]
    return missing


def check_model_folder(folder: Path, entry: WeightsEntry | None = None,
                       required: tuple[tuple[str, ...], ...] | None = None) -> Path:
    """``folder`` when it holds every file the model needs; else :class:`WeightsCorrupt` naming
    the missing files and how to fix it. ``required`` defaults to the entry's (GroundingDINO's
    transformers files when neither is given)."""
    need = required if required is not None else entry.required if entry is not None \
        else TRANSFORMERS_DETECTOR_FILES
    missing = missing_model_files(folder, need)
    if missing:
        fix = (f"delete the folder and run `semat download {entry.name}`, or copy the missing files from "
               f"{entry.url}" if entry is not None else "copy the missing files into it")
        raise WeightsCorrupt(f"{folder} is an incomplete model folder: missing {', '.join(missing)}; {fix}")
    return folder


def _offline_message(entry: WeightsEntry, target: Path, cause: BaseException | None,
                     partial: str = "") -> str:
    where = f"put it at {target}" if entry.kind == "file" else f"save the repository files in {target}/"
    extra = f" ({entry.source_note})" if entry.source_note else ""
    why = f" ({cause})" if isinstance(cause, HubUnreachable) else f" [{type(cause).__name__}]" if cause else ""
    return (f"{entry.description}: '{entry.filename or entry.repo_id}' is not available locally and "
            f"could not be downloaded{why}.{partial} Download it from {entry.url}{extra} and {where} "
            "(or set SEMAT_WEIGHTS_DIR to the folder that holds it).")


def local_target(entry: WeightsEntry) -> Path:
    """Where ``entry`` goes in the weights folder (searched before the Hugging Face cache)."""
    base = weights_dir()
    return base / entry.filename if entry.kind == "file" else base / entry.repo_id.replace("/", "--")


def resolve(name_or_path: str | os.PathLike, progress: Progress | None = None) -> Path:
    """A verified local path for a registry name or an existing file/folder path (see the
    module docstring for the search order)."""
    key = str(name_or_path)
    if key not in REGISTRY:
        p = Path(name_or_path).expanduser()
        try:
            if p.exists():
                return p.resolve()
        except (OSError, ValueError):  # a name too long for the file system, a NUL byte
            pass
        known = ", ".join(REGISTRY)
        raise WeightsUnavailable(f"{clip_text(key)}: no such file, and not a known weights name ({known})")
    entry = REGISTRY[key]
    target = local_target(entry)
    # 2. the weights folder
    if entry.kind == "repo":
        if target.is_dir() and any(target.iterdir()):
            return check_model_folder(target, entry)
    elif target.exists():
        if not target.is_file():
            raise WeightsCorrupt(f"{target} is not a file; delete it and run `semat download {entry.name}`")
        verify(entry, target)
        return target
    # 3. the Hugging Face cache, without network
    partial = ""
    cached = _from_hf_cache(entry)
    if cached is not None:
        if entry.kind == "file":
            verify(entry, cached)
            return cached
        missing = missing_model_files(cached, entry.required)
        if not missing:
            return cached
        partial = f" The Hugging Face cache holds an incomplete copy at {cached} (missing {', '.join(missing)})."
    # 4. download into the Hugging Face cache
    try:
        _check_hub_reachable()
        if progress:
            progress(f"Downloading {entry.filename or entry.repo_id} from {entry.repo_id} ...")
        path = _download(entry)
    except Exception as exc:  # offline, DNS failure, 404, hub outage: all end the same way
        raise WeightsUnavailable(_offline_message(entry, target, exc, partial)) from exc
    if entry.kind == "file":
        verify(entry, path)
        return path
    return check_model_folder(path, entry)


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


def _from_hf_cache(entry: WeightsEntry) -> Path | None:
    """The entry's file (or snapshot folder) in the Hugging Face cache, or None; never uses the
    network (``local_files_only=True``)."""
    try:
        from huggingface_hub import hf_hub_download, snapshot_download

        if entry.kind == "repo":
            return Path(snapshot_download(entry.repo_id, local_files_only=True))
        return Path(hf_hub_download(entry.repo_id, entry.filename, local_files_only=True))
    except Exception:  # not cached (LocalEntryNotFoundError), or a cache we cannot read
        return None


def _download(entry: WeightsEntry) -> Path:
    """Download into the Hugging Face cache (no ``local_dir``), so a Space's ``preload_from_hub``
    and every later run share one copy; tqdm progress bars are built in."""
    from huggingface_hub import hf_hub_download, snapshot_download

    if entry.kind == "repo":
        return Path(snapshot_download(entry.repo_id))
    return Path(hf_hub_download(entry.repo_id, entry.filename))


def download(names: list[str] | None = None, progress: Progress | None = None) -> list[Path]:
    """Pre-fetch weights (all registry entries when ``names`` is empty)."""
    return [resolve(n, progress) for n in (names or list(REGISTRY))]
