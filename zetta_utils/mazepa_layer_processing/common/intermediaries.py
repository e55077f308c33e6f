"""Where the top level's overlapping chunk outputs wait for their reduction.

Each chunk's padded output is cut into pieces (see :mod:`.chunk_grid`): its *interior* (label
``B`` in every dim), which no other chunk overlaps, and its *frame*, the bands it shares with its
neighbours (and at the region's edge). Two precomputed volumes under the run's directory hold
them, raw-encoded with the destination's data type and channels:

* ``interior``: chunk ``(jx, jy, jz)``'s interior is tile ``(jx, jy, jz)``, one storage chunk;
* ``frame``: chunk ``k``'s frame pieces, each flattened x-fastest and concatenated in a fixed
  label order, are one row ``[0, F) x [0, 1) x [k, k+1)`` (``k`` the chunk's x-fastest number),
  one storage chunk.

Therefore every write is one whole storage chunk (chunk-aligned; no two tasks ever share one, so
no read-modify-write and no race, with any number of workers), a task writes two files whatever
the number of dims blended, nothing is stored twice, and a reduction reads the interiors it
needs exactly and the (thin) frames of the chunks around it whole.

A ``manifest.json`` next to them records the geometry, so a run with ``defer`` can be reduced
later (:func:`~.subchunkable_apply_flow.build_deferred_reduction_flow`).
"""

from __future__ import annotations

import functools
import itertools
import json
import math
import os
import shutil
import threading
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from zetta_utils.geometry import Vec3D
from zetta_utils.layer.volumetric import precomputed
from zetta_utils.tensor_ops import to_np_dtype

from .chunk_grid import LABEL_B, LABEL_C, AxisGrid, Box, ChunkGrid, Int3, RampCache
from .reduction import (
    Array,
    Weights,
    accumulator_dtype,
    combine_pieces,
    empty_xfast,
    to_output_dtype,
)

MANIFEST = "manifest.json"
INTERIOR = "interior"
FRAME = "frame"


def join_url(base: str, *names: str) -> str:
    url = precomputed.parse_path(base).url
    return "/".join([url.rstrip("/"), *names])


