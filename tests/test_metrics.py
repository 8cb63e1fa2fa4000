"""Metric parity with the golden reference values, plus independent checks of Grad and Conn."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from semat.evaluation import metrics as M

# Golden README: relative 1e-6 (absolute 1e-9); SGHM's Grad is a float32 sum, relative 1e-5.
REL, ABS, REL_SGHM_GRAD = 1e-6, 1e-9, 1e-5


def _load(path: Path) -> np.ndarray:
    return np.array(Image.open(path).convert("L"))


def _golden(golden_dir: Path) -> tuple[Path, dict]:
    root = golden_dir / "metrics"
    return root, json.loads((root / "expected.json").read_text())


def _close(got: float, want: float, rel: float = REL) -> bool:
    return math.isclose(got, want, rel_tol=rel, abs_tol=ABS)


def _blocks(root: Path, pair: dict) -> list[tuple[str, dict]]:
    """Our values for every block the pair lists (inputs as the golden README describes)."""
    gt = _load(root / pair["gt"])
    pred = _load(root / pair["pred"])
    assert pred.shape == gt.shape
    ours = {
        "semat_whole_image": lambda: M.compute_all(pred, gt, convention="semat"),
        "sghm": lambda: M.compute_all(pred / 255.0, gt / 255.0, convention="sghm"),
        "sghm_pred_float32": lambda: M.compute_all((pred / 255.0).astype(np.float32), gt / 255.0,
                                                   convention="sghm"),
    }
    if "trimap" in pair:
        trimap = _load(root / pair["trimap"])
        assert trimap.shape == gt.shape
        ours["semat_trimap_unknown"] = lambda: M.compute_all(pred, gt, trimap=trimap, convention="semat")
    blocks = [b for b in pair if isinstance(pair[b], dict)]
    unknown = set(blocks) - set(ours)
    assert not unknown, f"golden blocks without a matching computation: {unknown}"
    return [(b, ours[b]()) for b in blocks]


def test_golden_pairs_all_conventions(golden_dir: Path) -> None:
    root, expected = _golden(golden_dir)
    assert expected["pairs"], "no pairs in expected.json"
    failures = []
    for name, pair in expected["pairs"].items():
        for block, got in _blocks(root, pair):
            want = pair[block]
            for key, value in want.items():
                if key == "SAD_region_size_k":
                    continue
                assert key in got, f"{name}/{block}: metric {key} not computed"
                rel = REL_SGHM_GRAD if (block.startswith("sghm") and key == "Grad") else REL
                if not _close(got[key], value, rel):
                    failures.append(f"{name}/{block}/{key}: got {got[key]!r}, want {value!r}")
    assert not failures, "\n".join(failures)


def test_golden_sad_region_size(golden_dir: Path) -> None:
    root, expected = _golden(golden_dir)
    for name, pair in expected["pairs"].items():
        gt = _load(root / pair["gt"])
        if "SAD_region_size_k" in pair.get("semat_whole_image", {}):
            assert gt.size / 1000 == pytest.approx(pair["semat_whole_image"]["SAD_region_size_k"]), name
        if "SAD_region_size_k" in pair.get("semat_trimap_unknown", {}):
            trimap = _load(root / pair["trimap"])
            unknown = pair["semat_trimap_unknown"]["SAD_region_size_k"]
            assert np.count_nonzero(M.region_mask(trimap, gt.shape)) / 1000 == pytest.approx(unknown), name


def test_single_metric_functions_agree_with_compute_all(golden_dir: Path) -> None:
    root, expected = _golden(golden_dir)
    pair = next(iter(expected["pairs"].values()))
    gt, pred = _load(root / pair["gt"]), _load(root / pair["pred"])
    trimap = _load(root / pair["trimap"]) if "trimap" in pair else np.full(gt.shape, 128, np.uint8)
    for conv in M.CONVENTIONS:
        allm = M.compute_all(pred, gt, trimap=trimap, convention=conv)
        assert M.mse(pred, gt, trimap, convention=conv) == allm["MSE"]
        assert M.mad(pred, gt, trimap, convention=conv) == allm["MAD"]
        assert M.grad(pred, gt, trimap, convention=conv) == allm["Grad"]
        assert M.conn(pred, gt, trimap, convention=conv) == allm["Conn"]
    assert M.sad(pred, gt, trimap) == M.compute_all(pred, gt, trimap)["SAD"]
    assert M.iou(pred, gt) == M.compute_all(pred, gt, convention="sghm")["IoU"]


# ------------------------------------------------------------------------- independent re-derivations
def _conn_naive(p: np.ndarray, g: np.ndarray, quirk: bool) -> float:
    """A direct, slow transcription of the connectivity definition, using scipy's labeling."""
    steps = np.arange(0, 1.1, 0.1)
    lmap = -np.ones_like(p)
    four = np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]])
    for i in range(1, len(steps)):
        inter = (p >= steps[i]) & (g >= steps[i])
        labels, n = ndimage.label(inter, structure=four)
        counts = np.bincount(labels.ravel(), minlength=n + 1)
        if quirk:
            omega = labels == np.argmax(counts)
        elif n:
            omega = labels == 1 + np.argmax(counts[1:])
        else:
            omega = np.zeros_like(inter)
        lmap[(lmap == -1) & ~omega] = steps[i - 1]
    lmap[lmap == -1] = 1
    dp, dg = p - lmap, g - lmap
    return float(np.abs((1 - dp * (dp >= 0.15)) - (1 - dg * (dg >= 0.15))).sum() / 1000)


