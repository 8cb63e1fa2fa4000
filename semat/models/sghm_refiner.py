"""SGHM's matting side: the attentive shortcut modules (two 3x3 convs + ECA) and the refiner that
climbs from 1/64 to full resolution, emitting alpha logits at 1/8, 1/4 and 1/1."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from semat.models.sghm_config import SGHMConfig

__all__ = ["ECA", "MattingRefiner", "UpBlock", "leaky_relu", "make_shortcut"]


class ECA(nn.Module):
    """Efficient channel attention: global mean -> 1-D conv across channels (k=3) -> sigmoid."""

    def __init__(self, k: int = 3) -> None:
        super().__init__()
        self.conv = nn.Conv1d(1, 1, k, padding=(k - 1) // 2, bias=False)

    def scale(self, mean: Tensor) -> Tensor:
        """Channel weights [N,C,1,1] from the per-channel spatial mean [N,C]."""
        return torch.sigmoid(self.conv(mean.unsqueeze(1))).squeeze(1)[:, :, None, None]

    def forward(self, x: Tensor) -> Tensor:
        return x * self.scale(x.mean(dim=(2, 3)))


def make_shortcut(cin: int, cout: int) -> nn.Sequential:
    """Attentive shortcut module: conv -> ReLU -> BN -> conv -> ReLU -> BN -> ECA (indices = keys)."""
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.ReLU(inplace=True), nn.BatchNorm2d(cout),
                         nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.ReLU(inplace=True), nn.BatchNorm2d(cout),
                         ECA())


def leaky_relu(x: Tensor) -> Tensor:
    return F.leaky_relu(x, 0.2, inplace=True)


class UpBlock(nn.Module):
    """Refiner residual block; the first block of a stage doubles the resolution."""

    def __init__(self, cin: int, cout: int, upsample: bool) -> None:
        super().__init__()
        if upsample:
            self.conv1: nn.Module = nn.ConvTranspose2d(cin, cin, 4, stride=2, padding=1, bias=False)
            self.bn1 = nn.BatchNorm2d(cin)
            self.conv2 = nn.Conv2d(cin, cout, 3, padding=1, bias=False)
            self.upsample: nn.Module | None = nn.Sequential(
                nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout))
        else:
            self.conv1 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
            self.bn1 = nn.BatchNorm2d(cout)
            self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
            self.upsample = None
        self.bn2 = nn.BatchNorm2d(cout)

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.upsample is None else self.upsample(x)
        out = leaky_relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return leaky_relu(out + identity)


def _head(c: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), nn.LeakyReLU(0.2, inplace=True),
                         nn.Conv2d(c, 1, 3, padding=1, bias=True))


class MattingRefiner(nn.Module):
    def __init__(self, cfg: SGHMConfig) -> None:
        super().__init__()
        sc = cfg.shortcut
        chans = [cfg.aspp_out, sc[4], sc[3], sc[2], sc[1], sc[0]]
        for i, n in enumerate(cfg.refine_blocks):
            cin, cout = chans[i], chans[i + 1]
            blocks = [UpBlock(cin, cout, upsample=True)] + [UpBlock(cin, cout, False) for _ in range(1, n)]
            self.add_module(f"layer{i + 2}", nn.Sequential(*blocks))
        c = sc[0]
        self.conv1: nn.Module = nn.ConvTranspose2d(c, c, 4, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.conv2: nn.Module = nn.ConvTranspose2d(c, c, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)
        self.refine_OS1 = _head(c)
        self.refine_OS4 = _head(sc[1])
        self.refine_OS8 = _head(sc[2])

    def coarse(self, x: Tensor, a4: Tensor, a3: Tensor, a2: Tensor, a1: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """ASPP features -> (features at 1/4 for :meth:`fine`, OS8 logits, OS4 logits)."""
        x = self.layer2(x) + a4
        x = self.layer3(x) + a3
        x = self.layer4(x) + a2
        os8 = self.refine_OS8(x)
        x = self.layer5(x) + a1
        os4 = self.refine_OS4(x)
        return x, os8, os4

    def fine(self, x: Tensor, a0: Tensor) -> Tensor:
        """1/4-scale features + full-resolution shortcut features -> OS1 logits (local op)."""
        x = self.layer6(x)
        x = leaky_relu(self.bn1(self.conv1(x))) + a0
        x = leaky_relu(self.bn2(self.conv2(x)))
        return self.refine_OS1(x)
