"""The folder batch on a local Ray (``semat batch --engine ray``) gives the local engine's files."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

ray = pytest.importorskip("ray", reason="Ray is an optional extra (pip install 'semat-space[ray]'); "
                                        "requirements-dev.txt installs it for CI")

from test_batch import N, make_folder  # noqa: E402

from semat.cli.main import main  # noqa: E402
from semat.io.images import read_png  # noqa: E402


@pytest.fixture()
def local_ray(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("SEMAT_TEST_MODELS", "tiny")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"SEMAT_TEST_MODELS": "tiny", "HF_HUB_OFFLINE": "1",
                                       "TRANSFORMERS_OFFLINE": "1", "OMP_NUM_THREADS": "1"}})
    try:
        yield
    finally:
        ray.shutdown()


def rows(out: Path) -> dict[str, dict]:
    with open(out / "summary.csv", newline="") as f:
        return {r["stem"]: r for r in csv.DictReader(f)}


@pytest.mark.timeout(900)
def test_ray_gives_the_local_batch_bit_for_bit(tmp_path: Path, local_ray, capsys) -> None:
    folder = make_folder(tmp_path, N - 1)  # 19 images + one corrupt file
    common = [str(folder), "--text", "thing", "--box-threshold", "0", "--text-threshold", "0", "--max-objects", "1",
              "--variant", "sam", "--no-foreground-estimation", "--chunk", "4", "--no-progress"]
    assert main(["batch", *common, "-o", str(tmp_path / "local")]) == 1
    assert main(["batch", *common, "--engine", "ray", "-o", str(tmp_path / "ray")]) == 1
    capsys.readouterr()
    local, remote = rows(tmp_path / "local"), rows(tmp_path / "ray")
    assert set(local) == set(remote) and len(local) == N
    assert remote["broken"]["status"] == "error" and remote["broken"]["error"] == local["broken"]["error"]
    for stem, r in local.items():
        for k in ("status", "objects", "labels", "scores", "boxes", "outputs", "signature"):
            assert remote[stem][k] == r[k], (stem, k)
        for name in filter(None, r["outputs"].split(";")):
            np.testing.assert_array_equal(read_png(tmp_path / "ray" / name), read_png(tmp_path / "local" / name))
    # the resume rule is the same: a rerun on Ray has nothing to do
    assert main(["batch", *common, "--engine", "ray", "-o", str(tmp_path / "ray")]) == 1
    assert "19 already done" in capsys.readouterr().out
