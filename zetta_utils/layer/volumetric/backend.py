"""The contract between ``VolumetricLayer`` (resolution handling, processors) and a storage
backend (TensorStore, CloudVolume): read and write CXYZ tensors at *stored* resolutions."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

import torch

from zetta_utils.geometry import Vec3D

from .index import VolumetricIndex


def match_resolution(
    resolution: Vec3D[float], stored: Sequence[Vec3D[float]]
) -> Vec3D[float] | None:
    """The element of ``stored`` equal to ``resolution`` (up to float rounding), or None."""
    for s in stored:
        if s == resolution:
            return s
    for s in stored:
        if s.allclose(resolution, rel_tol=1e-9, abs_tol=1e-9):
            return s
    return None


class VolumetricBackend(ABC):
    """Reads and writes one Neuroglancer Precomputed volume at the resolutions it stores.

    Resampling is not a backend's job: ``read``/``write`` get indices whose resolution is one of
    ``get_resolutions()`` (anything else is a ``ValueError``). Voxels outside the dataset bounds
    read as the fill value (0). Writes are clipped to the dataset bounds (the part outside is
    dropped; a write entirely outside is a ``ValueError``), and the part inside must cover whole
    chunks (chunks clipped by the dataset end count as whole): partial-chunk writes are refused
    with a ``ValueError``, because updating part of a chunk is a read-modify-write that
    concurrent writers would corrupt.
    """

    @property
    @abstractmethod
    def name(self) -> str:
        """The volume's path."""

    @property
    @abstractmethod
    def dtype(self) -> torch.dtype:
        """The torch dtype reads return."""

    @property
    @abstractmethod
    def num_channels(self) -> int: ...

    @property
    @abstractmethod
    def is_local(self) -> bool:
        """Whether the volume is on a local file system."""

    @abstractmethod
    def read(self, idx: VolumetricIndex) -> torch.Tensor:
        """CXYZ tensor of ``idx`` at ``idx.resolution`` (a stored resolution)."""

    @abstractmethod
    def write(self, idx: VolumetricIndex, data: torch.Tensor) -> None:
        """Write CXYZ ``data`` (shape ``(num_channels, *idx.shape)``) at ``idx``."""

    @abstractmethod
    def get_resolutions(self) -> Sequence[Vec3D[float]]:
        """The stored resolutions (the info file's scales), finest first."""

    def find_resolution(self, resolution: Vec3D[float]) -> Vec3D[float] | None:
        """The stored resolution equal to ``resolution`` up to float rounding, or None (the
        frontend asks for every chunk read or written; backends whose resolutions never change
        may remember the answers, and may return ``resolution`` itself where it is stored as
        it is)."""
        return match_resolution(resolution, self.get_resolutions())

    @abstractmethod
    def get_voxel_offset(self, resolution: Vec3D[float]) -> Vec3D[int]: ...

    @abstractmethod
    def get_chunk_size(self, resolution: Vec3D[float]) -> Vec3D[int]: ...

    @abstractmethod
    def get_dataset_size(self, resolution: Vec3D[float]) -> Vec3D[int]: ...

    def get_bounds(self, resolution: Vec3D[float]) -> VolumetricIndex:
        """The dataset's extent at ``resolution`` as a ``VolumetricIndex``."""
        offset = self.get_voxel_offset(resolution)
        return VolumetricIndex.from_coords(
            offset, offset + self.get_dataset_size(resolution), resolution
        )

    def get_chunk_aligned_index(
        self, idx: VolumetricIndex, mode: str = "expand"
    ) -> VolumetricIndex:
        """``idx`` snapped to the chunk grid of its resolution (``expand``/``shrink``/``round``)."""
        res = idx.resolution
        return idx.snapped(self.get_voxel_offset(res), self.get_chunk_size(res), mode)  # type: ignore[arg-type]

    def is_chunk_aligned(self, idx: VolumetricIndex) -> bool:
        """Whether ``idx`` covers whole chunks only (chunks clipped by the dataset end count)."""
        res = idx.resolution
        bounds = self.get_bounds(res)
        offset = self.get_voxel_offset(res)
        chunk = self.get_chunk_size(res)
        start_ok = idx.snapped(offset, chunk, "round").bbox.start == idx.bbox.start
        end_snapped = idx.snapped(offset, chunk, "round").bbox.end
        end_ok = all(
            e == s or e == b
            for e, s, b in zip(idx.bbox.end, end_snapped, bounds.bbox.end, strict=True)
        )
        return start_ok and end_ok

    def clear_cache(self) -> None:  # noqa: B027 - optional for backends without a cache
        """Drop cached chunks."""
