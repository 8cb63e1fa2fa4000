"""SGHM (Semantic Guided Human Matting, Chen et al., ACCV 2022) as plain torch modules.

Clean-room implementation of the inference network from ``shared/reference/sghm-spec.md``:
a ResNet-50 encoder (layer4 dilated) on the quarter-size image, ASPP (rates 3/6/9), a small
segmentation decoder that gives the coarse person probability, five attentive shortcut modules
(two 3x3 convs + ECA) fed with ``[feature, binary mask]``, and the matting refiner that climbs
from 1/64 to full resolution and emits alpha logits at 1/8, 1/4 and 1/1.

Module names equal the official checkpoint's key names once ``module.`` is stripped and each
spectral-normalised triple ``P.module.weight_{bar,u,v}`` is folded into a plain ``P.weight``
(see :func:`fold_spectral_norm`). There is no torchvision import anywhere.

For inference, :meth:`SGHM.fuse_` folds every BatchNorm that directly follows a conv into that
conv, turns the stride-1 transposed conv into a normal conv, keeps only channel 0 of the
segmentation head and switches to channels-last memory. The forward is split into stages
(:meth:`SGHM.coarse`, :meth:`SGHM.shortcut0`, :meth:`SGHM.fine`) so a pipeline can skip the
full-resolution branch where the fusion does not use it; :meth:`SGHM.forward` runs everything,
as the reference does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn


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


def _bn(c: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(c)


# --------------------------------------------------------------------------- encoder


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, dilation: int = 1,
                 downsample: nn.Module | None = None) -> None:
        super().__init__()
        width = planes
        self.conv1 = nn.Conv2d(inplanes, width, 1, bias=False)
        self.bn1 = _bn(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride=stride, padding=dilation, dilation=dilation, bias=False)
        self.bn2 = _bn(width)
        self.conv3 = nn.Conv2d(width, planes * self.expansion, 1, bias=False)
        self.bn3 = _bn(planes * self.expansion)
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
        self.bn1 = _bn(cfg.stem)
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
                _bn(planes * Bottleneck.expansion))
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


# --------------------------------------------------------------------------- ASPP + seg decoder


class ASPPPooling(nn.Sequential):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__(nn.AdaptiveAvgPool2d(1), nn.Conv2d(cin, cout, 1, bias=False), _bn(cout),
                         nn.ReLU(inplace=True))

    def forward(self, x: Tensor) -> Tensor:
        # bilinear resize of a 1x1 map (align_corners=False) is an exact broadcast
        return super().forward(x).expand(-1, -1, x.shape[-2], x.shape[-1])


class ASPP(nn.Module):
    def __init__(self, cin: int, rates: tuple[int, ...], cout: int) -> None:
        super().__init__()
        convs: list[nn.Module] = [nn.Sequential(nn.Conv2d(cin, cout, 1, bias=False), _bn(cout), nn.ReLU(inplace=True))]
        for r in rates:
            convs.append(nn.Sequential(nn.Conv2d(cin, cout, 3, padding=r, dilation=r, bias=False), _bn(cout),
                                       nn.ReLU(inplace=True)))
        convs.append(ASPPPooling(cin, cout))
        self.convs = nn.ModuleList(convs)
        self.project = nn.Sequential(nn.Conv2d(len(convs) * cout, cout, 1, bias=False), _bn(cout),
                                     nn.ReLU(inplace=True), nn.Dropout(0.5))

    def forward(self, x: Tensor) -> Tensor:
        return self.project(torch.cat([c(x) for c in self.convs], dim=1))


class SegDecoder(nn.Module):
    """Four upsample-concat-conv stages; output channel 0 is the person logit."""

    def __init__(self, channels: tuple[int, ...], skips: tuple[int, ...]) -> None:
        super().__init__()
        c = channels
        self.conv1 = nn.Conv2d(c[0] + skips[0], c[1], 3, padding=1, bias=False)
        self.bn1 = _bn(c[1])
        self.conv2 = nn.Conv2d(c[1] + skips[1], c[2], 3, padding=1, bias=False)
        self.bn2 = _bn(c[2])
        self.conv3 = nn.Conv2d(c[2] + skips[2], c[3], 3, padding=1, bias=False)
        self.bn3 = _bn(c[3])
        self.conv4 = nn.Conv2d(c[3] + skips[3], c[4], 3, padding=1, bias=True)
        self.relu = nn.ReLU(inplace=True)

    @staticmethod
    def _up_cat(x: Tensor, skip: Tensor) -> Tensor:
        x = F.interpolate(x, size=skip.shape[2:], mode="bilinear", align_corners=False)
        return torch.cat([x, skip], dim=1)

    def forward(self, x4: Tensor, x3: Tensor, x2: Tensor, x1: Tensor, x0: Tensor) -> Tensor:
        x = self.relu(self.bn1(self.conv1(self._up_cat(x4, x3))))
        x = self.relu(self.bn2(self.conv2(self._up_cat(x, x2))))
        x = self.relu(self.bn3(self.conv3(self._up_cat(x, x1))))
        return self.conv4(self._up_cat(x, x0))


# --------------------------------------------------------------------------- matting side


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
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.ReLU(inplace=True), _bn(cout),
                         nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.ReLU(inplace=True), _bn(cout),
                         ECA())


def _lrelu(x: Tensor) -> Tensor:
    return F.leaky_relu(x, 0.2, inplace=True)


class UpBlock(nn.Module):
    """Refiner residual block; the first block of a stage doubles the resolution."""

    def __init__(self, cin: int, cout: int, upsample: bool) -> None:
        super().__init__()
        if upsample:
            self.conv1: nn.Module = nn.ConvTranspose2d(cin, cin, 4, stride=2, padding=1, bias=False)
            self.bn1 = _bn(cin)
            self.conv2 = nn.Conv2d(cin, cout, 3, padding=1, bias=False)
            self.upsample: nn.Module | None = nn.Sequential(
                nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(cin, cout, 1, bias=False), _bn(cout))
        else:
            self.conv1 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
            self.bn1 = _bn(cout)
            self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
            self.upsample = None
        self.bn2 = _bn(cout)

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.upsample is None else self.upsample(x)
        out = _lrelu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return _lrelu(out + identity)


def _head(c: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c, c, 3, padding=1, bias=False), _bn(c), nn.LeakyReLU(0.2, inplace=True),
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
        self.bn1 = _bn(c)
        self.conv2: nn.Module = nn.ConvTranspose2d(c, c, 3, stride=1, padding=1, bias=False)
        self.bn2 = _bn(c)
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
        x = _lrelu(self.bn1(self.conv1(x))) + a0
        x = _lrelu(self.bn2(self.conv2(x)))
        return self.refine_OS1(x)


# --------------------------------------------------------------------------- whole model


@dataclass
class Coarse:
    """Everything up to the OS4 head, at network resolution H x W (see :meth:`SGHM.coarse`)."""

    segment: Tensor  # [N,1,H,W] person probability
    mask: Tensor  # [N,1,H,W] binary mask (segment > 0.5) as float
    feat4: Tensor  # [N,C,H/4,W/4] refiner features after layer5 + A1
    logits_os8: Tensor  # [N,1,H/8,W/8]
    logits_os4: Tensor  # [N,1,H/4,W/4]


def logits_to_alpha(logits: Tensor, size: tuple[int, int] | None = None) -> Tensor:
    if size is not None and tuple(logits.shape[-2:]) != tuple(size):
        logits = F.interpolate(logits, size=size, mode="bilinear", align_corners=False)
    return (torch.tanh(logits) + 1) / 2


class SGHM(nn.Module):
    def __init__(self, cfg: SGHMConfig | None = None) -> None:
        super().__init__()
        cfg = cfg or SGHMConfig.full()
        self.cfg = cfg
        exp = Bottleneck.expansion
        self.backbone = ResNetEncoder(cfg)
        self.aspp = ASPP(cfg.planes[3] * exp, cfg.aspp_rates, cfg.aspp_out)
        self.decoder = SegDecoder((cfg.aspp_out, *cfg.decoder),
                                  (cfg.planes[1] * exp, cfg.planes[0] * exp, cfg.stem, 3))
        feats = [3, 3, cfg.stem, cfg.planes[0] * exp, cfg.planes[1] * exp]
        self.shortcut = nn.ModuleList(make_shortcut(f + 1, c) for f, c in zip(feats, cfg.shortcut))
        self.refine = MattingRefiner(cfg)
        self.fused = False
        self.channels_last = False

    @staticmethod
    def check_size(h: int, w: int) -> None:
        if h % 64 or w % 64 or h < 64 or w < 64:
            raise ValueError(f"SGHM needs a network input whose sides are positive multiples of 64, got {h}x{w}")

    def coarse(self, image: Tensor) -> Coarse:
        """Encoder, ASPP, segmentation and the refiner up to 1/4 scale. ``image`` is [N,3,H,W] in [0,1]."""
        h, w = image.shape[-2:]
        self.check_size(h, w)
        quarter = F.interpolate(image, scale_factor=0.25, mode="bilinear", align_corners=False,
                                recompute_scale_factor=True)
        x4, x3, x2, x1, x0 = self.backbone(quarter)
        x4 = self.aspp(x4)
        seg_logit = self.decoder(x4, x3, x2, x1, x0)[:, :1]
        segment = F.interpolate(torch.sigmoid(seg_logit), scale_factor=4.0, mode="bilinear",
                                align_corners=False, recompute_scale_factor=True)
        mask = (segment > 0.5).to(image.dtype)
        mq = F.interpolate(mask, scale_factor=0.25, mode="bilinear", align_corners=False,
                           recompute_scale_factor=True)
        a1 = self.shortcut[1](torch.cat([x0, mq], dim=1))
        a2 = self.shortcut[2](torch.cat([x1, self._down(mq, 0.5)], dim=1))
        a3 = self.shortcut[3](torch.cat([x2, self._down(mq, 0.25)], dim=1))
        a4 = self.shortcut[4](torch.cat([x3, self._down(mq, 0.125)], dim=1))
        feat4, os8, os4 = self.refine.coarse(x4, a4, a3, a2, a1)
        return Coarse(segment, mask, feat4, os8, os4)

    @staticmethod
    def _down(x: Tensor, s: float) -> Tensor:
        return F.interpolate(x, scale_factor=s, mode="bilinear", align_corners=False)

    def shortcut0_pre(self, image: Tensor, mask: Tensor) -> Tensor:
        """Shortcut 0 before its ECA (a local op: row bands with a 2-pixel halo give the same result)."""
        return self.shortcut[0][:6](torch.cat([image, mask], dim=1))

    def shortcut0(self, image: Tensor, mask: Tensor, band: int = 0) -> Tensor:
        """A0 = shortcut 0 on [image, mask] at full resolution, optionally computed in row bands."""
        h = image.shape[-2]
        if band <= 0 or band >= h:
            pre = self.shortcut0_pre(image, mask)
        else:
            pre = image.new_empty((image.shape[0], self.cfg.shortcut[0], h, image.shape[-1]))
            pre = pre.contiguous(memory_format=torch.channels_last) if self.channels_last else pre
            halo = 2
            for r0 in range(0, h, band):
                r1 = min(h, r0 + band)
                s0, s1 = max(0, r0 - halo), min(h, r1 + halo)
                out = self.shortcut0_pre(image[:, :, s0:s1], mask[:, :, s0:s1])
                pre[:, :, r0:r1] = out[:, :, r0 - s0:r1 - s0]
        eca: ECA = self.shortcut[0][6]
        return pre.mul_(eca.scale(pre.mean(dim=(2, 3))))

    def fine(self, feat4: Tensor, a0: Tensor) -> Tensor:
        return self.refine.fine(feat4, a0)

    def forward(self, image: Tensor) -> dict[str, Tensor]:
        """Full reference forward: segment, alpha_os1/4/8 at H x W and the three raw logit maps."""
        c = self.coarse(image)
        a0 = self.shortcut0(image, c.mask)
        os1 = self.fine(c.feat4, a0)
        size = tuple(image.shape[-2:])
        return {"segment": c.segment, "alpha_os1": logits_to_alpha(os1), "alpha_os4": logits_to_alpha(c.logits_os4, size),
                "alpha_os8": logits_to_alpha(c.logits_os8, size), "logits_os1": os1,
                "logits_os4": c.logits_os4, "logits_os8": c.logits_os8}

    # ------------------------------------------------------------------ inference folding

    @torch.no_grad()
    def fuse_(self, channels_last: bool = True) -> SGHM:
        """Fold BN into the preceding conv (where BN directly follows it), make the stride-1
        transposed conv a plain conv, keep only the used segmentation channel, and (by default)
        go channels-last. Channels-last pays off at full size; for tiny models it is slower,
        because PyTorch sends small batch-1 3x3 convs to a slow non-oneDNN kernel.

        The result is numerically equivalent up to float rounding; it no longer loads checkpoints.
        """
        if self.fused:
            return self
        self.eval()
        bb = self.backbone
        _fold(bb, "conv1", "bn1")
        for layer in (bb.layer1, bb.layer2, bb.layer3, bb.layer4):
            for blk in layer:
                for i in (1, 2, 3):
                    _fold(blk, f"conv{i}", f"bn{i}")
                if blk.downsample is not None:
                    _fold(blk.downsample, "0", "1")
        for branch in self.aspp.convs:
            _fold(branch, "1", "2") if isinstance(branch, ASPPPooling) else _fold(branch, "0", "1")
        _fold(self.aspp.project, "0", "1")
        dec = self.decoder
        for i in (1, 2, 3):
            _fold(dec, f"conv{i}", f"bn{i}")
        conv4 = nn.Conv2d(dec.conv4.in_channels, 1, 3, padding=1, bias=True)
        conv4.weight.copy_(dec.conv4.weight[:1])
        conv4.bias.copy_(dec.conv4.bias[:1])
        dec.conv4 = conv4
        r = self.refine
        for name in ("layer2", "layer3", "layer4", "layer5", "layer6"):
            for blk in getattr(r, name):
                _fold(blk, "conv1", "bn1")
                _fold(blk, "conv2", "bn2")
                if blk.upsample is not None:
                    _fold(blk.upsample, "1", "2")
        _fold(r, "conv1", "bn1")
        r.conv2 = _transposed_s1_to_conv(r.conv2)
        _fold(r, "conv2", "bn2")
        for head in (r.refine_OS1, r.refine_OS4, r.refine_OS8):
            _fold(head, "0", "1")
        if channels_last:
            self.to(memory_format=torch.channels_last)
        self.channels_last = channels_last
        self.fused = True
        return self


def _transposed_s1_to_conv(ct: nn.ConvTranspose2d) -> nn.Conv2d:
    k = ct.kernel_size[0]
    conv = nn.Conv2d(ct.in_channels, ct.out_channels, k, padding=k - 1 - ct.padding[0], bias=ct.bias is not None)
    conv.weight.copy_(ct.weight.transpose(0, 1).flip(2, 3))
    if ct.bias is not None:
        conv.bias.copy_(ct.bias)
    return conv


def _fold(parent: nn.Module, conv_name: str, bn_name: str) -> None:
    conv = getattr(parent, conv_name) if not conv_name.isdigit() else parent[int(conv_name)]
    bn = getattr(parent, bn_name) if not bn_name.isdigit() else parent[int(bn_name)]
    assert isinstance(bn, nn.BatchNorm2d)
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    shift = bn.bias - bn.running_mean * scale
    if isinstance(conv, nn.ConvTranspose2d):
        conv.weight.mul_(scale.view(1, -1, 1, 1))
    else:
        conv.weight.mul_(scale.view(-1, 1, 1, 1))
    bias = shift if conv.bias is None else conv.bias * scale + shift
    conv.bias = nn.Parameter(bias.clone())
    if bn_name.isdigit():
        parent[int(bn_name)] = nn.Identity()
    else:
        setattr(parent, bn_name, nn.Identity())


# --------------------------------------------------------------------------- checkpoint keys

SN_SUFFIXES = (".module.weight_bar", ".module.weight_u", ".module.weight_v")


def fold_spectral_norm(sd: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Replace every ``P.module.weight_{bar,u,v}`` triple by ``P.weight = W̄ / σ``, σ = uᵀ·W̄·v.

    Eval-mode behaviour of the reference wrapper (no power iteration). For transposed convs
    ``W̄.shape[0]`` is the input-channel count, as in the reference. Raises ``KeyError`` naming
    the prefix when a triple is incomplete.
    """
    out: dict[str, Tensor] = {}
    prefixes = []
    for k, v in sd.items():
        for suf in SN_SUFFIXES:
            if k.endswith(suf):
                p = k[: -len(suf)]
                if suf == SN_SUFFIXES[0]:
                    prefixes.append(p)
                break
        else:
            out[k] = v
    for p in prefixes:
        try:
            w, u, v = (sd[p + s] for s in SN_SUFFIXES)
        except KeyError as exc:
            raise KeyError(f"spectral-norm layer {p} lacks {exc.args[0]}") from None
        w32, u32, v32 = w.float(), u.float(), v.float()
        sigma = torch.dot(u32, torch.mv(w32.reshape(w32.shape[0], -1), v32))
        out[p + ".weight"] = (w32 / sigma).to(w.dtype)
    leftovers = [k for k in sd if k.endswith(SN_SUFFIXES[1:]) and k.rsplit(".module.", 1)[0] not in prefixes]
    if leftovers:
        raise KeyError(f"spectral-norm vectors without weight_bar: {', '.join(sorted(leftovers)[:4])}")
    return out
