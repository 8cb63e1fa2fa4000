"""SGHM's widths and depths: the released ResNet-50 model and a tiny one for tests."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SGHMConfig:
    """Widths and depths. :meth:`full` is the released ResNet-50 model; :meth:`tiny` is for tests."""

    stem: int = 64
    planes: tuple[int, int, int, int] = (64, 128, 256, 512)
    blocks: tuple[int, int, int, int] = (3, 4, 6, 3)
    aspp_out: int = 256
    aspp_rates: tuple[int, int, int] = (3, 6, 9)
    decoder: tuple[int, int, int, int] = (128, 64, 48, 34)
    shortcut: tuple[int, int, int, int, int] = (32, 32, 32, 64, 128)
    refine_blocks: tuple[int, int, int, int, int] = (3, 3, 2, 2, 2)

    @classmethod
    def full(cls) -> SGHMConfig:
        return cls()

    @classmethod
    def tiny(cls) -> SGHMConfig:
        return cls(stem=8, planes=(4, 8, 8, 16), blocks=(1, 1, 2, 2), aspp_out=16,
                   decoder=(8, 8, 8, 4), shortcut=(4, 4, 4, 8, 8), refine_blocks=(2, 2, 1, 1, 2))
