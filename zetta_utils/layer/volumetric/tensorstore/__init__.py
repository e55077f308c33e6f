"""Precomputed volumes through TensorStore: :class:`TSBackend` and :func:`build_ts_layer`."""

from ..raw_chunks import file_io_sync_default
from .backend import TSBackend
from .build import build_ts_layer

__all__ = ["TSBackend", "build_ts_layer", "file_io_sync_default"]
