"""Look at a volume without a viewer: a PNG of one section, and a Neuroglancer link.

:func:`write_thumbnail` reads one section of a precomputed layer (a region at a resolution),
scales it to 8 bits and writes a PNG with x to the right and y down, as Neuroglancer shows it.
Without a region it finds one: for local volumes, the largest group of adjacent chunk files of
the section at the chosen resolution (so a sparse volume shows where its data is); otherwise
the middle of the dataset.

:func:`write_comparison` writes one PNG of the same region of two layers side by side (e.g. a
flow's source and output), both with the same contrast: the first layer on the left.

:func:`neuroglancer_link` makes a link to the layer in the public Neuroglancer. Neuroglancer runs
in the browser and cannot read ``file://`` paths: a local volume must be served over HTTP with
CORS, by ``python -m zetta_utils.demo.serve VOLUME_DIR`` (the link then points at
``http://127.0.0.1:PORT/<volume directory name>``, where that server puts it).
"""

from __future__ import annotations

import json
import math
import os
import re
import urllib.parse
from collections.abc import Sequence
from typing import Any

import attrs
import numpy as np
import numpy.typing as npt

from zetta_utils.geometry import Vec3D
from zetta_utils.layer.volumetric import VolumetricIndex
from zetta_utils.layer.volumetric.layer import VolumetricLayer
from zetta_utils.layer.volumetric.precomputed import parse_path

NEUROGLANCER_URL = "https://neuroglancer-demo.appspot.com/"
_CHUNK_NAME = re.compile(r"^(\d+)-(\d+)_(\d+)-(\d+)_(\d+)-(\d+)$")


@attrs.frozen
class Thumbnail:
    """What :func:`write_thumbnail` wrote."""

    out: str
    index: VolumetricIndex  # the region read
    image_size: tuple[int, int]  # pixels (width, height) of the PNG
    value_range: tuple[float, float]  # data values mapped to black and white
    empty: bool  # the section holds no data there (all zeros)


def _parse_vec(value: Sequence[float] | str, what: str, length: int) -> list[float]:
    if isinstance(value, str):
        parts = [p for p in re.split(r"[,\s]+", value.strip()) if p]
    else:
        parts = list(value)
    try:
        numbers = [float(p) for p in parts]
    except (TypeError, ValueError):
        raise ValueError(f"{what}: expected {length} numbers, got {value!r}") from None
    if len(numbers) != length:
        raise ValueError(f"{what}: expected {length} numbers, got {value!r}")
    return numbers


def _open(path: str, backend: str) -> VolumetricLayer:
    if backend == "ts":
        from zetta_utils.layer.volumetric.tensorstore import build_ts_layer

        return build_ts_layer(path=path, readonly=True)
    if backend == "cv":
        from zetta_utils.layer.volumetric.cloudvol import build_cv_layer

        return build_cv_layer(path=path, readonly=True)
    raise ValueError(f"backend: expected 'ts' or 'cv', got {backend!r}")


def _scale_key(layer: VolumetricLayer, resolution: Vec3D[float]) -> str | None:
    info = getattr(layer.backend, "info", None)
    if not isinstance(info, dict):
        return None
    for scale in info.get("scales", []):
        if all(math.isclose(a, b) for a, b in zip(scale["resolution"], resolution, strict=True)):
            return str(scale["key"])
    return None


def _chunk_boxes(
    layer: VolumetricLayer, resolution: Vec3D[float], z: int
) -> list[tuple[int, int, int, int]]:
    """(x0, x1, y0, y1) of the chunk files of section ``z`` at ``resolution`` of a local volume."""
    vpath = parse_path(layer.backend.name)
    key = _scale_key(layer, resolution)
    if not vpath.is_local or key is None:
        return []
    try:
        names = os.listdir(os.path.join(vpath.key, key))
    except FileNotFoundError:
        return []
    boxes = []
    for name in names:
        m = _CHUNK_NAME.match(name.split(".", 1)[0])
        if m is not None:
            x0, x1, y0, y1, z0, z1 = (int(g) for g in m.groups())
            if z0 <= z < z1:
                boxes.append((x0, x1, y0, y1))
    return boxes


