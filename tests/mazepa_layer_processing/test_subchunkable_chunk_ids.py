"""The ``chunk_id`` an operation sees in its index is numbered as the original numbers it: the
bottom-level chunks of a run get ``0 .. N-1``, each once, whatever executes them; and with
``dst`` None the function may return anything, nothing being written."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs
import cloudpickle
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from zetta_utils import mazepa
from zetta_utils.geometry import BBox3D
from zetta_utils.layer.volumetric import VolumetricIndex
from zetta_utils.mazepa_layer_processing import build_subchunkable_apply_flow
from zetta_utils.mazepa_layer_processing.common.chunk_numbering import ChunkNumbering

from .conftest import MakeVolume
from .helpers import RES, random_array, read_array, write_array

cloudpickle.register_pickle_by_value(sys.modules[__name__])

SIZE = (32, 32, 2)
Box3 = tuple[tuple[int, ...], tuple[int, ...]]


@attrs.frozen
class RecordIds:
    """Copies ``src`` (cropping ``crop_pad``) and leaves a file per call in ``folder`` naming the
    chunk id and holding the index's box, so that calls in worker processes are seen too."""

    folder: str
    crop_pad: tuple[int, int, int] = (0, 0, 0)

    def with_added_crop_pad(self, crop_pad: Sequence[int]) -> RecordIds:
        return attrs.evolve(
            self, crop_pad=tuple(a + int(b) for a, b in zip(self.crop_pad, crop_pad, strict=True))
        )  # type: ignore[arg-type]

    def __call__(self, idx: VolumetricIndex, dst: Any, src: Any = None) -> None:
        box = [[int(v) for v in idx.start], [int(v) for v in idx.stop]]
        Path(self.folder, f"{idx.chunk_id}.{uuid.uuid4().hex}").write_text(json.dumps(box))
        if dst is not None:
            data = src[idx.padded(self.crop_pad)]
            cx, cy, cz = self.crop_pad
            dst[idx] = data[
                :, cx : data.shape[1] - cx, cy : data.shape[2] - cy, cz : data.shape[3] - cz
            ]


def recorded(folder: Path) -> dict[int, Box3]:
    """Chunk id -> the box of the index it came with; every id must have come once."""
    ids: dict[int, Box3] = {}
    for path in folder.iterdir():
        chunk_id = int(path.name.split(".")[0])
        assert chunk_id not in ids, f"chunk id {chunk_id} seen twice"
        start, stop = json.loads(path.read_text())
        ids[chunk_id] = (tuple(start), tuple(stop))
    return ids


