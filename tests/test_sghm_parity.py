"""Full-size SGHM parity with the reference (golden fixtures in ../shared/golden/sghm)."""

from __future__ import annotations

import json
from collections import OrderedDict

import numpy as np
import pytest
import torch
from PIL import Image

from semat.inference.sghm import HumanPredictor, convert_state_dict, load_sghm
from semat.runtime import select_runtime
from semat.weights.checkpoint import read_state_dict

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def golden_checkpoint(golden_dir, golden_weights_module, tmp_path_factory):
    """The golden weights in the released format: a plain OrderedDict with 'module.' keys."""
    manifest = golden_weights_module.load_manifest(golden_dir / "sghm" / "manifest.json")
    sd = golden_weights_module.golden_state_dict(manifest)
    path = tmp_path_factory.mktemp("sghm") / "SGHM-ResNet50.pth"
    torch.save(OrderedDict((k, torch.from_numpy(v)) for k, v in sd.items()), path)
    return path, manifest


@pytest.fixture(scope="module")
def golden_run(golden_dir, golden_checkpoint):
    torch.set_num_threads(2)
    path, _ = golden_checkpoint
    matter = HumanPredictor.from_pretrained(path, runtime=select_runtime("cpu", "float32"))  # fp32 parity
    image = np.array(Image.open(golden_dir / "sghm" / "input.png").convert("RGB"))
    return matter.predict(image, max_side=None, return_debug=True), matter.predict(image)


def test_every_checkpoint_key_is_consumed(golden_checkpoint):
    path, manifest = golden_checkpoint
    raw = read_state_dict(path)  # weights_only=True, strips module.
    assert set(raw) == {k.removeprefix("module.") for k in manifest}
    model, used = load_sghm(path, fuse=False)  # load_exact: fails on any missing/unexpected key
    assert used == path.resolve()
    assert set(model.state_dict()) == set(convert_state_dict(raw))


def test_arrays_match_reference(golden_dir, golden_run):
    case = json.loads((golden_dir / "sghm" / "case.json").read_text())
    tol = case["recommended_tolerance"]
    expected = np.load(golden_dir / "sghm" / "expected.npz")
    debug_res, _ = golden_run
    actual = dict(debug_res.debug, alpha_fused=debug_res.alpha, segment_orig=debug_res.segment)
    assert debug_res.network_hw == tuple(case["network_input_hw"])
    for name in case["arrays"]:
        e = expected[name].astype(np.float64)
        a = np.asarray(actual[name], dtype=np.float64)
        assert a.shape == e.shape, name
        diff = np.abs(a - e)
        rule = tol[name]
        if "atol" in rule:
            assert np.all(diff <= rule["atol"] + rule["rtol"] * np.abs(e)), (name, diff.max())
        elif name.startswith("logits"):
            assert diff.max() <= 1e-4 * np.abs(e).max(), (name, diff.max() / np.abs(e).max())
        else:
            assert (diff > 1e-3).mean() <= 1e-3, (name, (diff > 1e-3).mean())
            assert diff.mean() <= 1e-3, (name, diff.mean())


def test_default_path_equals_debug_path(golden_run):
    debug_res, fast_res = golden_run
    np.testing.assert_array_equal(fast_res.alpha, debug_res.alpha)
    np.testing.assert_array_equal(fast_res.segment, debug_res.segment)


def test_cli_writes_expected_alpha_png(golden_dir, golden_checkpoint, tmp_path, monkeypatch):
    from semat.cli.main import main

    monkeypatch.delenv("SEMAT_TEST_MODELS", raising=False)
    path, _ = golden_checkpoint
    out = tmp_path / "out"
    assert main(["human", str(golden_dir / "sghm" / "input.png"), "-o", str(out), "--checkpoint", str(path),
                 "--no-progress", "--device", "cpu", "--dtype", "float32"]) == 0
    ours = np.array(Image.open(out / "input.png"))
    expected = np.array(Image.open(golden_dir / "sghm" / "expected_alpha.png"))
    assert ours.dtype == np.uint8 and ours.shape == expected.shape
    assert (ours != expected).mean() <= 1e-3
