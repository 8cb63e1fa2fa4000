"""Integrity of weights files and of model outputs, without knowing a file's hash in advance.

A damaged checkpoint must never be used silently (issue 13, M5: a SEMat file with 1 MiB
overwritten loaded without a word and gave an all-zero alpha). Three checks:

* **Zip CRC-32 of every record** (:func:`verify_file`). ``torch.save`` writes a zip archive whose
  central directory holds a CRC-32 for every record (``data.pkl`` and one record per tensor
  storage). ``torch.load(mmap=True)`` maps the storages and never checks those CRCs, so one
  streaming pass over the file recomputes them (4 MiB chunks, bounded memory) and computes the
  file's sha256 at the same time (the pipeline reports it, and registry entries with a known
  hash compare against it). A record that fails, a damaged local header, records that overlap or
  run past the end of the file, and an archive that starts like a zip but whose directory
  cannot be read (a truncated download) all raise :class:`~semat.errors.WeightsCorrupt` naming
  the file. Files that are not zip archives (PyTorch's legacy format) have no CRCs; they get
  the sha256 and the checks below.
* **Finite weights** (:func:`check_finite_state_dict`): a NaN or Inf in any floating tensor is
  refused (0xFF bytes read as float32 are NaN).
* **Finite outputs** (:func:`check_finite_output`): a non-finite model output is a
  :class:`~semat.errors.ModelError`, never a silent all-zero matte.

Verdict cache (L10: a forged sidecar must not skip verification)
----------------------------------------------------------------
Hashing a 1.3 GB file takes seconds, so a *successful* verification is remembered in
``<user cache>/semat/verified/<key>.json`` (``$XDG_CACHE_HOME/semat`` or ``~/.cache/semat``),
never next to the weights (the weights folder or the Space image may be read-only, and the
Hugging Face cache is not ours to write into). An entry is trusted only when

1. its HMAC-SHA256, under a per-install 32-byte secret (``integrity.key`` in the same folder,
   created ``0600``, refused if another user owns it or others can read it), matches: anyone
   who cannot read the secret cannot write an entry that is accepted; and
2. the file's real path, size, ``mtime_ns``, **``ctime_ns``**, inode and device all equal the
   recorded ones. ``ctime`` cannot be set from user space (writing or ``touch``-ing a file moves it
   to "now"), so copying a genuine entry next to a forged file with the same size and mtime, or
   rewriting a file in place and restoring its mtime, does not match and the file is verified
   again.

Anything else (no entry, an old unsigned ``*.sha256.json`` sidecar, a bad MAC, a changed
stat, an unreadable or unusable cache folder) means a full verification, so the cache can only
save time, never vouch for bytes it has not hashed. A file that changes while it is being
hashed is not cached, nor one changed less than :data:`RACY_NS` (2 s) before it was hashed:
within one timestamp tick a rewrite could leave every stat field as recorded (git's "racy"
files), so such a file is simply verified again by the next process. Within one process,
verdicts are also kept in memory under the same stat key, so a file just downloaded is hashed
once, not again for the pipeline's sha256. Entries whose file no longer exists are pruned
when a new one is written.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import os
import stat
import struct
import time
import zipfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from semat.errors import ModelError, WeightsCorrupt

__all__ = [
    "FileVerdict", "cache_dir", "check_finite_output", "check_finite_state_dict", "file_sha256",
    "fix_hint", "verdict_path", "verify_file",
]

CHUNK = 4 << 20  # bytes read per step of the verification pass
RACY_NS = 2_000_000_000  # files changed less than this long ago are not cached (timestamp granularity)
_CACHE_VERSION = 1
_MEMO: dict[tuple[object, ...], tuple[str, int | None]] = {}  # this process's verdicts, by real path + stat
_MEMO_SIZE = 64
_MAX_PRUNE = 1000  # cache entries looked at when pruning


@dataclass(frozen=True)
class FileVerdict:
    """A verified file: its sha256 and how many zip records passed their CRC-32 (None: not a
    zip archive, so no CRCs to check)."""

    path: Path
    sha256: str
    zip_records: int | None
    cached: bool = False  # True when the verdict came from the cache (no bytes were read)


# ---------------------------------------------------------------------------------- messages


def fix_hint(path: Path) -> str:
    """How to repair a damaged weights file: delete it (its real file, for a Hugging Face cache
    symlink) and download it again (naming ``semat download NAME`` for a registry file)."""
    path = Path(path)
    try:
        real = path.resolve()
    except OSError:
        real = path
    target = f"delete {real}" + (" (the file it links to in the Hugging Face cache)" if real != path.absolute()
                                 and path.is_symlink() else "")
    from semat.weights.hub import REGISTRY  # local import: hub imports this module

    names = [e.name for e in REGISTRY.values() if e.kind == "file" and e.filename == path.name]
    again = f"run `semat download {names[0]}`" if names else "download it again"
    return f"{target} and {again}"


def _corrupt(path: Path, what: str) -> WeightsCorrupt:
    return WeightsCorrupt(f"{path} is corrupt: {what}; {fix_hint(path)}")


# ------------------------------------------------------------------------------ verification


def verify_file(path: str | os.PathLike, *, use_cache: bool = True) -> FileVerdict:
    """Verify ``path`` (zip CRC-32 of every record, see the module docstring) and return its sha256.

    Raises :class:`WeightsCorrupt` naming the file when it is damaged, ``OSError`` when it cannot
    be read. A successful verdict is cached (HMAC-signed, keyed by the file's stat) so the next
    call for an unchanged file reads no bytes.
    """
    path = Path(path)
    st = os.stat(path)
    if not stat.S_ISREG(st.st_mode):
        raise IsADirectoryError(f"{path} is not a regular file")
    memo_key = (os.path.realpath(path), *_stat_fields(st).values())
    if use_cache and memo_key in _MEMO:  # verified by this process (e.g. a fresh download)
        sha256, records = _MEMO[memo_key]
        return FileVerdict(path, sha256, records, cached=True)
    key = _secret() if use_cache else None
    if key is not None:
        hit = _cached(path, st, key)
        if hit is not None:
            return hit
    sha256, records = _scan(path, st.st_size)
    verdict = FileVerdict(path, sha256, records)
    if _stat_fields(os.stat(path)) == _stat_fields(st):
        while len(_MEMO) >= _MEMO_SIZE:
            _MEMO.pop(next(iter(_MEMO)))
        _MEMO[memo_key] = (sha256, records)
    if key is not None:
        unchanged = _stat_fields(os.stat(path)) == _stat_fields(st)  # not modified while it was read
        # "Racy" files: a change within the same timestamp tick would leave the stat as recorded,
        # so a file modified moments ago is verified again next time instead of cached.
        settled = time.time_ns() - max(st.st_mtime_ns, st.st_ctime_ns) >= RACY_NS
        if unchanged and settled:
            _store(path, st, verdict, key)
    return verdict


def file_sha256(path: str | os.PathLike) -> str:
    """sha256 of ``path`` (verified and cached as :func:`verify_file` does)."""
    return verify_file(path).sha256


def _scan(path: Path, size: int) -> tuple[str, int | None]:
    """One pass: sha256 of the whole file and CRC-32 of every stored zip record."""
    sha = hashlib.sha256()
    with open(path, "rb") as f:
        layout, compressed = _zip_layout(f, path, size)
        records = layout or []
        f.seek(0)
        crcs = [0] * len(records)
        j = 0  # first record not yet finished
        pos = 0
        while True:
            chunk = f.read(CHUNK)
            if not chunk:
                break
            sha.update(chunk)
            end = pos + len(chunk)
            view = memoryview(chunk)
            k = j
            while k < len(records) and records[k][1] <= end:
                name, start, stop, crc = records[k]
                s, e = max(start, pos), min(stop, end)
                if e > s:
                    crcs[k] = zlib.crc32(view[s - pos:e - pos], crcs[k])
                if stop > end:
                    break  # continues in the next chunk
                if crcs[k] != crc:
                    raise _corrupt(path, f"zip record '{name}' fails its CRC-32 check (bytes somewhere in "
                                         f"{start:,}–{stop:,} changed after the file was written)")
                k += 1
                j = k
            pos = end
        if pos != size:
            raise _corrupt(path, f"it changed size while being read ({size:,} → {pos:,} bytes)")
        if j != len(records):
            raise _corrupt(path, f"zip record '{records[j][0]}' runs past the end of the file")
        for info in compressed:  # torch writes stored records; zipfile checks others' CRC itself
            try:
                with zipfile.ZipFile(f) as zf, zf.open(info) as member:
                    while member.read(CHUNK):
                        pass
            except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as exc:
                raise _corrupt(path, f"zip record '{info.filename}' cannot be read ({exc})") from exc
    return sha.hexdigest(), (len(records) + len(compressed)) if layout is not None else None


def _zip_layout(f: Any, path: Path, size: int) -> tuple[list[tuple[str, int, int, int]] | None,
                                                          list[zipfile.ZipInfo]]:
    """``(name, data start, data end, crc)`` of every stored record, sorted, or None for a file
    that is not a zip archive; plus the compressed records."""
    head = f.read(4)
    f.seek(0)
    try:
        with zipfile.ZipFile(f) as zf:
            infos = zf.infolist()
    except zipfile.BadZipFile as exc:
        if head == b"PK\x03\x04":
            raise _corrupt(path, "it starts as a zip archive but its directory cannot be read (an "
                                 f"incomplete download or a truncated copy: {exc})") from exc
        return None, []
    except (OSError, ValueError, struct.error, EOFError) as exc:
        raise _corrupt(path, f"its zip directory is damaged ({exc})") from exc
    records: list[tuple[str, int, int, int]] = []
    compressed: list[zipfile.ZipInfo] = []
    for info in infos:
        f.seek(info.header_offset)
        hdr = f.read(30)
        if len(hdr) < 30 or hdr[:4] != b"PK\x03\x04":
            raise _corrupt(path, f"the local header of zip record '{info.filename}' is damaged")
        name_len, extra_len = struct.unpack("<HH", hdr[26:30])
        start = info.header_offset + 30 + name_len + extra_len
        stop = start + info.compress_size
        if stop > size:
            raise _corrupt(path, f"zip record '{info.filename}' runs past the end of the file "
                                 f"({stop:,} > {size:,} bytes: a truncated copy)")
        if info.compress_type != zipfile.ZIP_STORED:
            compressed.append(info)
            continue
        records.append((info.filename, start, stop, info.CRC))
    records.sort(key=lambda r: r[1])
    for (a, _, a_stop, _), (b, b_start, _, _) in itertools.pairwise(records):
        if b_start < a_stop:
            raise _corrupt(path, f"zip records '{a}' and '{b}' overlap")
    return records, compressed


# --------------------------------------------------------------------------------- the cache


def cache_dir() -> Path:
    """``$XDG_CACHE_HOME/semat`` (default ``~/.cache/semat``): the secret and the verdicts."""
    base = os.environ.get("XDG_CACHE_HOME", "").strip() or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "semat"


def verdict_path(path: str | os.PathLike) -> Path:
    """Where the cached verdict of ``path`` lives (keyed by its real path)."""
    real = os.path.realpath(path)
    return cache_dir() / "verified" / (hashlib.sha256(real.encode("utf-8", "surrogateescape")).hexdigest()[:40]
                                       + ".json")


def _secret() -> bytes | None:
    """The per-install HMAC key, created on first use; None when it cannot be used safely."""
    folder = cache_dir()
    key_path = folder / "integrity.key"
    nofollow = getattr(os, "O_NOFOLLOW", 0)
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not os.path.lexists(key_path):
            # Written in full under a temporary name, then linked into place: a reader never
            # sees a half-written key, and two processes starting together agree on one key.
            tmp = folder / f".integrity.key.{os.getpid()}.{time.monotonic_ns()}"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | nofollow, 0o600)
            with os.fdopen(fd, "wb") as out:
                out.write(os.urandom(32))
            try:
                os.link(tmp, key_path)
            except FileExistsError:
                pass
            except OSError:  # no hard links on this file system
                os.replace(tmp, key_path)
            finally:
                tmp.unlink(missing_ok=True)
        fd = os.open(key_path, os.O_RDONLY | nofollow)
        with os.fdopen(fd, "rb") as src:
            st = os.fstat(src.fileno())
            if not stat.S_ISREG(st.st_mode) or st.st_mode & 0o077 or (
                    hasattr(os, "getuid") and st.st_uid != os.getuid()):
                return None  # readable by others or not ours: a forger could know it
            key = src.read(64)
    except OSError:
        return None
    return key if len(key) == 32 else None


def _stat_fields(st: os.stat_result) -> dict[str, int]:
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "ctime_ns": st.st_ctime_ns,
            "ino": st.st_ino, "dev": st.st_dev}


def _mac(key: bytes, body: Mapping[str, Any]) -> str:
    return hmac.new(key, json.dumps(body, sort_keys=True, separators=(",", ":")).encode(),
                    hashlib.sha256).hexdigest()


def _body(path: Path, st: os.stat_result, sha256: str, zip_records: int | None) -> dict[str, Any]:
    return {"v": _CACHE_VERSION, "path": os.path.realpath(path), **_stat_fields(st), "sha256": sha256,
            "zip_records": zip_records}


def _cached(path: Path, st: os.stat_result, key: bytes) -> FileVerdict | None:
    try:
        data = json.loads(verdict_path(path).read_text())
        mac = data.pop("mac")
        sha256, records = data["sha256"], data["zip_records"]
        expected = _body(path, st, sha256, records)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    if data != expected or not isinstance(mac, str) or not hmac.compare_digest(mac, _mac(key, expected)):
        return None
    return FileVerdict(path, sha256, records, cached=True)


def _store(path: Path, st: os.stat_result, verdict: FileVerdict, key: bytes) -> None:
    body = _body(path, st, verdict.sha256, verdict.zip_records)
    target = verdict_path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = target.with_name(f"{target.name}.{os.getpid()}.{time.monotonic_ns()}.tmp")
        tmp.write_text(json.dumps({**body, "mac": _mac(key, body)}))
        os.replace(tmp, target)
        _prune(target.parent, keep=target)
    except OSError:
        pass


def _prune(folder: Path, keep: Path) -> None:
    """Drop entries whose file is gone (test runs and moved downloads leave them behind)."""
    for entry in list(folder.glob("*.json"))[:_MAX_PRUNE]:
        if entry == keep:
            continue
        try:
            recorded = json.loads(entry.read_text()).get("path")
            if not isinstance(recorded, str) or not os.path.exists(recorded):
                entry.unlink()
        except (OSError, ValueError, AttributeError):
            try:
                entry.unlink()
            except OSError:
                pass


# ---------------------------------------------------------------------------- finite values


def check_finite_state_dict(sd: Mapping[str, Any], source: str | os.PathLike) -> None:
    """Refuse a state dict with a NaN or Inf in any floating-point tensor (a damaged file)."""
    import torch

    bad = [name for name, t in sd.items() if isinstance(t, torch.Tensor) and not _tensor_finite(t)]
    if bad:
        path = Path(source)
        shown = ", ".join(sorted(bad)[:3]) + (f", ... ({len(bad) - 3} more)" if len(bad) > 3 else "")
        raise WeightsCorrupt(f"{path} holds non-finite weights (NaN or Inf in {len(bad)} tensor(s): {shown}), "
                             f"so it is damaged; {fix_hint(path)}")


def _tensor_finite(t: Any) -> bool:
    """Every element finite. Fast path: the sum (float32 accumulation, no temporary the size of
    the tensor) is finite exactly when no element is NaN/Inf, unless finite values overflow it;
    only a non-finite sum pays for the exact element-wise test."""
    import torch

    if not (t.is_floating_point() or t.is_complex()) or t.numel() == 0:
        return True
    with torch.no_grad():
        acc = t.sum() if t.dtype in (torch.float32, torch.float64) or t.is_complex() else t.sum(dtype=torch.float32)
        if bool(torch.isfinite(acc).all()):
            return True
        return bool(torch.isfinite(t).all())


def check_finite_output(value: Any, what: str) -> Any:
    """``value`` (a NumPy array, a torch tensor, or a mapping/sequence of them) unchanged when
    every number is finite; else :class:`ModelError` naming ``what``.

    For predictors: call it on the model's raw output before it becomes a matte, so a damaged
    checkpoint or a reduced-precision overflow never turns into a silent all-zero alpha.
    """
    if not _all_finite(value):
        raise ModelError(f"the model produced non-finite values (NaN or Inf) for {what}; its weights may be "
                         "damaged (delete the weights file and download it again) or reduced precision "
                         "overflowed (try SEMAT_DTYPE=float32 or --dtype float32)")
    return value


def _all_finite(value: Any) -> bool:
    import numpy as np

    if isinstance(value, Mapping):
        return all(_all_finite(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return all(_all_finite(v) for v in value)
    try:
        import torch

        if isinstance(value, torch.Tensor):
            return _tensor_finite(value)
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    if isinstance(value, (float, int)):
        return bool(np.isfinite(value))
    arr = np.asarray(value)
    if arr.dtype.kind not in "fc":
        return True
    return bool(np.isfinite(arr).all())
