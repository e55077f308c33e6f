"""Flows and operations that process volumetric layers with mazepa: chunkwise application of a
function with subchunking, cropping, blending and reduction
(``build_subchunkable_apply_flow``)."""

from . import common
from .common import (
    VolumetricCallableOperation,
    build_deferred_reduction_flow,
    build_postpad_subchunkable_apply_flow,
    build_subchunkable_apply_flow,
)

__all__ = [
    "VolumetricCallableOperation",
    "build_deferred_reduction_flow",
    "build_postpad_subchunkable_apply_flow",
    "build_subchunkable_apply_flow",
    "common",
]