def _blobs(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    a = ndimage.gaussian_filter(rng.random((h, w)), 3)
    a = (a - a.min()) / (a.max() - a.min())
    return np.clip((a - 0.3) * 2.5, 0, 1)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_conn_matches_direct_definition(seed: int) -> None:
    rng = np.random.default_rng(seed)
    h, w = 37 + seed * 11, 53 - seed * 5
    g = _blobs(rng, h, w)
    p = np.clip(g + rng.normal(0, 0.1, g.shape), 0, 1)
    for conv, quirk in (("semat", True), ("sghm", False)):
        assert M.conn(p, g, convention=conv) == pytest.approx(_conn_naive(p, g, quirk), rel=1e-12, abs=1e-15)


def _object(h: int, w: int, frac: float, rng: np.random.Generator) -> np.ndarray:
    yy, xx = np.mgrid[:h, :w]
    r = np.hypot((yy - h / 2) / (h * frac), (xx - w / 2) / (w * frac))
    a = np.clip((1.0 - r) * 4, 0, 1)
    return np.clip(a + (a > 0) * rng.normal(0, 0.05, a.shape), 0, 1)


@pytest.mark.parametrize("case", ["small_object", "large_object", "empty_pred", "empty_gt", "all_one", "two_objects"])
def test_conn_edge_cases_match_direct_definition(case: str) -> None:
    rng = np.random.default_rng(7)
    h, w = 45, 61
    g = _object(h, w, 0.25 if case != "large_object" else 0.9, rng)
    p = np.clip(g + rng.normal(0, 0.08, g.shape) * (g > 0), 0, 1)
    if case == "empty_pred":
        p = np.zeros_like(g)
    elif case == "empty_gt":
        g = np.zeros_like(p)
    elif case == "all_one":
        p, g = np.ones_like(g), np.ones_like(g)
    elif case == "two_objects":
        g = np.maximum(g, np.roll(g, w // 2, axis=1) * 0.7)
        p = np.maximum(p, np.roll(p, w // 2, axis=1) * 0.8)
    for conv, quirk in (("semat", True), ("sghm", False)):
        assert M.conn(p, g, convention=conv) == pytest.approx(_conn_naive(p, g, quirk), rel=1e-12, abs=1e-15)


def test_conn_quirk_changes_the_result() -> None:
    # A small foreground square: at every threshold the intersection's background is the biggest
    # "component", so the SEMat quirk treats the background as Ω.
    g = np.zeros((40, 40))
    g[15:25, 15:25] = 1.0
    g[14, 15:25] = 0.5
    p = g.copy()
    p[15:25, 15:18] = 0.4
    p[14, 15:25] = 0.6  # near-equal soft pixels: zero error unless Ω is the background
    semat, sghm = M.conn(p, g, convention="semat"), M.conn(p, g, convention="sghm")
    assert semat == pytest.approx(_conn_naive(p, g, True))
    assert sghm == pytest.approx(_conn_naive(p, g, False))
    assert semat != pytest.approx(sghm)


def test_grad_filter_matches_scipy_convolution() -> None:
    rng = np.random.default_rng(3)
    img = _blobs(rng, 41, 29)
    sigma = 1.4
    half = math.ceil(sigma * math.sqrt(-2 * math.log(math.sqrt(2 * math.pi) * sigma * 0.01)))
    x = np.arange(-half, half + 1)
    gauss = np.exp(-x**2 / (2 * sigma**2)) / (sigma * math.sqrt(2 * math.pi))
    kx = np.outer(gauss, -x * gauss / sigma**2)
    kx /= np.sqrt((kx**2).sum())
    gx = ndimage.convolve(img, kx, mode="nearest")
    gy = ndimage.convolve(img, kx.T, mode="nearest")
    np.testing.assert_allclose(M.gauss_gradient_magnitude(img), np.hypot(gx, gy), rtol=1e-10, atol=1e-13)


# ------------------------------------------------------------------------------------- behaviour/API
def test_perfect_prediction_scores_zero() -> None:
    g = _blobs(np.random.default_rng(4), 30, 30)
    for conv in M.CONVENTIONS:
        r = M.compute_all(g, g, convention=conv)
        assert set(r) == set(M.METRIC_KEYS[conv])
        for k, v in r.items():
            assert v == (100.0 if k == "IoU" else 0.0) or v == pytest.approx(100.0 if k == "IoU" else 0.0)


def test_input_scales_are_equivalent() -> None:
    rng = np.random.default_rng(5)
    g8 = (rng.random((20, 24)) * 255).astype(np.uint8)
    p8 = (rng.random((20, 24)) * 255).astype(np.uint8)
    a = M.compute_all(p8, g8)
    b = M.compute_all(p8 / 255.0, g8 / 255.0)
    c = M.compute_all(p8.astype(np.uint16) * 257, g8[..., None])
    for k in a:
        assert a[k] == pytest.approx(b[k], rel=1e-12) and a[k] == pytest.approx(c[k], rel=1e-9)


@pytest.mark.parametrize(
    ("pred", "gt", "kwargs", "match"),
    [
        (np.zeros((4, 5)), np.zeros((5, 4)), {}, "shape"),
        (np.zeros((4, 5, 3)), np.zeros((4, 5, 3)), {}, "2-D"),
        (np.full((4, 5), 255.0), np.zeros((4, 5)), {}, r"\[0, 1\]"),
        (np.full((4, 5), np.nan), np.zeros((4, 5)), {}, "NaN"),
        (np.zeros((4, 5), np.int64), np.zeros((4, 5)), {}, "dtype"),
        (np.zeros((4, 5)), np.zeros((4, 5)), {"convention": "dim"}, "convention"),
        (np.zeros((4, 5)), np.zeros((4, 5)), {"trimap": np.zeros((5, 5), np.uint8)}, "trimap"),
    ],
)
def test_bad_inputs_get_clear_errors(pred, gt, kwargs, match) -> None:
    with pytest.raises(ValueError, match=match):
        M.compute_all(pred, gt, **kwargs)


def test_trimap_forms() -> None:
    tri = np.array([[0, 128], [255, 128]], np.uint8)
    want = np.array([[False, True], [False, True]])
    assert (M.region_mask(tri, (2, 2)) == want).all()
    assert (M.region_mask(tri / 255.0, (2, 2)) == want).all()
    assert (M.region_mask(want, (2, 2)) == want).all()
    assert M.region_mask(None, (2, 2)) is None


def test_mean_metrics_and_paper_units() -> None:
    rows = [{"MSE": 0.001, "SAD": 2.0, "id": "a"}, {"MSE": 0.003, "SAD": float("nan")}, {"MSE": None}]
    m = M.mean_metrics(rows)
    assert m == {"MSE": pytest.approx(0.002), "SAD": pytest.approx(2.0)}
    assert math.isnan(M.mean_metrics([], keys=["MSE"])["MSE"])
    assert M.paper_units(m)["MSE"] == pytest.approx(2.0)
    assert M.paper_units(m)["SAD"] == pytest.approx(2.0)
    assert M.paper_units({"MSE": 2.0}, "sghm") == {"MSE": 2.0}
