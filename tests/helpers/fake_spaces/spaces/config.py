"""``spaces.config.Config`` of the counting stand-in."""

import os


class _Config:
    @property
    def zero_gpu(self) -> bool:
        return os.environ.get("FAKE_SPACES_ZERO_GPU", "") == "1"


Config = _Config()
