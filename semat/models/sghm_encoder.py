"""SGHM's backbone: a torchvision-layout ResNet (v1.5 bottlenecks) with layer4 dilated, no torchvision.

Run on the quarter-size image; it returns the stride-16 features and the four skips the
segmentation decoder and the shortcut modules use. Attribute names equal the checkpoint's keys.
"""

from __future__ import annotations

from torch import Tensor, nn

from semat.models.sghm_config import SGHMConfig

__all__ = ["Bottleneck", "ResNetEncoder"]


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, dilation: int = 1,
                 downsample: nn.Module | None = None) -> None:
        super().__init__()
        width = planes
        self.conv1 = nn.Conv2d(inplanes, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride=stride, padding=dilation, dilation=dilation, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, planes * self.expansion, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class ResNetEncoder(nn.Module):
    """torchvision-layout ResNet (v1.5) with layer4 dilated (output stride 16), no avgpool/fc."""

    def __init__(self, cfg: SGHMConfig) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, cfg.stem, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(cfg.stem)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self._inplanes = cfg.stem
        self._dilation = 1
        self.layer1 = self._make_layer(cfg.planes[0], cfg.blocks[0])
        self.layer2 = self._make_layer(cfg.planes[1], cfg.blocks[1], stride=2)
        self.layer3 = self._make_layer(cfg.planes[2], cfg.blocks[2], stride=2)
        self.layer4 = self._make_layer(cfg.planes[3], cfg.blocks[3], stride=2, dilate=True)

    def _make_layer(self, planes: int, blocks: int, stride: int = 1, dilate: bool = False) -> nn.Sequential:
        previous_dilation = self._dilation
        if dilate:  # the stride becomes dilation; the first block keeps the previous dilation
            self._dilation *= stride
            stride = 1
        downsample = None
        if stride != 1 or self._inplanes != planes * Bottleneck.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(self._inplanes, planes * Bottleneck.expansion, 1, stride=stride, bias=False),
                nn.BatchNorm2d(planes * Bottleneck.expansion))
        layers = [Bottleneck(self._inplanes, planes, stride, previous_dilation, downsample)]
        self._inplanes = planes * Bottleneck.expansion
        layers += [Bottleneck(self._inplanes, planes, dilation=self._dilation) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        x0 = x
        x1 = self.relu(self.bn1(self.conv1(x)))
        x = self.layer1(self.maxpool(x1))
        x2 = x
        x = self.layer2(x)
        x3 = x
        x4 = self.layer4(self.layer3(x))
        return x4, x3, x2, x1, x0