def _largest_group(boxes: list[tuple[int, int, int, int]]) -> tuple[int, int, int, int]:
    """The bounding box of the largest group of chunks that touch each other."""
    parent = list(range(len(boxes)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    by_corner = {(b[0], b[2]): i for i, b in enumerate(boxes)}
    for i, (x0, x1, y0, y1) in enumerate(boxes):
        for corner in ((x1, y0), (x0, y1)):
            j = by_corner.get(corner)
            if j is not None:
                parent[find(i)] = find(j)
    groups: dict[int, list[int]] = {}
    for i in range(len(boxes)):
        groups.setdefault(find(i), []).append(i)
    members = max(groups.values(), key=lambda g: (len(g), -min(boxes[i][0] for i in g)))
    return (
        min(boxes[i][0] for i in members),
        max(boxes[i][1] for i in members),
        min(boxes[i][2] for i in members),
        max(boxes[i][3] for i in members),
    )


def choose_view(
    layer: VolumetricLayer,
    z: int,
    resolution: Sequence[float] | str | None = None,
    bbox: Sequence[float] | str | None = None,
) -> VolumetricIndex:
    """The region :func:`write_thumbnail` reads (see the module docstring for the defaults).

    :param resolution: x, y, z in nm (default: for local volumes the finest stored resolution
        with data in section ``z``, else the coarsest stored one).
    :param bbox: ``x0, y0, x1, y1`` in voxels at ``resolution``.
    """
    stored = list(layer.backend.get_resolutions())
    if resolution is None:
        with_data = [r for r in stored if _chunk_boxes(layer, r, z)]
        res = (
            min(with_data, key=lambda r: r[0] * r[1])
            if with_data
            else max(stored, key=lambda r: r[0] * r[1])
        )
    else:
        res = Vec3D(*_parse_vec(resolution, "resolution", 3))
        if any(r <= 0 for r in res):
            raise ValueError(f"resolution: expected positive numbers, got {resolution!r}")
    if bbox is not None:
        x0, y0, x1, y1 = _parse_vec(bbox, "bbox", 4)
        if x1 <= x0 or y1 <= y0:
            raise ValueError(
                f"bbox: expected x0, y0, x1, y1 with x0 < x1 and y0 < y1, got {bbox!r}"
            )
        return VolumetricIndex.from_coords((x0, y0, z), (x1, y1, z + 1), res)
    boxes = _chunk_boxes(layer, res, z)
    if boxes:
        x0, x1, y0, y1 = _largest_group(boxes)
        return VolumetricIndex.from_coords((x0, y0, z), (x1, y1, z + 1), res)
    if res not in stored:
        # Where the data is at the stored resolution nearest to the requested one, converted.
        for near in sorted(stored, key=lambda r: abs(math.log(r[0] * r[1] / (res[0] * res[1])))):
            z_near = math.floor(z * res[2] / near[2])
            near_boxes = _chunk_boxes(layer, near, z_near)
            if near_boxes:
                x0, x1, y0, y1 = _largest_group(near_boxes)
                fx, fy = near[0] / res[0], near[1] / res[1]
                return VolumetricIndex.from_coords(
                    (math.floor(x0 * fx), math.floor(y0 * fy), z),
                    (math.ceil(x1 * fx), math.ceil(y1 * fy), z + 1),
                    res,
                )
    stored_res = next((r for r in stored if r == res), None)
    ref = stored_res if stored_res is not None else min(stored, key=lambda r: r[0] * r[1])
    bounds = layer.backend.get_bounds(ref).with_resolution(res)
    bounds = VolumetricIndex(resolution=res, bbox=bounds.bbox, allow_slice_rounding=True)
    center = (bounds.start + bounds.stop) // 2
    half = 512
    start = Vec3D(max(bounds.start[0], center[0] - half), max(bounds.start[1], center[1] - half), z)
    stop = Vec3D(
        min(bounds.stop[0], center[0] + half), min(bounds.stop[1], center[1] + half), z + 1
    )
    return VolumetricIndex.from_coords(start, stop, res)


def to_uint8(
    section: npt.NDArray[Any], percentiles: tuple[float, float] = (0.5, 99.5)
) -> tuple[npt.NDArray[np.uint8], tuple[float, float]]:
    """An (X, Y) section as 8 bits: uint8 as it is, other types stretched linearly from the low
    to the high percentile of the values (of the non-zero ones, when there are any)."""
    if section.dtype == np.uint8:
        return section, (0.0, 255.0)
    values = section.astype(np.float64)
    finite = values[np.isfinite(values)]
    nonzero = finite[finite != 0]
    sample = nonzero if nonzero.size else finite
    if sample.size == 0:
        return np.zeros(section.shape, dtype=np.uint8), (0.0, 0.0)
    lo, hi = (float(v) for v in np.percentile(sample, percentiles))
    if hi <= lo:
        hi = lo + 1.0
    scaled = np.clip((np.nan_to_num(values, nan=lo) - lo) / (hi - lo), 0, 1)
    return np.floor(scaled * 255 + 0.5).astype(np.uint8), (lo, hi)


def _check_z_and_size(z: Any, max_size: Any) -> None:
    if isinstance(z, bool) or not isinstance(z, int):
        raise ValueError(f"z: expected a section number (integer), got {z!r}")
    if isinstance(max_size, bool) or not isinstance(max_size, int) or max_size < 1:
        raise ValueError(f"max_size: expected a positive integer, got {max_size!r}")


def _read_section(layer: VolumetricLayer, idx: VolumetricIndex) -> npt.NDArray[Any]:
    """The CXY data of the one-section region ``idx`` (resampled in ``img`` mode when the
    layer does not store ``idx``'s resolution)."""
    if idx.resolution not in list(layer.backend.get_resolutions()):
        layer = layer.with_changes(interpolation_mode="img")
    return layer[idx].numpy()[..., 0]


def _joint_range(sections: Sequence[npt.NDArray[Any]]) -> tuple[float, float] | None:
    """One value range for all ``sections`` (None: all uint8, shown as they are): the 0.5 and
    99.5 percentiles of their non-zero values together, as :func:`to_uint8` takes them."""
    if all(s.dtype == np.uint8 for s in sections):
        return None
    joined = np.concatenate([s.astype(np.float64).ravel() for s in sections])
    return to_uint8(joined)[1]


def _to_image(
    section: npt.NDArray[Any], value_range: tuple[float, float] | None
) -> npt.NDArray[np.uint8]:
    """CXY data -> an (rows = y, columns = x) uint8 image, gray or RGB (3 channels)."""

    def scaled(plane: npt.NDArray[Any]) -> npt.NDArray[np.uint8]:
        if value_range is None:  # all uint8
            return plane.astype(np.uint8)
        lo, hi = value_range
        values = np.nan_to_num(plane.astype(np.float64), nan=lo)
        return np.floor(np.clip((values - lo) / (hi - lo), 0, 1) * 255 + 0.5).astype(np.uint8)

    if section.shape[0] == 3:
        planes = np.stack([scaled(section[c]) for c in range(3)], axis=-1)
        return np.ascontiguousarray(np.swapaxes(planes, 0, 1))
    return np.ascontiguousarray(scaled(section[0]).T)


@attrs.frozen
class Comparison:
    """What :func:`write_comparison` wrote."""

    out: str
    index: VolumetricIndex  # the region read from both layers
    image_size: tuple[int, int]  # pixels (width, height) of the whole PNG
    panel_size: tuple[int, int]  # pixels (width, height) of each layer's half
    gap: int  # pixels of the white band between the halves
    value_range: tuple[float, float]  # data values mapped to black and white, in both halves
    empty: tuple[bool, bool]  # each layer holds no data there (all zeros)


def write_comparison(
    path: str,
    compare_path: str,
    z: int,
    out: str,
    resolution: Sequence[float] | str | None = None,
    bbox: Sequence[float] | str | None = None,
    max_size: int = 2048,
    backend: str = "ts",
    gap: int = 8,
) -> Comparison:
    """Write one PNG of section ``z`` of the layers at ``path`` (left) and ``compare_path``
    (right) side by side, the same region of both with the same contrast (one value range for
    both, from their values together; uint8 layers as they are), separated by ``gap`` white
    pixels. The region is chosen on the first layer as :func:`write_thumbnail` chooses it;
    ``max_size`` bounds the whole PNG's width."""
    from PIL import Image

    _check_z_and_size(z, max_size)
    if isinstance(gap, bool) or not isinstance(gap, int) or gap < 0:
        raise ValueError(f"gap: expected a non-negative integer, got {gap!r}")
    left_layer = _open(path, backend)
    right_layer = _open(compare_path, backend)
    idx = choose_view(left_layer, z, resolution, bbox)
    sections = [_read_section(left_layer, idx), _read_section(right_layer, idx)]
    if sections[0].shape[0] != sections[1].shape[0]:
        raise ValueError(
            f"compare: {path} has {sections[0].shape[0]} channel(s), {compare_path} "
            f"{sections[1].shape[0]}; the two layers must have as many"
        )
    value_range = _joint_range(sections)
    images = [Image.fromarray(_to_image(s, value_range)) for s in sections]
    width, height = images[0].size
    scale = min(1.0, max(1, max_size - gap) / (2 * width), max_size / height)
    if scale < 1.0:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        images = [im.resize(size, Image.Resampling.BOX) for im in images]
        width, height = size
    mode = images[0].mode
    combined = Image.new(
        mode, (2 * width + gap, height), color=255 if mode == "L" else (255, 255, 255)
    )
    combined.paste(images[0], (0, 0))
    combined.paste(images[1], (width + gap, 0))
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    combined.save(out, format="PNG")
    return Comparison(
        out=out,
        index=idx,
        image_size=combined.size,
        panel_size=(width, height),
        gap=gap,
        value_range=value_range if value_range is not None else (0.0, 255.0),
        empty=(not bool(np.any(sections[0])), not bool(np.any(sections[1]))),
    )


def write_thumbnail(
    path: str,
    z: int,
    out: str,
    resolution: Sequence[float] | str | None = None,
    bbox: Sequence[float] | str | None = None,
    max_size: int = 1024,
    backend: str = "ts",
) -> Thumbnail:
    """Write a PNG of section ``z`` of the layer at ``path`` to ``out``.

    :param resolution: x, y, z in nm to read at (stored, or resampled from the nearest stored
        one in ``img`` mode).
    :param bbox: ``x0, y0, x1, y1`` in voxels at ``resolution``; see :func:`choose_view`.
    :param max_size: the PNG's longer side at most (larger regions are averaged down).
    :param backend: ``ts`` (TensorStore) or ``cv`` (CloudVolume).
    """
    from PIL import Image

    _check_z_and_size(z, max_size)
    layer = _open(path, backend)
    idx = choose_view(layer, z, resolution, bbox)
    if idx.resolution not in list(layer.backend.get_resolutions()):
        layer = layer.with_changes(interpolation_mode="img")
    data = layer[idx].numpy()
    channels = data.shape[0]
    if channels == 3:
        section = np.stack([to_uint8(data[c, :, :, 0])[0] for c in range(3)], axis=-1)
        value_range = (0.0, 255.0)
    else:
        section, value_range = to_uint8(data[0, :, :, 0])
    empty = not bool(np.any(data))
    image = Image.fromarray(np.ascontiguousarray(np.swapaxes(section, 0, 1)))  # rows are y
    longest = max(image.size)
    if longest > max_size:
        scale = max_size / longest
        image = image.resize(
            (max(1, round(image.size[0] * scale)), max(1, round(image.size[1] * scale))),
            Image.Resampling.BOX,
        )
    directory = os.path.dirname(os.path.abspath(out))
    os.makedirs(directory, exist_ok=True)
    image.save(out, format="PNG")
    return Thumbnail(
        out=out, index=idx, image_size=image.size, value_range=value_range, empty=empty
    )


def neuroglancer_link(
    path: str,
    position: Sequence[float] | None = None,
    resolution: Sequence[float] | None = None,
    name: str | None = None,
    serve_url: str = "http://127.0.0.1:8000",
    served_dir: str | None = None,
) -> str:
    """A public-Neuroglancer link showing the precomputed layer at ``path``.

    :param position: voxel coordinates at ``resolution`` to centre on.
    :param resolution: the voxel size of the view, nm (default 4, 4, 40).
    :param serve_url: for ``file://`` paths, the HTTP server that serves ``served_dir``.
    :param served_dir: the local directory whose contents appear at ``serve_url`` (default: the
        layer's parent, as ``python -m zetta_utils.demo.serve LAYER_DIR`` serves a layer at
        ``<serve_url>/<its name>``).
    """
    vpath = parse_path(path)
    if vpath.scheme == "file":
        root = (
            os.path.abspath(os.path.expanduser(served_dir))
            if served_dir
            else os.path.dirname(vpath.key)
        )
        rel = os.path.relpath(vpath.key, root)
        if rel.startswith(".."):
            raise ValueError(f"served_dir: {root} does not contain the layer {vpath.key}")
        source = (
            f"precomputed://{serve_url.rstrip('/')}/{urllib.parse.quote(rel.replace(os.sep, '/'))}"
        )
    elif vpath.scheme in ("http", "https"):
        source = f"precomputed://{vpath.url}"
    else:
        source = f"precomputed://{vpath.scheme}://{vpath.location}/{vpath.key}"
    res = list(resolution) if resolution is not None else [4.0, 4.0, 40.0]
    state: dict[str, Any] = {
        "dimensions": {d: [r * 1e-9, "m"] for d, r in zip("xyz", res, strict=True)},
        "layers": [
            {
                "type": "image",
                "source": source,
                "name": name or os.path.basename(vpath.key.rstrip("/")),
            }
        ],
        "layout": "xy",
    }
    if position is not None:
        state["position"] = [float(p) for p in position]
        state["crossSectionScale"] = 1
    text = json.dumps(state, separators=(",", ":"))
    return NEUROGLANCER_URL + "#!" + urllib.parse.quote(text, safe="")
