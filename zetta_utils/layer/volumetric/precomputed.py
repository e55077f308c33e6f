"""Neuroglancer Precomputed volumes: paths, info files, and what both storage backends share.

Info files
----------
An info is validated only for what reading and writing need (``data_type``, ``num_channels``,
and per scale ``key``, ``resolution``, ``voxel_offset``, ``size``, ``chunk_sizes``,
``encoding``): ``"@type"``, ``type`` and every key this module does not know (``mesh``,
``skeletons``, ``segment_properties``, ``sharding``, per-scale extras) are optional and kept
untouched whenever an info is rewritten.

``build_cv_layer`` and ``build_ts_layer`` take the original's ``info_*`` arguments, of both its
spec versions, collected in :class:`InfoSpec`; the info asked for is computed from the info
already at the layer's path (*existing*) and the one at ``info_reference_path`` (*reference*).

Without ``info_scales`` (the original's version 0.3 model):

* the base is the existing info if there is one and ``info_extend_if_exists`` (default True),
  else the reference, else the existing info; it is copied whole (every key), then
  ``info_field_overrides`` (a dict of top-level keys) is applied over it;
* ``info_add_scales`` adds scales (a resolution, or a dict of scale fields with at least
  ``resolution``) derived from the reference scale ``info_add_scales_ref`` (a scale key, a
  resolution, or a whole scale dict; default the finest base scale) minus the fields named in
  ``info_add_scales_exclude_fields``: ``size`` = ceil(size / ratio), ``voxel_offset`` =
  offset / ratio floored (one voxel added to the size when it is not whole), every other field
  copied. ``info_add_scales_mode``: ``"merge"`` (default; a new scale replaces the base's of the
  same key) or ``"replace"`` (only the new scales); when the base is the existing info, only
  scales of new keys are added;
* ``info_chunk_size``, ``info_voxel_offset``, ``info_dataset_size``, ``info_encoding`` set those
  fields, in voxels, in every scale; ``info_chunk_size_map`` (etc.) set them in the scales of the
  keys they name (``{"8_8_40": [64, 64, 1]}``).

With ``info_scales`` (the original's version 0.4 model):

* each listed resolution becomes a scale covering the bounds: ``info_bbox``, else
  ``info_voxel_offset`` / ``info_dataset_size`` in voxels of the finest listed scale, else the
  first scale of the reference (or of the existing info); chunk size and encoding are
  ``info_chunk_size`` / ``info_encoding``, else the reference's first scale's;
  ``info_extra_scale_data`` is added to each; ``info_inherit_all_params`` also copies the other
  top-level keys and the first scale's extra fields (never ``sharding``) of the reference;
* with an existing info and ``info_keep_existing_scales`` (default True) the new scales are
  merged into its scales (by key) and its other top-level keys are kept; its ``data_type`` and
  ``num_channels`` must then not change;
* ``info_add_scales`` and the ``*_map`` arguments apply afterwards as above.

In both, ``info_type``, ``info_data_type``, ``info_num_channels`` set the top level last, and
``info_only_retain_scales`` keeps only the listed resolutions. When the result differs from the
existing info, ``on_info_exists`` decides: ``"extend"`` (default) accepts only new scales (the
existing scales and top-level keys unchanged), ``"expect_same"`` nothing, ``"overwrite"``
(or ``info_overwrite=True``) anything; a refusal is an :class:`InfoMismatchError` naming every
differing key. An info is written only when it is missing or differs; local files are written
to a temporary name and renamed, so a concurrent reader sees the old or the new info, never half
of one, and several processes creating the same info at once all succeed.

Paths
-----
``file://`` (``~`` expanded), plain local paths (taken as ``file://``), ``gs://``, ``s3://`` and
``http(s)://`` (read-only). A ``precomputed://`` prefix is accepted and dropped.

``s3://`` goes to AWS unless an endpoint is set in the environment, checked in this order:
``ZETTA_S3_ENDPOINT``, ``AWS_ENDPOINT_URL_S3``, ``AWS_ENDPOINT_URL`` (e.g.
``http://127.0.0.1:9000`` for MinIO). Both backends honour it; the region comes from
``AWS_REGION`` / ``AWS_DEFAULT_REGION`` (default ``us-east-1``).

Data types
----------
Stored types and the torch dtype reads return (``zetta_utils.tensor_ops.convert.to_torch``):
uint8 -> uint8, int8 -> int8, uint16 -> int32, int16 -> int16, uint32 -> int64, int32 -> int32,
uint64 -> int64 (bit-exact; a read fails if a label exceeds 2**63-1), float32 -> float32.
Writes convert back to the stored type; integer targets are range-checked, so a value that does
not fit is an error instead of a silently wrapped label.
"""

from __future__ import annotations

import copy
import json
import math
import os
import tempfile
import threading
from abc import abstractmethod
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal, Protocol

import attrs
import numpy as np
import numpy.typing as npt
import torch

from zetta_utils import write_behind
from zetta_utils.geometry import BBox3D, Vec3D
from zetta_utils.tensor_ops.convert import to_np, to_torch

from .backend import VolumetricBackend
from .index import VolumetricIndex

InfoExistsModes = Literal["expect_same", "extend", "overwrite"]
INFO_EXISTS_MODES = ("expect_same", "extend", "overwrite")
ADD_SCALES_MODES = ("merge", "replace")
Scheme = Literal["file", "gs", "s3", "http", "https"]

SUPPORTED_DATA_TYPES = ("uint8", "int8", "uint16", "int16", "uint32", "int32", "uint64", "float32")
"""The data types both backends read and write (and ``info_data_type`` takes)."""
READABLE_DATA_TYPES = (*SUPPORTED_DATA_TYPES, "int64", "float64")
"""Data types an info may have: CloudVolume also reads and writes int64 and float64."""
TS_ENCODINGS = ("raw", "jpeg", "png", "compressed_segmentation")
"""The encodings TensorStore (and so ``build_ts_layer``) decodes."""
ENCODINGS = (*TS_ENCODINGS, "compresso", "crackle", "jxl", "fpzip", "zfpc", "kempressed")
"""The encodings ``info_encoding`` takes: CloudVolume reads and writes them all."""
LAYER_TYPES = ("image", "segmentation")
_ENCODING_DATA_TYPES: dict[str, tuple[str, ...]] = {
    "raw": READABLE_DATA_TYPES,
    "jpeg": ("uint8",),
    "png": ("uint8", "uint16"),
    "compressed_segmentation": ("uint32", "uint64"),
}
_REQUIRED_TOP_KEYS = ("data_type", "num_channels", "scales")
_TOP_KEYS = ("@type", "type", "data_type", "num_channels")
"""The top-level keys taken from a reference without ``info_inherit_all_params``."""
_REQUIRED_SCALE_KEYS = ("key", "resolution", "voxel_offset", "size", "chunk_sizes", "encoding")
NON_INHERITABLE_SCALE_KEYS = (
    "sharding",
    "encoding",
    "voxel_offset",
    "size",
    "chunk_sizes",
    "resolution",
    "key",
)
"""Scale keys ``info_inherit_all_params`` does not copy from the reference's first scale."""
_DEFAULT_CSEG_BLOCK = [8, 8, 8]
_TOL = 1e-6


class InfoMismatchError(ValueError):
    """An existing info differs from the requested one under ``on_info_exists="expect_same"``."""


# --- paths ---------------------------------------------------------------------------------------


@attrs.frozen
class VolumePath:
    """A parsed volume location. ``location`` is the bucket (gs, s3), the host (http) or ``""``
    (file); ``key`` is the path inside it without surrounding slashes, or the absolute local
    path for ``file``."""

    scheme: Scheme
    location: str
    key: str

    @property
    def url(self) -> str:
        if self.scheme == "file":
            return f"file://{self.key}"
        return f"{self.scheme}://{self.location}/{self.key}".rstrip("/")

    @property
    def is_local(self) -> bool:
        return self.scheme == "file"

    @property
    def is_writable(self) -> bool:
        return self.scheme not in ("http", "https")

    def join(self, name: str) -> str:
        """The location of ``name`` inside the volume, as a URL (or a local path for files)."""
        if self.scheme == "file":
            return os.path.join(self.key, name)
        return f"{self.url}/{name}"


def parse_path(path: str) -> VolumePath:
    """Parse a volume path; see the module docstring for the accepted forms."""
    if not isinstance(path, str) or not path.strip():
        raise ValueError(f"path: expected a non-empty string, got {path!r}")
    p = path.strip()
    if p.startswith("precomputed://"):
        p = p[len("precomputed://") :]
    if "://" not in p:
        return VolumePath("file", "", os.path.abspath(os.path.expanduser(p)).rstrip("/") or "/")
    scheme, rest = p.split("://", 1)
    scheme = scheme.lower()
    if scheme == "file":
        local = os.path.abspath(os.path.expanduser(rest))
        return VolumePath("file", "", local.rstrip("/") or "/")
    if scheme in ("gs", "s3", "http", "https"):
        location, _, key = rest.partition("/")
        if not location:
            raise ValueError(f"path: {path!r} names no bucket or host after '{scheme}://'")
        return VolumePath(scheme, location, key.strip("/"))  # type: ignore[arg-type]
    raise ValueError(
        f"path: unsupported scheme {scheme!r} in {path!r}; expected file://, gs://, s3://, "
        "http(s):// or a local path"
    )


