"""Precomputed volumes through TensorStore: :class:`TSBackend` and :func:`build_ts_layer`."""

from .backend import TSBackend, file_io_sync_default
from .build import build_ts_layer

__all__ = ["TSBackend", "build_ts_layer", "file_io_sync_default"]
