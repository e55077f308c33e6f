"""``build_cv_layer``: a ``VolumetricLayer`` over a precomputed volume through CloudVolume."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from zetta_utils import builder
from zetta_utils.geometry import Vec3D
from zetta_utils.layer.protocols import IndexProcessor
from zetta_utils.tensor_ops import InterpolationMode

from ..index import VolumetricIndex
from ..layer import VolumetricDataProcessor, VolumetricLayer
from ..precomputed import InfoExistsModes
from ..precomputed_layer import build_precomputed_layer
from .backend import CloudFilesIO, CVBackend


@builder.register("build_cv_layer")
def build_cv_layer(
    path: str,
    default_desired_resolution: Sequence[float] | Vec3D[float] | None = None,
    index_resolution: Sequence[float] | Vec3D[float] | None = None,
    data_resolution: Sequence[float] | Vec3D[float] | None = None,
    interpolation_mode: InterpolationMode | None = None,
    readonly: bool = False,
    allow_slice_rounding: bool = False,
    index_procs: Iterable[IndexProcessor[VolumetricIndex]] = (),
    read_procs: Iterable[VolumetricDataProcessor] = (),
    write_procs: Iterable[VolumetricDataProcessor] = (),
    cache_bytes_limit: int | None = None,
    info_reference_path: str | None = None,
    info_type: str | None = None,
    info_data_type: str | None = None,
    info_num_channels: int | None = None,
    info_chunk_size: Sequence[int] | None = None,
    info_scales: Sequence[Sequence[float] | dict[str, Any]] | None = None,
    info_voxel_offset: Sequence[int] | None = None,
    info_dataset_size: Sequence[int] | None = None,
    info_encoding: str | None = None,
    info_inherit_all_params: bool = False,
    info_add_scales: Sequence[Sequence[float] | dict[str, Any]] | None = None,
    info_add_scales_ref: Sequence[float] | str | None = None,
    on_info_exists: InfoExistsModes = "expect_same",
) -> VolumetricLayer:
    """A ``VolumetricLayer`` over the precomputed volume at ``path``, read and written through
    CloudVolume. Takes exactly the arguments of ``build_ts_layer`` and gives the same results.

    :param path: ``file://`` (``~`` expanded), a local path, ``gs://``, ``s3://`` (endpoint from
        ``ZETTA_S3_ENDPOINT`` / ``AWS_ENDPOINT_URL``) or ``http(s)://`` (read-only).
    :param default_desired_resolution, index_resolution, data_resolution, interpolation_mode,
        readonly, allow_slice_rounding, index_procs, read_procs, write_procs: passed to
        ``build_volumetric_layer``.
    :param cache_bytes_limit: in-memory cache of decoded chunks, in bytes (off by default).
        Writes in this process clear it; writes by other processes are not seen while a chunk
        stays cached, so enable it for data that do not change during the run.
    :param info_*: the info the volume must have; see
        :mod:`zetta_utils.layer.volumetric.precomputed`.
    :param on_info_exists: ``"expect_same"`` (an existing, different info is an error naming the
        differing keys) or ``"overwrite"``.

    Credentials are CloudVolume's (``~/.cloudvolume/secrets/``); S3 details in ``CVBackend``.
    """
    return build_precomputed_layer(
        locals(),
        lambda info: CVBackend(path, info=info, cache_bytes_limit=cache_bytes_limit),
        io=CloudFilesIO(),
    )
