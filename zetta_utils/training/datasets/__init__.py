"""Datasets over layers, and the sample indexers that choose what each sample reads."""

from . import sample_indexers
from .layer_dataset import LayerDataset
from .sample_indexers import SampleIndexer, VolumetricStridedIndexer

__all__ = ["LayerDataset", "SampleIndexer", "VolumetricStridedIndexer", "sample_indexers"]
