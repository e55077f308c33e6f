"""Volumetric layers: CXYZ tensors over chunked Neuroglancer Precomputed volumes."""

from .backend import VolumetricBackend
from .constant import ConstantVolumetricBackend, build_constant_volumetric_layer
from .frontend import UserVolumetricIndex, VolumetricFrontend
from .index import VolumetricIndex
from .layer import VolumetricLayer, build_volumetric_layer
from .layer_set import VolumetricLayerSet, build_layer_set, build_volumetric_layer_set
from .memory import MemoryBackend, build_mem_layer
from .precomputed import InfoMismatchError, PrecomputedBackend
from .tools import (
    DataResolutionInterpolator,
    InvertProcessor,
    ROIMaskProcessor,
    VolumetricIndexOverrider,
    VolumetricIndexPadder,
    VolumetricIndexTranslator,
)

__all__ = [
    "ConstantVolumetricBackend",
    "DataResolutionInterpolator",
    "InfoMismatchError",
    "InvertProcessor",
    "MemoryBackend",
    "PrecomputedBackend",
    "ROIMaskProcessor",
    "UserVolumetricIndex",
    "VolumetricBackend",
    "VolumetricFrontend",
    "VolumetricIndex",
    "VolumetricIndexOverrider",
    "VolumetricIndexPadder",
    "VolumetricIndexTranslator",
    "VolumetricLayer",
    "VolumetricLayerSet",
    "build_constant_volumetric_layer",
    "build_layer_set",
    "build_mem_layer",
    "build_volumetric_layer",
    "build_volumetric_layer_set",
]


def __getattr__(name: str) -> object:
    # The two storage libraries are imported only when a backend is asked for.
    if name in ("build_cv_layer", "CVBackend"):
        from . import cloudvol

        return getattr(cloudvol, name)
    if name in ("build_ts_layer", "TSBackend"):
        from . import tensorstore

        return getattr(tensorstore, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
