"""``VolumetricLayer``: a ``VolumetricBackend`` read and written as CXYZ torch tensors at any
resolution, with index, read and write processors."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import attrs
import numpy as np
import torch

from zetta_utils import builder
from zetta_utils.geometry import Vec3D
from zetta_utils.layer.layer_base import Layer
from zetta_utils.layer.protocols import DataProcessor, IndexProcessor, JointIndexDataProcessor
from zetta_utils.tensor_ops import InterpolationMode

from . import read_ahead
from .backend import VolumetricBackend
from .frontend import UserVolumetricIndex, VolumetricFrontend, to_write_tensor
from .index import VolumetricIndex

VolumetricDataProcessor = (
    DataProcessor[torch.Tensor] | JointIndexDataProcessor[torch.Tensor, VolumetricIndex]
)


def _check_backend(_instance: Any, _attribute: Any, value: Any) -> None:
    if not isinstance(value, VolumetricBackend):
        raise TypeError(
            f"`backend` must be a VolumetricBackend, got {type(value).__name__}: {value!r}"
        )


def _check_frontend(_instance: Any, _attribute: Any, value: Any) -> None:
    if not isinstance(value, VolumetricFrontend):
        raise TypeError(
            f"`frontend` must be a VolumetricFrontend, got {type(value).__name__}: {value!r}"
        )


_HELD = read_ahead.HELD

_FRONTEND_FIELDS = frozenset(attrs.fields_dict(VolumetricFrontend))


@attrs.frozen(kw_only=True)
class VolumetricLayer(Layer[VolumetricIndex, torch.Tensor]):
    """A volume as a CXYZ ``torch.Tensor`` at any resolution.

    ``layer[idx]`` reads and ``layer[idx] = data`` writes (``data``: tensor or NumPy array);
    ``idx`` is a ``VolumetricIndex``, ``x0:x1, y0:y1, z0:z1``, ``resolution, x0:x1, y0:y1,
    z0:z1``, a ``BBox3D`` or ``resolution, bbox``. How the resolutions relate: see
    :mod:`zetta_utils.layer.volumetric.frontend`. Build one with :func:`build_volumetric_layer`.
    """

    backend: VolumetricBackend = attrs.field(validator=_check_backend)
    frontend: VolumetricFrontend = attrs.field(
        factory=VolumetricFrontend, validator=_check_frontend
    )

    # Every chunk a flow reads or writes comes through these: without processors, a
    # VolumetricIndex goes straight to the frontend (the same steps, fewer calls).
    def __getitem__(self, idx_user: UserVolumetricIndex) -> torch.Tensor:
        idx = idx_user if type(idx_user) is VolumetricIndex else self.frontend.convert_idx(idx_user)
        if self.index_procs or self.read_procs:
            return self.read_with_procs(idx)
        if _HELD[0]:  # some data was read ahead (read_ahead.start): this read's, maybe
            data = read_ahead.take(self, idx)
            if data is not None:
                return data
        return self._read_backend(idx)

    def __setitem__(
        self, idx_user: UserVolumetricIndex, data_user: torch.Tensor | np.ndarray
    ) -> None:
        if self.readonly:
            self._check_writable()
        frontend = self.frontend
        if type(idx_user) is VolumetricIndex and type(frontend) is VolumetricFrontend:
            # what VolumetricFrontend.convert_write does with an index, without its two calls
            idx, data = idx_user, to_write_tensor(data_user, idx_user)
        else:
            idx, data = frontend.convert_write(idx_user, data_user)
        if self.index_procs or self.write_procs:
            self.write_with_procs(idx, data)
            return
        self._write_backend(idx, data)

    def _read_backend(self, idx: VolumetricIndex) -> torch.Tensor:
        return self.frontend.read(self.backend, idx)

    def _write_backend(self, idx: VolumetricIndex, data: torch.Tensor) -> None:
        self.frontend.write(self.backend, idx, data)

    # --- the frontend's settings, for convenience --------------------------------------------
    @property
    def index_resolution(self) -> Vec3D[float] | None:
        return self.frontend.index_resolution

    @property
    def default_desired_resolution(self) -> Vec3D[float] | None:
        return self.frontend.default_desired_resolution

    @property
    def data_resolution(self) -> Vec3D[float] | None:
        return self.frontend.data_resolution

    @property
    def interpolation_mode(self) -> InterpolationMode | None:
        return self.frontend.interpolation_mode

    def with_changes(self, **kwargs: Any) -> VolumetricLayer:
        """This layer with fields replaced: layer fields (``backend``, ``readonly``,
        ``index_procs``, ``read_procs``, ``write_procs``) and frontend settings
        (``index_resolution``, ``default_desired_resolution``, ``data_resolution``,
        ``interpolation_mode``, ``allow_slice_rounding``)."""
        layer_fields = set(attrs.fields_dict(type(self)))
        unknown = sorted(set(kwargs) - layer_fields - _FRONTEND_FIELDS)
        if unknown:
            raise TypeError(
                f"with_changes: unknown argument(s) {', '.join(unknown)}; expected some of "
                f"{', '.join(sorted((layer_fields | _FRONTEND_FIELDS) - {'frontend'}))}"
            )
        frontend_changes = {k: v for k, v in kwargs.items() if k in _FRONTEND_FIELDS}
        layer_changes = {k: v for k, v in kwargs.items() if k not in _FRONTEND_FIELDS}
        if frontend_changes:
            if "frontend" in layer_changes:
                raise TypeError(
                    "with_changes: give either `frontend` or frontend settings, not both"
                )
            layer_changes["frontend"] = attrs.evolve(self.frontend, **frontend_changes)
        return attrs.evolve(self, **layer_changes)


@builder.register("build_volumetric_layer")
def build_volumetric_layer(
    backend: VolumetricBackend,
    default_desired_resolution: Vec3D[float] | Sequence[float] | None = None,
    index_resolution: Vec3D[float] | Sequence[float] | None = None,
    data_resolution: Vec3D[float] | Sequence[float] | None = None,
    interpolation_mode: InterpolationMode | None = None,
    readonly: bool = False,
    allow_slice_rounding: bool = False,
    index_procs: Iterable[IndexProcessor[VolumetricIndex]] = (),
    read_procs: Iterable[VolumetricDataProcessor] = (),
    write_procs: Iterable[VolumetricDataProcessor] = (),
    mask_value_thr: float = 0.0,
) -> VolumetricLayer:
    """A ``VolumetricLayer`` over ``backend``.

    :param default_desired_resolution: resolution of the data returned when the index names none.
    :param index_resolution: resolution of slice coordinates in ``layer[x0:x1, ...]``.
    :param data_resolution: stored resolution to always read from and write to (resampling with
        ``interpolation_mode``, which it requires).
    :param interpolation_mode: ``img``, ``field``, ``mask``, ``segmentation`` (or
        ``segmentation_strided``): how to resample when the desired resolution is not the one
        read or written. Without it, only stored resolutions can be read.
    :param readonly: refuse writes.
    :param allow_slice_rounding: round slice regions that are not whole voxels at the desired
        resolution instead of raising.
    :param index_procs: ``IndexProcessor`` s applied to every index.
    :param read_procs: ``DataProcessor`` s / ``JointIndexDataProcessor`` s applied on reads.
    :param write_procs: the same, applied on writes.
    :param mask_value_thr: ``mask`` interpolation: values above it count as set.
    """
    frontend = VolumetricFrontend(
        index_resolution=index_resolution,
        default_desired_resolution=default_desired_resolution,
        data_resolution=data_resolution,
        interpolation_mode=interpolation_mode,
        allow_slice_rounding=allow_slice_rounding,
        mask_value_thr=mask_value_thr,
    )
    return VolumetricLayer(
        backend=backend,
        frontend=frontend,
        readonly=readonly,
        index_procs=index_procs,
        read_procs=read_procs,
        write_procs=write_procs,
    )
