"""``build_ts_layer``: a ``VolumetricLayer`` over a precomputed volume through TensorStore."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from zetta_utils import builder
from zetta_utils.geometry import Vec3D
from zetta_utils.layer.protocols import IndexProcessor
from zetta_utils.tensor_ops import InterpolationMode

from ..index import VolumetricIndex
from ..layer import VolumetricDataProcessor, VolumetricLayer, build_volumetric_layer
from ..precomputed import InfoExistsModes, prepare_info
from .backend import TSBackend


@builder.register("build_ts_layer")
def build_ts_layer(
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
    TensorStore. Takes exactly the arguments of ``build_cv_layer`` and gives the same results.

    :param path: ``file://`` (``~`` expanded), a local path, ``gs://``, ``s3://`` (endpoint from
        ``ZETTA_S3_ENDPOINT`` / ``AWS_ENDPOINT_URL``) or ``http(s)://`` (read-only).
    :param default_desired_resolution, index_resolution, data_resolution, interpolation_mode,
        readonly, allow_slice_rounding, index_procs, read_procs, write_procs: passed to
        ``build_volumetric_layer``.
    :param cache_bytes_limit: in-memory cache of decoded chunks, in bytes (off by default);
        revalidated against storage on every read.
    :param info_*: the info the volume must have; see
        :mod:`zetta_utils.layer.volumetric.precomputed`.
    :param on_info_exists: ``"expect_same"`` (an existing, different info is an error naming the
        differing keys) or ``"overwrite"``.

    Local chunk writes are not fsynced unless ``ZETTA_FILE_IO_SYNC=1`` (see ``TSBackend``).
    """
    info = prepare_info(
        path,
        readonly=readonly,
        on_info_exists=on_info_exists,
        info_reference_path=info_reference_path,
        info_type=info_type,
        info_data_type=info_data_type,
        info_num_channels=info_num_channels,
        info_chunk_size=info_chunk_size,
        info_scales=info_scales,
        info_voxel_offset=info_voxel_offset,
        info_dataset_size=info_dataset_size,
        info_encoding=info_encoding,
        info_inherit_all_params=info_inherit_all_params,
        info_add_scales=info_add_scales,
        info_add_scales_ref=info_add_scales_ref,
    )
    backend = TSBackend(path, info=info, cache_bytes_limit=cache_bytes_limit)
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
