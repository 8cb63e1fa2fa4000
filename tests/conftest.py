"""Shared test fixtures: golden-fixture discovery, offline hub, determinism."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # hub look-ups fail in seconds, never hit the network
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

REPO = Path(__file__).resolve().parents[1]


def golden_root() -> Path:
    return Path(os.environ.get("SEMAT_GOLDEN_DIR", REPO.parent / "shared" / "golden")).resolve()


@pytest.fixture(scope="session")
def golden_dir() -> Path:
    """The reference-parity fixtures folder (``../shared/golden`` or ``$SEMAT_GOLDEN_DIR``).

    On a user's clone the folder is absent and parity tests skip with this reason. CI sets
    ``SEMAT_REQUIRE_GOLDEN=1`` so a missing folder fails instead of silently skipping.
    """
    root = golden_root()
    if not (root / "golden_weights.py").is_file():
        msg = (f"golden parity fixtures not found at {root} (set SEMAT_GOLDEN_DIR to the folder "
               "that holds golden_weights.py)")
        if os.environ.get("SEMAT_REQUIRE_GOLDEN") == "1":
            pytest.fail(msg)
        pytest.skip(msg)
    return root


@pytest.fixture(scope="session")
def golden_weights_module(golden_dir: Path):
    """The fixture folder's ``golden_weights`` module (the deterministic weight rule)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("golden_weights", golden_dir / "golden_weights.py")
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def one_thread():
    """Run a module's tiny-model tests on one thread (use with ``pytest.mark.usefixtures``).

    Tiny models gain nothing from threads, and on a busy machine OpenMP's spinning makes 2-thread
    runs of small ops many times slower; the setting is restored afterwards."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