def normalize_path(path: str) -> str:
    """The canonical URL of ``path`` (``file:///abs/path`` for local paths)."""
    return parse_path(path).url


def get_s3_endpoint() -> str | None:
    """The custom S3 endpoint from the environment, or None for AWS itself."""
    for var in ("ZETTA_S3_ENDPOINT", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"):
        value = os.environ.get(var)
        if value:
            return value.rstrip("/")
    return None


def get_s3_region() -> str:
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"


def s3_keys_in_environment() -> bool:
    """Whether AWS keys are set in the environment (``AWS_ACCESS_KEY_ID`` and
    ``AWS_SECRET_ACCESS_KEY``; ``AWS_SESSION_TOKEN`` goes with them): TensorStore is then told
    to take them from there (see :func:`tensorstore_kvstore_spec`)."""
    return bool(os.environ.get("AWS_ACCESS_KEY_ID")) and bool(
        os.environ.get("AWS_SECRET_ACCESS_KEY")
    )


def tensorstore_kvstore_spec(vpath: VolumePath) -> dict[str, Any]:
    """The TensorStore kvstore spec of the volume's root directory."""
    if vpath.scheme == "file":
        return {"driver": "file", "path": vpath.key.rstrip("/") + "/"}
    key = vpath.key + "/" if vpath.key else ""
    if vpath.scheme == "gs":
        return {"driver": "gcs", "bucket": vpath.location, "path": key}
    if vpath.scheme == "s3":
        spec: dict[str, Any] = {"driver": "s3", "bucket": vpath.location, "path": key}
        endpoint = get_s3_endpoint()
        if endpoint is not None:
            spec["endpoint"] = endpoint
            spec["aws_region"] = get_s3_region()
        if s3_keys_in_environment():
            # The keys the default chain would take first anyway; without this, TensorStore's
            # default chain also looks for ~/.aws/config and ~/.aws/credentials and logs each
            # file it does not find at error level, several times per volume opened.
            spec["aws_credentials"] = {"type": "environment"}
        return spec
    return {"driver": "http", "base_url": f"{vpath.scheme}://{vpath.location}/{key}"}


# --- reading and writing small files -------------------------------------------------------------


class RemoteFileIO(Protocol):
    """Reads and writes small files (the info) of remote volumes with a backend's own library and
    credentials."""

    def read(self, vpath: VolumePath, name: str) -> bytes | None:
        """The file's bytes, or None if it does not exist."""

    def write(self, vpath: VolumePath, name: str, data: bytes) -> None: ...


class TensorStoreFileIO:
    """Small files through TensorStore's kvstores (credentials as TensorStore finds them)."""

    def _kvstore(self, vpath: VolumePath) -> Any:
        import tensorstore as ts

        return ts.KvStore.open(tensorstore_kvstore_spec(vpath)).result()

    def read(self, vpath: VolumePath, name: str) -> bytes | None:
        result = self._kvstore(vpath).read(name).result()
        if result.state != "value":
            return None
        return bytes(result.value)

    def write(self, vpath: VolumePath, name: str, data: bytes) -> None:
        self._kvstore(vpath).write(name, data).result()


def read_file(vpath: VolumePath, name: str, io: RemoteFileIO | None = None) -> bytes | None:
    """``name`` inside the volume, or None when missing. Local files are read directly."""
    if vpath.is_local:
        try:
            with open(os.path.join(vpath.key, name), "rb") as f:
                return f.read()
        except FileNotFoundError:
            return None
    return (io or TensorStoreFileIO()).read(vpath, name)


def write_file(vpath: VolumePath, name: str, data: bytes, io: RemoteFileIO | None = None) -> None:
    """Write ``name`` inside the volume atomically: local files go to a temporary name in the same
    directory and are renamed over the target; object stores replace objects whole."""
    if not vpath.is_writable:
        raise PermissionError(
            f"{vpath.url} is read-only: {vpath.scheme}:// volumes cannot be written"
        )
    if not vpath.is_local:
        (io or TensorStoreFileIO()).write(vpath, name, data)
        return
    target = os.path.join(vpath.key, name)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=os.path.dirname(target))
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes it private; an info is read by everyone
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def read_info(path: str, io: RemoteFileIO | None = None) -> dict[str, Any] | None:
    """The parsed info of the volume at ``path``, or None when it has none."""
    vpath = parse_path(path)
    data = read_file(vpath, "info", io)
    if data is None:
        return None
    try:
        info = json.loads(data)
    except ValueError as e:
        raise ValueError(f"the info file of {vpath.url} is not valid JSON: {e}") from e
    if not isinstance(info, dict):
        raise ValueError(f"the info file of {vpath.url} is not a JSON object")
    return info


def get_info(path: str, io: RemoteFileIO | None = None) -> dict[str, Any]:
    """The parsed info of the volume at ``path``; FileNotFoundError when it has none."""
    info = read_info(path, io)
    if info is None:
        raise FileNotFoundError(f"no info file at {normalize_path(path)}/info")
    return info


def write_info(path: str, info: Mapping[str, Any], io: RemoteFileIO | None = None) -> None:
    """Validate and write ``info`` to the volume at ``path`` (atomically for local files)."""
    validate_info(info)
    vpath = parse_path(path)
    write_file(vpath, "info", json.dumps(info, indent=2).encode(), io)
    notify(vpath.url, "info")


# --- in-process notifications (handle caches) ----------------------------------------------------

Event = Literal["data", "info"]
# Replaced, never changed in place: every chunk written notifies, without taking the lock.
_LISTENERS: tuple[Callable[[str, Event], None], ...] = ()
_LISTENERS_LOCK = threading.Lock()


def add_listener(fn: Callable[[str, Event], None]) -> None:
    """Call ``fn(url, event)`` whenever this process writes data or an info to a volume, so that
    caches of other handles on that volume can drop what the write made stale."""
    global _LISTENERS
    with _LISTENERS_LOCK:
        if fn not in _LISTENERS:
            _LISTENERS = (*_LISTENERS, fn)


def notify(url: str, event: Event) -> None:
    for fn in _LISTENERS:
        fn(url, event)


# --- scales --------------------------------------------------------------------------------------


def _num(x: float) -> float:
    """An int when integral (so ``[8, 8, 40]`` stays ints in JSON and in ``Vec3D``)."""
    if isinstance(x, bool):
        raise TypeError("booleans are not numbers here")
    if isinstance(x, int):
        return x
    fx = float(x)
    return int(fx) if fx.is_integer() else fx


def _vec(value: Any, what: str) -> list[float]:
    if isinstance(value, Vec3D):
        value = value.tuple()
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or len(value) != 3:
        raise ValueError(f"{what}: expected three numbers, got {value!r}")
    try:
        return [_num(v) for v in value]
    except (TypeError, ValueError) as e:
        raise ValueError(f"{what}: expected three numbers, got {value!r}") from e


def _int_vec(value: Any, what: str, positive: bool = False) -> list[int]:
    vec = _vec(value, what)
    if any(not float(v).is_integer() for v in vec):
        raise ValueError(f"{what}: expected three integers, got {value!r}")
    ints = [int(v) for v in vec]
    if positive and any(v <= 0 for v in ints):
        raise ValueError(f"{what}: expected three positive integers, got {value!r}")
    return ints


def scale_key(resolution: Sequence[float] | Vec3D[float]) -> str:
    """The conventional key of a scale, e.g. ``"8_8_40"``."""
    return "_".join(str(v) for v in _vec(resolution, "resolution"))


def chunk_name(start: Sequence[int], stop: Sequence[int]) -> str:
    """The file name of the unsharded chunk ``[start, stop)`` in its scale's folder, e.g.
    ``"0-64_64-128_0-16"``."""
    return "_".join(f"{a}-{b}" for a, b in zip(start, stop, strict=True))


def _same_resolution(a: Sequence[float], b: Sequence[float]) -> bool:
    return all(math.isclose(x, y, rel_tol=_TOL, abs_tol=_TOL) for x, y in zip(a, b, strict=True))


def find_scale(
    info: Mapping[str, Any], resolution: Sequence[float] | Vec3D[float]
) -> dict[str, Any] | None:
    res = _vec(resolution, "resolution")
    for scale in info.get("scales", []):
        if _same_resolution(scale["resolution"], res):
            return scale
    return None


def _format_res(res: Sequence[float]) -> str:
    return "(" + ", ".join(str(_num(v)) for v in res) + ")"


