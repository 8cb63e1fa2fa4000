"""Reference parity of the three SEMat variants on the golden fixtures (slow: full-size models).

Per variant: the golden weights are written once (module-scoped fixture, temporary folder) in the
released layout ``{'model': sd}`` and loaded through :func:`semat.weights.convert.load_semat`; the Python
API (``SEMatPredictor.predict(..., return_debug=True)``) is checked against every array of
``expected.npz`` and the CLI (``semat matte``) against ``expected_alpha.png``. Tolerances come from
``case.json["recommended_tolerance"]``; sizes and boxes come from ``case.json``.
"""

from __future__ import annotations

import gc
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

pytestmark = pytest.mark.slow

VARIANTS = ("sam", "hq-sam", "sam2")
# expected.npz array -> debug key of SEMatPredictor.predict(return_debug=True)
ARRAYS = {"alpha_1024": "alpha_frame", "matting_logits": "matting_logits",
          "sam_mask_logits": "mask_logits", "image_embedding": "image_embedding"}


@pytest.fixture(scope="module", params=VARIANTS)
def golden_case(request, golden_dir: Path, golden_weights_module, tmp_path_factory):
    """(variant, case dir, case.json, checkpoint path); one variant at a time, freed afterwards."""
    variant = request.param
    case_dir = golden_dir / f"semat_{variant}"
    case = json.loads((case_dir / "case.json").read_text())
    gw = golden_weights_module
    sd = {k: torch.from_numpy(v) for k, v in gw.golden_state_dict(gw.load_manifest(case_dir / "manifest.json")).items()}
    path = tmp_path_factory.mktemp(f"golden-{variant}") / f"SEMat_{variant}.pth"
    torch.save({"model": sd}, path)
    del sd
    gc.collect()
    yield variant, case_dir, case, path
    path.unlink(missing_ok=True)
    gc.collect()


def _input(case_dir: Path, case: dict) -> np.ndarray:
    image = np.asarray(Image.open(case_dir / case["image"]["file"]).convert("RGB"))
    assert image.shape[:2] == (case["image"]["height"], case["image"]["width"])
    return image


def test_python_api_matches_reference_arrays(golden_case) -> None:
    from semat.inference.predictor import SEMatPredictor
    from semat.runtime import select_runtime
    from semat.weights.convert import load_semat

    variant, case_dir, case, path = golden_case
    loaded = load_semat(variant, checkpoint=path, runtime=select_runtime("cpu", "float32"))
    predictor = SEMatPredictor(loaded.model, loaded.runtime, variant, loaded.checkpoint_path)
    result = predictor.predict(_input(case_dir, case), [case["box_xyxy_original"]], return_debug=True)[0]
    del predictor, loaded
    gc.collect()

    assert tuple(result.debug["resized_hw"]) == tuple(case["resized_wh"][::-1])
    expected = np.load(case_dir / "expected.npz")
    tolerance = case["recommended_tolerance"]
    for name, key in ARRAYS.items():
        want = expected[name].astype(np.float64)
        got = np.asarray(result.debug[key], dtype=np.float64)
        assert got.shape == want.shape, name
        diff = np.abs(got - want)
        tol = tolerance[name]
        bound = tol["atol"] + tol["rtol"] * np.abs(want)
        assert (diff <= bound).all(), f"{variant} {name}: max |diff| {diff.max():.3g} (worst excess " \
                                      f"{(diff - bound).max():.3g})"
        if name == "alpha_1024":
            assert diff.mean() <= 1e-5, f"{variant} alpha_1024 mean |diff| {diff.mean():.3g}"
    h, w = case["image"]["height"], case["image"]["width"]
    assert result.alpha.shape == (h, w) and result.mask.shape == (h, w)


def test_cli_matches_reference_png(golden_case, tmp_path: Path) -> None:
    from semat.cli.main import main

    variant, case_dir, case, path = golden_case
    out = tmp_path / "alpha.png"
    box = ",".join(str(v) for v in case["box_xyxy_original"])
    rc = main(["matte", str(case_dir / case["image"]["file"]), "--box", box, "--variant", variant,
               "--checkpoint", str(path), "--device", "cpu", "--dtype", "float32", "-o", str(out)])
    gc.collect()
    assert rc == 0
    got = np.asarray(Image.open(out))
    want = np.asarray(Image.open(case_dir / case["expected_alpha_png"]["file"]))
    assert got.dtype == np.uint8 and got.shape == want.shape
    diff = np.abs(got.astype(np.int16) - want.astype(np.int16))
    tol = case["recommended_tolerance"]["expected_alpha_png"]
    assert diff.max() <= tol["max_abs_levels"]
    assert (diff > 0).mean() <= tol["max_fraction_of_pixels_differing"]
