"""VolumetricStridedIndexer: sample numbers to strided windows over a bounding box."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from zetta_utils import builder
from zetta_utils.geometry import BBox3D, Vec3D
from zetta_utils.layer.volumetric import VolumetricIndex
from zetta_utils.training import VolumetricStridedIndexer
from zetta_utils.training.datasets.sample_indexers import SampleIndexer

GUIDE_SPEC = {
    "@type": "VolumetricStridedIndexer",
    "bbox": {
        "@type": "BBox3D.from_coords",
        "start_coord": [1000, 1000, 2000],
        "end_coord": [2000, 2000, 2100],
        "resolution": [64, 64, 40],
    },
    "resolution": [64, 64, 40],
    "chunk_size": [128, 128, 1],
    "stride": [32, 32, 1],
    "mode": "shrink",
}


def window(
    start: tuple[int, int, int], size: tuple[int, int, int] = (128, 128, 1), chunk_id: int = 0
) -> VolumetricIndex:
    return VolumetricIndex.from_coords(
        start, Vec3D(*start) + Vec3D(*size), (64, 64, 40), chunk_id=chunk_id
    )


def test_guide_spec_shrink() -> None:
    indexer = builder.build(GUIDE_SPEC)
    assert isinstance(indexer, VolumetricStridedIndexer) and isinstance(indexer, SampleIndexer)
    assert indexer.counts == Vec3D(28, 28, 100) and len(indexer) == 78400
    assert indexer(0) == window((1000, 1000, 2000))
    assert indexer(1) == window((1032, 1000, 2000), chunk_id=1)  # x fastest
    assert indexer(28) == window((1000, 1032, 2000), chunk_id=28)
    assert indexer(784) == window((1000, 1000, 2001), chunk_id=784)
    assert indexer(78399) == window((1864, 1864, 2099), chunk_id=78399)
    assert indexer(-1) == indexer(78399)
    assert indexer.sample_of((27, 27, 99)) == 78399
    last = indexer(78399)
    assert last.bbox.end[0] <= indexer.bbox.end[0]  # inside the bbox


def test_guide_spec_expand_covers_the_bbox() -> None:
    indexer = builder.build({**GUIDE_SPEC, "mode": "expand"})
    assert indexer.counts == Vec3D(29, 29, 100) and len(indexer) == 84100
    last = indexer(len(indexer) - 1)
    assert last.start == Vec3D(1896, 1896, 2099) and last.stop == Vec3D(2024, 2024, 2100)


def test_out_of_range_and_non_integer_sample_numbers() -> None:
    indexer = builder.build(GUIDE_SPEC)
    with pytest.raises(IndexError, match="78400 samples"):
        indexer(78400)
    with pytest.raises(IndexError):
        indexer(-78401)
    with pytest.raises(TypeError, match="integer"):
        indexer(1.0)
    with pytest.raises(IndexError):
        indexer.sample_of((28, 0, 0))


def test_small_bbox() -> None:
    bbox = BBox3D.from_coords((0, 0, 0), (100, 100, 1), (64, 64, 40))
    expand = VolumetricStridedIndexer(
        bbox=bbox,
        resolution=(64, 64, 40),
        chunk_size=(128, 128, 1),
        stride=(64, 64, 1),
        mode="expand",
    )
    assert len(expand) == 1 and expand(0).shape == Vec3D(128, 128, 1)
    with pytest.raises(ValueError, match="smaller than chunk_size 128"):
        VolumetricStridedIndexer(
            bbox=bbox, resolution=(64, 64, 40), chunk_size=(128, 128, 1), stride=(64, 64, 1)
        )


def test_bbox_at_another_resolution() -> None:
    bbox = BBox3D.from_coords((0, 0, 0), (1024, 1024, 4), (4, 4, 40))  # 256 voxels at 16 nm
    indexer = VolumetricStridedIndexer(
        bbox=bbox, resolution=(16, 16, 40), chunk_size=(64, 64, 2), stride=(64, 64, 2)
    )
    assert indexer.counts == Vec3D(4, 4, 2)
    assert indexer(31).resolution == Vec3D(16, 16, 40) and indexer(31).start == Vec3D(192, 192, 2)
    odd = BBox3D.from_coords((2, 0, 0), (1024, 1024, 4), (4, 4, 40))
    with pytest.raises(ValueError, match="not a whole voxel"):
        VolumetricStridedIndexer(
            bbox=odd, resolution=(16, 16, 40), chunk_size=(64, 64, 2), stride=(64, 64, 2)
        )


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"chunk_size": (0, 128, 1)}, ValueError, "chunk_size"),
        ({"chunk_size": (1.5, 128, 1)}, ValueError, "chunk_size"),
        ({"stride": (32, -1, 1)}, ValueError, "stride"),
        ({"resolution": (64, 0, 40)}, ValueError, "resolution"),
        ({"mode": "grow"}, ValueError, "mode"),
        ({"bbox": ((0, 10), (0, 10), (0, 10))}, TypeError, "bbox"),
    ],
)
def test_bad_arguments(kwargs: dict, error: type[Exception], match: str) -> None:  # type: ignore[type-arg]
    args = {
        "bbox": BBox3D.from_coords((0, 0, 0), (256, 256, 2), (64, 64, 40)),
        "resolution": (64, 64, 40),
        "chunk_size": (128, 128, 1),
        "stride": (32, 32, 1),
    }
    args.update(kwargs)
    with pytest.raises(error, match=match):
        VolumetricStridedIndexer(**args)


@given(
    size=st.integers(1, 300),
    chunk=st.integers(1, 64),
    stride=st.integers(1, 80),
    mode=st.sampled_from(["shrink", "expand"]),
)
def test_windows_match_the_mode(size: int, chunk: int, stride: int, mode: str) -> None:
    """shrink: every window inside, and no further window would fit; expand: the windows cover
    the bbox, and one fewer would not."""
    bbox = BBox3D.from_coords((10, 0, 0), (10 + size, 1, 1), (1, 1, 1))
    if mode == "shrink" and size < chunk:
        with pytest.raises(ValueError):
            VolumetricStridedIndexer(
                bbox=bbox,
                resolution=(1, 1, 1),
                chunk_size=(chunk, 1, 1),
                stride=(stride, 1, 1),
                mode=mode,
            )
        return
    indexer = VolumetricStridedIndexer(
        bbox=bbox, resolution=(1, 1, 1), chunk_size=(chunk, 1, 1), stride=(stride, 1, 1), mode=mode
    )  # type: ignore[arg-type]
    n = len(indexer)
    ends = [indexer(i).stop[0] for i in range(n)]
    assert [indexer(i).start[0] for i in range(n)] == [10 + i * stride for i in range(n)]
    if mode == "shrink":
        assert ends[-1] <= 10 + size < ends[-1] + stride
    else:
        assert ends[-1] >= 10 + size and (n == 1 or ends[-2] < 10 + size)
    assert (
        n == (size - chunk) // stride + 1
        if mode == "shrink"
        else max(1, math.ceil((size - chunk) / stride) + 1)
    )