def originals_numbering(
    start: Sequence[int],
    stop: Sequence[int],
    chunks: Sequence[Sequence[int]],
    crops: Sequence[Sequence[int]],
    blends: Sequence[Sequence[int]],
    gap: Sequence[int] = (0, 0, 0),
) -> dict[int, Box3]:
    """The original's numbering, worked out its way (not this project's): each level runs its
    chunkers over the box it is given, counting chunks in the order they come, and gives each
    chunk the id of the chunk above plus its position times the bottom chunks it holds. A level
    that blends, or crops the level above's output, runs 8 chunkers of stride 2 chunks over the
    box padded by both (phases x, y, z nested in that order); the others one chunker."""
    levels = len(chunks)
    per_chunk = []  # chunks of each level per chunk of the level above
    for i in range(levels):
        if i == 0:
            size, g = [b - a for a, b in zip(start, stop, strict=True)], list(gap)
        else:
            size, g = (
                [
                    c + 2 * r + 2 * b
                    for c, r, b in zip(chunks[i - 1], crops[i - 1], blends[i - 1], strict=True)
                ],
                [0, 0, 0],
            )
        per_chunk.append(math.prod((size[d] + g[d]) // (chunks[i][d] + g[d]) for d in range(3)))
    bottom_per = [math.prod(per_chunk[i + 1 :]) for i in range(levels)]
    result: dict[int, Box3] = {}

    def stride_boxes(
        lo: Sequence[int], hi: Sequence[int], size: Sequence[int], stride: Sequence[int]
    ) -> list[Box3]:
        ranges = [range(lo[d], hi[d] - size[d] + 1, stride[d]) for d in range(3)]
        return [
            ((x, y, z), (x + size[0], y + size[1], z + size[2]))
            for z in ranges[2]
            for y in ranges[1]
            for x in ranges[0]
        ]

    def visit(i: int, box: Box3, chunk_id: int) -> None:
        if i == levels - 1:
            assert chunk_id not in result
            result[chunk_id] = box
        else:
            level(i + 1, box, chunk_id)

    def level(i: int, box: Box3, first_id: int) -> None:
        roi = crops[i - 1] if i > 0 else (0, 0, 0)
        chunk, blend = chunks[i], blends[i]
        if any(blend) or any(roi):
            lo = [a - r - b for a, r, b in zip(box[0], roi, blend, strict=True)]
            hi = [a + r + b for a, r, b in zip(box[1], roi, blend, strict=True)]
            next_id = first_id
            for phase in [(x, y, z) for x in range(2) for y in range(2) for z in range(2)]:
                boxes = stride_boxes(
                    [lo[d] + phase[d] * chunk[d] for d in range(3)],
                    hi,
                    [c + 2 * b for c, b in zip(chunk, blend, strict=True)],
                    [2 * c for c in chunk],
                )
                for m, sub in enumerate(boxes):
                    visit(i, sub, next_id + m * bottom_per[i])
                next_id += len(boxes) * bottom_per[i]
        else:
            g = gap if i == 0 else (0, 0, 0)
            for m, sub in enumerate(
                stride_boxes(box[0], box[1], chunk, [c + s for c, s in zip(chunk, g, strict=True)])
            ):
                visit(i, sub, first_id + m * bottom_per[i])

    level(0, (tuple(start), tuple(stop)), 0)
    return result


CONFIGS: dict[str, dict[str, Any]] = {
    "one level, blended": {
        "processing_chunk_sizes": [[16, 16, 1]],
        "processing_crop_pads": [[0, 0, 0]],
        "processing_blend_pads": [[2, 2, 0]],
    },
    "two levels, cropped and blended": {
        "processing_chunk_sizes": [[16, 16, 1], [8, 8, 1]],
        "processing_crop_pads": [[2, 2, 0], [1, 1, 0]],
        "processing_blend_pads": [[2, 2, 0], [2, 2, 0]],
    },
    "two levels, only the lower blended": {
        "processing_chunk_sizes": [[16, 16, 2], [8, 8, 1]],
        "processing_crop_pads": [[0, 0, 0], [0, 0, 0]],
        "processing_blend_pads": [[0, 0, 0], [2, 2, 0]],
    },
    "two levels, straight to dst": {
        "processing_chunk_sizes": [[16, 16, 1], [8, 8, 1]],
        "processing_crop_pads": [[0, 0, 0], [0, 0, 0]],
        "processing_blend_pads": [[0, 0, 0], [0, 0, 0]],
    },
    "two levels, skip_intermediaries": {
        "processing_chunk_sizes": [[16, 16, 1], [8, 8, 1]],
        "processing_crop_pads": [[0, 0, 0], [1, 1, 0]],
        "processing_blend_pads": [[0, 0, 0], [0, 0, 0]],
        "skip_intermediaries": True,
    },
}


@pytest.mark.parametrize(
    "num_procs",
    [pytest.param(1, id="serial"), pytest.param(2, id="2 processes", marks=pytest.mark.slow)],
)
@pytest.mark.parametrize("config", list(CONFIGS))
def test_operations_see_the_originals_chunk_ids_each_once(
    tmp_path: Path, make_volume: MakeVolume, config: str, num_procs: int
) -> None:
    kwargs = dict(CONFIGS[config])
    src = make_volume("src", size=SIZE, chunk=(8, 8, 1))
    data = random_array((1, *SIZE), "uint8", seed=2)
    write_array(src, data)
    dst = make_volume("dst", size=SIZE, chunk=(8, 8, 1))
    folder = tmp_path / "ids"
    folder.mkdir()
    if not kwargs.get("skip_intermediaries"):
        kwargs["level_intermediaries_dirs"] = [f"file://{tmp_path}/tmp"] * len(
            kwargs["processing_chunk_sizes"]
        )
    flow = build_subchunkable_apply_flow(
        dst=dst,
        dst_resolution=RES,
        bbox=BBox3D.from_coords((0, 0, 0), SIZE, RES),
        op=RecordIds(str(folder)),
        op_kwargs={"src": src},
        verbose=False,
        **kwargs,
    )
    mazepa.execute(flow, show_progress=False, num_procs=num_procs)

    seen = recorded(folder)
    expected = originals_numbering(
        (0, 0, 0),
        SIZE,
        kwargs["processing_chunk_sizes"],
        kwargs["processing_crop_pads"],
        kwargs["processing_blend_pads"],
    )
    assert sorted(seen) == list(range(len(expected)))
    assert seen == expected
    assert np.array_equal(
        read_array(dst, (0, 0, 0), SIZE), data
    )  # the ids did not disturb the output


def test_chunks_lying_in_the_crop_above_are_not_computed_and_the_rest_keep_their_ids(
    tmp_path: Path, make_volume: MakeVolume
) -> None:
    """A top crop of 8 around chunks of 16, split into chunks of 8: of the 4 x 4 lower chunks
    per top chunk, the outer 12 lie in the crop. The original computes them and crops their
    output away; this project skips them (a deliberate difference): their ids are never seen,
    the others keep the original's."""
    src = make_volume("src", size=SIZE, chunk=(8, 8, 1))
    dst = make_volume("dst", size=SIZE, chunk=(8, 8, 1))
    data = random_array((1, *SIZE), "uint8", seed=4)
    write_array(src, data)
    chunks, crops, blends = [[16, 16, 1], [8, 8, 1]], [[8, 8, 0], [0, 0, 0]], [[0, 0, 0], [0, 0, 0]]
    flow = build_subchunkable_apply_flow(
        dst=dst,
        dst_resolution=RES,
        bbox=BBox3D.from_coords((0, 0, 0), SIZE, RES),
        op=RecordIds(str(tmp_path / "ids")),
        op_kwargs={"src": src},
        processing_chunk_sizes=chunks,
        processing_crop_pads=crops,
        processing_blend_pads=blends,
        level_intermediaries_dirs=[f"file://{tmp_path}/tmp"] * 2,
        verbose=False,
    )
    (tmp_path / "ids").mkdir()
    mazepa.execute(flow, show_progress=False)
    seen = recorded(tmp_path / "ids")
    expected = originals_numbering((0, 0, 0), SIZE, chunks, crops, blends)
    assert len(expected) == 8 * 16
    assert len(seen) == 8 * 4
    assert set(seen.items()) <= set(expected.items())
    assert np.array_equal(read_array(dst, (0, 0, 0), SIZE), data)


def test_the_originals_own_chunk_id_case(tmp_path: Path) -> None:
    """The original's test of chunk ids, scaled down: three levels, no dst, straight writes,
    an op without arguments; 64 bottom chunks."""
    flow = build_subchunkable_apply_flow(
        None,
        RES,
        [[32, 32, 1], [16, 16, 1], [4, 4, 1]],
        bbox=BBox3D.from_coords((0, 0, 100), (32, 32, 101), RES),
        skip_intermediaries=True,
        op=RecordIds(str(tmp_path)),
        verbose=False,
    )
    mazepa.execute(flow, show_progress=False)
    seen = recorded(tmp_path)
    assert sorted(seen) == list(range(64))
    assert seen == originals_numbering(
        (0, 0, 100),
        (32, 32, 101),
        [[32, 32, 1], [16, 16, 1], [4, 4, 1]],
        [[0, 0, 0]] * 3,
        [[0, 0, 0]] * 3,
    )


def test_numbering_with_odd_counts_gaps_and_three_levels() -> None:
    """Phases of unequal sizes (odd counts), a processing_gap and three levels, against the
    original's way, without running anything."""
    # (top-level chunks per dim, chunk sizes, crop pads, blend pads, processing_gap)
    cases: list[
        tuple[tuple[int, int, int], list[list[int]], list[list[int]], list[list[int]], list[int]]
    ] = [
        ((3, 5, 3), [[10, 6, 2]], [[0, 0, 0]], [[2, 1, 1]], [0, 0, 0]),
        (
            (3, 2, 1),
            [[8, 8, 1], [4, 4, 1]],
            [[0, 0, 0], [0, 0, 0]],
            [[0, 0, 0], [0, 0, 0]],
            [2, 4, 0],
        ),
        (
            (3, 1, 2),
            [[12, 12, 1], [6, 6, 1], [2, 3, 1]],
            [[3, 3, 0], [0, 0, 0], [1, 0, 0]],
            [[0, 0, 0], [3, 3, 0], [0, 0, 0]],
            [0, 0, 0],
        ),
        (
            (1, 3, 2),
            [[6, 6, 2], [4, 4, 2], [2, 2, 1]],
            [[1, 1, 0], [0, 0, 1], [0, 0, 0]],
            [[0, 0, 0], [1, 1, 0], [1, 1, 0]],
            [0, 0, 0],
        ),
    ]
    for top, chunks, crops, blends, gap in cases:
        stop = [n * c + (n - 1) * g for n, c, g in zip(top, chunks[0], gap, strict=True)]
        numbering = ChunkNumbering.of(
            top, [tuple(c) for c in chunks], [tuple(c) for c in crops], [tuple(b) for b in blends]
        )  # type: ignore[misc]
        expected = originals_numbering((0, 0, 0), stop, chunks, crops, blends, gap)
        assert numbering.num_chunks == len(expected)
        ours = _walk(numbering, stop, chunks, crops, blends, gap)
        assert ours == expected


@st.composite
def level_configs(
    draw: st.DrawFn,
) -> tuple[tuple[int, int, int], list[list[int]], list[list[int]], list[list[int]], list[int]]:
    """Sizes that pass the flow's checks, made bottom-up: each level's padded chunk is a whole
    number of chunks of the level below."""
    levels = draw(st.integers(1, 3))
    chunks: list[list[int]] = [[draw(st.integers(1, 4)) for _ in range(3)]]
    crops: list[list[int]] = [[draw(st.integers(0, 2)) for _ in range(3)]]
    blends: list[list[int]] = [[draw(st.integers(0, c // 2)) for c in chunks[0]]]
    for _ in range(levels - 1):
        crop = [draw(st.integers(0, 2)) for _ in range(3)]
        chunk, blend = [], []
        for d in range(3):
            b = draw(st.integers(0, 2))
            k = draw(st.integers(1, 3))
            size = k * chunks[0][d] - 2 * crop[d] - 2 * b
            if size < max(1, 2 * b):  # too small for these pads: none in this dim
                crop[d], b, size = 0, 0, k * chunks[0][d]
            chunk.append(size)
            blend.append(b)
        chunks.insert(0, chunk)
        crops.insert(0, crop)
        blends.insert(0, blend)
    gap = [0, 0, 0] if any(blends[0]) else [draw(st.sampled_from([0, 2])) for _ in range(3)]
    top = (draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 2)))
    return top, chunks, crops, blends, gap


@settings(max_examples=150, deadline=None)
@given(level_configs())
def test_numbering_is_the_originals_for_any_sizes(
    config: tuple[
        tuple[int, int, int], list[list[int]], list[list[int]], list[list[int]], list[int]
    ],
) -> None:
    top, chunks, crops, blends, gap = config
    stop = [n * c + (n - 1) * g for n, c, g in zip(top, chunks[0], gap, strict=True)]
    numbering = ChunkNumbering.of(
        top, [tuple(c) for c in chunks], [tuple(c) for c in crops], [tuple(b) for b in blends]
    )  # type: ignore[misc]
    expected = originals_numbering((0, 0, 0), stop, chunks, crops, blends, gap)
    assert sorted(expected) == list(range(numbering.num_chunks))
    assert _walk(numbering, stop, chunks, crops, blends, gap) == expected


def _walk(
    numbering: ChunkNumbering,
    stop: Sequence[int],
    chunks: list[list[int]],
    crops: list[list[int]],
    blends: list[list[int]],
    gap: list[int],
) -> dict[int, Box3]:
    """Every bottom chunk's box by ``numbering``'s ids, walking the levels by chunk position."""
    out: dict[int, Box3] = {}

    def walk(
        i: int, lo: Sequence[int], n: Sequence[int], stride: Sequence[int], parent: int
    ) -> None:
        for jz in range(n[2]):
            for jy in range(n[1]):
                for jx in range(n[0]):
                    key = (jx, jy, jz)
                    core = [lo[d] + key[d] * stride[d] for d in range(3)]
                    cid = numbering.chunk_id(i, key, parent)
                    box_lo = [c - b for c, b in zip(core, blends[i], strict=True)]
                    box_hi = [c + s + b for c, s, b in zip(core, chunks[i], blends[i], strict=True)]
                    if i == len(chunks) - 1:
                        out[cid] = (tuple(box_lo), tuple(box_hi))
                        continue
                    sub_lo = [a - r for a, r in zip(box_lo, crops[i], strict=True)]
                    sub_n = [
                        (h - a + 2 * r) // c
                        for a, h, r, c in zip(box_lo, box_hi, crops[i], chunks[i + 1], strict=True)
                    ]
                    walk(i + 1, sub_lo, sub_n, chunks[i + 1], cid)

    walk(0, (0, 0, 0), numbering.counts[0], [c + g for c, g in zip(chunks[0], gap, strict=True)], 0)
    return out


# --- dst None: fn may return anything ------------------------------------------------------------


def test_with_dst_none_fn_may_return_anything_and_nothing_is_written(
    tmp_path: Path, make_volume: MakeVolume, capsys: pytest.CaptureFixture[str]
) -> None:
    src = make_volume("src", size=SIZE, chunk=(8, 8, 1))
    write_array(src, random_array((1, *SIZE), "uint8", seed=1))
    before = sorted(tmp_path.rglob("*"))
    calls = []
    for fn in (
        lambda src: print(tuple(src.shape)),
        lambda src: "not a tensor",
        lambda src: torch.zeros(1, 1, 1, 1),
    ):
        flow = build_subchunkable_apply_flow(
            dst=None,
            dst_resolution=RES,
            bbox=BBox3D.from_coords((0, 0, 0), SIZE, RES),
            fn=fn,
            op_kwargs={"src": src},
            processing_chunk_sizes=[[16, 16, 2], [8, 8, 1]],
            processing_crop_pads=[[0, 0, 0], [1, 1, 0]],
            skip_intermediaries=True,
            verbose=False,
        )
        mazepa.execute(flow, show_progress=False)
        calls.append(capsys.readouterr().out)
    # the function ran once per bottom chunk, on its input padded by the crop
    assert calls[0].splitlines() == ["(1, 10, 10, 1)"] * 32
    assert sorted(tmp_path.rglob("*")) == before


CUE_SPEC = """
#SRC_PATH: "file://{src}"
#BBOX: {{
	"@type": "BBox3D.from_coords"
	start_coord: [0, 0, 0]
	end_coord: [32, 32, 2]
	resolution: [4, 4, 40]
}}
#FLOW: {{
	"@type": "build_subchunkable_apply_flow"
	fn: {{
		"@type":    "lambda"
		lambda_str: "lambda src: print('chunk', tuple(src.shape))"
	}}
	processing_chunk_sizes: [[16, 16, 1]]
	processing_blend_pads: [[0, 0, 0]]
	processing_crop_pads: [[0, 0, 0]]
	skip_intermediaries: true
	dst_resolution: [4, 4, 40]
	bbox: #BBOX
	op_kwargs: src: {{
		"@type": "build_cv_layer"
		path:    #SRC_PATH
	}}
	dst: null
}}
"@type": "mazepa.execute"
target:  #FLOW
"""


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["json", "cue"])
def test_a_spec_with_dst_null_runs_through_zetta_run(
    tmp_path: Path, make_volume: MakeVolume, kind: str
) -> None:
    """As the original's test_uint8_no_dst spec: ``fn`` prints, returns None, nothing is written."""
    src = make_volume("src", size=SIZE, chunk=(8, 8, 1))
    write_array(src, random_array((1, *SIZE), "uint8", seed=1))
    if kind == "cue":
        (tmp_path / "spec.cue").write_text(CUE_SPEC.format(src=tmp_path / "src"))
    else:
        spec = {
            "@type": "mazepa.execute",
            "target": {
                "@type": "build_subchunkable_apply_flow",
                "dst": None,
                "dst_resolution": list(RES),
                "bbox": {
                    "@type": "BBox3D.from_coords",
                    "start_coord": [0, 0, 0],
                    "end_coord": list(SIZE),
                    "resolution": list(RES),
                },
                "fn": {
                    "@type": "lambda",
                    "lambda_str": "lambda src: print('chunk', tuple(src.shape))",
                },
                "op_kwargs": {"src": {"@type": "build_ts_layer", "path": f"file://{tmp_path}/src"}},
                "processing_chunk_sizes": [[16, 16, 1]],
                "skip_intermediaries": True,
            },
        }
        (tmp_path / "spec.json").write_text(json.dumps(spec))
    before = sorted(tmp_path.rglob("*"))
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}
    r = subprocess.run(
        [sys.executable, "-m", "zetta_utils.cli.main", "run", str(tmp_path / f"spec.{kind}")],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("chunk (1, 16, 16, 1)") == 8
    assert sorted(tmp_path.rglob("*")) == before
