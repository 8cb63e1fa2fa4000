"""Reduced precision on CPU: bias and GELU in oneDNN's matmul/conv epilogue, BatchNorm folded.

In a bf16 forward on CPU, aten's ``linear`` first copies the bias into the output buffer and then
accumulates the matmul on top (``addmm``), and ``gelu(linear(x))`` writes the hidden activations,
reads them back and writes them again. oneDNN's matmul applies bias and GELU in its epilogue, on
the fp32 accumulator, so each output is written once, in bf16. Measured on a 2-core AMX CPU (bf16,
4096 tokens): Hiera-L's 576 -> 2304 MLP layer with its GELU 41 ms -> 17 ms, ViT-L's 1024 -> 4096
90-96 ms -> 74-79 ms; a plain layer gives bit-identical outputs without the bias copy. The GELU
is the exact (erf) one, as ``nn.GELU()`` computes it, applied before the bf16 rounding rather
than after, so the result is at least as close to fp32. The detail decoder's ``conv -> BN ->
GELU`` chains at 1024² become one oneDNN convolution each (:func:`fold_batchnorm`, then
:func:`fuse_cpu_bf16`), and its residual blocks add their two paths in the second conv's epilogue
(:func:`conv_add_gelu`). SEMat-SAM2 in bf16 went from 7.7 s to 6.6-7.0 s with these.

Everything here swaps module classes (parameters, names and the checkpoint layout are
untouched). The oneDNN fusions apply only where the fused ops exist (a oneDNN build of torch),
the device is the CPU and the weights are bf16: fp32 keeps aten's kernels. In fp32 the model
gets only :func:`fold_batchnorm` (exact in real arithmetic: the golden fp32 alpha moves by about
1e-6 against a tolerance of 1e-4) and :func:`gelu_in_place` (bit-identical), which leave the
detail decoder fewer full-resolution maps to allocate.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import pairwise

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["conv_add_gelu", "fold_batchnorm", "fuse_cpu_bf16", "fused_linear_gelu_supported", "gelu_in_place", "linear_gelu"]


def _onednn_bf16(weight: torch.Tensor, op: str) -> bool:
    """Whether the oneDNN op ``op`` can run this layer fused (CPU, bf16 weights, oneDNN build)."""
    return (weight.device.type == "cpu" and weight.dtype == torch.bfloat16
            and torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, op))


def fused_linear_gelu_supported(weight: torch.Tensor) -> bool:
    """Whether :func:`linear_gelu` (and the plain oneDNN linear) runs fused for this weight."""
    return _onednn_bf16(weight, "_linear_pointwise")


class _OneDNNLinear(nn.Linear):
    """``nn.Linear`` through oneDNN's matmul with the bias in its epilogue (no bias copy)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.ops.mkldnn._linear_pointwise(x.to(self.weight.dtype), self.weight, self.bias, "none", [], "")


def linear_gelu(x: torch.Tensor, linear: nn.Linear) -> torch.Tensor:
    """``gelu(linear(x))`` (exact GELU); fused in oneDNN where :func:`fused_linear_gelu_supported`."""
    weight = linear.weight
    if not fused_linear_gelu_supported(weight):
        return F.gelu(linear(x))
    # Autocast would cast x to bf16 for the linear layer; the oneDNN op is outside its lists.
    return torch.ops.mkldnn._linear_pointwise(x.to(weight.dtype), weight, linear.bias, "gelu", [], "none")


def _is_exact_gelu(module: nn.Module) -> bool:
    return type(module) is nn.GELU and module.approximate == "none"


class _FusedSamMLP(nn.Module):
    """segment-anything ``MLPBlock`` (``lin1``, ``act``, ``lin2``) with the fused first layer."""

    lin1: nn.Linear
    lin2: nn.Linear

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin2(linear_gelu(x, self.lin1))


class _FusedSam2MLP(nn.Module):
    """sam2 ``MLP`` with two layers, GELU between and no output sigmoid, fused first layer."""

    layers: nn.ModuleList

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers[1](linear_gelu(x, self.layers[0]))


def _fused_class(module: nn.Module) -> type[nn.Module] | None:
    """The fused subclass for ``module``'s class, or None where it is not a plain GELU MLP."""
    lin1 = getattr(module, "lin1", None)
    if isinstance(lin1, nn.Linear) and isinstance(getattr(module, "lin2", None), nn.Linear) \
            and _is_exact_gelu(getattr(module, "act", None)) and type(module).__name__ == "MLPBlock":
        return _FusedSamMLP
    layers = getattr(module, "layers", None)
    if type(module).__name__ == "MLP" and isinstance(layers, nn.ModuleList) and len(layers) == 2 \
            and all(isinstance(layer, nn.Linear) for layer in layers) \
            and _is_exact_gelu(getattr(module, "act", None)) and not getattr(module, "sigmoid_output", False):
        return _FusedSam2MLP
    return None


_SWAPPED: dict[tuple[type, type], type] = {}


