"""``build_constant_volumetric_layer``: a read-only layer that reads one value everywhere, at
any resolution (e.g. an all-ones mask input of a flow)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import attrs
import torch

from zetta_utils import builder
from zetta_utils.geometry import Vec3D
from zetta_utils.layer.protocols import IndexProcessor
from zetta_utils.tensor_ops import InterpolationMode

from .backend import VolumetricBackend
from .frontend import VolumetricFrontend
from .index import VolumetricIndex
from .layer import VolumetricDataProcessor, VolumetricLayer


class ConstantVolumetricBackend(VolumetricBackend):
    """Reads ``value`` (float32, ``num_channels`` channels) for any index at any resolution; it
    has no bounds, chunks or stored resolutions, and cannot be written."""

    def __init__(self, value: float = 0, num_channels: int = 1):
        if isinstance(num_channels, bool) or not isinstance(num_channels, int) or num_channels < 1:
            raise ValueError(f"num_channels: expected a positive integer, got {num_channels!r}")
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"value: expected a number, got {value!r}")
        self.value = float(value)
        self._num_channels = num_channels

    @property
    def name(self) -> str:
        return f"constant({self.value:g})"

    @property
    def dtype(self) -> torch.dtype:
        return torch.float32

    @property
    def num_channels(self) -> int:
        return self._num_channels

    @property
    def is_local(self) -> bool:
        return True

    def read(self, idx: VolumetricIndex) -> torch.Tensor:
        return torch.full((self._num_channels, *idx.shape), self.value, dtype=torch.float32)

    def write(self, idx: VolumetricIndex, data: torch.Tensor) -> None:
        raise PermissionError(f"{self.name} is a constant layer: it cannot be written")

    def get_resolutions(self) -> Sequence[Vec3D[float]]:
        return []

    def _no_geometry(self, what: str) -> ValueError:
        return ValueError(f"{self.name} has no {what}: it reads the same value everywhere")

    def get_voxel_offset(self, resolution: Vec3D[float]) -> Vec3D[int]:
        raise self._no_geometry("bounds")

    def get_chunk_size(self, resolution: Vec3D[float]) -> Vec3D[int]:
        raise self._no_geometry("chunks")

    def get_dataset_size(self, resolution: Vec3D[float]) -> Vec3D[int]:
        raise self._no_geometry("bounds")


@attrs.frozen
class _AnyResolutionFrontend(VolumetricFrontend):
    """Reads straight from the backend at the desired resolution: a constant needs no
    resampling (``data_resolution`` and ``interpolation_mode`` change nothing)."""

    def read(self, backend: VolumetricBackend, idx: VolumetricIndex) -> torch.Tensor:
        return backend.read(idx)


@builder.register("build_constant_volumetric_layer")
def build_constant_volumetric_layer(
    value: float = 0,
    num_channels: int = 1,
    default_desired_resolution: Sequence[float] | None = None,
    index_resolution: Sequence[float] | None = None,
    data_resolution: Sequence[float] | None = None,
    interpolation_mode: InterpolationMode | None = None,
    allow_slice_rounding: bool = False,
    index_procs: Iterable[IndexProcessor[VolumetricIndex]] = (),
    read_procs: Iterable[VolumetricDataProcessor] = (),
) -> VolumetricLayer:
    """A read-only layer reading ``value`` (float32) in ``num_channels`` channels everywhere;
    the other arguments are those of ``build_volumetric_layer``."""
    frontend = _AnyResolutionFrontend(
        index_resolution=index_resolution,
        default_desired_resolution=default_desired_resolution,
        data_resolution=data_resolution,
        interpolation_mode=interpolation_mode,
        allow_slice_rounding=allow_slice_rounding,
    )
    return VolumetricLayer(
        backend=ConstantVolumetricBackend(value=value, num_channels=num_channels),
        frontend=frontend,
        readonly=True,
        index_procs=index_procs,
        read_procs=read_procs,
    )
