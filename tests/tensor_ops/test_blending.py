import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from zetta_utils.tensor_ops import BLEND_MODES, BlendMode, get_blend_ramp, get_blend_weights

FAST = settings(max_examples=60, deadline=None)


def test_linear_hand_computed() -> None:
    weights = get_blend_weights((6, 1, 1), (1, 0, 0), mode="linear", dtype=torch.float64)
    expected = [1 / 3, 2 / 3, 1, 1, 2 / 3, 1 / 3]
    np.testing.assert_allclose(weights.flatten().numpy(), expected, rtol=1e-15)


def test_quadratic_hand_computed() -> None:
    # p = 1: u = k / 1.5 -> 2/3 (u^2/2 = 2/9) and 4/3 (1 - (2/3)^2/2 = 7/9)
    weights = get_blend_weights((1, 6, 1), (0, 1, 0), mode="quadratic", dtype=torch.float64)
    expected = [2 / 9, 7 / 9, 1, 1, 7 / 9, 2 / 9]
    np.testing.assert_allclose(weights.flatten().numpy(), expected, rtol=1e-15)
    # p = 2: u = k / 2.5 -> 0.4, 0.8, 1.2, 1.6
    ramp = get_blend_ramp(2, "quadratic")
    np.testing.assert_allclose(ramp.numpy(), [0.08, 0.32, 0.68, 0.92], rtol=1e-12)


def test_bump_hand_computed() -> None:
    # t = 1/3, 2/3: b(t) / (b(t) + b(1 - t)) with b(t) = exp(-1/t)
    def b(t: float) -> float:
        return math.exp(-1 / t)

    expected = [b(1 / 3) / (b(1 / 3) + b(2 / 3)), b(2 / 3) / (b(2 / 3) + b(1 / 3))]
    np.testing.assert_allclose(get_blend_ramp(1, "bump").numpy(), expected, rtol=1e-12)
    ramp = get_blend_ramp(50, "bump").numpy()
    assert np.all(np.diff(ramp) >= 0)
    assert np.all(np.diff(ramp[40:60]) > 0)
    assert ramp[0] < 1e-20  # flat at the ends
    assert ramp[-1] == 1.0  # 1 - 1e-20 rounds to 1


@pytest.mark.parametrize("mode", BLEND_MODES)
@pytest.mark.parametrize("pad", [0, 1, 2, 7, 400])
def test_ramps_are_complementary_and_increasing(mode: BlendMode, pad: int) -> None:
    ramp = get_blend_ramp(pad, mode)
    assert ramp.shape == (2 * pad,)
    np.testing.assert_allclose((ramp + ramp.flip(0)).numpy(), 1.0, rtol=0, atol=1e-15)
    if mode == "bump":  # flat to every order at the ends: saturates in float64 for big pads
        assert torch.all(ramp[1:] >= ramp[:-1])
    else:
        assert torch.all(ramp[1:] > ramp[:-1])
    assert torch.all((ramp >= 0) & (ramp <= 1))


def tile_1d(size_core: int, pad: int, count: int, mode: BlendMode) -> np.ndarray:
    """Sum of the weights of `count` chunks laid with stride `size_core`, over the region."""
    total = np.zeros(count * size_core + 2 * pad)
    for j in range(count):
        edges = ((j == 0, j == count - 1), (False, False), (False, False))
        w = get_blend_weights(
            (size_core + 2 * pad, 1, 1), (pad, 0, 0), mode, edges, dtype=torch.float64
        )
        total[j * size_core : j * size_core + size_core + 2 * pad] += w.flatten().numpy()
    return total[pad : pad + count * size_core]  # the region; the outer pads are discarded


@given(
    st.sampled_from(BLEND_MODES),
    st.integers(0, 6),
    st.integers(0, 8),
    st.integers(1, 5),
)
@FAST
def test_1d_tiling_sums_to_one(mode: BlendMode, pad: int, extra: int, count: int) -> None:
    core = 2 * pad + extra
    if core == 0:
        core = 1
    np.testing.assert_allclose(tile_1d(core, pad, count, mode), 1.0, rtol=0, atol=1e-12)


