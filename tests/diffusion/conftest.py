"""A tiny Stable Diffusion folder shared by the diffusion tests (written once per session)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pointsd.diffusion.stable_diffusion import write_tiny_sd


@pytest.fixture(scope="session")
def tiny_sd(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_sd(tmp_path_factory.mktemp("sd") / "sd-tiny", seed=0)
