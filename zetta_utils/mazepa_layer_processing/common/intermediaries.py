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
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from zetta_utils.geometry import Vec3D
from zetta_utils.layer.volumetric import precomputed
from zetta_utils.tensor_ops import to_np_dtype

from .chunk_grid import LABEL_B, LABEL_C, AxisGrid, Box, ChunkGrid, Int3, RampCache
from .reduction import Array, accumulator_dtype, combine_pieces, empty_xfast, to_output_dtype

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
    def write_chunk(self, key: Int3, output: Array) -> None:
        """Store the padded output of chunk ``key`` (CXYZ): its interior and its frame, written
        concurrently."""
        np_type = np.dtype(self.data_type)
        if output.dtype != np_type:
            output = to_output_dtype(output, np_type, "intermediaries")
        grid = self.grid
        futures = []
        if self.interior is not None:
            t = grid.tile_shape(self.interior)
            lo = [ax.offset_in_padded(LABEL_B) for ax in grid.axes]
            data = output[:, lo[0] : lo[0] + t[0], lo[1] : lo[1] + t[1], lo[2] : lo[2] + t[2]]
            s = (key[0] * t[0], key[1] * t[1], key[2] * t[2])
            view = self._store(INTERIOR)[s[0] : s[0] + t[0], s[1] : s[1] + t[1], s[2] : s[2] + t[2]]
            # TensorStore copies a contiguous x-fastest array much faster than a strided view
            futures.append(view.write(np.asfortranarray(data.transpose(1, 2, 3, 0))))
        if self.frame_labels:
            frame = np.empty((self.frame_size, self.num_channels), dtype=np_type)
            for label in self.frame_labels:
                t = grid.tile_shape(label)
                lo = [ax.offset_in_padded(lab) for ax, lab in zip(grid.axes, label, strict=True)]
                piece = output[:, lo[0] : lo[0] + t[0], lo[1] : lo[1] + t[1], lo[2] : lo[2] + t[2]]
                start = self.frame_offsets[label]
                # x-fastest: (C, z, y, x) flattened per channel
                frame[start : start + math.prod(t)] = piece.transpose(3, 2, 1, 0).reshape(-1, self.num_channels)
            k = self._linear(key)
            view = self._store(FRAME)[0 : self.frame_size, 0:1, k : k + 1]
            futures.append(view.write(frame.reshape(self.frame_size, 1, 1, self.num_channels)))
        for future in futures:
            future.result()

    def _unpack(self, frame: Array, label: Int3) -> Array:
        """A frame label's piece (CXYZ) from a chunk's frame row (``(F, C)``)."""
        t = self.grid.tile_shape(label)
        start = self.frame_offsets[label]
        flat = frame[start : start + math.prod(t)]
        return flat.reshape(t[2], t[1], t[0], self.num_channels).transpose(3, 2, 1, 0)

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
        # what to read: the interiors' tiles (one block) and the frames of the other chunks
        frame_keys: set[Int3] = set()
        for cx, cy, cz in itertools.product(*axis_cells):
            for (jx, lx, _, _), (jy, ly, _, _), (jz, lz, _, _) in itertools.product(cx[1], cy[1], cz[1]):
                if (lx, ly, lz) != interior:
                    frame_keys.add((jx, jy, jz))
        interior_read = None
        if interior is not None:
            ranges = grid.touching(interior, box)
            if all(len(r) for r in ranges):
                t = grid.tile_shape(interior)
                lo3 = [r.start * s for r, s in zip(ranges, t, strict=True)]
                hi3 = [r.stop * s for r, s in zip(ranges, t, strict=True)]
                view = self._store(INTERIOR)[lo3[0] : hi3[0], lo3[1] : hi3[1], lo3[2] : hi3[2]]
                interior_read = (ranges, t, view.read(order="F"))
        frame_reads = []
        numbers = sorted(self._linear(key) for key in frame_keys)
        for _, run in itertools.groupby(enumerate(numbers), lambda p: p[1] - p[0]):
            members = [n for _, n in run]
            view = self._store(FRAME)[0 : self.frame_size, 0:1, members[0] : members[-1] + 1]
            frame_reads.append((members[0], view.read(order="F")))
        frames: dict[int, Array] = {}
        for first, future in frame_reads:
            rows = future.result()  # (F, 1, n, C)
            for i in range(rows.shape[2]):
                frames[first + i] = rows[:, 0, i, :]
        interiors: Array | None = None
        if interior_read is not None:
            ranges, t, future = interior_read
            interiors = future.result().transpose(3, 0, 1, 2)

        def piece_data(key: Int3, label: Int3) -> Array:
            if label == interior:
                assert interiors is not None and interior_read is not None
                r, t = interior_read[0], interior_read[1]
                o = [(key[d] - r[d].start) * t[d] for d in range(3)]
                return interiors[:, o[0] : o[0] + t[0], o[1] : o[1] + t[1], o[2] : o[2] + t[2]]
            return self._unpack(frames[self._linear(key)], label)

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
def weight_product(mode: str, pads: Int3, specs: tuple[Any, Any, Any], dtype: np.dtype) -> Array:
    """The weights over a piece's part: per dim ``None`` (ones) or ``(falling, offset, length)``
    of the dim's ramp (of half-width ``pads[d]``), multiplied into an array broadcasting against
    CXYZ data."""
    ramps = ramp_cache(mode)
    result: Array | None = None
    for d, spec in enumerate(specs):
        if spec is None:
            continue
        falling, offset, length = spec
        part = ramps.ramp(pads[d], falling).numpy()[offset : offset + length].astype(dtype)
        view = [1, 1, 1, 1]
        view[d + 1] = length
        part = part.reshape(view)
        result = part if result is None else result * part
    assert result is not None
    return result


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
