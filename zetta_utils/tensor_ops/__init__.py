"""Tensor operations on CXYZ volumes (channel, x, y, z): conversions, interpolation between
resolutions, and blending weights for overlapping chunks. Torch and NumPy only; no I/O."""

from . import blending, common, convert, generic, interpolation, mask, unsupported
from . import original_interpolate as _original_interpolate  # noqa: F401  (the spec adapter)
from .blending import (
    BLEND_MODES,
    BlendMode,
    blend_ramp_array,
    get_blend_ramp,
    get_blend_weights,
    get_blend_weights_1d,
)
from .common import add, crop, multiply, squeeze, unsqueeze
from .convert import astype, to_np, to_np_dtype, to_torch, to_torch_dtype
from .interpolation import (
    INTERPOLATION_MODES,
    InterpolationMode,
    get_interpolated_shape,
    interpolate,
)

__all__ = [
    "BLEND_MODES",
    "INTERPOLATION_MODES",
    "BlendMode",
    "InterpolationMode",
    "add",
    "astype",
    "blend_ramp_array",
    "blending",
    "common",
    "convert",
    "crop",
    "generic",
    "get_blend_ramp",
    "get_blend_weights",
    "get_blend_weights_1d",
    "get_interpolated_shape",
    "interpolate",
    "interpolation",
    "mask",
    "multiply",
    "squeeze",
    "to_np",
    "to_np_dtype",
    "to_torch",
    "to_torch_dtype",
    "unsqueeze",
    "unsupported",
]
