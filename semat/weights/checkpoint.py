"""Reading checkpoint files safely and checking that they fit a model.

Model-specific key conversions (SEMat's PEFT/LoRA layout, SGHM's spectral norm) live next to
their builders; this module holds what every checkpoint needs:

* :func:`read_state_dict` verifies the file first (:func:`semat.weights.integrity.verify_file`:
  zip CRC-32 of every record, cached per file), loads with ``weights_only=True`` (checkpoints are
  untrusted input), unwraps ``{"model": sd}`` / ``{"state_dict": sd}``, strips a DataParallel
  ``module.`` prefix and refuses NaN/Inf weights; a damaged file is
  :class:`~semat.errors.WeightsCorrupt` naming it and saying to delete it and download again;
* :func:`merge_lora` folds PEFT LoRA adapters into their base weights;
* :func:`load_exact` loads a state dict and fails, naming keys, on anything missing or unexpected.
"""

from __future__ import annotations

import os
import pickle
import re
import stat
from collections.abc import Iterable, Mapping

import torch
from torch import nn

from semat.errors import CheckpointError, WeightsCorrupt
from semat.weights.integrity import check_finite_output, check_finite_state_dict, verify_file

__all__ = ["CheckpointError", "WeightsCorrupt", "check_finite_output", "load_exact", "merge_lora",
           "read_state_dict", "verify_checkpoint"]


def _fmt_keys(keys: Iterable[str], limit: int = 12) -> str:
    keys = sorted(keys)
    head = ", ".join(keys[:limit])
    return head + (f", ... ({len(keys) - limit} more)" if len(keys) > limit else "")


def verify_checkpoint(path: str | os.PathLike) -> None:
    """Integrity check of a checkpoint file before it is unpickled (no-op for paths that are not
    regular files: :func:`torch.load` reports those)."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return
    except OSError:
        return
    verify_file(path)


def read_state_dict(path: str | os.PathLike, *, verify: bool = True) -> dict[str, torch.Tensor]:
    """The tensors of a checkpoint file (see the module docstring). ``verify=False`` skips the
    integrity checks (CRC pass and finite weights), for callers that have just run them."""
    if verify:
        verify_checkpoint(path)
    try:
        try:  # memory-map zip-format files: tensors are paged in from disk, not copied up front
            obj = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as exc:
            if "mmap" not in str(exc):  # legacy (non-zip) files cannot be mapped; others re-raise
                raise
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint: not one at all, or it holds objects "
                              "other than tensors (refused: checkpoints are untrusted and loaded with "
                              "weights_only=True)") from exc
    except Exception as exc:
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint ({type(exc).__name__}: {first})") from exc
    for wrapper in ("model", "state_dict"):
        if isinstance(obj, Mapping) and isinstance(obj.get(wrapper), Mapping):
            obj = obj[wrapper]
            break
    if not isinstance(obj, Mapping) or not obj:
        raise CheckpointError(f"{path}: expected a state dict (or {{'model': state_dict}})")
    sd = {str(k): v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if not sd:
        raise CheckpointError(f"{path}: the checkpoint holds no tensors")
    if all(k.startswith("module.") for k in sd):
        sd = {k[len("module."):]: v for k, v in sd.items()}
    if verify:
        check_finite_state_dict(sd, path)
    return sd


_LORA_RE = re.compile(r"^(?P<layer>.+)\.lora_(?P<ab>[AB])(?:\.(?P<adapter>[^.]+))?\.weight$")


def merge_lora(sd: Mapping[str, torch.Tensor], scaling: float = 1.0) -> dict[str, torch.Tensor]:
    """Fold PEFT LoRA pairs into their base layers and return plain, upstream-shaped keys.

    Accepts both PEFT layouts for the base weight: ``X.base_layer.weight`` (peft >= 0.7) and
    ``X.weight`` (older), with ``X.lora_A[.default].weight`` / ``X.lora_B[.default].weight``.
    ``base_model.model.`` wrappers are removed from every key. Linear: ``W += s * B @ A``;
    Conv2d (A has the base kernel, B is 1x1): ``W[o,i,h,w] += s * sum_r B[o,r] A[r,i,h,w]``.
    """
    out: dict[str, torch.Tensor] = {}
    lora: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in sd.items():
        key = key.replace("base_model.model.", "")
        m = _LORA_RE.match(key)
        if m:
            lora.setdefault(m["layer"], {})[m["ab"]] = value
            continue
        out[key.replace(".base_layer.", ".")] = value
    for layer, ab in lora.items():
        if set(ab) != {"A", "B"}:
            raise CheckpointError(f"LoRA layer {layer} has only lora_{next(iter(ab))}")
        wkey = f"{layer}.weight"
        if wkey not in out:
            raise CheckpointError(f"LoRA layer {layer} has no base weight")
        base = out[wkey]
        a, b = ab["A"].double(), ab["B"].double()
        delta = b.flatten(1) @ a.flatten(1)  # [out, r] @ [r, in*kh*kw]
        out[wkey] = (base.double() + scaling * delta.reshape(base.shape)).to(base.dtype)
    return out


def load_exact(model: nn.Module, sd: Mapping[str, torch.Tensor], *, source: str = "checkpoint",
               ignore_prefixes: Iterable[str] = ()) -> None:
    """Load ``sd`` into ``model``; every model key must be present and every file key used.

    Keys under ``ignore_prefixes`` are dropped first (training-only or unused modules that the
    released files carry by design). Shape mismatches, missing and unexpected keys all raise
    :class:`CheckpointError` naming the keys.
    """
    ignore = tuple(ignore_prefixes)
    sd = {k: v for k, v in sd.items() if not (ignore and k.startswith(ignore))}
    expected = model.state_dict()
    missing = expected.keys() - sd.keys()
    unexpected = sd.keys() - expected.keys()
    problems = []
    if missing:
        problems.append(f"missing {len(missing)} key(s): {_fmt_keys(missing)}")
    if unexpected:
        problems.append(f"unexpected {len(unexpected)} key(s): {_fmt_keys(unexpected)}")
    bad = [k for k in sd.keys() & expected.keys() if tuple(sd[k].shape) != tuple(expected[k].shape)]
    if bad:
        problems.append("shape mismatch: " + ", ".join(
            f"{k} {tuple(sd[k].shape)} vs {tuple(expected[k].shape)}" for k in sorted(bad)[:8]))
    if problems:
        raise CheckpointError(f"{source} does not fit {type(model).__name__}: " + "; ".join(problems))
    model.load_state_dict(sd, strict=True)
