"""Sample indexers: ``len(indexer)`` samples, ``indexer(i)`` the index sample ``i`` reads."""

from .base import SampleIndexer
from .volumetric_strided_indexer import VolumetricStridedIndexer

__all__ = ["SampleIndexer", "VolumetricStridedIndexer"]
