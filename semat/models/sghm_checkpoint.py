"""The released SGHM checkpoint's keys: spectral-normalised weights folded into plain ones.

Each ``P.module.weight_{bar,u,v}`` triple of the official checkpoint (``module.`` already
stripped) becomes one ``P.weight``, after which the keys equal the module names of
:class:`semat.models.sghm.SGHM`. Pure tensor code: it stays in ``models/``, which imports
nothing else of the package.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor

__all__ = ["SN_SUFFIXES", "fold_spectral_norm"]

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