def _fuse_mlp_gelu(model: nn.Module) -> int:
    """Run the GELU MLPs of ``model`` with the fused first layer, in place; returns how many."""
    count = 0
    for module in model.modules():
        fused = _fused_class(module)
        if fused is None:
            continue
        first = module.lin1 if fused is _FusedSamMLP else module.layers[0]  # type: ignore[index]
        if not fused_linear_gelu_supported(first.weight):
            continue
        key = (fused, type(module))
        if key not in _SWAPPED:
            _SWAPPED[key] = type(f"Fused{type(module).__name__}", key, {})
        module.__class__ = _SWAPPED[key]
        count += 1
    return count


# --- convolutions: BatchNorm folded into the conv, GELU into its epilogue ----------------------


class _FoldedBatchNorm(nn.BatchNorm2d):
    """An eval-mode BatchNorm whose affine map now lives in the preceding conv: the identity.

    The parameters and buffers stay (same names, unchanged values), so the module still reads as
    the checkpoint's; only the forward is gone."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def _bn_scale_shift(bn: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    """Eval-mode BatchNorm as ``y = x * scale + shift`` per channel (computed in fp64)."""
    var = bn.running_var.double()  # type: ignore[union-attr]
    mean = bn.running_mean.double()  # type: ignore[union-attr]
    scale = torch.rsqrt(var + bn.eps)
    if bn.weight is not None:
        scale = scale * bn.weight.double()
    shift = -mean * scale
    if bn.bias is not None:
        shift = shift + bn.bias.double()
    return scale, shift


def _fold_into(conv: nn.Conv2d | nn.ConvTranspose2d, bn: nn.BatchNorm2d) -> None:
    scale, shift = _bn_scale_shift(bn)
    w = conv.weight.detach().double()
    # Conv2d weights are [out, in/groups, kh, kw]; ConvTranspose2d's are [in, out/groups, kh, kw].
    shape = (-1, 1, 1, 1) if isinstance(conv, nn.Conv2d) else (1, -1, 1, 1)
    if isinstance(conv, nn.ConvTranspose2d) and conv.groups != 1:
        raise ValueError("grouped transposed convolutions are not folded")
    bias = conv.bias.detach().double() if conv.bias is not None else torch.zeros_like(shift)
    dtype = conv.weight.dtype
    conv.weight.data = (w * scale.reshape(shape)).to(dtype)
    folded_bias = (bias * scale + shift).to(dtype)
    if conv.bias is None:
        conv.bias = nn.Parameter(folded_bias, requires_grad=False)
    else:
        conv.bias.data = folded_bias
    bn.__class__ = _FoldedBatchNorm


def fold_batchnorm(model: nn.Module) -> int:
    """Fold each eval-mode ``BatchNorm2d`` that directly follows a conv in a ``Sequential``.

    ``conv -> bn`` becomes ``conv' -> identity`` with ``w' = w * s`` and ``b' = (b - mean) * s + beta``,
    ``s = gamma / sqrt(var + eps)``. Exact in real arithmetic; the folded weights are computed in
    fp64 and stored in the conv's dtype. For the reduced-precision path it saves one pass over
    every feature map of the detail decoder (call before casting the weights)."""
    if model.training:
        raise ValueError("fold_batchnorm needs a model in eval() mode")
    count = 0
    for seq in model.modules():
        if not isinstance(seq, nn.Sequential):
            continue
        items = list(seq)
        for conv, bn in pairwise(items):
            if isinstance(conv, (nn.Conv2d, nn.ConvTranspose2d)) and type(bn) is nn.BatchNorm2d \
                    and bn.track_running_stats and bn.running_var is not None and conv.groups == 1:
                _fold_into(conv, bn)
                count += 1
    return count


def _fused_conv_gelu_supported(conv: nn.Conv2d) -> bool:
    """Whether :class:`_ConvGELU` can run this conv fused (oneDNN bf16, zero padding, int sizes)."""
    return (_onednn_bf16(conv.weight, "_convolution_pointwise") and conv.padding_mode == "zeros"
            and not isinstance(conv.padding, str))


class _ConvGELU(nn.Conv2d):
    """``gelu(conv(x))`` in one oneDNN call (the GELU that followed it is now the identity)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return torch.ops.mkldnn._convolution_pointwise(
            x.to(self.weight.dtype), self.weight, self.bias, list(self.padding), list(self.stride),
            list(self.dilation), self.groups, "gelu", [], "none")


class _ConvAddGELU(nn.Conv2d):
    """A residual block's identity-path conv whose sum and GELU :func:`conv_add_gelu` fuses
    (set by :func:`fuse_cpu_bf16`); called as a module it is the plain conv."""


