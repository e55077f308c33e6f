"""The built-in demo volume: a local stand-in for the quick start guide's FAFB v15 images.

Two Neuroglancer Precomputed layers in one directory (default ``~/.zetta_utils/demo/fafb_v15``):

``img_norm``
    float32, normalised (``(img - IMG_MEAN) / IMG_STD``: about zero mean and unit variance,
    values within -4.7 .. 3.1, 98% within -2.9 .. 1.9), standing in for
    ``https://storage.googleapis.com/fafb_v15_aligned/v0/img/img_norm``.
``img``
    uint8, the same pictures before normalisation (the guide's ``.../v0/img/img``).

Both declare the full FAFB v15 extent, ``(262144, 131072, 7064)`` voxels at (4, 4, 40) nm, with
scales at 4, 8, 16, 32 and 64 nm in x and y (40 nm sections) and raw encoding. Chunks are
(1024, 1024, 1) voxels at 4, 8 and 16 nm as in the guide, (512, 512, 1) at 32 nm and
(256, 256, 1) at 64 nm (smaller chunks keep the stored regions small). Only the regions the
guide looks at hold data (:data:`DEMO_REGIONS`); every other chunk is missing and reads as
zeros.

The pictures are procedural tissue (:mod:`zetta_utils.demo.tissue`) rendered at each region's
own resolution; a region with a ``pyramid`` is also stored at coarser scales, downsampled from
its rendering (``tensor_ops.interpolate``, ``img`` mode), so reading it at 64 nm or reading its
16 nm data downsampled to 64 nm gives the same picture. ``img_norm`` is computed from ``img`` at
every scale.

Sections repeat with period ``TissueParams.z_period`` (10): section ``z`` equals section
``z + 10``. Each repeating section is rendered and written once and its chunk files are
hard-linked (copied where links are not supported), which is how the layer-set region covers
its 100 sections at a tenth of the space.

Generation is deterministic: the same seed gives the same bytes. A ``demo.json`` manifest in
the directory records the version, seed and regions written; an existing, matching demo is not
written again unless ``force=True``.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import attrs
import numpy as np
import numpy.typing as npt
import torch

from zetta_utils.geometry import Vec3D
from zetta_utils.layer.volumetric import VolumetricIndex
from zetta_utils.layer.volumetric.precomputed import (
    InfoMismatchError,
    PrecomputedBackend,
    chunk_name,
    read_info,
)
from zetta_utils.layer.volumetric.tensorstore import build_ts_layer
from zetta_utils.tensor_ops import interpolate

from .tissue import TissueParams, render_section

DEMO_VERSION = 1
DEFAULT_DEMO_DIR = "~/.zetta_utils/demo/fafb_v15"
MANIFEST_NAME = "demo.json"
LAYER_NAMES = ("img", "img_norm")

Res = tuple[int, int, int]
RESOLUTIONS: tuple[Res, ...] = ((4, 4, 40), (8, 8, 40), (16, 16, 40), (32, 32, 40), (64, 64, 40))
CHUNK_SIZES: dict[Res, tuple[int, int, int]] = {
    (4, 4, 40): (1024, 1024, 1),
    (8, 8, 40): (1024, 1024, 1),
    (16, 16, 40): (1024, 1024, 1),
    (32, 32, 40): (512, 512, 1),
    (64, 64, 40): (256, 256, 1),
}
DATASET_SIZE: tuple[int, int, int] = (262144, 131072, 7064)  # voxels at (4, 4, 40) nm
IMG_MEAN = 153.5
IMG_STD = 32.8
_TILE = 1024  # largest rendering, in voxels per side


@attrs.frozen
class DemoRegion:
    """A box of the demo volume that holds data: voxels ``start`` to ``stop`` at ``resolution``
    (aligned to that scale's chunks), also stored at the coarser ``pyramid`` resolutions."""

    name: str
    resolution: Res
    start: tuple[int, int, int]
    stop: tuple[int, int, int]
    pyramid: tuple[Res, ...] = ()
    purpose: str = ""

    @property
    def index(self) -> VolumetricIndex:
        return VolumetricIndex.from_coords(self.start, self.stop, self.resolution)

    def scales(self) -> tuple[Res, ...]:
        """The resolutions this region is stored at, finest first."""
        return (self.resolution, *self.pyramid)

    def box_at(self, resolution: Res) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
        """``start``, ``stop`` in voxels at ``resolution`` (one of :meth:`scales`)."""
        f = [resolution[i] // self.resolution[i] for i in range(3)]
        return (
            (self.start[0] // f[0], self.start[1] // f[1], self.start[2] // f[2]),
            (self.stop[0] // f[0], self.stop[1] // f[1], self.stop[2] // f[2]),
        )


DEMO_REGIONS: tuple[DemoRegion, ...] = (
    DemoRegion(
        "guide_64nm",
        (64, 64, 40),
        (12800, 3840, 2000),
        (13824, 4608, 2004),
        purpose=(
            "the guide's first reads: [13000:13100, 4000:4100, 2000:2001] at (64, 64, 40), and "
            "[211200:216000, 64800:69600, 2000:2002] indexed at (4, 4, 40), read from 64 nm data"
        ),
    ),
    DemoRegion(
        "subchunkable",
        (16, 16, 40),
        (29696, 16384, 2000),
        (30720, 17408, 2010),
        pyramid=((32, 32, 40), (64, 64, 40)),
        purpose=(
            "the SubchunkableApplyFlow examples: [29696:30720, 16384:17408, 2000:2010] at 16 nm"
        ),
    ),
    DemoRegion(
        "layer_set",
        (64, 64, 40),
        (768, 768, 2000),
        (2048, 2048, 2100),
        purpose=(
            "the LayerDataset example: the VolumetricStridedIndexer's bbox "
            "[1000:2000, 1000:2000, 2000:2100] at 64 nm, every sample"
        ),
    ),
    DemoRegion(
        "fine_4nm",
        (4, 4, 40),
        (118784, 65536, 2000),
        (119808, 66560, 2002),
        purpose="a (4, 4, 40) patch at the corner of the subchunkable region, to zoom into",
    ),
    DemoRegion(
        "fine_8nm",
        (8, 8, 40),
        (59392, 32768, 2000),
        (60416, 33792, 2002),
        purpose="an (8, 8, 40) patch around the 4 nm one",
    ),
)
REGION_NAMES: tuple[str, ...] = tuple(r.name for r in DEMO_REGIONS)


def demo_layer_path(layer: str = "img_norm", directory: str = DEFAULT_DEMO_DIR) -> str:
    """The ``file://`` path of a demo layer (``img`` or ``img_norm``) in ``directory``."""
    if layer not in LAYER_NAMES:
        raise ValueError(f"layer: expected one of {LAYER_NAMES}, got {layer!r}")
    return f"file://{_strip_scheme(directory).rstrip('/')}/{layer}"


def _strip_scheme(directory: str) -> str:
    if not isinstance(directory, str) or not directory.strip():
        raise ValueError(f"directory: expected a local directory, got {directory!r}")
    if "://" in directory:
        scheme, rest = directory.split("://", 1)
        if scheme != "file":
            raise ValueError(
                f"directory: the demo volume is written to a local directory (or file:// path), "
                f"got {directory!r}"
            )
        return rest
    return directory


def get_region(name: str) -> DemoRegion:
    for region in DEMO_REGIONS:
        if region.name == name:
            return region
    raise ValueError(
        f"regions: unknown region {name!r}; expected some of {', '.join(REGION_NAMES)}"
    )


def normalise_img(img: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
    """``img_norm`` from ``img``: ``(img - IMG_MEAN) / IMG_STD`` in float32."""
    return (img.astype(np.float32) - np.float32(IMG_MEAN)) / np.float32(IMG_STD)


def _info_kwargs(data_type: str) -> dict[str, Any]:
    return {
        "info_type": "image",
        "info_data_type": data_type,
        "info_num_channels": 1,
        "info_encoding": "raw",
        "info_voxel_offset": (0, 0, 0),
        "info_dataset_size": DATASET_SIZE,
        "info_chunk_size": CHUNK_SIZES[RESOLUTIONS[0]],  # each scale's own chunk size below wins
        "info_scales": [
            {"resolution": list(r), "chunk_sizes": [list(CHUNK_SIZES[r])]} for r in RESOLUTIONS
        ],
    }


# --- planning ------------------------------------------------------------------------------


@attrs.frozen
class _Tile:
    """One rendering: voxels ``start`` + ``shape`` of section ``z`` at the region's resolution,
    plus the sections that are copies of it."""

    region: DemoRegion
    start: tuple[int, int]
    shape: tuple[int, int]
    z: int
    copies: tuple[int, ...]


def _check_tile(tile: _Tile) -> None:
    """A tile must cover whole chunks at every scale it is written to."""
    region = tile.region
    for res in region.scales():
        f = res[0] // region.resolution[0]
        step = [f * c for c in CHUNK_SIZES[res][:2]]
        if (
            res[0] % region.resolution[0]
            or res[1] != f * region.resolution[1]
            or res[2] != region.resolution[2]
        ):
            raise ValueError(
                f"demo region {region.name}: {res} is not an xy multiple of {region.resolution}"
            )
        if any(tile.start[d] % step[d] or tile.shape[d] % step[d] for d in range(2)):
            raise ValueError(
                f"demo region {region.name}: tile {tile.start} + {tile.shape} "
                f"is not whole chunks at {res}"
            )


def _plan(regions: Sequence[DemoRegion], period: int) -> list[_Tile]:
    if period < 1:
        raise ValueError(f"z_period: expected a positive number of sections, got {period}")
    tiles: list[_Tile] = []
    for region in regions:
        z0, z1 = region.start[2], region.stop[2]
        for z in range(z0, min(z1, z0 + period)):
            copies = tuple(range(z + period, z1, period))
            for x in range(region.start[0], region.stop[0], _TILE):
                for y in range(region.start[1], region.stop[1], _TILE):
                    shape = (min(_TILE, region.stop[0] - x), min(_TILE, region.stop[1] - y))
                    tile = _Tile(region, (x, y), shape, z, copies)
                    _check_tile(tile)
                    tiles.append(tile)
    return tiles


def _check_disjoint(regions: Sequence[DemoRegion]) -> None:
    """Two regions may not store data in the same chunks of one scale."""
    boxes: list[tuple[str, Res, tuple[int, int, int], tuple[int, int, int]]] = []
    for region in regions:
        for res in region.scales():
            start, stop = region.box_at(res)
            for name, other_res, o_start, o_stop in boxes:
                if other_res == res and all(
                    start[d] < o_stop[d] and o_start[d] < stop[d] for d in range(3)
                ):
                    raise ValueError(f"demo regions {name} and {region.name} overlap at {res}")
            boxes.append((region.name, res, start, stop))


# --- writing -------------------------------------------------------------------------------


@attrs.frozen
class DemoVolume:
    """What :func:`write_demo_volume` made (or found)."""

    directory: str
    layers: dict[str, str]
    regions: tuple[str, ...]
    seed: int
    generated: bool
    seconds: float
    bytes_on_disk: int  # each file counted once however many names it has
    bytes_apparent: int  # what copying the directory without links would take


def _render(
    args: tuple[TissueParams, Res, tuple[int, int], tuple[int, int], int],
) -> npt.NDArray[np.uint8]:
    params, res, start, shape, z = args
    return render_section(params, res, start, shape, z)


def _manifest(directory: str) -> dict[str, Any] | None:
    try:
        with open(os.path.join(directory, MANIFEST_NAME), encoding="utf-8") as f:
            data = json.load(f)
    except (FileNotFoundError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write_demo_volume(
    directory: str = DEFAULT_DEMO_DIR,
    *,
    regions: Sequence[str] | None = None,
    seed: int = 0,
    threads: int | None = None,
    force: bool = False,
    log: Callable[[str], None] | None = None,
) -> DemoVolume:
    """Write the demo volume (``img`` and ``img_norm``) into ``directory``.

    :param directory: a local directory or ``file://`` path (``~`` expanded).
    :param regions: names from :data:`REGION_NAMES` to write (default: all). Each region's
        bytes do not depend on which others are written.
    :param seed: the procedural tissue's seed (the guide's values are for seed 0).
    :param threads: threads rendering in parallel (default: one per CPU, up to 4).
    :param force: write even when the manifest says the requested regions are there.
    :param log: called with progress messages.
    """
    t0 = time.perf_counter()
    local = os.path.abspath(os.path.expanduser(_strip_scheme(directory)))
    wanted = _check_arguments(regions, seed, threads)
    say = log or (lambda _msg: None)
    layers = {name: demo_layer_path(name, local) for name in LAYER_NAMES}

    manifest = _manifest(local)
    same_kind = _same_kind(manifest, seed)
    present = set(manifest.get("regions", [])) if manifest is not None and same_kind else set()
    todo = wanted if force else [r for r in wanted if r.name not in present]
    if not todo:
        on_disk, apparent = disk_usage(local)
        seconds = time.perf_counter() - t0
        return DemoVolume(
            local, layers, tuple(sorted(present)), seed, False, seconds, on_disk, apparent
        )
    if manifest is not None and not same_kind:
        say(f"replacing the demo volume in {local} (version/seed changed)")
        _remove_layers(local)
        present = set()
    _check_disjoint(DEMO_REGIONS)

    os.makedirs(local, exist_ok=True)
    if manifest is None:
        _refuse_foreign_volumes(layers)
    backends = _open_layers(layers)
    _write_regions(local, backends, todo, TissueParams(seed=seed), threads, say)
    done = sorted(present | {r.name for r in todo})
    _write_manifest(local, _manifest_data(seed, done))
    on_disk, apparent = disk_usage(local)
    seconds = time.perf_counter() - t0
    say(f"wrote {on_disk / 1e6:.0f} MB in {seconds:.1f} s")
    return DemoVolume(local, layers, tuple(done), seed, True, seconds, on_disk, apparent)


def _check_arguments(
    regions: Sequence[str] | None, seed: int, threads: int | None
) -> list[DemoRegion]:
    """The regions asked for, after checking the seed, the regions and the threads."""
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed: expected a non-negative integer, got {seed!r}")
    if isinstance(regions, str):
        raise ValueError(f"regions: expected a list of region names, got the string {regions!r}")
    wanted = [get_region(n) for n in (REGION_NAMES if regions is None else regions)]
    if threads is not None and (
        isinstance(threads, bool) or not isinstance(threads, int) or threads < 1
    ):
        raise ValueError(f"threads: expected a positive integer or None, got {threads!r}")
    return wanted


def _same_kind(manifest: dict[str, Any] | None, seed: int) -> bool:
    """Whether the demo already in the directory is of this version and seed."""
    return (
        manifest is not None
        and manifest.get("version") == DEMO_VERSION
        and manifest.get("seed") == seed
    )


def _remove_layers(local: str) -> None:
    for name in LAYER_NAMES:
        shutil.rmtree(os.path.join(local, name), ignore_errors=True)


_DTYPES = {"img": "uint8", "img_norm": "float32"}


def _refuse_foreign_volumes(layers: dict[str, str]) -> None:
    """Without our manifest, an existing volume is only taken over if its info is exactly the
    demo's (an interrupted run); anything else is someone's data. Check all before writing."""
    for name in LAYER_NAMES:
        if read_info(layers[name]) is None:
            continue
        try:
            build_ts_layer(
                path=layers[name], on_info_exists="expect_same", **_info_kwargs(_DTYPES[name])
            )
        except (InfoMismatchError, ValueError) as e:
            raise FileExistsError(
                f"{layers[name]} already holds a volume that was not made by write_demo_volume "
                f"(no {MANIFEST_NAME} beside it, and its info is not the demo's: {e}); choose "
                "another directory"
            ) from None


def _open_layers(layers: dict[str, str]) -> dict[str, PrecomputedBackend]:
    """Each layer's backend, its info written (the demo's)."""
    backends: dict[str, PrecomputedBackend] = {}
    for name in LAYER_NAMES:
        backend = build_ts_layer(
            path=layers[name], on_info_exists="overwrite", **_info_kwargs(_DTYPES[name])
        ).backend
        assert isinstance(backend, PrecomputedBackend)
        backends[name] = backend
    return backends


def _write_regions(
    local: str,
    backends: dict[str, PrecomputedBackend],
    todo: Sequence[DemoRegion],
    params: TissueParams,
    threads: int | None,
    say: Callable[[str], None],
) -> None:
    """Render and store each repeating section's tiles, then link the sections that repeat."""
    tiles = _plan(todo, params.z_period)
    say(f"rendering {len(tiles)} tiles of regions {', '.join(r.name for r in todo)} into {local}")
    for tile, img in zip(tiles, _render_all(params, tiles, threads), strict=True):
        _store_tile(backends, tile, img)
    for name in LAYER_NAMES:
        _link_copies(os.path.join(local, name), backends[name].info, tiles)


def _manifest_data(seed: int, regions: list[str]) -> dict[str, Any]:
    return {
        "version": DEMO_VERSION,
        "seed": seed,
        "regions": regions,
        "img_mean": IMG_MEAN,
        "img_std": IMG_STD,
    }


def _render_all(
    params: TissueParams, tiles: Sequence[_Tile], threads: int | None
) -> Iterator[npt.NDArray[np.uint8]]:
    """The tiles' renderings, in order. NumPy releases the GIL in its array loops, so threads
    render in parallel without the start-up cost (and ``__main__`` re-import) of processes."""
    jobs = [(params, t.region.resolution, t.start, t.shape, t.z) for t in tiles]
    n = min(4, os.cpu_count() or 1) if threads is None else threads
    n = max(1, min(n, len(jobs)))
    if n == 1:
        yield from map(_render, jobs)
        return
    with concurrent.futures.ThreadPoolExecutor(
        max_workers=n, thread_name_prefix="demo-render"
    ) as pool:
        yield from pool.map(_render, jobs)


def _store_tile(
    backends: dict[str, PrecomputedBackend], tile: _Tile, img: npt.NDArray[np.uint8]
) -> None:
    region = tile.region
    data = torch.from_numpy(np.ascontiguousarray(img)[None, :, :, None])
    res = region.resolution
    start = Vec3D(tile.start[0], tile.start[1], tile.z)
    for coarse in region.scales():
        f = coarse[0] // res[0]
        if f > 1:
            level = interpolate(data, scale_factor=(1 / f, 1 / f, 1), mode="img")
        else:
            level = data
        c_start = Vec3D(start[0] // f, start[1] // f, tile.z)
        idx = VolumetricIndex.from_coords(c_start, c_start + Vec3D(*level.shape[1:]), coarse)
        backends["img"].write(idx, level)
        backends["img_norm"].write(idx, torch.from_numpy(normalise_img(level.numpy())))


def _chunk_names(region: DemoRegion, res: Res, z: int) -> Iterator[str]:
    start, stop = region.box_at(res)
    chunk = CHUNK_SIZES[res]
    size = [DATASET_SIZE[d] * RESOLUTIONS[0][d] // res[d] for d in range(3)]
    for x in range(start[0], stop[0], chunk[0]):
        for y in range(start[1], stop[1], chunk[1]):
            x1 = min(x + chunk[0], size[0])
            y1 = min(y + chunk[1], size[1])
            yield chunk_name((x, y, z), (x1, y1, z + 1))


def _link_copies(layer_dir: str, info: dict[str, Any], tiles: Sequence[_Tile]) -> None:
    """Give every repeated section the chunk files of the section it repeats."""
    keys = {tuple(int(v) for v in s["resolution"]): s["key"] for s in info["scales"]}
    seen: set[tuple[str, int]] = set()
    for tile in tiles:
        if not tile.copies or (tile.region.name, tile.z) in seen:
            continue
        seen.add((tile.region.name, tile.z))
        for res in tile.region.scales():
            scale_dir = os.path.join(layer_dir, keys[res])
            for name in _chunk_names(tile.region, res, tile.z):
                src = os.path.join(scale_dir, name)
                for z in tile.copies:
                    _link(src, os.path.join(scale_dir, name.rsplit("_", 1)[0] + f"_{z}-{z + 1}"))


def _link(src: str, dst: str) -> None:
    try:
        if os.path.samefile(src, dst):
            return
    except FileNotFoundError:
        pass
    tmp = f"{dst}.link-tmp"
    if os.path.lexists(tmp):
        os.unlink(tmp)
    try:
        os.link(src, tmp)
    except OSError:
        shutil.copyfile(src, tmp)  # file systems without hard links
    os.replace(tmp, dst)


def _write_manifest(directory: str, data: dict[str, Any]) -> None:
    tmp = os.path.join(directory, f".{MANIFEST_NAME}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2)
    os.replace(tmp, os.path.join(directory, MANIFEST_NAME))


def disk_usage(directory: str) -> tuple[int, int]:
    """Bytes of the files under ``directory``: counting each file once, and counting every
    name (what a copy without links would take)."""
    on_disk = apparent = 0
    seen: set[tuple[int, int]] = set()
    for root, _dirs, files in os.walk(directory):
        for name in files:
            st = os.lstat(os.path.join(root, name))
            apparent += st.st_size
            if (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                on_disk += st.st_size
    return on_disk, apparent
