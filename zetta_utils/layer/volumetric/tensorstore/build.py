"""``build_ts_layer``: a ``VolumetricLayer`` over a precomputed volume through TensorStore."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Literal

from zetta_utils import builder
from zetta_utils.geometry import BBox3D, Vec3D
from zetta_utils.layer.protocols import IndexProcessor
from zetta_utils.tensor_ops import InterpolationMode

from ..index import VolumetricIndex
from ..layer import VolumetricDataProcessor, VolumetricLayer
from ..precomputed import InfoExistsModes
from ..precomputed_layer import build_precomputed_layer
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
    mask_value_thr: float = 0.0,
    info_reference_path: str | None = None,
    info_type: str | None = None,
    info_data_type: str | None = None,
    info_num_channels: int | None = None,
    info_chunk_size: Sequence[int] | None = None,
    info_chunk_size_map: dict[str, Sequence[int]] | None = None,
    info_scales: Sequence[Sequence[float] | dict[str, Any]] | None = None,
    info_bbox: BBox3D | None = None,
    info_voxel_offset: Sequence[int] | None = None,
    info_voxel_offset_map: dict[str, Sequence[int]] | None = None,
    info_dataset_size: Sequence[int] | None = None,
    info_dataset_size_map: dict[str, Sequence[int]] | None = None,
    info_encoding: str | None = None,
    info_encoding_map: dict[str, str] | None = None,
    info_extra_scale_data: dict[str, Any] | None = None,
    info_inherit_all_params: bool = False,
    inherit_all_params: bool | None = None,
    info_keep_existing_scales: bool = True,
    info_extend_if_exists: bool = True,
    info_field_overrides: dict[str, Any] | None = None,
    info_add_scales: Sequence[Sequence[float] | dict[str, Any]] | None = None,
    info_add_scales_ref: Sequence[float] | str | dict[str, Any] | None = None,
    info_add_scales_mode: Literal["merge", "replace"] = "merge",
    info_add_scales_exclude_fields: Sequence[str] = (),
    info_only_retain_scales: Sequence[Sequence[float]] | None = None,
    info_overwrite: bool = False,
    on_info_exists: InfoExistsModes = "extend",
) -> VolumetricLayer:
    """A ``VolumetricLayer`` over the precomputed volume at ``path``, read and written through
    TensorStore. Takes the arguments of ``build_cv_layer`` (but CloudVolume's ``cv_kwargs``) and
    gives the same results; volumes in encodings TensorStore cannot decode are refused, naming
    ``build_cv_layer``.

    :param path: ``file://`` (``~`` expanded), a local path, ``gs://``, ``s3://`` (endpoint from
        ``ZETTA_S3_ENDPOINT`` / ``AWS_ENDPOINT_URL``) or ``http(s)://`` (read-only).
    :param default_desired_resolution, index_resolution, data_resolution, interpolation_mode,
        readonly, allow_slice_rounding, index_procs, read_procs, write_procs: passed to
        ``build_volumetric_layer``.
    :param cache_bytes_limit: in-memory cache of decoded chunks, in bytes (off by default);
        revalidated against storage on every read.
    :param mask_value_thr: ``mask`` interpolation: values above it are True.
    :param info_*: the info the volume must have, with the original's argument names and
        meanings (both its spec versions: ``info_scales`` / ``info_bbox`` and
        ``info_field_overrides`` / ``info_add_scales``); see
        :mod:`zetta_utils.layer.volumetric.precomputed`. ``inherit_all_params`` is another
        name of ``info_inherit_all_params`` (one of the original's versions used it).
    :param on_info_exists: when the computed info differs from the existing one:
        ``"extend"`` (default) accepts only new scales, ``"expect_same"`` nothing,
        ``"overwrite"`` anything (as ``info_overwrite=True``); refusals name the differing keys.

    Local chunk writes are not fsynced unless ``ZETTA_FILE_IO_SYNC=1`` (see ``TSBackend``).
    """
    return build_precomputed_layer(
        locals(),
        lambda info: TSBackend(path, info=info, cache_bytes_limit=cache_bytes_limit),
    )
