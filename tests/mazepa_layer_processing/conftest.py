"""Small volumes on local disk for the apply-flow tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from zetta_utils.layer.volumetric.layer import VolumetricLayer
from zetta_utils.mazepa_layer_processing.common import reduction

from .helpers import make_volume_at

MakeVolume = Callable[..., VolumetricLayer]


@pytest.fixture
def make_volume(tmp_path: Path) -> MakeVolume:
    """``make_volume(name, size, dtype, chunk, offset, channels)``: a fresh precomputed volume in
    tmp_path (raw encoding), read and written through TensorStore."""
    counter = {"n": 0}

    def make(name: str | None = None, **kwargs: Any) -> VolumetricLayer:
        counter["n"] += 1
        return make_volume_at(str(tmp_path / (name or f"vol{counter['n']}")), **kwargs)

    return make


@pytest.fixture(params=["compiled", "numpy"])
def loops(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a test with the compiled blending loops and again with the NumPy ones."""
    if request.param == "numpy":
        monkeypatch.setattr(reduction, "KERNELS", None)
    elif reduction.KERNELS is None:
        pytest.skip("the compiled loops are not built")
    return str(request.param)
