"""Disk use of the app (issue 13): each result file is stored once, and the results folder is
bounded by size as well as by age."""

from __future__ import annotations

import hashlib
import os
import time
from collections import defaultdict
from pathlib import Path

import pytest

from semat.app import editor


def _folder(root: Path, name: str, size: int, age_s: float) -> Path:
    d = root / name
    d.mkdir()
    (d / "a.png").write_bytes(b"x" * size)
    t = time.time() - age_s
    for p in (d / "a.png", d):
        os.utime(p, (t, t))
    return d


def test_trim_outputs_by_age_then_size_sparing_recent(tmp_path):
    old = _folder(tmp_path, "old", 10, 7200)
    mid = [_folder(tmp_path, f"m{i}", 100, 600 - i) for i in range(4)]  # m0 is the oldest
    fresh = _folder(tmp_path, "fresh", 1000, 1)  # over the bound by itself, but still being fetched
    freed = editor.trim_outputs(tmp_path, ttl_s=3600, max_bytes=1200, grace_s=10)
    assert not old.exists()  # too old, whatever the size
    assert [d.exists() for d in mid] == [False, False, True, True]  # oldest first, until it fits
    assert fresh.exists() and freed == 10 + 200
    editor.trim_outputs(tmp_path, ttl_s=3600, max_bytes=100, grace_s=10)
    assert fresh.exists() and not any(d.exists() for d in mid)  # never one younger than grace_s


def test_new_output_dir_applies_the_size_setting(tmp_path, monkeypatch):
    monkeypatch.setenv("SEMAT_UI_OUTPUT_DIR", str(tmp_path))
    monkeypatch.setenv("SEMAT_UI_OUTPUT_MAX_MB", "1")
    big = [_folder(tmp_path, f"b{i}", 400_000, 100 - i) for i in range(4)]
    d = editor.new_output_dir()
    assert d.parent == tmp_path and d.is_dir()
    assert [b.exists() for b in big] == [False, False, True, True]  # 0.8 MB kept of 1.6 MB


def test_results_live_inside_gradios_cache(tmp_path, monkeypatch):
    gradio_utils = pytest.importorskip("gradio.utils")
    monkeypatch.delenv("SEMAT_UI_OUTPUT_DIR", raising=False)
    for value in (str(tmp_path / "g"), None):
        if value is None:
            monkeypatch.delenv("GRADIO_TEMP_DIR", raising=False)
        else:
            monkeypatch.setenv("GRADIO_TEMP_DIR", value)
        assert editor.gradio_cache_dir() == Path(gradio_utils.get_upload_folder()).resolve()
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "g"))
    d = editor.new_output_dir()
    assert gradio_utils.is_in_or_equal(str(d), gradio_utils.get_upload_folder())


def test_prune_at_start_up_trims_results_and_gradio_cache(tmp_path, monkeypatch):
    from semat.app.services import prune_at_start_up

    monkeypatch.delenv("SEMAT_UI_OUTPUT_DIR", raising=False)
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "g"))
    monkeypatch.setenv("SEMAT_UI_OUTPUT_MAX_MB", "1")
    results = editor.outputs_root()
    stale_upload = _folder(tmp_path / "g", "upload", 10, 7200)
    stale = _folder(results, "stale", 10, 7200)
    big = [_folder(results, f"b{i}", 600_000, 100 - i) for i in range(2)]
    prune_at_start_up()
    assert not stale_upload.exists() and not stale.exists()
    assert [b.exists() for b in big] == [False, True]


# ------------------------------------------------------------------------------ the real app


def _files(root: Path) -> dict[str, list[Path]]:
    by_hash: dict[str, list[Path]] = defaultdict(list)
    for p in root.rglob("*"):
        if p.is_file():
            by_hash[hashlib.sha256(p.read_bytes()).hexdigest()].append(p)
    return by_hash


@pytest.mark.slow
@pytest.mark.parametrize("outputs", ["default", "outside"])
def test_each_result_is_stored_once(tmp_path, outputs):
    """N requests through the API of the test-mode app: with the default results folder (inside
    Gradio's cache) no file on the server exists twice; with ``SEMAT_UI_OUTPUT_DIR`` outside it,
    Gradio keeps a second copy of every returned file (what issue 13 measured)."""
    gradio_client = pytest.importorskip("gradio_client")
    from helpers.app_server import REPO, start_app

    env = {"SEMAT_UI_OUTPUT_DIR": str(tmp_path / "outside")} if outputs == "outside" else {}
    server = start_app(extra_env=env)
    try:
        client = gradio_client.Client(server.url, verbose=False, download_files=str(tmp_path / "client"))
        img = gradio_client.handle_file(str(REPO / "examples" / "chelsea.jpg"))
        n = 4
        for i in range(n):
            client.predict(img, f"{60 + 10 * i},40,400,290", "", "sam2", "white", api_name="/matte_prompts")
        files = _files(server.workdir / "gradio")
        if outputs == "outside":
            for h, paths in _files(tmp_path / "outside").items():
                files.setdefault(h, []).extend(paths)
        dupes = {h: p for h, p in files.items() if len(p) > 1}
        count = sum(len(p) for p in files.values())
        size = sum(p[0].stat().st_size * len(p) for p in files.values())
        print(f"\n{outputs}: {n} requests -> {count} files, {size / 1e6:.2f} MB on the server; "
              f"{len(dupes)} stored twice ({sum(p[0].stat().st_size for p in dupes.values()) / 1e6:.2f} MB)")
        if outputs == "default":
            assert dupes == {}, dupes
            assert count >= 4 * n  # rgba, alpha, composite, zip per request (and the upload)
        else:
            assert len(dupes) >= 4 * n  # each returned file twice: why the default is inside the cache
    finally:
        server.stop()