def conv_add_gelu(conv: nn.Conv2d, x: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
    """``gelu(other + conv(x))``, a residual block's last step; ``other`` must be a fresh output
    that nothing else holds (the fused form overwrites it).

    For a conv that :func:`fuse_cpu_bf16` marked (bf16 weights, oneDNN CPU) the sum is the
    convolution's epilogue (added on the fp32 accumulator, rounded once) and the GELU runs in
    place, so neither the conv's output nor the sum is a map of its own: at 1024² (32 -> 16
    channels, 3x3) 46 -> 27 ms, and 28-30 -> 10 ms for the 512² maps (2-core AMX CPU, best of 5).
    oneDNN has no GELU after a sum (only ReLU), hence the separate in-place GELU. Otherwise (fp32,
    CUDA, autograd, other layouts, an unprepared model) the plain ops."""
    fused = (type(conv) is _ConvAddGELU and not torch.is_grad_enabled()
             and other.dtype == conv.weight.dtype and x.dim() == 4
             and other.is_contiguous(memory_format=torch.channels_last)
             and x.is_contiguous(memory_format=torch.channels_last))
    if not fused:
        return F.gelu(other + conv(x))
    torch.ops.mkldnn._convolution_pointwise_.binary(
        other, x.to(conv.weight.dtype), conv.weight, conv.bias, list(conv.padding), list(conv.stride),
        list(conv.dilation), conv.groups, "add", 1.0, None, [], None)
    return torch.ops.aten.gelu_(other)


class _AppliedGELU(nn.GELU):
    """A GELU already applied by the conv before it (:class:`_ConvGELU`): the identity."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def _conv_gelus(model: nn.Module) -> Iterator[tuple[nn.Module, nn.GELU]]:
    """Each ``(conv, exact GELU)`` that follow each other inside a ``Sequential`` of ``model``
    (a folded BatchNorm between them is the identity and is skipped)."""
    for seq in model.modules():
        if isinstance(seq, nn.Sequential):
            items = [m for m in seq if not isinstance(m, _FoldedBatchNorm)]
            for conv, act in pairwise(items):
                if type(conv) in (nn.Conv2d, nn.ConvTranspose2d) and _is_exact_gelu(act):
                    yield conv, act


def _fuse_conv_gelu(model: nn.Module) -> int:
    """Fuse ``conv -> [folded BN] -> GELU`` inside each ``Sequential`` into one oneDNN call."""
    count = 0
    for conv, act in list(_conv_gelus(model)):
        if type(conv) is nn.Conv2d and _fused_conv_gelu_supported(conv):
            conv.__class__ = _ConvGELU
            act.__class__ = _AppliedGELU
            count += 1
    return count


class _InPlaceGELU(nn.GELU):
    """An exact GELU that overwrites its input: only where that input is a layer's fresh output."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.ops.aten.gelu_(x)


def gelu_in_place(model: nn.Module) -> int:
    """Let each exact GELU whose input is a layer's fresh output write into it instead of a new
    tensor (bit-identical values): the GELU of a plain two-layer MLP (segment-anything's
    ``MLPBlock``, sam2's ``MLP``), and one that directly follows a conv (or a folded BatchNorm
    after one) inside a ``Sequential``.

    Nothing else holds that output: the MLP and ``Sequential`` pass it straight on. At 1024² the
    ViT-L MLP's hidden map and the detail decoder's maps are 64-128 MB each, so it saves one such
    allocation (and a pass over fresh pages) per layer."""
    acts = [m.act for m in model.modules() if _fused_class(m) is not None]
    acts += [act for _, act in _conv_gelus(model)]
    for act in acts:
        act.__class__ = _InPlaceGELU
    return len(acts)


def _fuse_conv_add_gelu(model: nn.Module) -> int:
    """Mark the identity-path conv (``res_layer``) of each residual block of the detail decoder
    (``gelu(basic_layer(x) + res_layer(x))``) for :func:`conv_add_gelu`."""
    count = 0
    for module in model.modules():
        conv = getattr(module, "res_layer", None)
        if hasattr(module, "basic_layer") and type(conv) is nn.Conv2d and _fused_conv_gelu_supported(conv):
            conv.__class__ = _ConvAddGELU
            count += 1
    return count


def _fuse_linear_bias(model: nn.Module) -> int:
    count = 0
    for module in model.modules():
        if type(module) is nn.Linear and fused_linear_gelu_supported(module.weight):
            module.__class__ = _OneDNNLinear
            count += 1
    return count


def fuse_cpu_bf16(model: nn.Module) -> dict[str, int]:
    """All CPU-bf16 fusions of this module on ``model`` (in place, after the weights are cast).

    Returns how many modules each changed: ``conv_gelu``, ``conv_add_gelu`` (residual blocks),
    ``mlp_gelu`` and ``linear`` (the remaining plain linear layers). A no-op (all zeros) off CPU,
    in fp32 or without oneDNN."""
    counts = {"conv_gelu": _fuse_conv_gelu(model), "conv_add_gelu": _fuse_conv_add_gelu(model),
              "mlp_gelu": _fuse_mlp_gelu(model)}
    counts["linear"] = _fuse_linear_bias(model)
    return counts