@given(
    st.sampled_from(BLEND_MODES),
    st.tuples(st.integers(0, 2), st.integers(0, 2), st.integers(0, 1)),
    st.tuples(st.integers(1, 3), st.integers(1, 3), st.integers(1, 2)),
)
@settings(max_examples=30, deadline=None)
def test_3d_tiling_sums_to_one(
    mode: BlendMode, pads: tuple[int, int, int], counts: tuple[int, int, int]
) -> None:
    cores = tuple(max(2 * p, 1) + 1 for p in pads)
    region = [n * c for n, c in zip(counts, cores, strict=True)]
    total = np.zeros([r + 2 * p for r, p in zip(region, pads, strict=True)], dtype=np.float32)
    for index in np.ndindex(*counts):
        edges = tuple((i == 0, i == n - 1) for i, n in zip(index, counts, strict=True))
        shape = tuple(c + 2 * p for c, p in zip(cores, pads, strict=True))
        w = get_blend_weights(shape, pads, mode, edges).numpy()
        starts = [i * c for i, c in zip(index, cores, strict=True)]
        total[tuple(slice(s, s + n) for s, n in zip(starts, shape, strict=True))] += w
    inner = total[tuple(slice(p, p + r) for p, r in zip(pads, region, strict=True))]
    np.testing.assert_allclose(inner, 1.0, rtol=0, atol=1e-6)


def test_without_edges_the_region_boundary_loses_weight() -> None:
    weights = get_blend_weights((8, 1, 1), (2, 0, 0), "linear", dtype=torch.float64)
    assert weights[2, 0, 0] == pytest.approx(3 / 5)  # inside the region, no neighbour to add
    edged = get_blend_weights(
        (8, 1, 1), (2, 0, 0), "linear", ((True, False), (False, False), (False, False))
    )
    assert edged[:4, 0, 0].tolist() == [1.0, 1.0, 1.0, 1.0]
    assert edged[4:, 0, 0].tolist() == pytest.approx([4 / 5, 3 / 5, 2 / 5, 1 / 5])


def test_outer_product_and_broadcasting() -> None:
    weights = get_blend_weights((4, 6, 1), (1, 1, 0), "linear", dtype=torch.float64)
    assert weights.shape == (4, 6, 1)
    assert weights[0, 0, 0].item() == pytest.approx(1 / 9)
    assert weights[1, 2, 0].item() == pytest.approx(2 / 3)
    data = torch.ones(3, 4, 6, 1, dtype=torch.float64)
    assert (data * weights).shape == (3, 4, 6, 1)


def test_dtype_device_and_defaults() -> None:
    weights = get_blend_weights((4, 4, 4), 1)
    assert weights.dtype == torch.float32
    assert weights.device.type == "cpu"
    # default mode is quadratic: per dim [2/9, 7/9, 7/9, 2/9]
    assert weights[0, 2, 1].item() == pytest.approx(2 / 9 * 7 / 9 * 7 / 9)
    assert get_blend_weights((2, 2, 2), 0, dtype=torch.float16).dtype == torch.float16


def test_validation() -> None:
    with pytest.raises(ValueError, match=r"blend_pad \(y\).*at least 8"):
        get_blend_weights((8, 6, 1), (2, 2, 0))
    # one un-ramped side needs only one ramp's room
    assert get_blend_weights(
        (8, 6, 1), (2, 2, 0), edges=((False, False), (True, False), (False, False))
    ).shape == (8, 6, 1)
    with pytest.raises(ValueError, match="mode"):
        get_blend_weights((4, 4, 4), 1, mode="max")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="edges"):
        get_blend_weights((4, 4, 4), 1, edges=((True, False),))
    with pytest.raises(ValueError, match="edges"):
        get_blend_weights((4, 4, 4), 1, edges=((1, 0), (0, 0), (0, 0)))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="blend_pad"):
        get_blend_weights((4, 4, 4), (1, -1, 0))
    with pytest.raises(ValueError, match="shape_xyz"):
        get_blend_weights((4, 4), 1)
    with pytest.raises(TypeError, match="floating-point"):
        get_blend_weights((4, 4, 4), 1, dtype=torch.int32)
