"""Every registered text→box detector: a tiny random stand-in of its transformers class runs through
the same TextDetector path (processor, forward, decode), round-trips through a transformers folder,
honours the input-size option and the dtype policy. Released weights are not needed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from semat import registry
from semat.inference.detect import (
    DEFAULT_DETECTOR,
    DETECTOR_NAMES,
    TINY_MODEL_TYPES,
    Detection,
    TextDetector,
    write_tiny_vocab,
)
from semat.runtime import select_runtime

pytestmark = pytest.mark.usefixtures("one_thread")

DETECTORS = registry.names("detector")
CLASSES = {"grounding-dino": "GroundingDinoForObjectDetection",
           "mm-grounding-dino": "MMGroundingDinoForObjectDetection"}


@pytest.fixture(scope="module")
def vocab_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_vocab(tmp_path_factory.mktemp("vocab"), words=["cat", "dog", "glass", "water"])


@pytest.fixture(scope="module", params=DETECTORS)
def tiny(request, vocab_file: Path) -> tuple[str, TextDetector]:
    return request.param, TextDetector.tiny(seed=0, vocab_file=vocab_file, name=request.param)


def _image(seed: int = 1, hw: tuple[int, int] = (72, 96)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (*hw, 3), dtype=np.uint8)


def test_registries_agree() -> None:
    from semat.weights.hub import REGISTRY

    assert registry.default("detector") == DEFAULT_DETECTOR == "mm-grounding-dino-tiny"
    assert set(DETECTORS) == set(DETECTOR_NAMES) == set(TINY_MODEL_TYPES)
    assert "grounding-dino-tiny" in DETECTORS  # the mission's detector stays selectable
    for name in DETECTORS:
        entry = REGISTRY[registry.get(name, "detector").weights]
        assert entry.kind == "repo" and entry.repo_id
    assert REGISTRY["mm-grounding-dino-tiny"].repo_id == "openmmlab-community/mm_grounding_dino_tiny_o365v1_goldg_v3det"


def test_tiny_stand_in_uses_the_detectors_class(tiny) -> None:
    name, det = tiny
    assert type(det.model).__name__ == CLASSES[TINY_MODEL_TYPES[name]]
    assert det.model.config.model_type == TINY_MODEL_TYPES[name]


def test_forward_and_detect(tiny) -> None:
    _, det = tiny
    image = _image()
    probs, boxes, ids = det.raw_scores(image, "cat. dog.")
    assert probs.shape == (det.model.config.num_queries, len(ids)) and boxes.shape == (probs.shape[0], 4)
    assert np.isfinite(probs).all() and np.isfinite(boxes).all() and ((probs >= 0) & (probs <= 1)).all()
    assert ids[0] == 101 and ids[-1] == 102
    dets = det.detect(image, "cat. dog.", box_threshold=0.0, text_threshold=0.0, raise_if_empty=False)
    assert all(isinstance(d, Detection) and d.label in ("cat", "dog") for d in dets)
    for d in dets:
        x1, y1, x2, y2 = d.box
        assert 0 <= x1 < x2 <= image.shape[1] and 0 <= y1 < y2 <= image.shape[0]


def test_folder_round_trip_through_the_auto_class(tiny, tmp_path: Path) -> None:
    name, det = tiny
    folder = tmp_path / name
    det.model.save_pretrained(folder)
    det.processor.save_pretrained(folder)
    loaded = TextDetector.from_pretrained(str(folder), device="cpu")
    assert type(loaded.model) is type(det.model)
    image = _image(2)
    p1, b1, ids1 = det.raw_scores(image, "glass of water")
    p2, b2, ids2 = loaded.raw_scores(image, "glass of water")
    assert ids1 == ids2
    np.testing.assert_allclose(p1, p2, atol=1e-5)
    np.testing.assert_allclose(b1, b2, atol=1e-3)


def test_other_model_types_are_refused(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text('{"model_type": "owlv2"}')
    with pytest.raises(ValueError, match="not a GroundingDINO-family detector"):
        TextDetector.from_pretrained(str(tmp_path), device="cpu")


def test_input_size_option(vocab_file: Path) -> None:
    det = TextDetector.tiny(vocab_file=vocab_file, name=DEFAULT_DETECTOR)
    image = _image(3, (120, 160))
    det.raw_scores(image, "cat")
    default_side = det.shortest_side
    small = TextDetector(det.model, det.processor, det.runtime, shortest_side=40)
    assert small.shortest_side == 40 and default_side != 40
    inputs = small.processor(images=image, text="cat.", return_tensors="pt")
    assert min(inputs["pixel_values"].shape[-2:]) == 40 and max(inputs["pixel_values"].shape[-2:]) <= 67
    small.raw_scores(image, "cat")
    with pytest.raises(ValueError, match="input size"):
        TextDetector(det.model, det.processor, det.runtime, shortest_side=10)


def test_detector_size_setting_and_cli_flag(monkeypatch: pytest.MonkeyPatch) -> None:
    from semat import registry
    from semat.pipeline import default_pipeline
    from semat.settings import Settings

    monkeypatch.setenv("SEMAT_TEST_MODELS", "tiny")
    monkeypatch.setenv("SEMAT_DETECTOR_SIZE", "48")
    assert Settings.from_env().detector_size == 48
    assert registry.load(DEFAULT_DETECTOR).shortest_side == 48
    # the CLI's --detector-size reaches the loaded detector over the variable
    assert default_pipeline(device="cpu", detector_size=56).detector().shortest_side == 56
    monkeypatch.setenv("SEMAT_DETECTOR_SIZE", "10")
    with pytest.raises(ValueError, match="input size"):
        registry.load(DEFAULT_DETECTOR)


def test_released_size_defaults_to_800(vocab_file: Path) -> None:
    from transformers import GroundingDinoImageProcessor

    # The released processors resize to shortest 800 / longest 1333; 640 keeps that aspect cap.
    proc = type("P", (), {"image_processor": GroundingDinoImageProcessor()})()
    from semat.inference.detect import set_shortest_side

    assert proc.image_processor.size["shortest_edge"] == 800
    set_shortest_side(proc, 640)
    assert proc.image_processor.size == {"shortest_edge": 640, "longest_edge": 1066}


def test_dtype_policy(vocab_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SEMAT_DTYPE", raising=False)
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: {"avx2": True})
    det = TextDetector.tiny(vocab_file=vocab_file, runtime=select_runtime("cpu"))
    assert det.runtime.dtype == torch.float32  # auto on a CPU without native bf16: fp32
    assert all(p.dtype == torch.float32 for p in det.model.parameters())
    for flags in ({"avx512_bf16": True}, {"amx_tile": True, "amx_bf16": True}):
        monkeypatch.setattr(torch.cpu, "get_capabilities", lambda flags=flags: dict(flags))
        native = TextDetector.tiny(vocab_file=vocab_file, runtime=select_runtime("cpu"))
        # auto on native bf16: bf16 (measured 0.60-0.69x fp32 with AVX512-BF16 alone, 0.66-0.69x on AMX)
        assert native.runtime.dtype == torch.bfloat16
    explicit = TextDetector.tiny(vocab_file=vocab_file, runtime=select_runtime("cpu", "bfloat16"))
    assert explicit.runtime.dtype == torch.bfloat16  # an explicit dtype is honoured
    dtypes = {p.dtype for p in explicit.model.parameters()}
    assert torch.bfloat16 in dtypes  # matmul weights cast once; norms/embeddings stay fp32
    probs, boxes, _ = explicit.raw_scores(_image(4), "cat. dog.")
    assert np.isfinite(probs).all() and np.isfinite(boxes).all()
    # On CPU the bf16 linear layers run through oneDNN with the bias in the epilogue: the same
    # numbers as aten's linear on the same bf16 weights.
    from semat.models import fusion

    onednn = [m for m in explicit.model.modules() if isinstance(m, fusion._OneDNNLinear)]
    assert bool(onednn) == torch.backends.mkldnn.is_available()
    for m in onednn:
        m.__class__ = torch.nn.Linear
    plain_probs, plain_boxes, _ = explicit.raw_scores(_image(4), "cat. dog.")
    np.testing.assert_array_equal(probs, plain_probs)
    np.testing.assert_array_equal(boxes, plain_boxes)
