"""Volumetric layers: CXYZ tensors over chunked Neuroglancer Precomputed volumes."""

from .backend import VolumetricBackend
from .frontend import UserVolumetricIndex, VolumetricFrontend
from .index import VolumetricIndex
from .layer import VolumetricLayer, build_volumetric_layer
from .layer_set import VolumetricLayerSet, build_layer_set, build_volumetric_layer_set
from .memory import MemoryBackend, build_mem_layer

__all__ = [
    "MemoryBackend",
    "UserVolumetricIndex",
    "VolumetricBackend",
    "VolumetricFrontend",
    "VolumetricIndex",
    "VolumetricLayer",
    "VolumetricLayerSet",
    "build_layer_set",
    "build_mem_layer",
    "build_volumetric_layer",
    "build_volumetric_layer_set",
]
