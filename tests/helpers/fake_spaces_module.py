"""Load the fake ``spaces`` package (tests/helpers/fake_spaces) as a fresh module, for in-process
tests that wrap the app's GPU functions the way ``spaces.GPU`` does on ZeroGPU."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

FAKE = Path(__file__).parent / "fake_spaces" / "spaces" / "__init__.py"


def fake_spaces(name: str = "fake_spaces_in_process") -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, FAKE)
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module
