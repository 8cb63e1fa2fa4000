"""Checkpoint reading: safe loading, wrappers, prefixes, legacy files, and key coverage."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from torch import nn

from semat.weights.checkpoint import CheckpointError, load_exact, read_state_dict


class _Exploit:
    def __reduce__(self):
        return (os.system, ("echo should-never-run",))


def test_pickled_code_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "evil.pth"
    torch.save({"model": _Exploit()}, path)
    with pytest.raises(CheckpointError, match="weights_only=True"):
        read_state_dict(path)


@pytest.mark.parametrize("zipfile", [True, False])
@pytest.mark.parametrize("wrap", ["model", "state_dict", None])
def test_wrappers_prefix_and_legacy_format(tmp_path: Path, zipfile: bool, wrap: str | None) -> None:
    sd = {"module.layer.weight": torch.arange(4.0), "module.layer.bias": torch.zeros(1)}
    obj = {wrap: sd, "iteration": 54000} if wrap else sd
    path = tmp_path / "ckpt.pth"
    torch.save(obj, path, _use_new_zipfile_serialization=zipfile)
    out = read_state_dict(path)
    assert sorted(out) == ["layer.bias", "layer.weight"]
    assert torch.equal(out["layer.weight"], torch.arange(4.0))


def test_not_a_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "notes.pth"
    path.write_text("hello")
    with pytest.raises(CheckpointError, match=r"notes\.pth"):
        read_state_dict(path)


def test_load_exact_names_missing_unexpected_and_mismatched_keys() -> None:
    model = nn.Sequential(nn.Linear(2, 3), nn.Linear(3, 1))
    sd = dict(model.state_dict())
    sd.pop("1.bias")
    sd["extra.weight"] = torch.zeros(1)
    sd["0.weight"] = torch.zeros(5, 5)
    with pytest.raises(CheckpointError) as info:
        load_exact(model, sd, source="x.pth")
    msg = str(info.value)
    assert "missing 1 key(s): 1.bias" in msg
    assert "unexpected 1 key(s): extra.weight" in msg
    assert "0.weight (5, 5) vs (3, 2)" in msg
    load_exact(model, {**model.state_dict(), "frozen.w": torch.zeros(1)}, ignore_prefixes=("frozen.",))
