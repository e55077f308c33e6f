"""Layers: indexable, writable views of stored data with read/write/index processors.

The volumetric layers (``VolumetricLayer``, ``VolumetricLayerSet``, ``build_layer_set``) live in
:mod:`zetta_utils.layer.volumetric`; this package holds what any layer shares and stays free of
torch imports.
"""

from . import unsupported  # noqa: F401 - registers the refused names of the original's
from .layer_base import Layer, LayerBackend, LayerFrontend
from .protocols import DataProcessor, IndexProcessor, JointIndexDataProcessor, ProcessorMode

__all__ = [
    "DataProcessor",
    "IndexProcessor",
    "JointIndexDataProcessor",
    "Layer",
    "LayerBackend",
    "LayerFrontend",
    "ProcessorMode",
]
