"""Volumetric layers: CXYZ tensors over chunked Neuroglancer Precomputed volumes."""

from .index import VolumetricIndex

__all__ = ["VolumetricIndex"]
