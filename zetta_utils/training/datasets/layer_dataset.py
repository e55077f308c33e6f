"""``LayerDataset``: a PyTorch dataset whose samples are reads of a layer."""

from __future__ import annotations

from typing import Any

import torch.utils.data

from zetta_utils import builder

from .sample_indexers import SampleIndexer


@builder.register("LayerDataset")
class LayerDataset(torch.utils.data.Dataset[Any]):
    """Sample ``i`` is ``layer[sample_indexer(i)]``; there are ``len(sample_indexer)`` samples.

    :param layer: what to read: a ``VolumetricLayer``, a layer set (samples are then dicts of
        tensors), or anything indexable by the indexer's indices.
    :param sample_indexer: maps sample numbers to indices, e.g. ``VolumetricStridedIndexer``.

    It pickles, so it works with ``torch.utils.data.DataLoader`` worker processes; start them
    with ``multiprocessing_context="spawn"`` (or ``"forkserver"``): TensorStore, once used in a
    process, does not work in a child forked from it.
    """

    def __init__(self, layer: Any, sample_indexer: SampleIndexer[Any]):
        if not hasattr(layer, "__getitem__"):
            raise TypeError(
                "layer: expected a layer (something indexable), "
                f"got {type(layer).__name__}: {layer!r}"
            )
        if not callable(sample_indexer) or not hasattr(sample_indexer, "__len__"):
            raise TypeError(
                "sample_indexer: expected a sample indexer (callable, with a length), got "
                f"{type(sample_indexer).__name__}: {sample_indexer!r}"
            )
        self.layer = layer
        self.sample_indexer = sample_indexer

    def __len__(self) -> int:
        return len(self.sample_indexer)

    def __getitem__(self, idx: int) -> Any:
        return self.layer[self.sample_indexer(idx)]

    def __repr__(self) -> str:
        return (
            f"LayerDataset(layer={self.layer!r}, sample_indexer={self.sample_indexer!r}, "
            f"samples={len(self)})"
        )
