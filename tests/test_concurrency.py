"""``SEMAT_CONCURRENCY`` (issue 10): model events run concurrently on ZeroGPU (each GPU call in its
own worker there) and one at a time on CPU, unless the variable says otherwise."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from semat import settings as settings_mod
from semat.settings import ZERO_GPU_CONCURRENCY, Settings, SettingsError, zero_gpu_mode

ROOT = Path(__file__).resolve().parents[1]
FAKE = Path(__file__).parent / "helpers" / "fake_spaces"


@pytest.fixture
def spaces_installed(monkeypatch):
    """``spaces`` importable but not imported (how ``Settings`` sees it outside app.py)."""
    monkeypatch.delitem(sys.modules, "spaces", raising=False)
    monkeypatch.delitem(sys.modules, "spaces.config", raising=False)
    monkeypatch.setattr(settings_mod.importlib.util, "find_spec",
                        lambda name, *a: object() if name == "spaces" else None)


@pytest.fixture
def spaces_absent(monkeypatch):
    monkeypatch.delitem(sys.modules, "spaces", raising=False)
    monkeypatch.delitem(sys.modules, "spaces.config", raising=False)
    monkeypatch.setattr(settings_mod.importlib.util, "find_spec", lambda name, *a: None)


def test_default_is_above_one_on_zero_gpu_only(spaces_installed):
    assert ZERO_GPU_CONCURRENCY > 1
    assert Settings.from_env({"SPACES_ZERO_GPU": "true"}).concurrency == ZERO_GPU_CONCURRENCY
    assert Settings.from_env({"SPACES_ZERO_GPU": "1"}).concurrency == ZERO_GPU_CONCURRENCY
    assert Settings.from_env({}).concurrency == 1
    assert Settings.from_env({"SPACES_ZERO_GPU": "false"}).concurrency == 1
    assert Settings().concurrency == 1


def test_the_variable_wins(spaces_installed):
    assert Settings.from_env({"SPACES_ZERO_GPU": "true", "SEMAT_CONCURRENCY": "1"}).concurrency == 1
    assert Settings.from_env({"SPACES_ZERO_GPU": "true", "SEMAT_CONCURRENCY": "4"}).concurrency == 4
    assert Settings.from_env({"SEMAT_CONCURRENCY": "3"}).concurrency == 3
    assert Settings.from_env({"SPACES_ZERO_GPU": "true", "SEMAT_CONCURRENCY": " "}).concurrency == 2
    with pytest.raises(SettingsError, match="SEMAT_CONCURRENCY"):
        Settings.from_env({"SEMAT_CONCURRENCY": "0"})


def test_no_spaces_package_means_not_zero_gpu(spaces_absent):
    assert not zero_gpu_mode({"SPACES_ZERO_GPU": "true"})
    assert Settings.from_env({"SPACES_ZERO_GPU": "true"}).concurrency == 1


def test_imported_spaces_config_decides(monkeypatch):
    """Once ``spaces`` is imported, its own ``Config.zero_gpu`` decides, as in zerogpu.on_zero_gpu."""
    import types

    config = types.ModuleType("spaces.config")
    config.Config = types.SimpleNamespace(zero_gpu=True)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "spaces", types.ModuleType("spaces"))
    monkeypatch.setitem(sys.modules, "spaces.config", config)
    monkeypatch.delenv("SPACES_ZERO_GPU", raising=False)
    monkeypatch.delenv("SEMAT_CONCURRENCY", raising=False)
    assert zero_gpu_mode() and Settings.from_env().concurrency == ZERO_GPU_CONCURRENCY
    config.Config.zero_gpu = False  # type: ignore[attr-defined]
    assert not zero_gpu_mode() and Settings.from_env().concurrency == 1


_DEMO_LIMITS = r"""
import json
import spaces  # the counting stand-in, first, as app.py does
from semat.app.layout import build_demo
from semat.app.zerogpu import on_zero_gpu
demo = build_demo()
limits = sorted({fn.concurrency_limit for fn in demo.fns.values() if fn.concurrency_id == "models"})
print(json.dumps({"zero_gpu": on_zero_gpu(), "limits": limits}))
"""


@pytest.mark.parametrize(("zero_gpu", "variable", "expected"), [
    ("1", None, ZERO_GPU_CONCURRENCY), ("", None, 1), ("1", "1", 1), ("", "3", 3)])
def test_built_app_uses_it_for_model_events(zero_gpu, variable, expected):
    """The demo as app.py builds it, with the ``spaces`` stand-in in or out of ZeroGPU mode."""
    env = {**os.environ, "PYTHONPATH": str(FAKE), "FAKE_SPACES_ZERO_GPU": zero_gpu,
           "SEMAT_TEST_MODELS": "tiny", "SEMAT_PRELOAD": "none"}
    env.pop("SEMAT_CONCURRENCY", None)
    if variable is not None:
        env["SEMAT_CONCURRENCY"] = variable
    proc = subprocess.run([sys.executable, "-c", _DEMO_LIMITS], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out == {"zero_gpu": bool(zero_gpu), "limits": [expected]}
