import pickle

import pytest
from hypothesis import given
from hypothesis import strategies as st

from zetta_utils.geometry import BBox3D, Vec3D

RES = Vec3D(4, 4, 30)


def test_guide_repr_and_pformat() -> None:
    b = BBox3D.from_coords(Vec3D(0, 0, 0), Vec3D(5, 7, 11), RES)
    assert (
        repr(b)
        == "BBox3D(bounds=((0, 20), (0, 28), (0, 330)), unit='nm', pprint_px_resolution=(1, 1, 1))"
    )
    assert b.pformat(RES) == "(0.0, 0.0, 0.0) - (5.0, 7.0, 11.0)"
    c = b.cropped(Vec3D(1, 2, 3), RES)
    assert repr(c) == (
        "BBox3D(bounds=((4.0, 16.0), (8.0, 20.0), (90.0, 240.0)), unit='nm', "
        "pprint_px_resolution=(1, 1, 1))"
    )
    p = b.padded(Vec3D(1, 2, 3), RES)
    assert p.pformat(RES) == "(-1.0, -2.0, -3.0) - (6.0, 9.0, 14.0)"


def test_accessors() -> None:
    b = BBox3D.from_coords((1, 2, 3), (5, 7, 11), RES)
    assert b.start == Vec3D(4, 8, 90)
    assert b.end == Vec3D(20, 28, 330)
    assert b.shape == Vec3D(16, 20, 240)
    assert b.shape_at(RES) == Vec3D(4.0, 5.0, 8.0)
    assert b.start_at(RES) == Vec3D(1.0, 2.0, 3.0)
    assert b.get_size() == 16 * 20 * 240
    assert b.to_slices(RES) == (slice(1, 5), slice(2, 7), slice(3, 11))
    assert BBox3D.from_slices(b.to_slices(RES), RES) == b


def test_from_slices_validation() -> None:
    with pytest.raises(ValueError, match="explicit start"):
        BBox3D.from_slices((slice(None, 3), slice(0, 1), slice(0, 1)))
    with pytest.raises(ValueError, match="step 1"):
        BBox3D.from_slices((slice(0, 3, 2), slice(0, 1), slice(0, 1)))


def test_invalid_bounds() -> None:
    with pytest.raises(ValueError, match="must not precede"):
        BBox3D.from_coords((5, 0, 0), (1, 1, 1))
    with pytest.raises(ValueError, match="resolution must be positive"):
        BBox3D.from_coords((0, 0, 0), (1, 1, 1), (0, 1, 1))


def test_to_slices_requires_alignment() -> None:
    b = BBox3D.from_coords((0, 0, 0), (10, 10, 1), (1, 1, 1))
    with pytest.raises(ValueError, match="not aligned"):
        b.to_slices((4, 4, 1))
    assert b.to_slices((4, 4, 1), allow_slice_rounding=True) == (
        slice(0, 2),
        slice(0, 2),
        slice(0, 1),
    )


def test_asymmetric_pad_and_translate() -> None:
    b = BBox3D.from_coords((0, 0, 0), (10, 10, 10))
    p = b.padded(((1, 2), (0, 0), (3, 0)), (1, 1, 1))
    assert p.start == Vec3D(-1, 0, -3) and p.end == Vec3D(12, 10, 10)
    t = b.translated((1, -2, 3), (2, 2, 2))
    assert t.start == Vec3D(2, -4, 6)
    with pytest.raises(ValueError, match="exceeds"):
        b.cropped((6, 0, 0), (1, 1, 1))


@pytest.mark.parametrize(
    "pad, message",
    [
        (None, "`pad` must be three numbers or three (before, after) pairs, got None"),
        (
            ((1, 2), (3,), (0, 0)),
            "`pad` must be three numbers or three (before, after) pairs, "
            "got ((1, 2), (3,), (0, 0))",
        ),
        ((1, 2), "`pad` must have three elements, got (1, 2)"),
    ],
)
def test_bad_pads_are_named(pad: object, message: str) -> None:
    b = BBox3D.from_coords((0, 0, 0), (10, 10, 10))
    with pytest.raises(ValueError) as e:
        b.padded(pad, (1, 1, 1))
    assert str(e.value) == message


def test_intersection_contains_supremum() -> None:
    a = BBox3D.from_coords((0, 0, 0), (10, 10, 10))
    b = BBox3D.from_coords((5, 5, 5), (15, 15, 15))
    i = a.intersection(b)
    assert i == BBox3D.from_coords((5, 5, 5), (10, 10, 10))
    assert a.intersects(b)
    far = BBox3D.from_coords((20, 20, 20), (30, 30, 30))
    assert not a.intersects(far)
    assert a.intersection(far).is_empty()
    assert a.contains(i) and not a.contains(b)
    assert a.contains((0, 0, 0)) and not a.contains((10, 0, 0))
    assert a.supremum(b) == BBox3D.from_coords((0, 0, 0), (15, 15, 15))


