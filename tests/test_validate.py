"""The input contract (semat.validate), the settings, the registry and the ZeroGPU budget."""

from __future__ import annotations

import numpy as np
import pytest

from semat import registry
from semat.errors import BoxError, ImageInputError, InputError, PointError, PromptError
from semat.settings import Settings, SettingsError, variables
from semat.validate import (
    MAX_ASPECT,
    MIN_SIDE,
    check_boxes,
    check_image,
    check_points,
    check_text,
    check_threshold,
    format_boxes,
    format_points,
    parse_boxes,
    parse_points,
)


def test_parse_boxes_lines_json_and_exponents():
    assert parse_boxes("") == [] and parse_boxes(None) == []
    assert parse_boxes("10, 20, 30, 40\n 50 60 70 80 ") == [(10, 20, 30, 40), (50, 60, 70, 80)]
    assert parse_boxes("[[10, 20, 30, 40]]") == [(10, 20, 30, 40)]
    assert parse_boxes("[10, 20, 30, 40]") == [(10, 20, 30, 40)]
    assert parse_boxes("1.5,2,3,4; 5,6,7,8") == [(1.5, 2, 3, 4), (5, 6, 7, 8)]
    assert parse_boxes("1e1, 2, 3e1, 4e1") == [(10, 2, 30, 40)]  # the CLI and the API agree (L4)
    for bad in ("1, 2, 3", "[[1, 2, 3, 4, 5]]", "10,x,20,30", "[[1, 2"):
        with pytest.raises(PromptError):
            parse_boxes(bad)
    assert parse_boxes(format_boxes([(1, 2, 3.5, 4)])) == [(1, 2, 3.5, 4)]


def test_parse_points_labels():
    assert parse_points("10, 20\n30 40 0\n5,6,+\n7,8,neg") == [(10, 20, 1), (30, 40, 0), (5, 6, 1), (7, 8, 0)]
    with pytest.raises(PromptError, match="label"):
        parse_points("1, 2, 7")
    with pytest.raises(PromptError, match="number"):
        parse_points("a, b")
    assert parse_points(format_points([(1, 2, 0)])) == [(1, 2, 0)]


def test_box_rule_clip_partial_refuse_outside_merge_duplicates():
    notices: list[str] = []
    out = check_boxes([(-5, 0, 10, 10), (0, 0, 10, 10), (5, 5, 30, 30)], (20, 20), notices=notices)
    np.testing.assert_array_equal(out, [[0, 0, 10, 10], [5, 5, 20, 20]])
    assert sum("clipped" in n for n in notices) == 2 and any("duplicate" in n for n in notices)
    for box, message in [((30, 30, 40, 40), "outside"), ((5, 5, 5, 9), "zero area"), ((9, 9, 1, 1), "reversed"),
                         ((1, float("nan"), 3, 4), "non-finite"), ((1, 2, 3), "x1, y1, x2, y2")]:
        with pytest.raises(BoxError, match=message):
            check_boxes([box], (20, 20))
    with pytest.raises(BoxError, match="too many boxes"):
        check_boxes([(0, 0, 10, 10 + i / 10) for i in range(17)], (20, 20), max_boxes=16)
    assert len(check_boxes([(0, 0, 10, 10)] * 3, (20, 20), dedupe=False)) == 3


def test_point_rule_is_the_closed_image_range():
    assert check_points([(0, 0), (20, 20, 0)], (20, 20)) == [(0, 0, 1), (20, 20, 0)]
    for pt, message in [((21, 5, 1), "outside"), ((float("inf"), 1, 1), "non-finite"), ((1, 1, 3), "label"),
                        (("x", 1, 1), "numbers"), ((1,), "x, y")]:
        with pytest.raises(PointError, match=message):
            check_points([pt], (20, 20))
    with pytest.raises(PointError, match="too many points"):
        check_points([(1, 1)] * 65, (20, 20))


def test_image_text_threshold_rules():
    assert check_image(np.zeros((MIN_SIDE, MIN_SIDE, 3), np.uint8)).flags.c_contiguous
    for bad in (np.zeros((1, 1, 3), np.uint8), np.zeros((8, int(8 * MAX_ASPECT) + 8, 3), np.uint8),
                np.zeros((10, 10, 3), np.float32), np.zeros((10, 10), np.uint8), "image.png"):
        with pytest.raises(ImageInputError):
            check_image(bad)
    assert check_text("  cat ") == "cat"
    for bad in ("", "   ", None, "x" * 501):
        with pytest.raises(PromptError):
            check_text(bad)
    assert check_threshold("0.5") == 0.5
    for bad in (-0.1, 1.5, float("nan"), "high"):
        with pytest.raises(PromptError, match="between 0 and 1"):
            check_threshold(bad)


def test_every_domain_error_is_an_input_or_model_error():
    import semat.errors as E

    for name in E.__all__:
        obj = getattr(E, name)
        if isinstance(obj, type) and issubclass(obj, Exception) and obj not in (E.SematError, E.InputError,
                                                                                 E.ModelError):
            assert issubclass(obj, (E.InputError, E.ModelError)), name
    assert issubclass(E.InputError, ValueError) and issubclass(E.ModelError, RuntimeError)


def test_settings_read_every_variable_once_and_refuse_bad_values():
    s = Settings.from_env({"SEMAT_MAX_BOXES": "3", "SEMAT_TEST_MODELS": "Tiny ", "SEMAT_MALLOC_TUNE": "0"})
    assert s.max_boxes == 3 and s.test_models and not s.malloc_tune
    assert Settings.from_env({}) == Settings()
    for env in ({"SEMAT_MAX_BOXES": "junk"}, {"SEMAT_MAX_BOXES": "0"}, {"SEMAT_MAX_MEGAPIXELS": "nan"}):
        with pytest.raises(SettingsError):
            Settings.from_env(env)
    assert all(k.startswith("SEMAT_") for k in variables())


def test_registry_feeds_choices_and_labels():
    assert registry.names("semat")[0] == registry.default("semat") == "hq-sam"
    assert set(registry.names("semat")) == {"sam", "hq-sam", "sam2"}
    assert registry.from_label("SEMat SAM2") == "sam2" and registry.from_label(None) == "hq-sam"
    assert registry.from_label("sam") == "sam"
    with pytest.raises(InputError, match="hq-sam"):
        registry.from_label("vit-h")
    from semat.models.build import VARIANTS

    assert set(VARIANTS) == set(registry.names("semat"))  # one builder per registered variant


def test_gpu_budget_scales_and_refuses_over_quota():
    pytest.importorskip("gradio")
    from semat.app.zerogpu import ANONYMOUS_QUOTA_S, DURATION_FACTOR, check_quota, gpu_seconds

    small = gpu_seconds(0.3, 1, "hq-sam")
    assert 10 <= small <= 20
    assert gpu_seconds(12, 16, "hq-sam", detection=True) > gpu_seconds(1, 4, "hq-sam", detection=True)
    assert gpu_seconds(4, 4, "sam2") < gpu_seconds(4, 4, "hq-sam")
    assert check_quota(small) == small
    with pytest.raises(InputError, match="quota"):
        check_quota(int(ANONYMOUS_QUOTA_S / DURATION_FACTOR) + 1)
