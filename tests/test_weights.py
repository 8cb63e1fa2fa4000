"""Weights registry: local paths, the search order (weights folder, Hugging Face cache, download),
offline messages, size/sha256 verification, model-folder completeness."""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

import pytest

from semat.weights import hub as weights
from semat.weights import integrity
from semat.weights.hub import REGISTRY, WeightsCorrupt, WeightsEntry, WeightsUnavailable, resolve


@pytest.fixture(autouse=True)
def isolated_caches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty Hugging Face cache and verdict cache per test; returns the HF cache folder."""
    from huggingface_hub import constants

    hf = tmp_path / "hf-cache"
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(hf))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setattr(integrity, "_MEMO", {})
    return hf


def _put_in_hf_cache(hf: Path, repo_id: str, files: dict[str, bytes], commit: str = "c0ffee" * 6 + "abcd") -> Path:
    """Lay files out the way huggingface_hub does (blobs + snapshot symlinks + refs/main)."""
    repo = hf / ("models--" + repo_id.replace("/", "--"))
    snap = repo / "snapshots" / commit
    (repo / "blobs").mkdir(parents=True, exist_ok=True)
    snap.mkdir(parents=True, exist_ok=True)
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / "main").write_text(commit)
    for name, data in files.items():
        blob = repo / "blobs" / hashlib.sha256(data).hexdigest()
        blob.write_bytes(data)
        (snap / name).parent.mkdir(parents=True, exist_ok=True)
        (snap / name).symlink_to(os.path.relpath(blob, (snap / name).parent))
    return snap


def _demo(monkeypatch: pytest.MonkeyPatch, data: bytes, **kw) -> WeightsEntry:
    entry = WeightsEntry("demo", "org/repo", "demo.pth", "demo weights", size=len(data),
                         sha256=hashlib.sha256(data).hexdigest(), **kw)
    monkeypatch.setitem(REGISTRY, "demo", entry)
    return entry


def test_local_path_always_works(tmp_path: Path) -> None:
    f = tmp_path / "my.pth"
    f.write_bytes(b"x")
    assert resolve(f) == f.resolve()


def test_unknown_name_lists_known_names() -> None:
    with pytest.raises(WeightsUnavailable, match=r"not a known weights name.*semat-hq-sam"):
        resolve("no-such-model")
    with pytest.raises(WeightsUnavailable) as info:
        resolve("x" * 10_000)
    assert len(str(info.value)) < 300  # the name is clipped (L8)


def test_offline_message_names_file_url_and_target(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("SEMAT_WEIGHTS_DIR", str(tmp_path))
    t0 = time.perf_counter()
    with pytest.raises(WeightsUnavailable) as info:
        resolve("semat-sam2")
    assert time.perf_counter() - t0 < 5  # no 25 s of retries
    msg = str(info.value)
    assert "SEMat_SAM2.pth" in msg
    assert "https://huggingface.co/XiaRho/SEMat/resolve/main/SEMat_SAM2.pth" in msg
    assert str(tmp_path / "SEMat_SAM2.pth") in msg
    assert "HF_HUB_OFFLINE" in msg
    assert "\n" not in msg


def test_registry_file_in_weights_dir_is_verified(tmp_path: Path, monkeypatch) -> None:
    data = b"checkpoint bytes"
    _demo(monkeypatch, data)
    monkeypatch.setenv("SEMAT_WEIGHTS_DIR", str(tmp_path))
    monkeypatch.setattr(integrity, "RACY_NS", 0)  # cache a file written a moment ago
    (tmp_path / "demo.pth").write_bytes(data)
    assert resolve("demo") == tmp_path / "demo.pth"
    assert integrity.verdict_path(tmp_path / "demo.pth").is_file()  # hash cached for the next start
    time.sleep(0.05)  # a later timestamp tick: the rewrite below moves ctime
    (tmp_path / "demo.pth").write_bytes(b"checkpoint bytez")  # same size, different content
    with pytest.raises(WeightsCorrupt, match="sha256"):
        resolve("demo")
    (tmp_path / "demo.pth").write_bytes(b"short")
    with pytest.raises(WeightsCorrupt, match="bytes") as info:
        resolve("demo")
    assert "delete" in str(info.value) and "semat download demo" in str(info.value)


def test_sghm_entry_matches_the_published_file() -> None:
    e = REGISTRY["sghm"]
    assert (e.repo_id, e.filename, e.size) == ("endorno/SGHM", "SGHM-ResNet50.pth", 176_284_285)
    assert e.sha256 == "e61ddbda08bd556912dc0b1eca95dc90b830194c741e3350cc26a287cdbc0cfe"


def test_semat_entries_say_their_hash_is_not_recorded_yet() -> None:
    for name in ("semat-sam", "semat-hq-sam", "semat-sam2"):
        e = REGISTRY[name]
        assert e.size is None and e.sha256 is None
        assert "not recorded yet" in e.note and "CRC-32" in e.note and "non-finite" in e.note


def test_download_cli_rejects_unknown_names(capsys) -> None:
    from semat.cli.main import main

    assert main(["download", "nope"]) == 2
    assert "unknown weights nope" in capsys.readouterr().err
    assert weights.weights_dir().name  # importable without network


# ------------------------------------------------------------------------- search order


def test_hf_cache_is_used_offline_after_the_weights_folder(tmp_path: Path, monkeypatch, isolated_caches) -> None:
    data = b"cached checkpoint"
    _demo(monkeypatch, data)
    wdir = tmp_path / "weights"
    wdir.mkdir()
    monkeypatch.setenv("SEMAT_WEIGHTS_DIR", str(wdir))
    monkeypatch.setattr(weights, "_download", lambda entry: pytest.fail("must not download"))
    snap = _put_in_hf_cache(isolated_caches, "org/repo", {"demo.pth": data})
    assert resolve("demo") == snap / "demo.pth"  # HF_HUB_OFFLINE=1 (conftest): found without network
    (wdir / "demo.pth").write_bytes(data)
    assert resolve("demo") == wdir / "demo.pth"  # an existing weights-folder file wins


def test_download_goes_to_the_hf_cache(tmp_path: Path, monkeypatch, isolated_caches) -> None:
    """Issue 10 point 3: no local_dir, so preload_from_hub and later runs share the cache."""
    import huggingface_hub

    data = b"downloaded checkpoint"
    _demo(monkeypatch, data)
    monkeypatch.setenv("SEMAT_WEIGHTS_DIR", str(tmp_path / "weights"))
    monkeypatch.setattr(weights, "_check_hub_reachable", lambda: None)
    calls: list[dict] = []

    def fake_download(repo_id: str, filename: str, **kw) -> str:
        calls.append(kw)
        if kw.get("local_files_only"):
            raise huggingface_hub.errors.LocalEntryNotFoundError("not cached")
        return str(_put_in_hf_cache(isolated_caches, repo_id, {filename: data}) / filename)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
    messages: list[str] = []
    path = resolve("demo", progress=messages.append)
    assert path.is_relative_to(isolated_caches) and path.read_bytes() == data
    assert calls == [{"local_files_only": True}, {}]  # cache first, then a plain download
    assert messages and "Downloading demo.pth" in messages[0]
    assert not (tmp_path / "weights").exists()


def test_corrupt_file_in_hf_cache_names_the_blob_to_delete(monkeypatch, isolated_caches) -> None:
    _demo(monkeypatch, b"the right bytes")
    snap = _put_in_hf_cache(isolated_caches, "org/repo", {"demo.pth": b"the wrong bytes"})
    with pytest.raises(WeightsCorrupt, match="sha256") as info:
        resolve("demo")
    msg = str(info.value)
    assert str(snap / "demo.pth") in msg
    assert f"delete {(snap / 'demo.pth').resolve()}" in msg and "Hugging Face cache" in msg


# -------------------------------------------------------------- model folders (GroundingDINO)

_DINO = {"config.json": b"{}", "model.safetensors": b"weights", "preprocessor_config.json": b"{}",
         "tokenizer.json": b"{}", "tokenizer_config.json": b"{}"}


def _write(folder: Path, files: dict[str, bytes]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return folder


def test_partial_grounding_dino_folder_names_what_is_missing(tmp_path: Path, monkeypatch) -> None:
    """L1: config.json alone is not a model; the message names the missing files and the fix."""
    monkeypatch.setenv("SEMAT_WEIGHTS_DIR", str(tmp_path))
    folder = _write(tmp_path / "IDEA-Research--grounding-dino-tiny", {"config.json": b"{}"})
    with pytest.raises(WeightsCorrupt) as info:
        resolve("grounding-dino-tiny")
    msg = str(info.value)
    assert str(folder) in msg and "incomplete model folder" in msg
    assert "model.safetensors or pytorch_model.bin" in msg
    assert "preprocessor_config.json" in msg and "tokenizer.json or vocab.txt" in msg
    assert "semat download grounding-dino-tiny" in msg and "\n" not in msg
    _write(folder, {"model.safetensors": b"", "preprocessor_config.json": b"{}", "vocab.txt": b"[PAD]"})
    with pytest.raises(WeightsCorrupt, match=r"missing model\.safetensors or pytorch_model\.bin"):
        resolve("grounding-dino-tiny")  # an empty weights file counts as missing
    (folder / "model.safetensors").unlink()
    _write(folder, {"pytorch_model.bin": b"weights"})
    assert resolve("grounding-dino-tiny") == folder


def test_sharded_model_folder_needs_every_shard(tmp_path: Path) -> None:
    index = {"weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}
    folder = _write(tmp_path / "dino", {**{k: v for k, v in _DINO.items() if k != "model.safetensors"},
                                        "model.safetensors.index.json": json.dumps(index).encode(),
                                        "model-00001-of-00002.safetensors": b"x"})
    with pytest.raises(WeightsCorrupt, match=r"missing model-00002-of-00002\.safetensors"):
        weights.check_model_folder(folder)
    _write(folder, {"model-00002-of-00002.safetensors": b"x"})
    assert weights.check_model_folder(folder) == folder


def test_complete_grounding_dino_folder_from_the_hf_cache(tmp_path: Path, monkeypatch, isolated_caches) -> None:
    monkeypatch.setenv("SEMAT_WEIGHTS_DIR", str(tmp_path / "weights"))
    snap = _put_in_hf_cache(isolated_caches, "IDEA-Research/grounding-dino-base", _DINO)
    assert resolve("grounding-dino-base") == snap


def test_partial_snapshot_in_hf_cache_offline_says_so(tmp_path: Path, monkeypatch, isolated_caches) -> None:
    monkeypatch.setenv("SEMAT_WEIGHTS_DIR", str(tmp_path / "weights"))
    snap = _put_in_hf_cache(isolated_caches, "IDEA-Research/grounding-dino-base", {"config.json": b"{}"})
    with pytest.raises(WeightsUnavailable) as info:
        resolve("grounding-dino-base")
    msg = str(info.value)
    assert f"incomplete copy at {snap}" in msg and "model.safetensors or pytorch_model.bin" in msg
    assert "HF_HUB_OFFLINE" in msg and "\n" not in msg
