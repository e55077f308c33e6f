"""Apply flows: ``build_subchunkable_apply_flow`` and what it is made of."""

from .chunk_grid import AxisGrid, Box, ChunkGrid
from .reduction import BLEND_MODES
from .subchunkable_apply_flow import (
    build_deferred_reduction_flow,
    build_postpad_subchunkable_apply_flow,
    build_subchunkable_apply_flow,
    make_subchunkable_plan,
)
from .volumetric_apply_flow import SubchunkablePlan
from .volumetric_callable_operation import VolumetricCallableOperation, VolumetricOpProtocol

__all__ = [
    "BLEND_MODES",
    "AxisGrid",
    "Box",
    "ChunkGrid",
    "SubchunkablePlan",
    "VolumetricCallableOperation",
    "VolumetricOpProtocol",
    "build_deferred_reduction_flow",
    "build_postpad_subchunkable_apply_flow",
    "build_subchunkable_apply_flow",
    "make_subchunkable_plan",
]
