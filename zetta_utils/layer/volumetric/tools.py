"""Index and data processors of volumetric layers, registered under the original's names and
arguments (``index_procs``, ``read_procs``, ``write_procs`` of a layer; see
:mod:`zetta_utils.layer.protocols` for the order a layer applies them in).

The joint processors keep what ``process_index`` worked out for the ``process_data`` call that
follows it, as the original's do: one instance serves one layer call at a time (layers are used
by one thread of a process; executors run tasks in separate processes).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs
import torch

from zetta_utils import builder
from zetta_utils.geometry import BBox3D, Vec3D
from zetta_utils.layer.protocols import ProcessorMode
from zetta_utils.tensor_ops import InterpolationMode, interpolate

from .index import VolumetricIndex


def _xyz(value: Any, what: str) -> Vec3D[float]:
    if (
        isinstance(value, (str, bytes))
        or not isinstance(value, (Sequence, Vec3D))
        or len(value) != 3
    ):
        raise ValueError(f"{what}: expected three numbers, got {value!r}")
    return Vec3D(*value)


@builder.register("VolumetricIndexTranslator")
@attrs.frozen
class VolumetricIndexTranslator:
    """Moves every index by ``offset`` voxels at ``resolution`` (e.g. to read a volume stored
    with another origin)."""

    offset: Sequence[float]
    resolution: Sequence[float]

    def __attrs_post_init__(self) -> None:
        _xyz(self.offset, "offset")
        _xyz(self.resolution, "resolution")

    def __call__(self, idx: VolumetricIndex) -> VolumetricIndex:
        return attrs.evolve(idx, bbox=idx.bbox.translated(self.offset, self.resolution))


@builder.register("VolumetricIndexOverrider")
@attrs.frozen
class VolumetricIndexOverrider:
    """Replaces the start (voxels), the size (voxels) and/or the resolution of every index;
    ``None`` (whole, or per dimension) keeps the index's own."""

    override_offset: Sequence[int | None] | None = None
    override_size: Sequence[int | None] | None = None
    override_resolution: Sequence[float | None] | None = None

    def __attrs_post_init__(self) -> None:
        for name in ("override_offset", "override_size", "override_resolution"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, (str, bytes)) or len(value) != 3):
                raise ValueError(f"{name}: expected three values (or None), got {value!r}")

    def __call__(self, idx: VolumetricIndex) -> VolumetricIndex:
        def pick(override: Sequence[Any] | None, own: Sequence[Any]) -> list[Any]:
            if override is None:
                return list(own)
            return [o if o is not None else x for o, x in zip(override, own, strict=True)]

        start = pick(self.override_offset, idx.start)
        size = pick(self.override_size, idx.shape)
        resolution = pick(self.override_resolution, idx.resolution)
        return VolumetricIndex.from_coords(
            start_coord=start,
            end_coord=[s + n for s, n in zip(start, size, strict=True)],
            resolution=resolution,
            chunk_id=idx.chunk_id,
            allow_slice_rounding=idx.allow_slice_rounding,
        )


@builder.register("VolumetricIndexPadder")
@attrs.frozen
class VolumetricIndexPadder:
    """Grows every index by ``pad`` voxels on each side."""

    pad: Sequence[int]

    def __call__(self, idx: VolumetricIndex) -> VolumetricIndex:
        return idx.padded(self.pad)


@builder.register("DataResolutionInterpolator")
@attrs.mutable
class DataResolutionInterpolator:
    """Reads and writes at ``data_resolution`` whatever resolution the index asks for,
    resampling the data with ``interpolation_mode`` (a layer's ``data_resolution`` argument does
    the same without a processor)."""

    data_resolution: Sequence[float]
    interpolation_mode: InterpolationMode
    allow_slice_rounding: bool = False
    _scale_factor: tuple[float, float, float] | None = attrs.field(init=False, default=None)

    def process_index(self, idx: VolumetricIndex, mode: ProcessorMode) -> VolumetricIndex:
        stored = _xyz(self.data_resolution, "data_resolution")
        ratio = stored / idx.resolution if mode == "read" else idx.resolution / stored
        self._scale_factor = (float(ratio[0]), float(ratio[1]), float(ratio[2]))
        return VolumetricIndex(
            resolution=stored,
            bbox=idx.bbox,
            chunk_id=idx.chunk_id,
            allow_slice_rounding=idx.allow_slice_rounding,
        )

    def process_data(self, data: torch.Tensor, mode: ProcessorMode) -> torch.Tensor:
        if self._scale_factor is None:
            raise RuntimeError(
                "DataResolutionInterpolator: process_data called before process_index"
            )
        factor, self._scale_factor = self._scale_factor, None
        return interpolate(
            data,
            scale_factor=factor,
            mode=self.interpolation_mode,
            allow_slice_rounding=self.allow_slice_rounding,
        )


@builder.register("InvertProcessor")
@attrs.frozen
class InvertProcessor:
    """With ``invert``, maps uint8 data ``x`` to ``(~x + 2) % 256`` as the original does
    (1 -> 0, 255 -> 2, 0 -> 1); without, passes data through."""

    invert: bool

    def process_index(self, idx: VolumetricIndex, mode: ProcessorMode) -> VolumetricIndex:
        return idx

    def process_data(self, data: torch.Tensor, mode: ProcessorMode) -> torch.Tensor:
        if not self.invert:
            return data
        if data.dtype != torch.uint8:
            raise NotImplementedError(
                f"InvertProcessor: only uint8 data can be inverted, got {data.dtype}"
            )
        return torch.bitwise_not(data) + 2


@builder.register("ROIMaskProcessor")
@attrs.mutable
class ROIMaskProcessor:
    """For layer sets: adds ``<target>_mask`` (1 inside the region ``start_coord`` -
    ``end_coord`` voxels at ``resolution``, 0 outside) next to each layer named in ``targets``,
    unless the data already hold one."""

    start_coord: Sequence[int]
    end_coord: Sequence[int]
    resolution: Sequence[float]
    targets: list[str]
    _slices: tuple[slice, slice, slice] | None = attrs.field(init=False, default=None)

    def process_index(self, idx: VolumetricIndex, mode: ProcessorMode) -> VolumetricIndex:
        roi = BBox3D.from_coords(self.start_coord, self.end_coord, self.resolution)
        inside = idx.intersection(roi)
        start = inside.start - idx.start
        stop = start + inside.shape
        self._slices = (
            slice(start[0], stop[0]),
            slice(start[1], stop[1]),
            slice(start[2], stop[2]),
        )
        return idx

    def process_data(
        self, data: dict[str, torch.Tensor], mode: ProcessorMode
    ) -> dict[str, torch.Tensor]:
        if self._slices is None:
            raise RuntimeError("ROIMaskProcessor: process_data called before process_index")
        slices, self._slices = self._slices, None
        for target in self.targets:
            if target not in data:
                raise KeyError(
                    f"ROIMaskProcessor: no layer {target!r} in the data ({sorted(data)})"
                )
            if f"{target}_mask" in data:
                continue
            mask = torch.zeros_like(data[target])
            mask[(..., *slices)] = 1
            data[f"{target}_mask"] = mask
        return data


builder.register_unsupported(
    "CLAHEProcessor",
    (),
    "CLAHE needs OpenCV, which this project does not depend on; apply it in a read_procs "
    "function of your own",
)
