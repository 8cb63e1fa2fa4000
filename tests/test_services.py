"""The app's services: pruning of output and cache folders."""

from __future__ import annotations


def test_prune_folder_by_age_then_size(tmp_path):
    import os
    import time

    from semat.app.services import prune_folder

    old = tmp_path / "a" / "old.png"
    old.parent.mkdir()
    old.write_bytes(b"x" * 100)
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    files = []
    for i in range(5):
        f = tmp_path / f"new{i}.png"
        f.write_bytes(b"y" * 100)
        os.utime(f, (time.time() - 50 + i, time.time() - 50 + i))
        files.append(f)
    freed = prune_folder(tmp_path, max_age_s=3600, max_bytes=300)
    assert freed == 300 and not old.exists() and not (tmp_path / "a").exists()
    assert [f.exists() for f in files] == [False, False, True, True, True]  # the oldest go first