def _scale_resolution(scale: Mapping[str, Any]) -> Vec3D[float]:
    return Vec3D(*(_num(v) for v in scale["resolution"]))


def _derive_scale(ref: Mapping[str, Any], resolution: list[float]) -> dict[str, Any]:
    """A scale at ``resolution`` covering the same physical region as ``ref``."""
    ref_res = [float(v) for v in ref["resolution"]]
    offset, end = [], []
    for o, s, rr, r in zip(ref["voxel_offset"], ref["size"], ref_res, resolution, strict=True):
        offset.append(_floor_tol(o * rr / r))
        end.append(_ceil_tol((o + s) * rr / r))
    scale: dict[str, Any] = {
        "key": scale_key(resolution),
        "resolution": list(resolution),
        "voxel_offset": offset,
        "size": [e - o for o, e in zip(offset, end, strict=True)],
        "chunk_sizes": copy.deepcopy(ref["chunk_sizes"]),
        "encoding": ref["encoding"],
    }
    if "compressed_segmentation_block_size" in ref:
        scale["compressed_segmentation_block_size"] = list(
            ref["compressed_segmentation_block_size"]
        )
    return scale


def _floor_tol(x: float) -> int:
    r = round(x)
    return int(r) if abs(x - r) <= _TOL else math.floor(x)


def _ceil_tol(x: float) -> int:
    r = round(x)
    return int(r) if abs(x - r) <= _TOL else math.ceil(x)


def _rescale_bounds(
    offset: list[int], size: list[int], from_res: list[float], to_res: list[float]
) -> tuple[list[int], list[int]]:
    ref = {
        "voxel_offset": offset,
        "size": size,
        "resolution": from_res,
        "chunk_sizes": [],
        "encoding": "",
    }
    derived = _derive_scale(ref, to_res)
    return derived["voxel_offset"], derived["size"]


# --- info computation ----------------------------------------------------------------------------


def _scale_entry(value: Any, what: str) -> dict[str, Any]:
    """A scale given as a resolution or as a dict with at least ``resolution``."""
    if isinstance(value, Mapping):
        if "resolution" not in value:
            raise ValueError(f"{what}: a scale dict needs a 'resolution', got {dict(value)!r}")
        entry = copy.deepcopy(dict(value))
        entry["resolution"] = _vec(entry["resolution"], f"{what}.resolution")
        if "chunk_size" in entry:  # the singular spelling of the builder arguments
            entry["chunk_sizes"] = [_int_vec(entry.pop("chunk_size"), f"{what}.chunk_size", True)]
        return entry
    return {"resolution": _vec(value, what)}


def _normalise_scale_list(value: Any, what: str) -> list[dict[str, Any]] | None:
    if value is None:
        return None
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Sequence):
        raise ValueError(f"{what}: expected a list of resolutions or scale dicts, got {value!r}")
    return [_scale_entry(v, f"{what}[{i}]") for i, v in enumerate(value)]


def _check_map(value: Any, what: str, check: Callable[[Any, str], Any]) -> None:
    if value is None:
        return
    if not isinstance(value, Mapping):
        raise ValueError(
            f"{what}: expected a dict from scale key (e.g. '8_8_40') to value, got {value!r}"
        )
    for key, v in value.items():
        if not isinstance(key, str):
            raise ValueError(f"{what}: keys are scale keys such as '8_8_40', got {key!r}")
        check(v, f"{what}[{key!r}]")


def _check_encoding(value: Any, what: str) -> None:
    if value not in ENCODINGS:
        raise ValueError(f"{what}: expected one of {ENCODINGS}, got {value!r}")


