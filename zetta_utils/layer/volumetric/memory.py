"""An in-memory ``VolumetricBackend``: one NumPy array per stored resolution.

Meant for tests and small experiments. The data live in the process that holds the backend; a
pickled copy (e.g. sent to a worker process) carries a snapshot and its writes are not seen by
the original.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import torch

from zetta_utils import builder
from zetta_utils.geometry import BBox3D, Vec3D, to_vec3d
from zetta_utils.layer.protocols import IndexProcessor
from zetta_utils.tensor_ops import InterpolationMode, to_np, to_np_dtype, to_torch

from .backend import VolumetricBackend
from .frontend import ResolutionLike, match_resolution, to_resolution
from .index import VolumetricIndex
from .layer import VolumetricDataProcessor, VolumetricLayer, build_volumetric_layer


class MemoryBackend(VolumetricBackend):
    """Stores ``bbox`` (in nm) at each of ``resolutions`` in NumPy arrays of ``dtype``.

    At each resolution the dataset is the smallest voxel range covering ``bbox``; ``chunk_size``
    is reported to callers (e.g. for chunk alignment) but storage is not chunked. Reads outside
    the dataset give zeros; writes must lie inside it. Reads return fresh tensors (like a real
    storage read), so in-place processors cannot change the stored data.
    """

    def __init__(
        self,
        name: str,
        bbox: BBox3D,
        resolutions: Iterable[ResolutionLike],
        dtype: str | np.dtype | torch.dtype = "float32",
        num_channels: int = 1,
        chunk_size: Sequence[int] | Vec3D[int] = (64, 64, 1),
    ):
        if num_channels < 1:
            raise ValueError(f"`num_channels` must be at least 1, got {num_channels}")
        res_list = [to_resolution(r, "resolutions[]") for r in resolutions]
        if not res_list:
            raise ValueError("`resolutions` must name at least one resolution")
        self._name = name
        self._np_dtype = to_np_dtype(dtype)
        self._num_channels = num_channels
        self._chunk_size = to_vec3d(chunk_size, "chunk_size").int_checked("chunk_size")
        self._resolutions = sorted(res_list, key=lambda r: r.prod())
        self._offsets: dict[Vec3D[float], Vec3D[int]] = {}
        self._arrays: dict[Vec3D[float], np.ndarray] = {}
        for res in self._resolutions:
            start = (bbox.start / res).floor()
            stop = (bbox.end / res).ceil()
            self._offsets[res] = start
            shape = (num_channels, *(stop - start))
            self._arrays[res] = np.zeros(shape, dtype=self._np_dtype, order="F")

    @property
    def name(self) -> str:
        return self._name

    @property
    def dtype(self) -> torch.dtype:
        # what reads return: to_torch widens the unsigned types torch handles poorly
        return to_torch(np.zeros(0, dtype=self._np_dtype)).dtype

    @property
    def num_channels(self) -> int:
        return self._num_channels

    @property
    def is_local(self) -> bool:
        return True

    def get_resolutions(self) -> Sequence[Vec3D[float]]:
        return list(self._resolutions)

    def _stored(self, resolution: Vec3D[float]) -> Vec3D[float]:
        match = match_resolution(resolution, self._resolutions)
        if match is None:
            raise ValueError(
                f"{self._name} does not store resolution {tuple(resolution)} "
                f"(stored: {', '.join(str(tuple(r)) for r in self._resolutions)})"
            )
        return match

    def get_voxel_offset(self, resolution: Vec3D[float]) -> Vec3D[int]:
        return self._offsets[self._stored(resolution)]

    def get_chunk_size(self, resolution: Vec3D[float]) -> Vec3D[int]:
        self._stored(resolution)
        return self._chunk_size

    def get_dataset_size(self, resolution: Vec3D[float]) -> Vec3D[int]:
        return Vec3D(*self._arrays[self._stored(resolution)].shape[1:])

    def _window(self, idx: VolumetricIndex) -> tuple[np.ndarray, Vec3D[int], Vec3D[int]]:
        res = self._stored(idx.resolution)
        return self._arrays[res], idx.start - self._offsets[res], idx.stop - self._offsets[res]

    def read(self, idx: VolumetricIndex) -> torch.Tensor:
        array, start, stop = self._window(idx)
        shape = stop - start
        result = np.zeros((self._num_channels, *shape), dtype=self._np_dtype, order="F")
        lo = [max(0, s) for s in start]
        hi = [min(e, n) for e, n in zip(stop, array.shape[1:], strict=True)]
        if all(h > lo_ for lo_, h in zip(lo, hi, strict=True)):
            dst = tuple(slice(a - s, b - s) for a, b, s in zip(lo, hi, start, strict=True))
            src = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
            result[(slice(None), *dst)] = array[(slice(None), *src)]
        return to_torch(result)

    def write(self, idx: VolumetricIndex, data: torch.Tensor) -> None:
        array, start, stop = self._window(idx)
        expected = (self._num_channels, *(stop - start))
        if tuple(data.shape) != expected:
            raise ValueError(
                f"data written to {self._name} at {idx.pformat()} must have shape {expected}, got "
                f"{tuple(data.shape)}"
            )
        if any(s < 0 for s in start) or any(
            e > n for e, n in zip(stop, array.shape[1:], strict=True)
        ):
            raise ValueError(
                f"write to {self._name} at {idx.pformat()} (resolution {tuple(idx.resolution)}) "
                f"lies outside the dataset {self.get_bounds(idx.resolution).pformat()}"
            )
        region = (slice(None), *(slice(a, b) for a, b in zip(start, stop, strict=True)))
        array[region] = to_np(data)


@builder.register("build_mem_layer")
def build_mem_layer(
    bbox: BBox3D,
    resolutions: Sequence[Vec3D[float] | Sequence[float]],
    name: str = "memory",
    dtype: str = "float32",
    num_channels: int = 1,
    chunk_size: Vec3D[int] | Sequence[int] = (64, 64, 1),
    default_desired_resolution: Vec3D[float] | Sequence[float] | None = None,
    index_resolution: Vec3D[float] | Sequence[float] | None = None,
    data_resolution: Vec3D[float] | Sequence[float] | None = None,
    interpolation_mode: InterpolationMode | None = None,
    readonly: bool = False,
    allow_slice_rounding: bool = False,
    index_procs: Iterable[IndexProcessor[VolumetricIndex]] = (),
    read_procs: Iterable[VolumetricDataProcessor] = (),
    write_procs: Iterable[VolumetricDataProcessor] = (),
) -> VolumetricLayer:
    """A ``VolumetricLayer`` over a fresh :class:`MemoryBackend` (zeros) covering ``bbox`` at
    ``resolutions``; the layer arguments are those of ``build_volumetric_layer``."""
    backend = MemoryBackend(
        name=name,
        bbox=bbox,
        resolutions=resolutions,
        dtype=dtype,
        num_channels=num_channels,
        chunk_size=chunk_size,
    )
    return build_volumetric_layer(
        backend,
        default_desired_resolution=default_desired_resolution,
        index_resolution=index_resolution,
        data_resolution=data_resolution,
        interpolation_mode=interpolation_mode,
        readonly=readonly,
        allow_slice_rounding=allow_slice_rounding,
        index_procs=index_procs,
        read_procs=read_procs,
        write_procs=write_procs,
    )
