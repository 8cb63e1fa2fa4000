"""Tiny random-weight stand-ins used by tests and ``SEMAT_TEST_MODELS=tiny``: a WordPiece vocab and
GroundingDINO-family configs small enough to build in a second (never a real detector).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from semat.errors import InputError

MODEL_TYPES = ("grounding-dino", "mm-grounding-dino")


def write_tiny_vocab(folder: str | Path, words: list[str] | None = None) -> Path:
    """Write a small WordPiece ``vocab.txt`` that GroundingDINO can use.

    Ids 101, 102, 1012, 1029 are ``[CLS] [SEP] . ?`` as the model requires; ids 0/100/103 are
    ``[PAD] [UNK] [MASK]``; the remaining low ids are ``[unusedN]`` padding; after 1029 come
    ``words``, the 26 letters and their ``##`` continuations, so any lower-case word tokenises.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    vocab = [f"[unused{i}]" for i in range(1030)]
    for i, tok in {0: "[PAD]", 100: "[UNK]", 101: "[CLS]", 102: "[SEP]", 103: "[MASK]",
                   1012: ".", 1029: "?"}.items():
        vocab[i] = tok
    letters = [chr(c) for c in range(ord("a"), ord("z") + 1)]
    extra = list(dict.fromkeys([*(words or ["cat", "dog", "person", "a", "the"]), *letters,
                                *("##" + c for c in letters), *"0123456789", ",", "-", "'"]))
    vocab += [w for w in extra if w not in vocab]
    path = folder / "vocab.txt"
    path.write_text("\n".join(vocab) + "\n", encoding="utf-8")
    return path


def tiny_config(vocab_size: int, model_type: str = "grounding-dino") -> Any:
    """A ~2 M-parameter random config of ``model_type`` (``grounding-dino`` or
    ``mm-grounding-dino``), for tests and SEMAT_TEST_MODELS=tiny."""
    from transformers import BertConfig, GroundingDinoConfig, MMGroundingDinoConfig, SwinConfig

    config_class = {"grounding-dino": GroundingDinoConfig, "mm-grounding-dino": MMGroundingDinoConfig}
    if model_type not in config_class:
        raise InputError(f"unknown detector model type {model_type!r}; choose one of {', '.join(MODEL_TYPES)}")
    return config_class[model_type](
        backbone_config=SwinConfig(embed_dim=32, depths=[1, 1, 1, 1], num_heads=[1, 2, 4, 8],
                                   out_features=["stage2", "stage3", "stage4"]),
        text_config=BertConfig(vocab_size=vocab_size, hidden_size=64, num_hidden_layers=1,
                               num_attention_heads=2, intermediate_size=128),
        d_model=64, encoder_layers=1, decoder_layers=2,  # decoder_layers=1 breaks weight tying in 5.x
        encoder_ffn_dim=128, decoder_ffn_dim=128, encoder_attention_heads=2, decoder_attention_heads=2,
        num_queries=50)


# registry name -> the transformers model type its tiny stand-in uses
TINY_MODEL_TYPES = {"grounding-dino-tiny": "grounding-dino", "grounding-dino-base": "grounding-dino",
                    "mm-grounding-dino-tiny": "mm-grounding-dino", "llmdet-tiny": "mm-grounding-dino"}
