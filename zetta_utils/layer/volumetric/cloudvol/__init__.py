"""Precomputed volumes through CloudVolume: :class:`CVBackend` and :func:`build_cv_layer`."""

from .backend import CloudFilesIO, CVBackend, cloudvolume_path
from .build import build_cv_layer

__all__ = ["CVBackend", "CloudFilesIO", "build_cv_layer", "cloudvolume_path"]