def _sorted_scales(scales: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(scales, key=lambda s: math.prod(float(v) for v in s["resolution"]))


def _merge_scales(
    old: Sequence[dict[str, Any]], new: Sequence[dict[str, Any]], only_new_keys: bool = False
) -> list[dict[str, Any]]:
    """``old`` and ``new`` scales by key (a new scale replaces an old one of its key, or, with
    ``only_new_keys``, is dropped), sorted finest first."""
    merged = {s["key"]: s for s in old}
    for scale in new:
        if not (only_new_keys and scale["key"] in merged):
            merged[scale["key"]] = scale
    return _sorted_scales(list(merged.values()))


def _scale_from_reference(ref: Mapping[str, Any], target: dict[str, Any]) -> dict[str, Any]:
    """A scale at ``target["resolution"]`` derived from the scale ``ref`` as the original's
    ``info_add_scales`` derives it: the fields ``target`` lacks are ``size`` = ceil(ref size /
    ratio), ``voxel_offset`` = ref offset / ratio (floored, one voxel added to the size when it is
    not whole), the conventional ``key``, and every other field of ``ref`` copied."""
    scale = copy.deepcopy(target)
    res = [float(v) for v in scale["resolution"]]
    ratio = [r / float(rr) for r, rr in zip(res, ref["resolution"], strict=True)]
    scale.setdefault("key", scale_key(scale["resolution"]))
    if "size" not in scale:
        scale["size"] = [_ceil_tol(s / m) for s, m in zip(ref["size"], ratio, strict=True)]
    if "voxel_offset" not in scale:
        offset = [o / m for o, m in zip(ref["voxel_offset"], ratio, strict=True)]
        scale["size"] = list(scale["size"])
        for i, o in enumerate(offset):
            if abs(o - round(o)) > _TOL:
                scale["size"][i] += 1
        scale["voxel_offset"] = [_floor_tol(o) for o in offset]
    for key, value in ref.items():
        scale.setdefault(key, copy.deepcopy(value))
    return scale


def _scale_from_bounds(
    resolution: list[float], start: Sequence[float], end: Sequence[float]
) -> dict[str, Any]:
    """``voxel_offset`` and ``size`` of the smallest scale covering the physical box
    ``[start, end)`` (nm): start floored, end ceiled. (The original takes ceil(extent / res) as the
    size, one voxel short of the box's end when its start is not on the grid.)"""
    offset = [_floor_tol(s / r) for s, r in zip(start, resolution, strict=True)]
    stop = [_ceil_tol(e / r) for e, r in zip(end, resolution, strict=True)]
    return {"voxel_offset": offset, "size": [b - a for a, b in zip(offset, stop, strict=True)]}


def _physical_bounds(scale: Mapping[str, Any]) -> tuple[list[float], list[float]]:
    res = [float(v) for v in scale["resolution"]]
    start = [o * r for o, r in zip(scale["voxel_offset"], res, strict=True)]
    end = [(o + s) * r for o, s, r in zip(scale["voxel_offset"], scale["size"], res, strict=True)]
    return start, end


@attrs.frozen
class InfoSpec:
    """The ``info_*`` arguments of the layer builders (see the module docstring)."""

    reference_path: str | None = None
    type: str | None = None
    data_type: str | None = None
    num_channels: int | None = None
    chunk_size: Sequence[int] | None = None
    chunk_size_map: Mapping[str, Sequence[int]] | None = None
    voxel_offset: Sequence[int] | None = None
    voxel_offset_map: Mapping[str, Sequence[int]] | None = None
    dataset_size: Sequence[int] | None = None
    dataset_size_map: Mapping[str, Sequence[int]] | None = None
    encoding: str | None = None
    encoding_map: Mapping[str, str] | None = None
    bbox: BBox3D | None = None
    scales: Sequence[Any] | None = None
    extra_scale_data: Mapping[str, Any] | None = None
    inherit_all_params: bool = False
    keep_existing_scales: bool = True
    extend_if_exists: bool = True
    field_overrides: Mapping[str, Any] | None = None
    add_scales: Sequence[Any] | None = None
    add_scales_ref: Sequence[float] | str | Mapping[str, Any] | None = None
    add_scales_mode: str = "merge"
    add_scales_exclude_fields: Sequence[str] = ()
    only_retain_scales: Sequence[Sequence[float]] | None = None

    _FLAGS = (
        "inherit_all_params",
        "keep_existing_scales",
        "extend_if_exists",
        "add_scales_mode",
        "add_scales_exclude_fields",
    )

    def is_empty(self) -> bool:
        """Whether no argument asks for a particular info (then the existing one is used)."""
        return all(
            getattr(self, f.name) is None
            for f in attrs.fields(InfoSpec)
            if f.name not in self._FLAGS
        )

    def validate(self) -> None:
        """Check each argument's form (not how they combine: :meth:`make_info` does that)."""
        if self.type is not None and self.type not in LAYER_TYPES:
            raise ValueError(f"info_type: expected one of {LAYER_TYPES}, got {self.type!r}")
        if self.data_type is not None and self.data_type not in SUPPORTED_DATA_TYPES:
            raise ValueError(
                f"info_data_type: expected one of {SUPPORTED_DATA_TYPES}, got {self.data_type!r}"
            )
        if self.num_channels is not None and (
            isinstance(self.num_channels, bool)
            or not isinstance(self.num_channels, int)
            or self.num_channels < 1
        ):
            raise ValueError(
                f"info_num_channels: expected a positive integer, got {self.num_channels!r}"
            )
        if self.encoding is not None:
            _check_encoding(self.encoding, "info_encoding")
        _check_map(self.encoding_map, "info_encoding_map", _check_encoding)
        if self.chunk_size is not None:
            _int_vec(self.chunk_size, "info_chunk_size", positive=True)
        _check_map(self.chunk_size_map, "info_chunk_size_map", lambda v, w: _int_vec(v, w, True))
        if self.voxel_offset is not None:
            _int_vec(self.voxel_offset, "info_voxel_offset")
        _check_map(self.voxel_offset_map, "info_voxel_offset_map", _int_vec)
        if self.dataset_size is not None:
            _int_vec(self.dataset_size, "info_dataset_size", positive=True)
        _check_map(
            self.dataset_size_map, "info_dataset_size_map", lambda v, w: _int_vec(v, w, True)
        )
        if self.bbox is not None and not isinstance(self.bbox, BBox3D):
            raise ValueError(f"info_bbox: expected a BBox3D, got {self.bbox!r}")
        _normalise_scale_list(self.scales, "info_scales")
        _normalise_scale_list(self.add_scales, "info_add_scales")
        if self.only_retain_scales is not None:
            _normalise_scale_list(self.only_retain_scales, "info_only_retain_scales")
        if self.add_scales_ref is not None and not isinstance(self.add_scales_ref, (str, Mapping)):
            _vec(self.add_scales_ref, "info_add_scales_ref")
        if self.add_scales_mode not in ADD_SCALES_MODES:
            raise ValueError(
                f"info_add_scales_mode: expected one of {ADD_SCALES_MODES}, got "
                f"{self.add_scales_mode!r}"
            )
        if isinstance(self.add_scales_exclude_fields, (str, bytes)) or not all(
            isinstance(f, str) for f in self.add_scales_exclude_fields
        ):
            raise ValueError(
                "info_add_scales_exclude_fields: expected a list of scale field names, got "
                f"{self.add_scales_exclude_fields!r}"
            )
        for name in ("field_overrides", "extra_scale_data"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, Mapping):
                raise ValueError(f"info_{name}: expected a dict, got {value!r}")
        for name in ("inherit_all_params", "keep_existing_scales", "extend_if_exists"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(
                    f"info_{name}: expected True or False, got {getattr(self, name)!r}"
                )

    # --- the whole computation -----------------------------------------------------------------
    def make_info(
        self, existing: Mapping[str, Any] | None, reference: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """The info these arguments ask for, given the info already at the layer's path
        (``existing``) and the one at ``info_reference_path`` (``reference``), either may be
        None."""
        self.validate()
        if self.scales is not None:
            info = self._from_scales(existing, reference)
        else:
            info = self._from_base(existing, reference)
        self._apply_scale_fields(info["scales"])
        for name in ("type", "data_type", "num_channels"):
            if getattr(self, name) is not None:
                info[name] = getattr(self, name)
        if self.only_retain_scales is not None:
            info["scales"] = self._retained(info["scales"])
        if not info["scales"]:
            raise ValueError("the info would have no scales; give info_scales or info_add_scales")
        validate_info(info)
        return info

    def _from_base(
        self, existing: Mapping[str, Any] | None, reference: Mapping[str, Any] | None
    ) -> dict[str, Any]:
        """The original's ``info_field_overrides`` / ``info_add_scales`` model: a copy of a base
        info (every key kept), the overrides, then the added scales."""
        extending = self.extend_if_exists and existing is not None
        base = existing if extending else (reference if reference is not None else existing)
        overrides = dict(self.field_overrides or {})
        if base is None and not overrides and self.add_scales is None:
            missing = [
                f"info_{name}"
                for name in ("type", "data_type", "num_channels")
                if getattr(self, name) is None
            ]
            missing.append("info_scales")
            raise ValueError(
                "creating an info without info_reference_path (and with no info at the path) "
                f"needs {', '.join(missing)} (or info_add_scales), info_chunk_size and "
                "info_dataset_size"
            )
        info = copy.deepcopy(dict(base or {}))
        info.update(copy.deepcopy(overrides))
        if self.add_scales is not None:
            if "scales" in overrides:
                raise ValueError(
                    "info_field_overrides: must not contain 'scales' when info_add_scales is given"
                )
            mode = "extend" if extending else self.add_scales_mode
            info["scales"] = self._added_scales(list(info.get("scales", [])), mode)
        info.setdefault("scales", [])
        if base is None:
            info.setdefault("@type", "neuroglancer_multiscale_volume")
        return info

    def _added_scales(self, scales: list[dict[str, Any]], mode: str) -> list[dict[str, Any]]:
        ref = self._add_scales_reference(scales)
        if ref is not None:
            ref = {k: v for k, v in ref.items() if k not in self.add_scales_exclude_fields}
        new = []
        for entry in _normalise_scale_list(self.add_scales, "info_add_scales") or []:
            if ref is not None:
                new.append(_scale_from_reference(ref, entry))
            else:  # from scratch: the global info_* arguments fill in the rest
                new.append(
                    {"key": scale_key(entry["resolution"]), "voxel_offset": [0, 0, 0], **entry}
                )
        if mode == "replace" or not scales:
            return _merge_scales([], new)
        return _merge_scales(scales, new, only_new_keys=mode == "extend")

    def _add_scales_reference(self, scales: list[dict[str, Any]]) -> dict[str, Any] | None:
        ref = self.add_scales_ref
        if isinstance(ref, Mapping):
            return copy.deepcopy(dict(ref))
        if not scales:
            if ref is not None:
                raise ValueError(
                    f"info_add_scales_ref: no scale {ref!r} in the base info (it has no scales)"
                )
            return None
        if ref is None:
            return copy.deepcopy(_sorted_scales(scales)[0])
        for scale in scales:
            if isinstance(ref, str):
                if scale.get("key") == ref:
                    return copy.deepcopy(scale)
            elif _same_resolution(scale["resolution"], _vec(ref, "info_add_scales_ref")):
                return copy.deepcopy(scale)
        available = ", ".join(f"{s.get('key')} {_format_res(s['resolution'])}" for s in scales)
        raise ValueError(
            f"info_add_scales_ref: no scale {ref!r} in the base info (available: {available})"
        )

    def _from_scales(
        self, existing: Mapping[str, Any] | None, reference: Mapping[str, Any] | None
    ) -> dict[str, Any]:
        """The original's ``info_scales`` model (spec version 0.4): the listed scales built from
        the bounds, chunk size and encoding, merged into the existing scales."""
        source = reference if reference is not None else existing
        source_scale = source["scales"][0] if source and source.get("scales") else None
        info = self._top_level_for_scales(existing, source)
        entries = _normalise_scale_list(self.scales, "info_scales") or []
        if not entries:
            raise ValueError("info_scales: expected at least one scale")
        start, end = self._bounds(entries, source_scale)
        chunk = self.chunk_size if self.chunk_size is not None else None
        encoding = self.encoding
        extra: dict[str, Any] = {}
        if self.inherit_all_params and source_scale is not None:
            extra = {
                k: copy.deepcopy(v)
                for k, v in source_scale.items()
                if k not in NON_INHERITABLE_SCALE_KEYS
            }
        extra.update(copy.deepcopy(dict(self.extra_scale_data or {})))
        new = []
        for entry in entries:
            res = entry["resolution"]
            same = find_scale(existing, res) if reference is None and existing else None
            inherit_from = same if same is not None else source_scale
            scale: dict[str, Any] = {
                "chunk_sizes": [list(chunk)]
                if chunk is not None
                else _inherited(inherit_from, "chunk_sizes", "info_chunk_size"),
                "encoding": encoding or (inherit_from or {}).get("encoding", "raw"),
                "resolution": list(res),
                "key": scale_key(res),
                **copy.deepcopy(extra),
            }
            if (
                same is not None
                and self.bbox is None
                and self.voxel_offset is None
                and self.dataset_size is None
            ):
                scale.update({k: same[k] for k in ("voxel_offset", "size")})
            else:
                scale.update(_scale_from_bounds(res, start, end))
            scale.update({k: v for k, v in entry.items() if k != "resolution"})
            new.append(scale)
        if existing is not None and self.keep_existing_scales:
            for name in ("data_type", "num_channels"):
                if name in existing and info.get(name) != existing[name]:
                    raise ValueError(
                        f"info_{name}: {info.get(name)!r} differs from the existing info's "
                        f"{existing[name]!r} while info_keep_existing_scales is True; pass "
                        "info_keep_existing_scales=False (and info_overwrite=True) to replace them"
                    )
            info["scales"] = _merge_scales(copy.deepcopy(existing.get("scales", [])), new)
        else:
            info["scales"] = _merge_scales([], new)
        if self.add_scales is not None:
            info["scales"] = self._added_scales(info["scales"], self.add_scales_mode)
        return info

    def _top_level_for_scales(
        self, existing: Mapping[str, Any] | None, source: Mapping[str, Any] | None
    ) -> dict[str, Any]:
        info: dict[str, Any] = {}
        if source is not None:
            keys = [k for k in source if k != "scales"] if self.inherit_all_params else _TOP_KEYS
            info = {k: copy.deepcopy(source[k]) for k in keys if k in source}
        else:
            missing = [
                f"info_{name}"
                for name in ("type", "data_type", "num_channels")
                if getattr(self, name) is None
            ]
            if missing:
                raise ValueError(
                    "creating an info without info_reference_path (and with no info at the path) "
                    f"needs {', '.join(missing)}"
                )
            info["@type"] = "neuroglancer_multiscale_volume"
        if existing is not None and self.keep_existing_scales:
            # the existing info's keys stay as they are ("@type" absent included), except the
            # volume's type and data layout, which a reference may change (and then the
            # existing scales cannot be kept: checked in _from_scales)
            layout = ("type", "data_type", "num_channels") if source is not existing else ()
            for key, value in existing.items():
                if key != "scales" and not (key in layout and key in info):
                    info[key] = copy.deepcopy(value)
            if "@type" not in existing:
                info.pop("@type", None)
        info.update(copy.deepcopy(dict(self.field_overrides or {})))
        for name in ("type", "data_type", "num_channels"):
            if getattr(self, name) is not None:
                info[name] = getattr(self, name)
        return info

    def _bounds(
        self, entries: list[dict[str, Any]], source_scale: Mapping[str, Any] | None
    ) -> tuple[list[float], list[float]]:
        """The physical box (nm) the listed scales cover: ``info_bbox``, else
        ``info_voxel_offset`` / ``info_dataset_size`` in voxels of the finest listed scale, else
        the source's first scale."""
        if self.bbox is not None:
            return list(self.bbox.start), list(self.bbox.end)
        start: list[float] | None = None
        end: list[float] | None = None
        if source_scale is not None:
            start, end = _physical_bounds(source_scale)
        if self.voxel_offset is None and self.dataset_size is None:
            if start is None or end is None:
                raise ValueError(
                    "info_scales without a reference or an existing info needs info_bbox or "
                    "info_dataset_size (and optionally info_voxel_offset)"
                )
            return start, end
        finest = [float(v) for v in _sorted_scales(entries)[0]["resolution"]]
        if self.voxel_offset is not None:
            offset = [float(v) for v in self.voxel_offset]
        elif start is not None:
            offset = [float(_floor_tol(s / r)) for s, r in zip(start, finest, strict=True)]
        else:
            offset = [0.0, 0.0, 0.0]
        if self.dataset_size is not None:
            size = [float(v) for v in self.dataset_size]
        elif start is not None and end is not None:
            size = [
                float(_ceil_tol((e - s) / r)) for s, e, r in zip(start, end, finest, strict=True)
            ]
        else:
            raise ValueError("info_voxel_offset was given for a new info without info_dataset_size")
        return (
            [o * r for o, r in zip(offset, finest, strict=True)],
            [(o + s) * r for o, s, r in zip(offset, size, finest, strict=True)],
        )

    def _apply_scale_fields(self, scales: list[dict[str, Any]]) -> None:
        """``info_chunk_size``, ``info_voxel_offset``, ``info_dataset_size``, ``info_encoding``
        (every scale; with ``info_scales``, those already shaped the listed scales) and their
        ``*_map`` versions (the scales of the keys they name)."""
        by_scales = self.scales is not None
        for scale in scales:
            key = scale.get("key")
            if self.chunk_size is not None and not by_scales:
                scale["chunk_sizes"] = [_int_vec(self.chunk_size, "info_chunk_size", True)]
            if self.voxel_offset is not None and not by_scales:
                scale["voxel_offset"] = _int_vec(self.voxel_offset, "info_voxel_offset")
            if self.dataset_size is not None and not by_scales:
                scale["size"] = _int_vec(self.dataset_size, "info_dataset_size", True)
            if self.encoding is not None and not by_scales:
                scale["encoding"] = self.encoding
            maps: tuple[tuple[str, Mapping[str, Any] | None], ...] = (
                ("chunk_sizes", self.chunk_size_map),
                ("voxel_offset", self.voxel_offset_map),
                ("size", self.dataset_size_map),
                ("encoding", self.encoding_map),
            )
            for field, mapping in maps:
                if mapping is not None and isinstance(key, str) and key in mapping:
                    value: Any = mapping[key]
                    if field == "chunk_sizes":
                        value = [_int_vec(value, f"info_chunk_size_map[{key!r}]", True)]
                    elif field != "encoding":
                        value = _int_vec(value, f"info_{field}_map[{key!r}]")
                    scale[field] = value
            if scale.get("encoding") == "compressed_segmentation":
                scale.setdefault("compressed_segmentation_block_size", list(_DEFAULT_CSEG_BLOCK))
            scale.setdefault("encoding", "raw")
            missing = [k for k in ("size", "chunk_sizes") if k not in scale]
            if missing:
                raise ValueError(
                    f"scale {_format_res(scale['resolution'])} has no "
                    + " or ".join(missing)
                    + "; give info_dataset_size / info_chunk_size or a reference"
                )

    def _retained(self, scales: list[dict[str, Any]]) -> list[dict[str, Any]]:
        keep = [
            e["resolution"]
            for e in _normalise_scale_list(self.only_retain_scales, "info_only_retain_scales") or []
        ]
        for res in keep:
            if not any(_same_resolution(s["resolution"], res) for s in scales):
                raise ValueError(
                    f"info_only_retain_scales: no scale {_format_res(res)} in the info "
                    f"(it has {', '.join(str(s.get('key')) for s in scales)})"
                )
        return [s for s in scales if any(_same_resolution(s["resolution"], r) for r in keep)]


def _inherited(scale: Mapping[str, Any] | None, field: str, argument: str) -> Any:
    if scale is None or field not in scale:
        raise ValueError(f"{argument} is needed: there is no reference scale to take {field} from")
    return copy.deepcopy(scale[field])


def validate_info(info: Mapping[str, Any]) -> None:
    """Raise ValueError naming the first problem that keeps ``info`` from being read or written
    correctly. Only what reading and writing need is checked: ``"@type"``, ``type`` and keys this
    module does not know (``mesh``, ``skeletons``, ``sharding``, ...) are optional and free."""
    for key in _REQUIRED_TOP_KEYS:
        if key not in info:
            raise ValueError(f"info: missing {key!r}")
    data_type = info["data_type"]
    if data_type not in READABLE_DATA_TYPES:
        raise ValueError(
            f"info.data_type: expected one of {READABLE_DATA_TYPES}, got {data_type!r}"
        )
    nc = info["num_channels"]
    if isinstance(nc, bool) or not isinstance(nc, int) or nc < 1:
        raise ValueError(f"info.num_channels: expected a positive integer, got {nc!r}")
    if not isinstance(info["scales"], list) or not info["scales"]:
        raise ValueError("info.scales: expected a non-empty list")
    keys: set[str] = set()
    for i, scale in enumerate(info["scales"]):
        if not isinstance(scale, Mapping):
            raise ValueError(f"info.scales[{i}]: expected a JSON object, got {scale!r}")
        where = f"info.scales[{scale.get('key', i)}]"
        for key in _REQUIRED_SCALE_KEYS:
            if key not in scale:
                raise ValueError(f"{where}: missing {key!r}")
        if not isinstance(scale["key"], str) or not scale["key"]:
            raise ValueError(f"{where}.key: expected a non-empty string, got {scale['key']!r}")
        if scale["key"] in keys:
            raise ValueError(f"{where}: duplicate key {scale['key']!r}")
        keys.add(scale["key"])
        res = _vec(scale["resolution"], f"{where}.resolution")
        if any(r <= 0 for r in res):
            raise ValueError(f"{where}.resolution: expected positive numbers, got {res}")
        _int_vec(scale["voxel_offset"], f"{where}.voxel_offset")
        _int_vec(scale["size"], f"{where}.size", positive=True)
        chunks = scale["chunk_sizes"]
        if not isinstance(chunks, list) or not chunks:
            raise ValueError(f"{where}.chunk_sizes: expected a list of chunk sizes, got {chunks!r}")
        _int_vec(chunks[0], f"{where}.chunk_sizes[0]", positive=True)
        _validate_encoding(scale, where, data_type, nc)


def _validate_encoding(scale: Mapping[str, Any], where: str, data_type: str, nc: int) -> None:
    enc = scale["encoding"]
    if not isinstance(enc, str) or not enc:
        raise ValueError(f"{where}.encoding: expected a non-empty string, got {enc!r}")
    # other encodings (compresso, jxl, fpzip, ...) are checked by the backend that decodes them
    allowed = _ENCODING_DATA_TYPES.get(enc)
    if allowed is not None and data_type not in allowed:
        raise ValueError(
            f"{where}.encoding: {enc!r} cannot store data_type {data_type!r} "
            f"(it takes {', '.join(allowed)})"
        )
    if enc == "jpeg" and nc not in (1, 3):
        raise ValueError(f"{where}.encoding: 'jpeg' needs 1 or 3 channels, got num_channels={nc}")
    if enc == "png" and nc > 4:
        raise ValueError(f"{where}.encoding: 'png' takes at most 4 channels, got num_channels={nc}")
    if enc == "compressed_segmentation":
        _int_vec(
            scale.get("compressed_segmentation_block_size"),
            f"{where}.compressed_segmentation_block_size",
            positive=True,
        )


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def diff_infos(existing: Mapping[str, Any], requested: Mapping[str, Any]) -> list[str]:
    """Lines ``key: existing X vs requested Y`` for every difference, scales matched by
    resolution and named by key (``scales[8_8_40].chunk_sizes: ...``)."""
    lines: list[str] = []
    absent = "(absent)"

    def compare(prefix: str, a: Mapping[str, Any], b: Mapping[str, Any]) -> None:
        for key in list(a) + [k for k in b if k not in a]:
            if key == "scales" and not prefix:
                continue
            va, vb = a.get(key, absent), b.get(key, absent)
            if key not in a or key not in b or va != vb:
                lines.append(
                    f"{prefix}{key}: existing {va if va is absent else _compact(va)} "
                    f"vs requested {vb if vb is absent else _compact(vb)}"
                )

    compare("", existing, requested)
    old_scales = list(existing.get("scales", []))
    new_scales = list(requested.get("scales", []))
    for new in new_scales:
        old = next(
            (s for s in old_scales if _same_resolution(s["resolution"], new["resolution"])), None
        )
        name = new.get("key", scale_key(new["resolution"]))
        if old is None:
            lines.append(f"scales[{name}]: existing {absent} vs requested {_compact(new)}")
        else:
            compare(f"scales[{name}].", old, new)
    for old in old_scales:
        if not any(_same_resolution(old["resolution"], n["resolution"]) for n in new_scales):
            name = old.get("key", scale_key(old["resolution"]))
            lines.append(f"scales[{name}]: existing {_compact(old)} vs requested {absent}")
    if not lines and [s.get("key") for s in old_scales] != [s.get("key") for s in new_scales]:
        lines.append(
            f"scales order: existing {[s.get('key') for s in old_scales]} "
            f"vs requested {[s.get('key') for s in new_scales]}"
        )
    return lines


def extension_problems(existing: Mapping[str, Any], requested: Mapping[str, Any]) -> list[str]:
    """Why ``requested`` is not a pure extension of ``existing`` (``on_info_exists="extend"``):
    the differences in keys other than ``scales`` and in the existing scales (matched by key);
    new scales are allowed. Empty when it is one."""
    lines = diff_infos(existing, requested)
    new_keys = {s.get("key") for s in requested.get("scales", [])} - {
        s.get("key") for s in existing.get("scales", [])
    }
    return [
        line
        for line in lines
        if not (
            line.startswith("scales[")
            and line.split("]", 1)[0][len("scales[") :] in new_keys
            and "existing (absent)" in line
        )
        and not line.startswith("scales order")
    ]


def ensure_info(
    path: str,
    spec: InfoSpec | None = None,
    on_info_exists: InfoExistsModes = "extend",
    readonly: bool = False,
    io: RemoteFileIO | None = None,
) -> dict[str, Any]:
    """The info in effect for the volume at ``path`` after applying ``spec``, written if it is
    missing or differs as ``on_info_exists`` allows (see the module docstring)."""
    if on_info_exists not in INFO_EXISTS_MODES:
        raise ValueError(
            f"on_info_exists: expected one of {', '.join(map(repr, INFO_EXISTS_MODES))}, got "
            f"{on_info_exists!r}"
        )
    vpath = parse_path(path)
    existing = read_info(vpath.url, io)
    if spec is None or spec.is_empty():
        if existing is None:
            raise FileNotFoundError(
                f"no info file at {vpath.url}/info; to create the volume, pass info_reference_path "
                "or info_type, info_data_type, info_num_channels, info_scales, info_chunk_size and "
                "info_dataset_size"
            )
        validate_info(existing)
        return existing
    reference = None
    if spec.reference_path is not None:
        ref_io = io if not parse_path(spec.reference_path).is_local else None
        reference = get_info(spec.reference_path, ref_io)
    requested = spec.make_info(existing, reference)
    if existing is not None and existing == requested:
        return existing
    if existing is not None:
        _check_may_replace(vpath.url, existing, requested, on_info_exists)
    if readonly or not vpath.is_writable:
        reason = "the layer is readonly" if readonly else f"{vpath.scheme}:// is read-only"
        what = "differs from the requested one" if existing is not None else "does not exist"
        raise PermissionError(f"the info at {vpath.url} {what}, and {reason}: cannot write it")
    write_info(vpath.url, requested, io)
    if on_info_exists != "overwrite":
        # Two processes creating different infos at once: the loser must not go on silently.
        final = read_info(vpath.url, io)
        if final is not None and final != requested:
            raise InfoMismatchError(
                _mismatch_message(vpath.url, diff_infos(final, requested), on_info_exists)
            )
    return requested


def _check_may_replace(
    url: str, existing: Mapping[str, Any], requested: Mapping[str, Any], mode: str
) -> None:
    if mode == "expect_same":
        raise InfoMismatchError(_mismatch_message(url, diff_infos(existing, requested), mode))
    if mode == "extend":
        problems = extension_problems(existing, requested)
        if problems:
            raise InfoMismatchError(_mismatch_message(url, problems, mode))


def _mismatch_message(url: str, lines: list[str], mode: str) -> str:
    what = "is not an extension of" if mode == "extend" else "differs from"
    return (
        f"the info at {url} {what} the requested one (on_info_exists={mode!r}"
        f"{', adding scales only' if mode == 'extend' else ''}):\n  "
        + "\n  ".join(lines)
        + "\npass on_info_exists='overwrite' (or info_overwrite=True) to replace it, or change the "
        "info_* arguments"
    )


# --- what both backends share --------------------------------------------------------------------


def stored_to_torch_dtype(data_type: str) -> torch.dtype:
    """The torch dtype reads of ``data_type`` return (see the module docstring)."""
    return to_torch(np.zeros(0, dtype=np.dtype(data_type))).dtype


def to_stored(data: torch.Tensor, data_type: str, what: str) -> npt.NDArray[Any]:
    """``data`` as a NumPy array of the stored ``data_type``; integer targets are range-checked."""
    array = to_np(data)
    target = np.dtype(data_type)
    if array.dtype == target:
        return array
    if target.kind in "iu" and array.size > 0:
        info = np.iinfo(target)
        if array.dtype.kind == "f" and np.isnan(array).any():
            raise ValueError(f"{what}: NaN cannot be stored as {data_type}")
        if array.dtype.kind == "b":
            lo, hi = 0, 1
        else:
            lo, hi = array.min(), array.max()
        if lo < info.min or hi > info.max:
            raise ValueError(
                f"{what}: values span [{lo}, {hi}], outside the range of the stored {data_type} "
                f"[{info.min}, {info.max}]"
            )
    if array.dtype == np.int64 and target == np.uint64:
        return array.view(np.uint64)  # checked non-negative above: same values, no copy
    return array.astype(target, order="K")


def _clipped(
    scale: Mapping[str, Any], start: Sequence[int], stop: Sequence[int]
) -> tuple[Vec3D[int], ...]:
    """The scale's bounds ``lo``, ``hi`` and the region ``[start, stop)`` clipped to them (empty
    where it lies outside)."""
    lo = Vec3D(*scale["voxel_offset"])
    hi = lo + Vec3D(*scale["size"])
    in_start = Vec3D(*(max(a, b) for a, b in zip(start, lo, strict=True)))
    in_stop = Vec3D(*(min(a, b) for a, b in zip(stop, hi, strict=True)))
    return lo, hi, in_start, in_stop


_DIRECT_TORCH_DTYPES: dict[str, torch.dtype] = {
    "uint8": torch.uint8,
    "int8": torch.int8,
    "int16": torch.int16,
    "int32": torch.int32,
    "int64": torch.int64,
    "float32": torch.float32,
    "float64": torch.float64,
}
"""Stored data types whose arrays are torch tensors as they are (no widening, no range check)."""


class _ScaleGeometry:
    """What every chunk read or written at one scale asks for, found once per backend and scale:
    the scale, its voxel bounds ``lo``, ``hi`` and chunk size as plain tuples, its write lock."""

    __slots__ = ("chunk", "hi", "lo", "locked", "scale")

    def __init__(self, scale: dict[str, Any]) -> None:
        self.scale = scale
        lx, ly, lz = (int(v) for v in scale["voxel_offset"])
        sx, sy, sz = (int(n) for n in scale["size"])
        cx, cy, cz = (int(n) for n in scale["chunk_sizes"][0])
        self.lo = (lx, ly, lz)
        self.hi = (lx + sx, ly + sy, lz + sz)
        self.chunk = (cx, cy, cz)
        self.locked = bool(scale.get("locked"))


class PrecomputedBackend(VolumetricBackend):
    """What the TensorStore and CloudVolume backends share: the info (kept from construction),
    resolution and bounds checks, reads outside the bounds, the chunk-alignment rule for writes,
    dtype conversion, and the CXYZ <-> XYZC views.

    Subclasses implement :meth:`_read_xyzc` / :meth:`_write_xyzc` on regions inside the bounds,
    and may override :meth:`_read_xyzc_into` (for :meth:`read_into`) to read into a given buffer.
    """

    def __init__(
        self, path: str, info: Mapping[str, Any] | None = None, io: RemoteFileIO | None = None
    ):
        self._vpath = parse_path(path)
        if info is None:
            info = get_info(self._vpath.url, io)
        validate_info(info)
        self._info: dict[str, Any] = copy.deepcopy(dict(info))
        # the scale of each resolution asked for, and the bounds of each scale, found once: every
        # chunk a flow reads or writes asks for them
        self._scales_by_resolution: dict[tuple[float, ...], dict[str, Any]] = {}
        self._bounds_by_key: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {}
        self._resolutions: list[Vec3D[float]] | None = None
        # by the resolution object asked for (flows ask with the same one for every chunk)
        self._geometry_by_resolution: dict[Any, _ScaleGeometry] = {}
        self._found_resolutions: dict[Any, Vec3D[float] | None] = {}
        # the last resolution object asked for and its answer, one tuple (replaced whole: other
        # threads read it)
        self._last_geometry: tuple[Any, Any] = (None, None)
        self._last_found: tuple[Any, Any] = (None, None)
        self._url = self._vpath.url
        self._writable = self._vpath.is_writable
        data_type = self.data_type
        self._np_dtype = np.dtype(data_type)
        self._direct_torch_dtype = _DIRECT_TORCH_DTYPES.get(data_type)
        self._num_channels = self.num_channels

    # --- description ---------------------------------------------------------------------------
    @property
    def path(self) -> str:
        return self._vpath.url

    @property
    def name(self) -> str:
        return self._vpath.url

    @property
    def info(self) -> dict[str, Any]:
        """A copy of the volume's info as this backend knows it."""
        return copy.deepcopy(self._info)

    @property
    def data_type(self) -> str:
        """The stored NumPy data type (e.g. ``"uint64"``)."""
        return str(self._info["data_type"])

    @property
    def dtype(self) -> torch.dtype:
        return stored_to_torch_dtype(self.data_type)

    @property
    def num_channels(self) -> int:
        return int(self._info["num_channels"])

    @property
    def is_local(self) -> bool:
        return self._vpath.is_local

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._vpath.url!r})"

    def has_same_info(self, other: PrecomputedBackend) -> bool:
        """Whether ``other`` knows the same info as this backend (without copying either)."""
        return self._info == other._info

    # --- scales --------------------------------------------------------------------------------
    def _scale(self, resolution: Sequence[float] | Vec3D[float]) -> dict[str, Any]:
        try:
            return self._scales_by_resolution[tuple(resolution)]
        except (KeyError, TypeError):
            pass
        scale = find_scale(self._info, resolution)
        if scale is None:
            stored = ", ".join(_format_res(s["resolution"]) for s in self._info["scales"])
            raise ValueError(
                f"resolution {_format_res(_vec(resolution, 'resolution'))} is not stored in "
                f"{self._vpath.url} (stored: {stored}); the layer frontend resamples from a stored "
                "resolution"
            )
        self._scales_by_resolution[tuple(resolution)] = scale
        return scale

    def _scale_bounds(self, scale: Mapping[str, Any]) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """The scale's voxel bounds ``lo``, ``hi`` as plain tuples."""
        bounds = self._bounds_by_key.get(scale["key"])
        if bounds is None:
            lo = tuple(int(v) for v in scale["voxel_offset"])
            hi = tuple(a + int(n) for a, n in zip(lo, scale["size"], strict=True))
            bounds = self._bounds_by_key[scale["key"]] = (lo, hi)
        return bounds

    def _inside(self, scale: Mapping[str, Any], start: Sequence[int], stop: Sequence[int]) -> bool:
        """Whether ``[start, stop)`` is a non-empty region inside the scale's bounds."""
        (x0, y0, z0), (x1, y1, z1) = start, stop
        (lx, ly, lz), (hx, hy, hz) = self._scale_bounds(scale)
        return lx <= x0 < x1 <= hx and ly <= y0 < y1 <= hy and lz <= z0 < z1 <= hz

    def _geometry(self, resolution: Vec3D[float]) -> _ScaleGeometry:
        """The geometry of the scale stored at ``resolution`` (a ValueError if none is)."""
        last = self._last_geometry  # (a flow asks with one resolution object for every chunk)
        if last[0] is resolution:
            return last[1]
        try:
            geometry = self._geometry_by_resolution[resolution]
        except (KeyError, TypeError):
            geometry = _ScaleGeometry(self._scale(resolution))
            try:
                self._geometry_by_resolution[resolution] = geometry
            except TypeError:  # an unhashable resolution (a list): found again next time
                return geometry
        self._last_geometry = (resolution, geometry)
        return geometry

    def get_resolutions(self) -> list[Vec3D[float]]:
        resolutions = self._resolutions
        if resolutions is None:
            resolutions = self._resolutions = [_scale_resolution(s) for s in self._info["scales"]]
        return list(resolutions)

    def find_resolution(self, resolution: Vec3D[float]) -> Vec3D[float] | None:
        # The info, hence the stored resolutions, never change for this backend. A resolution
        # stored as it is is answered with itself: the frontend then needs no comparison.
        last = self._last_found
        if last[0] is resolution:
            return last[1]
        try:
            found = self._found_resolutions[resolution]
        except (KeyError, TypeError):
            found = super().find_resolution(resolution)
            try:
                self._found_resolutions[resolution] = found
            except TypeError:  # an unhashable resolution (a list): found again next time
                return found
        if found is not None and found == resolution:
            found = resolution
        self._last_found = (resolution, found)
        return found

    def get_voxel_offset(self, resolution: Vec3D[float]) -> Vec3D[int]:
        return Vec3D(*(int(v) for v in self._scale(resolution)["voxel_offset"]))

    def get_chunk_size(self, resolution: Vec3D[float]) -> Vec3D[int]:
        return Vec3D(*(int(v) for v in self._scale(resolution)["chunk_sizes"][0]))

    def get_dataset_size(self, resolution: Vec3D[float]) -> Vec3D[int]:
        return Vec3D(*(int(v) for v in self._scale(resolution)["size"]))

    def get_bounds(self, resolution: Vec3D[float]) -> VolumetricIndex:
        res = _scale_resolution(self._scale(resolution))
        offset = self.get_voxel_offset(res)
        return VolumetricIndex.from_coords(offset, offset + self.get_dataset_size(res), res)

    # --- I/O -----------------------------------------------------------------------------------
    def _voxel_box(self, idx: VolumetricIndex) -> tuple[dict[str, Any], Vec3D[int], Vec3D[int]]:
        scale = self._scale(idx.resolution)
        return scale, idx.start, idx.stop

    def read(self, idx: VolumetricIndex) -> torch.Tensor:
        write_behind.wait_for(self._url)  # what this process wrote lands first
        geometry = self._geometry(idx.resolution)
        scale = geometry.scale
        box = idx.voxel_box
        (x0, y0, z0), (x1, y1, z1) = box
        (lx, ly, lz), (hx, hy, hz) = geometry.lo, geometry.hi
        if lx <= x0 < x1 <= hx and ly <= y0 < y1 <= hy and lz <= z0 < z1 <= hz:
            return self._to_cxyz(self._read_xyzc(scale, box[0], box[1]))
        start, stop = idx.start, idx.stop
        _, _, in_start, in_stop = _clipped(scale, start, stop)
        shape = (self.num_channels, *(stop - start).tuple())
        result = torch.zeros(shape, dtype=self.dtype)
        if all(a < b for a, b in zip(in_start, in_stop, strict=True)):
            part = self._to_cxyz(self._read_xyzc(scale, in_start, in_stop))
            o = in_start - start
            e = in_stop - start
            result[:, o[0] : e[0], o[1] : e[1], o[2] : e[2]] = part
        return result

    def read_into(self, idx: VolumetricIndex, out: npt.NDArray[Any]) -> None:
        """Fill ``out`` with what :meth:`read` returns for ``idx``, without allocating: ``out``
        is a CXYZ array of the stored data type (:attr:`data_type`) and shape ``(num_channels,
        *idx.shape)``, any strides. Voxels outside the bounds are set to 0."""
        self.read_voxels_into(idx.resolution, idx.start, idx.stop, out)

    def read_voxels_into(
        self,
        resolution: Vec3D[float],
        start: Sequence[int],
        stop: Sequence[int],
        out: npt.NDArray[Any],
    ) -> None:
        """:meth:`read_into` for the voxels ``[start, stop)`` at ``resolution`` (a stored one),
        without building an index (the per-chunk reads of a flow)."""
        write_behind.wait_for(self._vpath.url)  # what this process wrote lands first
        scale = self._scale(resolution)
        start_v, stop_v = Vec3D(*start), Vec3D(*stop)
        expected = (self.num_channels, *(stop_v - start_v).tuple())
        if tuple(out.shape) != expected or out.dtype != np.dtype(self.data_type):
            raise ValueError(
                f"out: expected a {self.data_type} array of shape {expected} (C, X, Y, Z), got "
                f"{out.dtype} {tuple(out.shape)}"
            )
        _, _, in_start, in_stop = _clipped(scale, start_v, stop_v)
        if any(a >= b for a, b in zip(in_start, in_stop, strict=True)):
            out[...] = 0
            return
        o, e = in_start - start_v, in_stop - start_v
        for d in range(3):
            if o[d] > 0:
                out[(slice(None),) * (d + 1) + (slice(0, o[d]),)] = 0
            if e[d] < expected[d + 1]:
                out[(slice(None),) * (d + 1) + (slice(e[d], None),)] = 0
        inside = out[:, o[0] : e[0], o[1] : e[1], o[2] : e[2]]
        self._read_xyzc_into(scale, in_start, in_stop, inside.transpose(1, 2, 3, 0))

    def write(self, idx: VolumetricIndex, data: torch.Tensor) -> None:
        if not self._writable:
            raise PermissionError(f"{self._vpath.url} is read-only ({self._vpath.scheme}://)")
        geometry = self._geometry(idx.resolution)
        scale = geometry.scale
        if not geometry.locked and (type(data) is torch.Tensor or isinstance(data, torch.Tensor)):
            # the common case, a write of whole chunks inside the bounds, in plain arithmetic
            # (anything else, errors included, takes the checked path below)
            box = idx.voxel_box
            (x0, y0, z0), (x1, y1, z1) = box
            (lx, ly, lz), (hx, hy, hz) = geometry.lo, geometry.hi
            cx, cy, cz = geometry.chunk
            if (
                data.shape == (self._num_channels, x1 - x0, y1 - y0, z1 - z0)
                and lx <= x0 < x1 <= hx
                and ly <= y0 < y1 <= hy
                and lz <= z0 < z1 <= hz
                and (x0 - lx) % cx == 0
                and (y0 - ly) % cy == 0
                and (z0 - lz) % cz == 0
                and ((x1 - lx) % cx == 0 or x1 == hx)
                and ((y1 - ly) % cy == 0 or y1 == hy)
                and ((z1 - lz) % cz == 0 or z1 == hz)
            ):
                if data.dtype == self._direct_torch_dtype:
                    array = data.numpy(force=True)
                else:
                    array = to_stored(data, self.data_type, "data")
                self._write_xyzc(scale, box[0], box[1], array.transpose(1, 2, 3, 0))
                notify(self._url, "data")
                return
        start, stop = idx.start, idx.stop
        if scale.get("locked"):
            # CloudVolume's per-scale write lock; honoured by both backends so they agree
            raise PermissionError(
                f'scale {scale["key"]} of {self._vpath.url} is write-locked ("locked": true in its '
                "info); remove the flag from the info to write it"
            )
        expected = (self.num_channels, *(stop - start).tuple())
        if not isinstance(data, torch.Tensor):
            raise TypeError(f"data: expected a torch.Tensor, got {type(data).__name__}")
        if tuple(data.shape) != expected:
            raise ValueError(
                f"data: expected shape {expected} (C, X, Y, Z) for {idx.pformat()} at "
                f"{_format_res(idx.resolution)}, got {tuple(data.shape)}"
            )
        if self._inside(scale, start, stop):
            in_start, in_stop = start, stop
            lo, hi = (Vec3D(*b) for b in self._scale_bounds(scale))
        else:
            lo, hi, in_start, in_stop = _clipped(scale, start, stop)
            if any(a >= b for a, b in zip(in_start, in_stop, strict=True)):
                raise ValueError(
                    f"write region {start.tuple()} - {stop.tuple()} at "
                    f"{_format_res(idx.resolution)} lies outside the bounds of {self._vpath.url} "
                    f"({lo.tuple()} - {hi.tuple()})"
                )
        self._check_aligned(scale, in_start, in_stop, lo, hi, idx)
        if in_start != start or in_stop != stop:
            o = in_start - start
            e = in_stop - start
            data = data[:, o[0] : e[0], o[1] : e[1], o[2] : e[2]]
        array = to_stored(data, self.data_type, "data")
        self._write_xyzc(scale, in_start, in_stop, array.transpose(1, 2, 3, 0))
        notify(self._vpath.url, "data")

    def _check_aligned(
        self,
        scale: Mapping[str, Any],
        start: Vec3D[int],
        stop: Vec3D[int],
        lo: Vec3D[int],
        hi: Vec3D[int],
        idx: VolumetricIndex,
    ) -> None:
        chunk = Vec3D(*scale["chunk_sizes"][0])
        bad = [
            dim
            for dim, s, e, o, h, c in zip("xyz", start, stop, lo, hi, chunk, strict=True)
            if (s - o) % c != 0 or ((e - o) % c != 0 and e != h)
        ]
        if bad:
            raise ValueError(
                f"write to {self._vpath.url} at {_format_res(idx.resolution)} is not chunk-aligned "
                f"in {', '.join(bad)}: region {start.tuple()} - {stop.tuple()} (inside the dataset "
                f"bounds {lo.tuple()} - {hi.tuple()}); chunks are {chunk.tuple()} voxels starting "
                "at "
                f"{lo.tuple()}, and a region must start on that grid and end on it or at the "
                "dataset end. Partial chunks are refused because updating them is a "
                "read-modify-write that concurrent writers would corrupt; snap the region with "
                "backend.get_chunk_aligned_index or write through intermediaries"
            )

    def _to_cxyz(self, xyzc: npt.NDArray[Any]) -> torch.Tensor:
        # XYZC in Fortran order is CZYX in C order: the CXYZ result is a view, not a copy.
        cxyz = xyzc.transpose(3, 0, 1, 2)
        if (
            self._direct_torch_dtype is not None
            and xyzc.dtype == self._np_dtype
            and xyzc.flags.writeable
            and min(xyzc.strides) >= 0
        ):
            return torch.from_numpy(cxyz)  # what to_torch gives it, in one step
        return to_torch(cxyz)

    @abstractmethod
    def _read_xyzc(
        self, scale: Mapping[str, Any], start: Sequence[int], stop: Sequence[int]
    ) -> npt.NDArray[Any]:
        """The stored array of ``[start, stop)`` (inside the bounds), XYZC."""

    def _read_xyzc_into(
        self,
        scale: Mapping[str, Any],
        start: Sequence[int],
        stop: Sequence[int],
        out: npt.NDArray[Any],
    ) -> None:
        """:meth:`_read_xyzc` into ``out`` (XYZC, any strides); backends that can read into a
        given buffer override it."""
        out[...] = self._read_xyzc(scale, start, stop)

    @abstractmethod
    def _write_xyzc(
        self,
        scale: Mapping[str, Any],
        start: Sequence[int],
        stop: Sequence[int],
        data: npt.NDArray[Any],
    ) -> None:
        """Store XYZC ``data`` (already of the stored dtype) at ``[start, stop)`` (inside the
        bounds, chunk-aligned)."""


def prepare_info(
    path: str,
    *,
    readonly: bool,
    on_info_exists: InfoExistsModes,
    info_overwrite: bool = False,
    io: RemoteFileIO | None = None,
    **info_args: Any,
) -> dict[str, Any]:
    """What the layer builders do with their ``info_*`` arguments (``info_x`` is
    ``InfoSpec.x``): build an :class:`InfoSpec` and :func:`ensure_info` it.
    ``info_overwrite=True`` (the original's spec version 0.4) is ``on_info_exists="overwrite"``."""
    if not isinstance(info_overwrite, bool):
        raise ValueError(f"info_overwrite: expected True or False, got {info_overwrite!r}")
    fields = {f.name for f in attrs.fields(InfoSpec)}
    kwargs = {}
    for name, value in info_args.items():
        if not name.startswith("info_") or name[len("info_") :] not in fields:
            raise TypeError(f"prepare_info: unknown argument {name!r}")
        kwargs[name[len("info_") :]] = value
    spec = InfoSpec(**kwargs)
    mode: InfoExistsModes = "overwrite" if info_overwrite else on_info_exists
    return ensure_info(path, spec, on_info_exists=mode, readonly=readonly, io=io)