class PieceStore:
    """The piece volumes of one run's top level (see the module docstring)."""

    def __init__(
        self,
        path: str,
        resolution: Vec3D[float],
        grid: ChunkGrid,
        data_type: str,
        num_channels: int,
        region: Box | None = None,
    ):
        self.region = region
        self.path = precomputed.parse_path(path).url
        self.resolution = resolution
        self.grid = grid
        self.data_type = data_type
        self.num_channels = num_channels
        self._stores: dict[str, Any] = {}
        self._dirs: dict[str, str] = {}
        interior = (LABEL_B, LABEL_B, LABEL_B)
        self.interior: Int3 | None = interior if interior in grid.labels else None
        self.frame_labels: list[Int3] = [label for label in grid.labels if label != interior]
        # where each frame label's piece starts in a chunk's frame row
        self.frame_offsets: dict[Int3, int] = {}
        offset = 0
        for label in self.frame_labels:
            self.frame_offsets[label] = offset
            offset += math.prod(grid.tile_shape(label))
        self.frame_size = offset

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_stores"] = {}
        return state

    def mazepa_id_components(self) -> tuple[Any, ...]:
        return ("PieceStore", self.path)

    # --- layout ----------------------------------------------------------------------------------
    def volumes(self) -> list[str]:
        return ([INTERIOR] if self.interior is not None else []) + ([FRAME] if self.frame_labels else [])

    def volume_path(self, name: str) -> str:
        return join_url(self.path, name)

    def info(self, name: str) -> dict[str, Any]:
        counts = self.grid.counts
        if name == INTERIOR:
            assert self.interior is not None
            tile = list(self.grid.tile_shape(self.interior))
            size = [t * n for t, n in zip(tile, counts, strict=True)]
        else:
            tile = [self.frame_size, 1, 1]
            size = [self.frame_size, 1, counts[0] * counts[1] * counts[2]]
        return {
            "@type": "neuroglancer_multiscale_volume",
            "type": "image",
            "data_type": self.data_type,
            "num_channels": self.num_channels,
            "scales": [
                {
                    "key": precomputed.scale_key(self.resolution),
                    "resolution": [int(r) if float(r).is_integer() else float(r) for r in self.resolution],
                    "voxel_offset": [0, 0, 0],
                    "size": size,
                    "chunk_sizes": [tile],
                    "encoding": "raw",
                }
            ],
        }

    def manifest(self) -> dict[str, Any]:
        return {
            "resolution": list(self.resolution),
            "data_type": self.data_type,
            "num_channels": self.num_channels,
            "region": None if self.region is None else [list(self.region.start), list(self.region.stop)],
            "axes": [
                {"origin": ax.origin, "chunk": ax.chunk, "blend": ax.blend, "count": ax.count, "gap": ax.gap}
                for ax in self.grid.axes
            ],
        }

    @classmethod
    def from_manifest(cls, path: str) -> PieceStore:
        vpath = precomputed.parse_path(path)
        raw = precomputed.read_file(vpath, MANIFEST)
        if raw is None:
            raise FileNotFoundError(
                f"no {MANIFEST} at {vpath.url}: not the intermediaries directory of a deferred run"
            )
        m = json.loads(raw)
        axes = [AxisGrid(**a) for a in m["axes"]]
        region = None if m.get("region") is None else Box.of(*m["region"])
        return cls(
            vpath.url,
            Vec3D(*m["resolution"]),
            ChunkGrid((axes[0], axes[1], axes[2])),
            m["data_type"],
            m["num_channels"],
            region=region,
        )

    # --- lifecycle ---------------------------------------------------------------------------------
    def create(self) -> None:
        """Write the infos and the manifest (idempotent). Local files are not fsynced: the
        intermediaries live only as long as the run."""
        files = [(self.volume_path(name), "info", self.info(name)) for name in self.volumes()]
        files.append((self.path, MANIFEST, self.manifest()))
        for path, name, content in files:
            vpath = precomputed.parse_path(path)
            data = json.dumps(content, indent=1).encode()
            if vpath.is_local:
                os.makedirs(vpath.key, exist_ok=True)
                if name == "info":  # the scale's folder, where _write_chunks puts files
                    os.makedirs(os.path.join(vpath.key, precomputed.scale_key(self.resolution)), exist_ok=True)
                tmp = os.path.join(vpath.key, f".{name}.{os.getpid()}.tmp")
                with open(tmp, "wb") as f:
                    f.write(data)
                os.replace(tmp, os.path.join(vpath.key, name))
            else:
                precomputed.write_file(vpath, name, data)

    def delete(self) -> None:
        """Remove the run's directory and everything in it."""
        vpath = precomputed.parse_path(self.path)
        self._stores.clear()
        if vpath.is_local:
            shutil.rmtree(vpath.key, ignore_errors=True)
            return
        import tensorstore as ts

        kvstore = ts.KvStore.open(precomputed.tensorstore_kvstore_spec(vpath)).result()
        kvstore.delete_range(ts.KvStore.KeyRange()).result()

    def _store(self, name: str) -> Any:
        """The TensorStore handle of a volume (opened once per process)."""
        store = self._stores.get(name)
        if store is None:
            import tensorstore as ts

            from zetta_utils.layer.volumetric.tensorstore import file_io_sync_default

            spec = {
                "driver": "neuroglancer_precomputed",
                "kvstore": precomputed.tensorstore_kvstore_spec(precomputed.parse_path(self.volume_path(name))),
                "scale_metadata": {"key": precomputed.scale_key(self.resolution)},
                "fill_missing_data_reads": False,
                "store_data_equal_to_fill_value": True,
            }
            context = ts.Context({"file_io_sync": file_io_sync_default()})
            store = ts.open(spec, context=context, open=True, read=True, write=True).result()
            self._stores[name] = store
        return store

    def _linear(self, key: Int3) -> int:
        nx, ny, _ = self.grid.counts
        return key[0] + nx * (key[1] + ny * key[2])

    # --- I/O -----------------------------------------------------------------------------------------
    # Every read and write is of whole storage chunks. Local volumes are read and written as files
    # directly (a raw chunk is its array's bytes, channel slowest then z, y, x; written to a
    # temporary file and renamed, so a reader never sees half a chunk): several times faster than
    # TensorStore's general write path for these one-off files. Remote ones go through TensorStore.
    def _chunk_file(self, name: str, start: Int3, shape: Int3) -> str:
        key = "_".join(f"{a}-{a + n}" for a, n in zip(start, shape, strict=True))
        return os.path.join(self._scale_dir(name), key)

    def _scale_dir(self, name: str) -> str:
        """The local folder of a volume's chunk files."""
        folder = self._dirs.get(name)
        if folder is None:
            vpath = precomputed.parse_path(self.volume_path(name))
            folder = self._dirs[name] = os.path.join(vpath.key, precomputed.scale_key(self.resolution))
        return folder

    @functools.cached_property
    def _is_local(self) -> bool:
        return precomputed.parse_path(self.path).is_local

    def _write_chunks(self, chunks: list[tuple[str, Int3, Array]]) -> None:
        """Write each ``(volume, start, data)``: ``data`` (CXYZ) is one whole storage chunk."""
        if self._is_local:
            for name, start, data in chunks:
                path = self._chunk_file(name, start, data.shape[1:])
                tmp = f"{path}.{os.getpid()}.{threading.get_ident()}.tmp"
                # (C, z, y, x) C-order is the raw chunk's byte order
                raw = np.ascontiguousarray(data.transpose(0, 3, 2, 1))
                with open(tmp, "wb") as f:
                    raw.tofile(f)
                os.replace(tmp, path)
            return
        futures = []
        for name, start, data in chunks:
            stop = [a + n for a, n in zip(start, data.shape[1:], strict=True)]
            view = self._store(name)[start[0] : stop[0], start[1] : stop[1], start[2] : stop[2]]
            futures.append(view.write(data.transpose(1, 2, 3, 0)))
        for future in futures:
            future.result()

    def _read_chunks(self, chunks: list[tuple[str, Int3, Int3]]) -> list[Array]:
        """Read each ``(volume, start, shape)``, one whole storage chunk, as CXYZ arrays (views
        of x-fastest data)."""
        np_type = np.dtype(self.data_type)
        c = self.num_channels
        if self._is_local:
            result = []
            for name, start, shape in chunks:
                path = self._chunk_file(name, start, shape)
                count = c * math.prod(shape)
                try:
                    raw = np.fromfile(path, dtype=np_type)
                except FileNotFoundError:
                    raise FileNotFoundError(f"intermediary chunk {path} is missing: its task did not complete") from None
                if raw.size != count:
                    raise ValueError(f"intermediary chunk {path} holds {raw.size} values, expected {count}")
                result.append(raw.reshape(c, shape[2], shape[1], shape[0]).transpose(0, 3, 2, 1))
            return result
        futures = []
        for name, start, shape in chunks:
            stop = [a + n for a, n in zip(start, shape, strict=True)]
            view = self._store(name)[start[0] : stop[0], start[1] : stop[1], start[2] : stop[2]]
            futures.append(view.read(order="F"))
        return [future.result().transpose(3, 0, 1, 2) for future in futures]

    def write_chunk(self, key: Int3, output: Array) -> None:
        """Store the padded output of chunk ``key`` (CXYZ): its interior and its frame."""
        np_type = np.dtype(self.data_type)
        if output.dtype != np_type:
            output = to_output_dtype(output, np_type, "intermediaries")
        grid = self.grid
        chunks: list[tuple[str, Int3, Array]] = []
        if self.interior is not None:
            t = grid.tile_shape(self.interior)
            lo = [ax.offset_in_padded(LABEL_B) for ax in grid.axes]
            data = output[:, lo[0] : lo[0] + t[0], lo[1] : lo[1] + t[1], lo[2] : lo[2] + t[2]]
            chunks.append((INTERIOR, (key[0] * t[0], key[1] * t[1], key[2] * t[2]), data))
        if self.frame_labels:
            frame = np.empty((self.num_channels, self.frame_size), dtype=np_type)
            for label in self.frame_labels:
                t = grid.tile_shape(label)
                lo = [ax.offset_in_padded(lab) for ax, lab in zip(grid.axes, label, strict=True)]
                piece = output[:, lo[0] : lo[0] + t[0], lo[1] : lo[1] + t[1], lo[2] : lo[2] + t[2]]
                start = self.frame_offsets[label]
                # x-fastest per channel: (C, z, y, x) flattened
                frame[:, start : start + math.prod(t)] = piece.transpose(0, 3, 2, 1).reshape(self.num_channels, -1)
            chunks.append((FRAME, (0, 0, self._linear(key)), frame.reshape(self.num_channels, self.frame_size, 1, 1)))
        self._write_chunks(chunks)

    def _unpack(self, frame: Array, label: Int3) -> Array:
        """A frame label's piece (CXYZ) from a chunk's frame row (``(C, F)``)."""
        t = self.grid.tile_shape(label)
        start = self.frame_offsets[label]
        flat = frame[:, start : start + math.prod(t)]
        return flat.reshape(self.num_channels, t[2], t[1], t[0]).transpose(0, 3, 2, 1)

    def reduce_box(self, box: Box, dtype: Any, mode: str, what: str = "reduction") -> Array:
        """The combination (``mode``: a blend profile or ``max``) of every stored piece over
        ``box``, CXYZ of type ``dtype``; voxels no piece covers (gaps) are zeros.

        Per dim, the pieces' spans clipped to ``box`` are the *cells* of that dim (the bands of two
        neighbours coincide); a 3D cell is a product of them and its pieces the products of theirs.
        All pieces are read concurrently first, then each cell is combined at once."""
        grid = self.grid
        np_dtype = to_np_dtype(dtype)
        interior = self.interior
        axis_cells: list[list[tuple[tuple[int, int], list[tuple[int, int, int, Any]]]]] = []
        covered = True
        for d, ax in enumerate(grid.axes):
            lo, hi = box.start[d], box.stop[d]
            cells: dict[tuple[int, int], list[tuple[int, int, int, Any]]] = {}
            for j in ax.chunks_overlapping(lo, hi):
                for label in ax.labels:
                    a, b = ax.piece(j, label)
                    a2, b2 = max(a, lo), min(b, hi)
                    if a2 >= b2:
                        continue
                    # the weight along this dim: None (ones) or (falling, offset, length)
                    weight = (label == LABEL_C, a2 - a, b2 - a2) if mode != "max" and ax.shared(j, label) else None
                    cells.setdefault((a2, b2), []).append((j, label, a2 - a, weight))
            ordered = sorted(cells.items())
            covered = covered and sum(b - a for (a, b), _ in ordered) == hi - lo
            axis_cells.append(ordered)
        # what to read: the interiors' tiles and the frames of the chunks around
        tiles: set[Int3] = set()
        frame_keys: set[Int3] = set()
        for cx, cy, cz in itertools.product(*axis_cells):
            for (jx, lx, _, _), (jy, ly, _, _), (jz, lz, _, _) in itertools.product(cx[1], cy[1], cz[1]):
                (tiles if (lx, ly, lz) == interior else frame_keys).add((jx, jy, jz))
        wanted: list[tuple[str, Int3, Int3]] = []
        if interior is not None:
            t = grid.tile_shape(interior)
            wanted += [(INTERIOR, (k[0] * t[0], k[1] * t[1], k[2] * t[2]), t) for k in sorted(tiles)]
        wanted += [(FRAME, (0, 0, self._linear(k)), (self.frame_size, 1, 1)) for k in sorted(frame_keys)]
        arrays = self._read_chunks(wanted)
        read = {(name, start): array for (name, start, _), array in zip(wanted, arrays, strict=True)}

        pieces: dict[tuple[Int3, Int3], Array] = {}

        def piece_data(key: Int3, label: Int3) -> Array:
            data = pieces.get((key, label))
            if data is None:
                if label == interior:
                    t = grid.tile_shape(label)
                    data = read[INTERIOR, (key[0] * t[0], key[1] * t[1], key[2] * t[2])]
                else:
                    data = self._unpack(read[FRAME, (0, 0, self._linear(key))].reshape(self.num_channels, -1), label)
                pieces[key, label] = data
            return data

        out = empty_xfast(self.num_channels, box.shape, np_dtype, zero=not covered)
        acc_dtype = accumulator_dtype(np_dtype)
        pads = (grid.axes[0].blend, grid.axes[1].blend, grid.axes[2].blend)
        x0, y0, z0 = box.start
        for ((ax0, ax1), xs), ((ay0, ay1), ys), ((az0, az1), zs) in itertools.product(*axis_cells):
            nx, ny, nz = ax1 - ax0, ay1 - ay0, az1 - az0
            subs = []
            weights = []
            for (jx, lx, ox, wx), (jy, ly, oy, wy), (jz, lz, oz, wz) in itertools.product(xs, ys, zs):
                data = piece_data((jx, jy, jz), (lx, ly, lz))
                subs.append(data[:, ox : ox + nx, oy : oy + ny, oz : oz + nz])
                weights.append(None if wx is wy is wz is None else weight_product(mode, pads, (wx, wy, wz), acc_dtype))
            dst = out[:, ax0 - x0 : ax1 - x0, ay0 - y0 : ay1 - y0, az0 - z0 : az1 - z0]
            combine_pieces(dst, subs, weights, mode, what)
        return out


