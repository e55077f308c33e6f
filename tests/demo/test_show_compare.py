"""`zetta show --compare`: one PNG of the same region of two layers side by side, same contrast,
read back with PIL."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from zetta_utils.cli.demo import show
from zetta_utils.demo import show as show_mod
from zetta_utils.layer.volumetric import VolumetricIndex
from zetta_utils.layer.volumetric.tensorstore import build_ts_layer

RES = (8, 8, 40)
SIZE = (96, 64, 2)  # x, y, z


def _volume(path: Path, data: np.ndarray) -> str:
    """A precomputed volume at ``path`` holding CXYZ ``data`` (written by TensorStore)."""
    url = f"file://{path}"
    layer = build_ts_layer(
        url,
        info_type="image",
        info_data_type=str(data.dtype),
        info_num_channels=1,
        info_scales=[list(RES)],
        info_chunk_size=[32, 32, 1],
        info_dataset_size=list(SIZE),
        info_voxel_offset=[0, 0, 0],
        info_encoding="raw",
    )
    layer[VolumetricIndex.from_coords((0, 0, 0), SIZE, RES)] = torch.from_numpy(data)
    return url


@pytest.fixture
def pair(tmp_path: Path) -> tuple[str, str, np.ndarray, np.ndarray]:
    """A float layer and a copy with a bright square (what a flow might have changed)."""
    rng = np.random.default_rng(0)
    left = rng.normal(size=(1, *SIZE)).astype(np.float32)
    right = left.copy()
    right[:, 8:40, 8:40, :] = 10.0
    return _volume(tmp_path / "src", left), _volume(tmp_path / "out", right), left, right


def _scaled(section: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """XY data as the PNG shows it with the value range (lo, hi): rows are y."""
    values = np.clip((section.astype(np.float64) - lo) / (hi - lo), 0, 1)
    return np.floor(values * 255 + 0.5).astype(np.uint8).T


def test_both_halves_show_their_layer_with_one_contrast(
    pair: tuple[str, str, np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    src, out, left, right = pair
    png = tmp_path / "cmp.png"
    result = show_mod.write_comparison(
        src, out, 1, str(png), resolution="8,8,40", bbox="0,0,96,64", gap=4
    )
    image = np.asarray(Image.open(png))
    assert image.shape == (64, 2 * 96 + 4) and image.dtype == np.uint8
    assert result.image_size == (196, 64) and result.panel_size == (96, 64)
    lo, hi = result.value_range
    assert hi == pytest.approx(10.0)  # the bright square is part of the one range
    np.testing.assert_array_equal(image[:, :96], _scaled(left[0, :, :, 1], lo, hi))
    np.testing.assert_array_equal(image[:, 96:100], 255)  # the white band between
    np.testing.assert_array_equal(image[:, 100:], _scaled(right[0, :, :, 1], lo, hi))
    # same contrast: where the layers agree, so do the halves; the square differs
    outside = np.ones((64, 96), dtype=bool)
    outside[8:40, 8:40] = False
    np.testing.assert_array_equal(image[:, :96][outside], image[:, 100:][outside])
    assert (image[8:40, 100 + 8 : 100 + 40] == 255).all()
    assert not (image[8:40, 8:40] == 255).all()
    assert result.empty == (False, False)


def test_uint8_layers_are_shown_as_they_are_and_the_width_is_bounded(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    a = rng.integers(0, 256, size=(1, *SIZE), dtype=np.uint8)
    b = np.zeros_like(a)
    png = tmp_path / "u8.png"
    result = show_mod.write_comparison(
        _volume(tmp_path / "a", a),
        _volume(tmp_path / "b", b),
        0,
        str(png),
        resolution="8,8,40",
        bbox="0,0,96,64",
    )
    image = np.asarray(Image.open(png))
    np.testing.assert_array_equal(image[:, :96], a[0, :, :, 0].T)
    np.testing.assert_array_equal(image[:, 104:], 0)
    assert result.empty == (False, True) and result.value_range == (0.0, 255.0)
    small = show_mod.write_comparison(
        _volume(tmp_path / "a", a),
        _volume(tmp_path / "b", b),
        0,
        str(png),
        resolution="8,8,40",
        bbox="0,0,96,64",
        max_size=104,
    )
    assert small.image_size[0] <= 104 and Image.open(png).size == small.image_size


def test_the_show_command_writes_the_comparison(
    pair: tuple[str, str, np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    src, out, _, _ = pair
    png = tmp_path / "c.png"
    r = CliRunner().invoke(
        show, [src, "--compare", out, "--z", "0", "--resolution", "8,8,40", "--out", str(png)]
    )
    assert r.exit_code == 0, r.output
    assert r.output.startswith(f"Wrote {png} (200x64 px): section 0, voxels ")
    assert f"of {src} (left) and {out} (right)" in r.output and "black .. white in both" in r.output
    image = np.asarray(Image.open(png))
    assert image.shape == (64, 200)
    r = CliRunner().invoke(
        show, [src, "--compare", str(tmp_path / "missing"), "--z", "0", "--out", str(png)]
    )
    assert r.exit_code != 0 and "Traceback" not in r.output
