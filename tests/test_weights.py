"""Weights registry: local paths, offline messages, size/sha256 verification."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from semat.weights import hub as weights
from semat.weights.hub import REGISTRY, WeightsCorrupt, WeightsEntry, WeightsUnavailable, resolve


def test_local_path_always_works(tmp_path: Path) -> None:
    f = tmp_path / "my.pth"
    f.write_bytes(b"x")
    assert resolve(f) == f.resolve()


def test_unknown_name_lists_known_names() -> None:
    with pytest.raises(WeightsUnavailable, match=r"not a known weights name.*semat-hq-sam"):
        resolve("no-such-model")


def test_offline_message_names_file_url_and_target(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("SEMAT_WEIGHTS_DIR", str(tmp_path))
    with pytest.raises(WeightsUnavailable) as info:
        resolve("semat-sam2")
    msg = str(info.value)
    assert "SEMat_SAM2.pth" in msg
    assert "https://huggingface.co/XiaRho/SEMat/resolve/main/SEMat_SAM2.pth" in msg
    assert str(tmp_path / "SEMat_SAM2.pth") in msg
    assert "\n" not in msg


def test_registry_file_in_weights_dir_is_verified(tmp_path: Path, monkeypatch) -> None:
    data = b"checkpoint bytes"
    entry = WeightsEntry("demo", "org/repo", "demo.pth", "demo weights", size=len(data),
                         sha256=hashlib.sha256(data).hexdigest())
    monkeypatch.setitem(REGISTRY, "demo", entry)
    monkeypatch.setenv("SEMAT_WEIGHTS_DIR", str(tmp_path))
    (tmp_path / "demo.pth").write_bytes(data)
    assert resolve("demo") == tmp_path / "demo.pth"
    assert (tmp_path / "demo.pth.sha256.json").is_file()  # hash cached for the next start
    (tmp_path / "demo.pth").write_bytes(b"checkpoint bytez")  # same size, different content
    with pytest.raises(WeightsCorrupt, match="sha256"):
        resolve("demo")
    (tmp_path / "demo.pth").write_bytes(b"short")
    with pytest.raises(WeightsCorrupt, match="bytes"):
        resolve("demo")


def test_sghm_entry_matches_the_published_file() -> None:
    e = REGISTRY["sghm"]
    assert (e.repo_id, e.filename, e.size) == ("endorno/SGHM", "SGHM-ResNet50.pth", 176_284_285)
    assert e.sha256 == "e61ddbda08bd556912dc0b1eca95dc90b830194c741e3350cc26a287cdbc0cfe"


def test_download_cli_rejects_unknown_names(capsys) -> None:
    from semat.cli.main import main

    assert main(["download", "nope"]) == 2
    assert "unknown weights nope" in capsys.readouterr().err
    assert weights.weights_dir().name  # importable without network
