"""Checkpoint integrity without a known hash (issue 13 M5, L1, L10): zip CRC-32 of every record,
finite weights and outputs, and a verdict cache that a forged or replayed entry cannot fool."""

from __future__ import annotations

import gc
import hashlib
import json
import os
import shutil
import time
import zipfile
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch

from semat.errors import ModelError, WeightsCorrupt
from semat.weights import integrity
from semat.weights.checkpoint import read_state_dict
from semat.weights.hub import REGISTRY, WeightsEntry, resolve
from semat.weights.integrity import check_finite_output, verify_file


@pytest.fixture(autouse=True)
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setattr(integrity, "_MEMO", {})
    return tmp_path / "xdg" / "semat"


def _new_process() -> None:
    """Forget this process's in-memory verdicts (what a restart does): only the disk cache is left."""
    integrity._MEMO.clear()


@pytest.fixture
def settled(monkeypatch: pytest.MonkeyPatch) -> None:
    """Cache verdicts of files written a moment ago (the default waits 2 s, see RACY_NS); tests
    that then modify a file sleep past one timestamp tick first."""
    monkeypatch.setattr(integrity, "RACY_NS", 0)


def _checkpoint(path: Path, n: int = 8, size: int = 65_536) -> Path:
    gen = torch.Generator().manual_seed(0)
    torch.save({"model": {f"layer{i}.weight": torch.randn(size // 4, generator=gen) for i in range(n)}}, path)
    return path


def _flip_middle(src: Path, dst: Path, length: int = 64, value: int | None = None) -> Path:
    data = bytearray(src.read_bytes())
    mid = len(data) // 2
    data[mid:mid + length] = bytes([value]) * length if value is not None else bytes(b ^ 0xFF for b in
                                                                                     data[mid:mid + length])
    dst.write_bytes(bytes(data))
    return dst


# ------------------------------------------------------------------------------ detection


def test_flipped_bytes_in_a_tensor_record_are_refused(tmp_path: Path) -> None:
    good = _checkpoint(tmp_path / "good.pth", n=7)  # odd: the middle byte lies inside record data/3
    bad = _flip_middle(good, tmp_path / "bad.pth")
    assert len(read_state_dict(good)) == 7
    with pytest.raises(WeightsCorrupt) as info:
        read_state_dict(bad)
    msg = str(info.value)
    assert msg.startswith(f"{bad} is corrupt: zip record 'good/data/3' fails its CRC-32 check")
    assert f"delete {bad.resolve()}" in msg and "download it again" in msg and "\n" not in msg


def test_one_mib_of_ff_bytes_is_refused(tmp_path: Path) -> None:
    """The review's M5 file: 1 MiB of 0xFF in the middle (NaN weights) loaded silently."""
    good = _checkpoint(tmp_path / "SEMat_SAM.pth", n=16, size=1 << 20)
    (tmp_path / "copy").mkdir()
    bad = _flip_middle(good, tmp_path / "copy" / "SEMat_SAM.pth", length=1 << 20, value=0xFF)
    with pytest.raises(WeightsCorrupt, match=r"SEMat_SAM\.pth is corrupt: .*(CRC-32|local header)") as info:
        read_state_dict(bad)
    assert "semat download semat-sam" in str(info.value)  # a registry file: the exact command to fix it
    (tmp_path / "copy2").mkdir()
    data = bytearray(good.read_bytes())
    start = len(data) // 2 + 4096  # inside one tensor's bytes only
    data[start:start + (1 << 19)] = b"\xff" * (1 << 19)
    (tmp_path / "copy2" / "SEMat_SAM.pth").write_bytes(bytes(data))
    with pytest.raises(WeightsCorrupt, match="fails its CRC-32 check"):
        read_state_dict(tmp_path / "copy2" / "SEMat_SAM.pth")  # a registry file: the exact command to fix it


@pytest.mark.parametrize("keep", [0.5, 0.99, 100])
def test_truncated_zip_checkpoints_are_refused(tmp_path: Path, keep: float) -> None:
    good = _checkpoint(tmp_path / "good.pth")
    data = good.read_bytes()
    cut = tmp_path / "cut.pth"
    cut.write_bytes(data[: int(len(data) * keep)] if keep < 1 else data[:int(keep)])
    with pytest.raises(WeightsCorrupt, match=r"cut\.pth is corrupt: .*(truncated|incomplete)") as info:
        read_state_dict(cut)
    assert "download it again" in str(info.value)


def test_damaged_local_header_is_refused(tmp_path: Path) -> None:
    good = _checkpoint(tmp_path / "good.pth")
    info = zipfile.ZipFile(good).infolist()[3]
    data = bytearray(good.read_bytes())
    data[info.header_offset:info.header_offset + 4] = b"XXXX"
    bad = tmp_path / "bad.pth"
    bad.write_bytes(bytes(data))
    with pytest.raises(WeightsCorrupt, match="local header"):
        read_state_dict(bad)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
@pytest.mark.parametrize("zip_format", [True, False])
def test_non_finite_weights_are_refused(tmp_path: Path, value: float, zip_format: bool) -> None:
    """Bytes that pass their CRC (written that way) or a legacy file without CRCs."""
    path = tmp_path / "nan.pth"
    sd = {"ok.weight": torch.ones(3), "steps": torch.zeros(1, dtype=torch.int64),
          "half.weight": torch.tensor([1.0, value], dtype=torch.float16), "bad.bias": torch.tensor([value])}
    torch.save(sd, path, _use_new_zipfile_serialization=zip_format)
    with pytest.raises(WeightsCorrupt) as info:
        read_state_dict(path)
    msg = str(info.value)
    assert f"{path} holds non-finite weights (NaN or Inf in 2 tensor(s): bad.bias, half.weight)" in msg
    assert "delete" in msg
    assert not torch.isfinite(read_state_dict(path, verify=False)["bad.bias"]).all()  # verify=False: as stored


def test_large_finite_weights_are_not_mistaken_for_overflow(tmp_path: Path) -> None:
    """The fast finite test sums each tensor; a sum that overflows must not refuse a good file."""
    path = tmp_path / "large.pth"
    torch.save({"big": torch.full((10,), 3e38), "half": torch.full((100_000,), 60_000.0, dtype=torch.float16),
                "neg": torch.tensor([-3e38, -3e38])}, path)
    assert set(read_state_dict(path)) == {"big", "half", "neg"}


def test_legacy_files_are_not_zip_but_still_load(tmp_path: Path) -> None:
    path = tmp_path / "legacy.pth"
    torch.save({"w": torch.ones(2)}, path, _use_new_zipfile_serialization=False)
    verdict = verify_file(path)
    assert verdict.zip_records is None and verdict.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert torch.equal(read_state_dict(path)["w"], torch.ones(2))


def test_verdict_counts_every_record_and_hash_is_the_file_sha256(tmp_path: Path) -> None:
    path = _checkpoint(tmp_path / "good.pth")
    verdict = verify_file(path)
    assert verdict.zip_records == len(zipfile.ZipFile(path).infolist())
    assert verdict.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_non_finite_outputs_are_a_model_error() -> None:
    ok = np.zeros((4, 4), np.float32)
    assert check_finite_output(ok, "alpha") is ok
    assert check_finite_output({"a": torch.ones(2), "ids": torch.arange(3)}, "outputs") is not None
    for bad in (np.array([0.0, np.nan]), torch.tensor([1.0, float("inf")]), [ok, np.array([np.inf])],
                {"alpha": torch.tensor([float("nan")], dtype=torch.bfloat16)}):
        with pytest.raises(ModelError, match=r"non-finite values \(NaN or Inf\) for the alpha matte") as info:
            check_finite_output(bad, "the alpha matte")
        assert "SEMAT_DTYPE=float32" in str(info.value) and "\n" not in str(info.value)


# ---------------------------------------------------------------------------------- cache


def test_second_verification_reads_nothing(tmp_path: Path, monkeypatch, settled) -> None:
    path = _checkpoint(tmp_path / "good.pth")
    first = verify_file(path)
    assert not first.cached and integrity.verdict_path(path).is_file()
    monkeypatch.setattr(integrity, "_scan", lambda *a: pytest.fail("read again"))
    assert verify_file(path).cached  # in memory
    _new_process()
    second = verify_file(path)  # from the signed disk entry
    assert second.cached and second.sha256 == first.sha256
    assert integrity.file_sha256(path) == first.sha256


def test_fresh_files_are_not_cached_on_disk(tmp_path: Path, monkeypatch) -> None:
    path = _checkpoint(tmp_path / "good.pth")
    assert not verify_file(path).cached
    assert not integrity.verdict_path(path).exists()  # written < 2 s ago: the next process verifies again
    monkeypatch.setattr(integrity, "_scan", lambda *a: pytest.fail("read again"))
    assert verify_file(path).cached  # but this process hashes a fresh download only once


def test_key_is_private_and_others_readable_key_is_not_trusted(tmp_path: Path, private_cache, settled) -> None:
    path = _checkpoint(tmp_path / "good.pth")
    verify_file(path)
    key = private_cache / "integrity.key"
    assert key.stat().st_mode & 0o777 == 0o600 and len(key.read_bytes()) == 32
    _new_process()
    assert verify_file(path).cached
    key.chmod(0o644)  # readable by others: anyone could forge entries with it
    _new_process()
    assert not verify_file(path).cached


def _good_sha_forgery(tmp_path: Path, monkeypatch) -> tuple[Path, WeightsEntry]:
    """L10's file: right size, all zeros, registry hash of the genuine file."""
    genuine = b"genuine weights " * 64
    entry = WeightsEntry("demo", "org/repo", "demo.pth", "demo", size=len(genuine),
                         sha256=hashlib.sha256(genuine).hexdigest())
    monkeypatch.setitem(REGISTRY, "demo", entry)
    monkeypatch.setenv("SEMAT_WEIGHTS_DIR", str(tmp_path / "w"))
    forged = tmp_path / "w" / "demo.pth"
    forged.parent.mkdir()
    forged.write_bytes(b"\0" * len(genuine))
    return forged, entry


def test_forged_sidecars_do_not_skip_verification(tmp_path: Path, monkeypatch, settled) -> None:
    forged, entry = _good_sha_forgery(tmp_path, monkeypatch)
    st = forged.stat()
    # the old unsigned sidecar format, beside the file
    (forged.parent / "demo.pth.sha256.json").write_text(json.dumps(
        {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": entry.sha256}))
    # and a cache entry with every stat field right but no valid MAC
    body = {"v": 1, "path": os.path.realpath(forged), "size": st.st_size, "mtime_ns": st.st_mtime_ns,
            "ctime_ns": st.st_ctime_ns, "ino": st.st_ino, "dev": st.st_dev, "sha256": entry.sha256,
            "zip_records": None}
    target = integrity.verdict_path(forged)
    target.parent.mkdir(parents=True, exist_ok=True)
    for mac in ("0" * 64, integrity._mac(b"k" * 32, body)):  # a guess, and the right MAC under a wrong key
        target.write_text(json.dumps({**body, "mac": mac}))
        with pytest.raises(WeightsCorrupt, match="does not match the known sha256"):
            resolve("demo")


def test_replayed_genuine_entry_does_not_vouch_for_another_file(tmp_path: Path, monkeypatch, settled) -> None:
    """A genuine, correctly signed entry copied onto a forged file with the same size and mtime,
    or a file rewritten in place with its mtime restored: ctime/inode differ, so it is hashed."""
    genuine = b"genuine weights " * 64
    forged, _ = _good_sha_forgery(tmp_path, monkeypatch)
    forged.write_bytes(genuine)
    assert resolve("demo") == forged  # verified, and now cached
    st = forged.stat()
    time.sleep(0.05)
    # 1. rewrite in place (same inode), restore the mtime
    forged.write_bytes(b"\0" * len(genuine))
    os.utime(forged, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert forged.stat().st_size == st.st_size and forged.stat().st_mtime_ns == st.st_mtime_ns
    with pytest.raises(WeightsCorrupt, match="sha256"):
        resolve("demo")
    # 2. a new file renamed over it (new inode), mtime restored, the genuine entry put back
    forged.write_bytes(genuine)
    resolve("demo")
    entry_text = integrity.verdict_path(forged).read_text()
    st = forged.stat()
    time.sleep(0.05)
    other = forged.with_name("other.pth")
    other.write_bytes(b"\0" * len(genuine))
    os.utime(other, ns=(st.st_atime_ns, st.st_mtime_ns))
    os.replace(other, forged)
    integrity.verdict_path(forged).write_text(entry_text)
    with pytest.raises(WeightsCorrupt, match="sha256"):
        resolve("demo")


def test_entries_of_deleted_files_are_pruned(tmp_path: Path, settled) -> None:
    a = _checkpoint(tmp_path / "a.pth", n=1, size=64)
    b = _checkpoint(tmp_path / "b.pth", n=1, size=64)
    verify_file(a)
    a.unlink()
    verify_file(b)
    assert not integrity.verdict_path(a).exists() and integrity.verdict_path(b).exists()


def test_unusable_cache_folder_still_verifies(tmp_path: Path, monkeypatch) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    good = _checkpoint(tmp_path / "good.pth")
    assert not verify_file(good).cached
    _new_process()
    assert not verify_file(good).cached
    with pytest.raises(WeightsCorrupt):
        verify_file(_flip_middle(good, tmp_path / "bad.pth"))


# ------------------------------------------------------------------- golden checkpoints


@pytest.mark.slow
def test_corrupted_golden_checkpoint_is_refused_and_intact_one_loads(golden_dir, golden_weights_module,
                                                                     tmp_path: Path, capsys) -> None:
    """Issue 13 proof: the golden SGHM checkpoint (176 MB, the released layout) with bytes
    flipped in the middle is refused naming the file; the intact copy loads and is cached."""
    from semat.inference.sghm import load_sghm

    gw = golden_weights_module
    sd = gw.golden_state_dict(gw.load_manifest(golden_dir / "sghm" / "manifest.json"))
    good = tmp_path / "golden" / "SGHM-ResNet50.pth"
    good.parent.mkdir()
    torch.save(OrderedDict((k, torch.from_numpy(v)) for k, v in sd.items()), good)
    del sd
    gc.collect()
    bad = tmp_path / "corrupt" / "SGHM-ResNet50.pth"
    bad.parent.mkdir()
    shutil.copyfile(good, bad)
    _flip_middle(bad, bad, length=4096)

    t0 = time.perf_counter()
    with pytest.raises(WeightsCorrupt) as info:
        load_sghm(bad, fuse=False)
    refused_s = time.perf_counter() - t0
    msg = str(info.value)
    assert str(bad) in msg and "CRC-32" in msg and "semat download sghm" in msg

    time.sleep(max(0.0, integrity.RACY_NS / 1e9 - (time.time() - good.stat().st_ctime)))  # settled: cacheable
    t0 = time.perf_counter()
    first = verify_file(good)
    first_s = time.perf_counter() - t0
    _new_process()  # measure the signed disk cache, as the next start sees it
    t0 = time.perf_counter()
    second = verify_file(good)
    cached_s = time.perf_counter() - t0
    assert not first.cached and second.cached and second.sha256 == first.sha256
    model, used = load_sghm(good, fuse=False)
    assert used == good.resolve() and sum(p.numel() for p in model.parameters()) > 1_000_000
    with capsys.disabled():
        print(f"\n[integrity] golden SGHM {good.stat().st_size / 1e6:.0f} MB: corrupt copy refused in "
              f"{refused_s:.2f} s; first verification {first_s:.2f} s; cached {cached_s * 1e3:.1f} ms")