@functools.lru_cache(maxsize=8)
def ramp_cache(mode: str) -> RampCache:
    """The blend ramps of ``mode``, computed once per process."""
    return RampCache(mode if mode != "max" else "quadratic")


@functools.lru_cache(maxsize=4096)
def weight_product(mode: str, pads: Int3, specs: tuple[Any, Any, Any], dtype: np.dtype) -> Weights:
    """The weights over a piece's part: per dim ``None`` (ones) or ``(falling, offset, length)``
    of the dim's ramp (of half-width ``pads[d]``)."""
    ramps = ramp_cache(mode)
    per_dim = [None if spec is None else ramps.ramp(pads[d], spec[0]).numpy() for d, spec in enumerate(specs)]
    offsets = [0 if spec is None else spec[1] for spec in specs]
    lengths = [0 if spec is None else spec[2] for spec in specs]
    return Weights.of(per_dim, offsets, lengths, dtype)


def stored_data_type(backend: Any) -> str:
    """The precomputed data type that holds what ``backend`` reads back."""
    data_type = getattr(backend, "data_type", None)
    if isinstance(data_type, str):
        return data_type
    dtype = backend.dtype
    mapping: Mapping[torch.dtype, str] = {
        torch.uint8: "uint8",
        torch.int8: "int8",
        torch.int16: "int16",
        torch.int32: "int32",
        torch.int64: "uint64",  # precomputed has no int64; see the note in the flow's docstring
        torch.float32: "float32",
        torch.float64: "float32",
        torch.float16: "float32",
        torch.bool: "uint8",
    }
    if dtype not in mapping:
        raise ValueError(f"cannot store intermediaries of type {dtype} (the destination's)")
    return mapping[dtype]
