"""Neuroglancer Precomputed volumes: paths, info files, and what both storage backends share.

Info files
----------
``build_cv_layer`` and ``build_ts_layer`` take the same ``info_*`` arguments, collected here in
:class:`InfoSpec`. The info a layer asks for is computed from a *base* info and the arguments:

* the base is the info at ``info_reference_path`` if given, else the info already at the layer's
  path, else nothing (then ``info_type``, ``info_data_type``, ``info_num_channels``,
  ``info_scales``, ``info_chunk_size`` and ``info_dataset_size`` are required);
* ``info_inherit_all_params=True`` keeps every key of the base (``mesh``, ``sharding``, ...);
  otherwise only the keys a volume needs are kept (top level: ``@type``, ``type``,
  ``data_type``, ``num_channels``, ``scales``; per scale: ``key``, ``resolution``,
  ``voxel_offset``, ``size``, ``chunk_sizes``, ``encoding`` and, for that encoding,
  ``compressed_segmentation_block_size``);
* ``info_scales`` is the exact list of resolutions the info contains: scales the base has are
  taken from it, others are derived from a reference scale (``info_add_scales_ref``, default the
  finest base scale): voxel offset and size are scaled by the resolution ratio (start floored,
  end ceiled), chunk size and encoding are copied, ``sharding`` is not;
* ``info_add_scales`` adds scales (a resolution, or a dict of scale fields with at least
  ``resolution``; fields it lacks are derived as above) to the ones kept;
* ``info_type``, ``info_data_type``, ``info_num_channels`` override the top level;
  ``info_encoding`` and ``info_chunk_size`` apply to every scale; ``info_voxel_offset`` and
  ``info_dataset_size`` are in voxels of the finest resulting scale, and the other scales get
  them scaled by the resolution ratio. Fields given in an ``info_add_scales`` dict win.

Then ``on_info_exists`` decides: ``"expect_same"`` (default) accepts an existing info only if it
equals the computed one (else :class:`InfoMismatchError` naming every differing key), and
``"overwrite"`` replaces it. An info is written only when it is missing or differs; local files
are written to a temporary name and renamed, so a concurrent reader sees the old or the new info,
never half of one, and several processes creating the same info at once all succeed.

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

from zetta_utils.geometry import Vec3D
from zetta_utils.tensor_ops.convert import to_np, to_torch

from .backend import VolumetricBackend
from .index import VolumetricIndex

InfoExistsModes = Literal["expect_same", "overwrite"]
Scheme = Literal["file", "gs", "s3", "http", "https"]

SUPPORTED_DATA_TYPES = ("uint8", "int8", "uint16", "int16", "uint32", "int32", "uint64", "float32")
ENCODINGS = ("raw", "jpeg", "png", "compressed_segmentation")
LAYER_TYPES = ("image", "segmentation")
_ENCODING_DATA_TYPES: dict[str, tuple[str, ...]] = {
    "raw": SUPPORTED_DATA_TYPES,
    "jpeg": ("uint8",),
    "png": ("uint8", "uint16"),
    "compressed_segmentation": ("uint32", "uint64"),
}
_REQUIRED_TOP_KEYS = ("@type", "type", "data_type", "num_channels", "scales")
_REQUIRED_SCALE_KEYS = ("key", "resolution", "voxel_offset", "size", "chunk_sizes", "encoding")
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
_LISTENERS: list[Callable[[str, Event], None]] = []
_LISTENERS_LOCK = threading.Lock()


def add_listener(fn: Callable[[str, Event], None]) -> None:
    """Call ``fn(url, event)`` whenever this process writes data or an info to a volume, so that
    caches of other handles on that volume can drop what the write made stale."""
    with _LISTENERS_LOCK:
        if fn not in _LISTENERS:
            _LISTENERS.append(fn)


def notify(url: str, event: Event) -> None:
    with _LISTENERS_LOCK:
        listeners = list(_LISTENERS)
    for fn in listeners:
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


@attrs.frozen
class InfoSpec:
    """The ``info_*`` arguments of the layer builders (see the module docstring)."""

    reference_path: str | None = None
    type: str | None = None
    data_type: str | None = None
    num_channels: int | None = None
    chunk_size: Sequence[int] | None = None
    scales: Sequence[Any] | None = None
    voxel_offset: Sequence[int] | None = None
    dataset_size: Sequence[int] | None = None
    encoding: str | None = None
    inherit_all_params: bool = False
    add_scales: Sequence[Any] | None = None
    add_scales_ref: Sequence[float] | str | None = None

    def is_empty(self) -> bool:
        """Whether no argument asks for a particular info (then the existing one is used)."""
        return all(
            getattr(self, f.name) is None
            for f in attrs.fields(InfoSpec)
            if f.name != "inherit_all_params"
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
        if self.encoding is not None and self.encoding not in ENCODINGS:
            raise ValueError(f"info_encoding: expected one of {ENCODINGS}, got {self.encoding!r}")
        if self.chunk_size is not None:
            _int_vec(self.chunk_size, "info_chunk_size", positive=True)
        if self.voxel_offset is not None:
            _int_vec(self.voxel_offset, "info_voxel_offset")
        if self.dataset_size is not None:
            _int_vec(self.dataset_size, "info_dataset_size", positive=True)
        _normalise_scale_list(self.scales, "info_scales")
        _normalise_scale_list(self.add_scales, "info_add_scales")
        if self.add_scales_ref is not None and not isinstance(self.add_scales_ref, str):
            _vec(self.add_scales_ref, "info_add_scales_ref")
        if not isinstance(self.inherit_all_params, bool):
            raise ValueError(
                f"info_inherit_all_params: expected True or False, got {self.inherit_all_params!r}"
            )

    def make_info(self, base: Mapping[str, Any] | None) -> dict[str, Any]:
        """The info these arguments ask for, starting from ``base`` (the reference's info, or the
        existing one, or None)."""
        self.validate()
        result = self._top_level(base)
        scales = self._scales(base)
        self._apply_overrides(scales)
        result["scales"] = sorted(
            scales, key=lambda s: (math.prod(s["resolution"]), s["resolution"])
        )
        validate_info(result)
        return result

    def _top_level(self, base: Mapping[str, Any] | None) -> dict[str, Any]:
        if base is None:
            missing = [
                f"info_{name}"
                for name in ("type", "data_type", "num_channels")
                if getattr(self, name) is None
            ]
            if self.scales is None and self.add_scales is None:
                missing.append("info_scales")
            if self.chunk_size is None:
                missing.append("info_chunk_size")
            if self.dataset_size is None:
                missing.append("info_dataset_size")
            if missing:
                raise ValueError(
                    "creating an info without info_reference_path (and with no info at the path) "
                    f"needs {', '.join(missing)}"
                )
            result: dict[str, Any] = {"@type": "neuroglancer_multiscale_volume"}
        elif self.inherit_all_params:
            result = {k: copy.deepcopy(v) for k, v in base.items() if k != "scales"}
        else:
            result = {
                k: copy.deepcopy(base[k]) for k in _REQUIRED_TOP_KEYS if k in base and k != "scales"
            }
        result.setdefault("@type", "neuroglancer_multiscale_volume")
        for name in ("type", "data_type", "num_channels"):
            if getattr(self, name) is not None:
                result[name] = getattr(self, name)
        return result

    def _base_scale(self, scale: Mapping[str, Any]) -> dict[str, Any]:
        if self.inherit_all_params:
            result = copy.deepcopy(dict(scale))
        else:
            keep = list(_REQUIRED_SCALE_KEYS)
            if scale.get("encoding") == "compressed_segmentation":
                keep.append("compressed_segmentation_block_size")
            result = {k: copy.deepcopy(scale[k]) for k in keep if k in scale}
        result["resolution"] = [_num(v) for v in result["resolution"]]
        return result

    def _reference_scale(self, base_scales: list[dict[str, Any]]) -> dict[str, Any] | None:
        if self.add_scales_ref is None:
            return base_scales[0] if base_scales else None
        for scale in base_scales:
            if isinstance(self.add_scales_ref, str):
                if scale.get("key") == self.add_scales_ref:
                    return scale
            elif _same_resolution(
                scale["resolution"], _vec(self.add_scales_ref, "info_add_scales_ref")
            ):
                return scale
        available = ", ".join(f"{s.get('key')} {_format_res(s['resolution'])}" for s in base_scales)
        raise ValueError(
            f"info_add_scales_ref: no scale {self.add_scales_ref!r} in the base info "
            f"(available: {available or 'none'})"
        )

    def _scales(self, base: Mapping[str, Any] | None) -> list[dict[str, Any]]:
        base_scales = [self._base_scale(s) for s in (base or {}).get("scales", [])]
        base_scales.sort(key=lambda s: math.prod(s["resolution"]))
        ref = self._reference_scale(base_scales)
        requested = _normalise_scale_list(self.scales, "info_scales")
        added = _normalise_scale_list(self.add_scales, "info_add_scales") or []

        def build(entry: dict[str, Any], existing: list[dict[str, Any]]) -> dict[str, Any]:
            res = entry["resolution"]
            found = next((s for s in existing if _same_resolution(s["resolution"], res)), None)
            if found is not None:
                scale = copy.deepcopy(found)
            elif ref is not None:
                scale = _derive_scale(ref, res)
            else:
                # built from the global arguments in _apply_overrides
                scale = {"key": scale_key(res), "resolution": list(res), "encoding": "raw"}
            scale.update({k: v for k, v in entry.items() if k != "resolution"})
            scale["_explicit"] = set(entry) - {"resolution"}
            return scale

        if requested is not None:
            scales = [build(e, base_scales) for e in requested]
        else:
            scales = [dict(s, _explicit=set()) for s in base_scales]
        for entry in added:
            new = build(entry, scales)
            scales = [
                s for s in scales if not _same_resolution(s["resolution"], entry["resolution"])
            ]
            scales.append(new)
        seen: list[list[float]] = []
        for s in scales:
            if any(_same_resolution(s["resolution"], r) for r in seen):
                raise ValueError(
                    f"info_scales: resolution {_format_res(s['resolution'])} is listed twice"
                )
            seen.append(s["resolution"])
        return scales

    def _apply_overrides(self, scales: list[dict[str, Any]]) -> None:
        if not scales:
            raise ValueError("the info would have no scales; give info_scales or info_add_scales")
        scales.sort(key=lambda s: math.prod(s["resolution"]))
        finest = scales[0]
        if self.voxel_offset is not None or self.dataset_size is not None:
            f_offset = (
                _int_vec(self.voxel_offset, "info_voxel_offset")
                if self.voxel_offset is not None
                else finest.get("voxel_offset", [0, 0, 0])
            )
            f_size = (
                _int_vec(self.dataset_size, "info_dataset_size", True)
                if self.dataset_size is not None
                else finest.get("size")
            )
            if f_size is None:
                raise ValueError(
                    "info_voxel_offset was given for a new scale without info_dataset_size"
                )
            for scale in scales:
                explicit = scale["_explicit"]
                offset, size = _rescale_bounds(
                    f_offset, f_size, finest["resolution"], scale["resolution"]
                )
                if "voxel_offset" not in explicit:
                    scale["voxel_offset"] = offset
                if "size" not in explicit:
                    scale["size"] = size
        for scale in scales:
            explicit = scale.pop("_explicit")
            if self.chunk_size is not None and "chunk_sizes" not in explicit:
                scale["chunk_sizes"] = [_int_vec(self.chunk_size, "info_chunk_size", True)]
            if self.encoding is not None and "encoding" not in explicit:
                scale["encoding"] = self.encoding
            if scale["encoding"] == "compressed_segmentation":
                scale.setdefault("compressed_segmentation_block_size", list(_DEFAULT_CSEG_BLOCK))
            else:
                scale.pop("compressed_segmentation_block_size", None)
            scale.setdefault("voxel_offset", [0, 0, 0])
            if "key" not in explicit and "key" not in scale:
                scale["key"] = scale_key(scale["resolution"])
            missing = [k for k in ("size", "chunk_sizes") if k not in scale]
            if missing:
                raise ValueError(
                    f"scale {_format_res(scale['resolution'])} has no "
                    + " or ".join(missing)
                    + "; give info_dataset_size / info_chunk_size or a reference"
                )


def validate_info(info: Mapping[str, Any]) -> None:
    """Raise ValueError naming the first problem that makes ``info`` unusable by both backends."""
    for key in _REQUIRED_TOP_KEYS:
        if key not in info:
            raise ValueError(f"info: missing {key!r}")
    if info["type"] not in LAYER_TYPES:
        raise ValueError(f"info.type: expected one of {LAYER_TYPES}, got {info['type']!r}")
    data_type = info["data_type"]
    if data_type not in SUPPORTED_DATA_TYPES:
        raise ValueError(
            f"info.data_type: expected one of {SUPPORTED_DATA_TYPES}, got {data_type!r}"
        )
    nc = info["num_channels"]
    if isinstance(nc, bool) or not isinstance(nc, int) or nc < 1:
        raise ValueError(f"info.num_channels: expected a positive integer, got {nc!r}")
    if not isinstance(info["scales"], list) or not info["scales"]:
        raise ValueError("info.scales: expected a non-empty list")
    keys: set[str] = set()
    for i, scale in enumerate(info["scales"]):
        where = f"info.scales[{scale.get('key', i)}]"
        for key in _REQUIRED_SCALE_KEYS:
            if key not in scale:
                raise ValueError(f"{where}: missing {key!r}")
        if scale["key"] in keys:
            raise ValueError(f"{where}: duplicate key {scale['key']!r}")
        keys.add(scale["key"])
        res = _vec(scale["resolution"], f"{where}.resolution")
        if any(r <= 0 for r in res):
            raise ValueError(f"{where}.resolution: expected positive numbers, got {res}")
        _int_vec(scale["voxel_offset"], f"{where}.voxel_offset")
        _int_vec(scale["size"], f"{where}.size", positive=True)
        chunks = scale["chunk_sizes"]
        if not isinstance(chunks, list) or len(chunks) != 1:
            raise ValueError(
                f"{where}.chunk_sizes: expected exactly one chunk size, got {chunks!r}"
            )
        _int_vec(chunks[0], f"{where}.chunk_sizes[0]", positive=True)
        enc = scale["encoding"]
        if enc not in ENCODINGS:
            raise ValueError(f"{where}.encoding: expected one of {ENCODINGS}, got {enc!r}")
        if data_type not in _ENCODING_DATA_TYPES[enc]:
            raise ValueError(
                f"{where}.encoding: {enc!r} cannot store data_type {data_type!r} "
                f"(it takes {', '.join(_ENCODING_DATA_TYPES[enc])})"
            )
        if enc == "jpeg" and nc not in (1, 3):
            raise ValueError(
                f"{where}.encoding: 'jpeg' needs 1 or 3 channels, got num_channels={nc}"
            )
        if enc == "png" and nc > 4:
            raise ValueError(
                f"{where}.encoding: 'png' takes at most 4 channels, got num_channels={nc}"
            )
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


def ensure_info(
    path: str,
    spec: InfoSpec | None = None,
    on_info_exists: InfoExistsModes = "expect_same",
    readonly: bool = False,
    io: RemoteFileIO | None = None,
) -> dict[str, Any]:
    """The info in effect for the volume at ``path`` after applying ``spec`` (writing it if it is
    missing, or differs and ``on_info_exists="overwrite"``)."""
    if on_info_exists not in ("expect_same", "overwrite"):
        raise ValueError(
            f"on_info_exists: expected 'expect_same' or 'overwrite', got {on_info_exists!r}"
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
    base = existing
    if spec.reference_path is not None:
        base = get_info(
            spec.reference_path, io if not parse_path(spec.reference_path).is_local else None
        )
    requested = spec.make_info(base)
    if existing is not None and existing == requested:
        return existing
    if existing is not None and on_info_exists == "expect_same":
        raise InfoMismatchError(_mismatch_message(vpath.url, existing, requested))
    if readonly or not vpath.is_writable:
        reason = "the layer is readonly" if readonly else f"{vpath.scheme}:// is read-only"
        what = "differs from the requested one" if existing is not None else "does not exist"
        raise PermissionError(f"the info at {vpath.url} {what}, and {reason}: cannot write it")
    write_info(vpath.url, requested, io)
    if on_info_exists == "expect_same":
        # Two processes creating different infos at once: the loser must not go on silently.
        final = read_info(vpath.url, io)
        if final is not None and final != requested:
            raise InfoMismatchError(_mismatch_message(vpath.url, final, requested))
    return requested


def _mismatch_message(url: str, existing: Mapping[str, Any], requested: Mapping[str, Any]) -> str:
    lines = diff_infos(existing, requested)
    return (
        f"the info at {url} differs from the requested one (on_info_exists='expect_same'):\n  "
        + "\n  ".join(lines)
        + "\npass on_info_exists='overwrite' to replace it, or change the info_* arguments"
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


def _clipped(scale: Mapping[str, Any], start: Vec3D[int], stop: Vec3D[int]) -> tuple[Vec3D[int], ...]:
    """The scale's bounds ``lo``, ``hi`` and the region ``[start, stop)`` clipped to them (empty
    where it lies outside)."""
    lo = Vec3D(*scale["voxel_offset"])
    hi = lo + Vec3D(*scale["size"])
    in_start = Vec3D(*(max(a, b) for a, b in zip(start, lo, strict=True)))
    in_stop = Vec3D(*(min(a, b) for a, b in zip(stop, hi, strict=True)))
    return lo, hi, in_start, in_stop


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
        scale = find_scale(self._info, resolution)
        if scale is None:
            stored = ", ".join(_format_res(s["resolution"]) for s in self._info["scales"])
            raise ValueError(
                f"resolution {_format_res(_vec(resolution, 'resolution'))} is not stored in "
                f"{self._vpath.url} (stored: {stored}); the layer frontend resamples from a stored "
                "resolution"
            )
        return scale

    def get_resolutions(self) -> list[Vec3D[float]]:
        return [_scale_resolution(s) for s in self._info["scales"]]

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
        scale, start, stop = self._voxel_box(idx)
        _, _, in_start, in_stop = _clipped(scale, start, stop)
        if in_start == start and in_stop == stop:
            return self._to_cxyz(self._read_xyzc(scale, start, stop))
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
        self, resolution: Vec3D[float], start: Sequence[int], stop: Sequence[int], out: npt.NDArray[Any]
    ) -> None:
        """:meth:`read_into` for the voxels ``[start, stop)`` at ``resolution`` (a stored one),
        without building an index (the per-chunk reads of a flow)."""
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
        if not self._vpath.is_writable:
            raise PermissionError(f"{self._vpath.url} is read-only ({self._vpath.scheme}://)")
        scale, start, stop = self._voxel_box(idx)
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
        lo, hi, in_start, in_stop = _clipped(scale, start, stop)
        if any(a >= b for a, b in zip(in_start, in_stop, strict=True)):
            raise ValueError(
                f"write region {start.tuple()} - {stop.tuple()} at {_format_res(idx.resolution)} "
                f"lies outside the bounds of {self._vpath.url} ({lo.tuple()} - {hi.tuple()})"
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
                f"bounds {lo.tuple()} - {hi.tuple()}); chunks are {chunk.tuple()} voxels starting at "
                f"{lo.tuple()}, and a region must start on that grid and end on it or at the "
                "dataset end. Partial chunks are refused because updating them is a "
                "read-modify-write that concurrent writers would corrupt; snap the region with "
                "backend.get_chunk_aligned_index or write through intermediaries"
            )

    def _to_cxyz(self, xyzc: npt.NDArray[Any]) -> torch.Tensor:
        # XYZC in Fortran order is CZYX in C order: the CXYZ result is a view, not a copy.
        return to_torch(xyzc.transpose(3, 0, 1, 2))

    @abstractmethod
    def _read_xyzc(
        self, scale: Mapping[str, Any], start: Vec3D[int], stop: Vec3D[int]
    ) -> npt.NDArray[Any]:
        """The stored array of ``[start, stop)`` (inside the bounds), XYZC."""

    def _read_xyzc_into(
        self, scale: Mapping[str, Any], start: Vec3D[int], stop: Vec3D[int], out: npt.NDArray[Any]
    ) -> None:
        """:meth:`_read_xyzc` into ``out`` (XYZC, any strides); backends that can read into a
        given buffer override it."""
        out[...] = self._read_xyzc(scale, start, stop)

    @abstractmethod
    def _write_xyzc(
        self, scale: Mapping[str, Any], start: Vec3D[int], stop: Vec3D[int], data: npt.NDArray[Any]
    ) -> None:
        """Store XYZC ``data`` (already of the stored dtype) at ``[start, stop)`` (inside the
        bounds, chunk-aligned)."""


def prepare_info(
    path: str,
    *,
    readonly: bool,
    on_info_exists: InfoExistsModes,
    info_reference_path: str | None,
    info_type: str | None,
    info_data_type: str | None,
    info_num_channels: int | None,
    info_chunk_size: Sequence[int] | None,
    info_scales: Sequence[Any] | None,
    info_voxel_offset: Sequence[int] | None,
    info_dataset_size: Sequence[int] | None,
    info_encoding: str | None,
    info_inherit_all_params: bool,
    info_add_scales: Sequence[Any] | None,
    info_add_scales_ref: Sequence[float] | str | None,
    io: RemoteFileIO | None = None,
) -> dict[str, Any]:
    """What the layer builders do with their ``info_*`` arguments: build an :class:`InfoSpec`
    and :func:`ensure_info` it."""
    spec = InfoSpec(
        reference_path=info_reference_path,
        type=info_type,
        data_type=info_data_type,
        num_channels=info_num_channels,
        chunk_size=info_chunk_size,
        scales=info_scales,
        voxel_offset=info_voxel_offset,
        dataset_size=info_dataset_size,
        encoding=info_encoding,
        inherit_all_params=info_inherit_all_params,
        add_scales=info_add_scales,
        add_scales_ref=info_add_scales_ref,
    )
    return ensure_info(path, spec, on_info_exists=on_info_exists, readonly=readonly, io=io)