def test_snapped_modes() -> None:
    b = BBox3D.from_coords((3, 3, 3), (13, 13, 13))
    assert b.snapped((0, 0, 0), (4, 4, 4), "expand") == BBox3D.from_coords((0, 0, 0), (16, 16, 16))
    assert b.snapped((0, 0, 0), (4, 4, 4), "shrink") == BBox3D.from_coords((4, 4, 4), (12, 12, 12))
    assert b.snapped((0, 0, 0), (4, 4, 4), "round") == BBox3D.from_coords((4, 4, 4), (12, 12, 12))
    assert b.snapped((1, 1, 1), (4, 4, 4), "expand") == BBox3D.from_coords((1, 1, 1), (13, 13, 13))
    with pytest.raises(ValueError, match="snapping mode"):
        b.snapped((0, 0, 0), (4, 4, 4), "outward")  # type: ignore[arg-type]


def test_split_on_grid() -> None:
    b = BBox3D.from_coords((3, 0, 0), (13, 4, 1))
    chunks = b.split((4, 4, 1), (1, 1, 1), grid_offset=(0, 0, 0))
    assert [c.bounds[0] for c in chunks] == [(3, 4), (4, 8), (8, 12), (12, 13)]
    chunks = b.split((4, 4, 1), (1, 1, 1))
    assert [c.bounds[0] for c in chunks] == [(3, 7), (7, 11), (11, 13)]


def test_hash_eq_pickle() -> None:
    a = BBox3D.from_coords((0, 0, 0), (1, 2, 3), (4, 4, 40))
    b = BBox3D(bounds=((0.0, 4.0), (0.0, 8.0), (0.0, 120.0)))
    assert a == b and hash(a) == hash(b)
    assert pickle.loads(pickle.dumps(a)) == a


coords = st.integers(min_value=-1000, max_value=1000)
sizes = st.integers(min_value=1, max_value=200)
res_st = st.tuples(*[st.sampled_from([1, 2, 4, 8, 40, 30, 3])] * 3)


@st.composite
def boxes(draw: st.DrawFn) -> tuple[BBox3D, tuple[int, int, int]]:
    res = draw(res_st)
    start = [draw(coords) for _ in range(3)]
    size = [draw(sizes) for _ in range(3)]
    return BBox3D.from_coords(start, [s + d for s, d in zip(start, size)], res), res


@given(boxes(), st.tuples(*[st.integers(0, 50)] * 3))
def test_pad_then_crop_is_identity(
    box_res: tuple[BBox3D, tuple[int, int, int]], pad: tuple[int, int, int]
) -> None:
    box, res = box_res
    assert box.padded(pad, res).cropped(pad, res) == box


@given(
    boxes(),
    st.tuples(*[st.integers(-20, 20)] * 3),
    st.tuples(*[st.integers(1, 30)] * 3),
    st.sampled_from(["shrink", "expand", "round"]),
)
def test_snapping_is_idempotent(box_res, offset, grid, mode) -> None:  # type: ignore[no-untyped-def]
    box, res = box_res
    off = [o * r for o, r in zip(offset, res)]
    size = [g * r for g, r in zip(grid, res)]
    once = box.snapped(off, size, mode)
    assert once.snapped(off, size, mode) == once
    for (lo, hi), o, s in zip(once.bounds, off, size):
        assert (lo - o) % s == 0 and (hi - o) % s == 0
    if mode == "expand":
        assert once.contains(box)
    if mode == "shrink" and not once.is_empty():  # no grid line inside: empty result
        assert box.contains(once)


@given(boxes(), st.tuples(*[st.integers(1, 8)] * 3), st.booleans())
def test_split_covers_exactly_without_overlap(box_res, parts_per_dim, on_grid) -> None:  # type: ignore[no-untyped-def]
    box, res = box_res
    # chunk sizes that give at most ~9 chunks per dimension, to keep examples small
    chunk = [max(1, int(s) // n) for s, n in zip(box.shape_at(res), parts_per_dim)]
    parts = box.split(chunk, res, grid_offset=(0, 0, 0) if on_grid else None)
    assert sum(p.get_size() for p in parts) == box.get_size()
    for p in parts:
        assert box.contains(p) and not p.is_empty()
        assert all(s <= c for s, c in zip(p.shape_at(res), chunk))
    # Disjoint: pairwise non-intersecting (sample for large splits)
    sample = parts[:40]
    for i, a in enumerate(sample):
        for b in sample[i + 1 :]:
            assert not a.intersects(b)
