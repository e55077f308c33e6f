"""Training data: datasets that read samples from layers.

``LayerDataset(layer, sample_indexer)`` is a ``torch.utils.data.Dataset`` whose sample ``i`` is
``layer[sample_indexer(i)]``; ``VolumetricStridedIndexer`` turns sample numbers into
``VolumetricIndex`` windows strided over a bounding box. Both are registered with the builder
(``"LayerDataset"``, ``"VolumetricStridedIndexer"``).
"""

from . import datasets
from .datasets import LayerDataset, SampleIndexer, VolumetricStridedIndexer

__all__ = ["LayerDataset", "SampleIndexer", "VolumetricStridedIndexer", "datasets"]
