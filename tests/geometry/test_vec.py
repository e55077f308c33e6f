import pickle

import numpy as np
import pytest

from zetta_utils.geometry import IntVec3D, Vec3D, to_vec3d


def test_guide_reprs() -> None:
    assert repr(Vec3D(1, 2, 3) * Vec3D(2, 3, 4)) == "Vec3D(2, 6, 12)"
    assert repr(Vec3D(1, 2, 3) / Vec3D(3, 2, 1)) == "Vec3D(0.3333333333333333, 1.0, 3.0)"
    assert repr(Vec3D(1, 2, 3) // Vec3D(3, 2, 1)) == "Vec3D(0, 1, 3)"
    assert repr(Vec3D(1, 2, 3) % Vec3D(3, 2, 1)) == "Vec3D(1, 0, 0)"


def test_construction_forms() -> None:
    assert Vec3D([1, 2, 3]) == Vec3D(1, 2, 3)
    assert Vec3D((1.5, 2, 3)) == Vec3D(1.5, 2, 3)
    assert Vec3D(Vec3D(1, 2, 3)) == Vec3D(1, 2, 3)
    assert IntVec3D(4, 5, 6) == Vec3D(4, 5, 6)
    assert repr(Vec3D(np.int64(3), np.float32(0.5), 1)) == "Vec3D(3, 0.5, 1)"
    with pytest.raises(ValueError, match="exactly three"):
        Vec3D(1, 2)
    with pytest.raises(TypeError, match="numbers"):
        Vec3D("a", 1, 2)
    with pytest.raises(TypeError, match="bool"):
        Vec3D(True, 1, 2)


def test_scalar_and_reverse_ops() -> None:
    v = Vec3D(2, 4, 6)
    assert v + 1 == Vec3D(3, 5, 7)
    assert 1 + v == Vec3D(3, 5, 7)
    assert 10 - v == Vec3D(8, 6, 4)
    assert v * 0.5 == Vec3D(1.0, 2.0, 3.0)
    assert 12 / v == Vec3D(6.0, 3.0, 2.0)
    assert 13 // v == Vec3D(6, 3, 2)
    assert 13 % v == Vec3D(1, 1, 1)
    assert -v == Vec3D(-2, -4, -6)
    assert abs(Vec3D(-1, 2, -3)) == Vec3D(1, 2, 3)
    assert v + [1, 1, 1] == Vec3D(3, 5, 7)


def test_numpy_scalars_become_python_numbers_in_results() -> None:
    """NumPy scalars (np.float64 subclasses float) never leak into elements, reprs or JSON."""
    for result in (
        Vec3D(2, 4, 6) + np.float64(0.5),
        Vec3D(2, 4, 6) * (np.int64(2), 1, np.float32(1.5)),
        Vec3D(np.float64(1.5), np.int32(2), 3),
    ):
        assert all(type(e) in (int, float) for e in result), repr(result)
    assert repr(Vec3D(2, 4, 6) + np.float64(0.5)) == "Vec3D(2.5, 4.5, 6.5)"


def test_sequence_protocol_and_hash() -> None:
    v = Vec3D(7, 8, 9)
    assert list(v) == [7, 8, 9]
    assert v[1] == 8 and v[-1] == 9 and v[:2] == (7, 8)
    assert (v.x, v.y, v.z) == (7, 8, 9)
    assert len(v) == 3
    assert v == (7, 8, 9)
    assert hash(v) == hash(Vec3D(7.0, 8.0, 9.0))
    assert {v: 1}[Vec3D(7, 8, 9)] == 1
    x, y, z = v
    assert (x, y, z) == (7, 8, 9)
    with pytest.raises(AttributeError):
        v._vec = (1, 2, 3)  # type: ignore[misc]


def test_comparisons_are_elementwise_all() -> None:
    assert Vec3D(1, 2, 3) < Vec3D(2, 3, 4)
    assert not Vec3D(1, 5, 3) < Vec3D(2, 3, 4)
    assert Vec3D(1, 2, 3) <= Vec3D(1, 2, 3)
    assert Vec3D(2, 3, 4) > 1
    assert Vec3D(2, 3, 4) >= Vec3D(2, 3, 4)


def test_rounding_helpers() -> None:
    v = Vec3D(1.6, -1.6, 2.5)
    assert v.int() == Vec3D(1, -1, 2)
    assert v.round() == Vec3D(2, -2, 2)
    assert round(v) == Vec3D(2, -2, 2)
    assert v.floor() == Vec3D(1, -2, 2)
    assert v.ceil() == Vec3D(2, -1, 3)
    assert Vec3D(2.0000000001, 3, 4).int_checked() == Vec3D(2, 3, 4)
    with pytest.raises(ValueError, match="whole numbers"):
        Vec3D(2.5, 3, 4).int_checked()
    assert Vec3D(1, 2, 3).prod() == 6
    assert Vec3D(0.1 + 0.2, 1, 1).allclose((0.3, 1, 1))


def test_pickle_and_to_vec3d() -> None:
    v = Vec3D(1, 2.5, 3)
    assert pickle.loads(pickle.dumps(v)) == v
    assert to_vec3d(2) == Vec3D(2, 2, 2)
    assert to_vec3d([1, 2, 3]) == Vec3D(1, 2, 3)
    with pytest.raises(ValueError, match="`res` must be three numbers"):
        to_vec3d([1, 2], "res")
