"""`zetta show`: PNG thumbnails of sections, Neuroglancer links, the CORS file server, and the
`zetta demo-data` command."""

from __future__ import annotations

import json
import threading
import urllib.parse
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from zetta_utils.cli.demo import demo_data, show
from zetta_utils.demo import show as show_mod
from zetta_utils.demo.serve import make_server
from zetta_utils.geometry import Vec3D
from zetta_utils.layer.volumetric import VolumetricIndex
from zetta_utils.layer.volumetric.tensorstore import build_ts_layer

pytestmark = pytest.mark.slow


def ng_state(link: str) -> dict:  # type: ignore[type-arg]
    prefix = show_mod.NEUROGLANCER_URL + "#!"
    assert link.startswith(prefix)
    return json.loads(urllib.parse.unquote(link[len(prefix) :]))  # type: ignore[no-any-return]


def test_thumbnail_defaults_to_where_the_data_is(demo_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "t.png"
    thumb = show_mod.write_thumbnail(f"file://{demo_dir}/img_norm", 2000, str(out))
    # the finest scale with data in section 2000 is 16 nm (the test demo has no 4/8 nm patches)
    assert thumb.index == VolumetricIndex.from_coords(
        (29696, 16384, 2000), (30720, 17408, 2001), (16, 16, 40)
    )
    image = np.asarray(Image.open(out))
    assert image.shape == (1024, 1024) and image.dtype == np.uint8
    assert not thumb.empty and image.std() > 20
    lo, hi = thumb.value_range
    assert -4.7 < lo < -1.5 and 1 < hi < 3.2
    # the PNG is the section with x to the right and y down
    data = build_ts_layer(path=f"file://{demo_dir}/img_norm")[thumb.index].numpy()[0, :, :, 0]
    expected, _ = show_mod.to_uint8(data)
    np.testing.assert_array_equal(image, expected.T)


def test_thumbnail_at_a_resolution_and_bbox_resampled_and_shrunk(
    demo_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "sub" / "t.png"
    thumb = show_mod.write_thumbnail(
        f"file://{demo_dir}/img",
        2001,
        str(out),
        resolution="128,128,40",
        bbox="6400,1920,6912,2304",
        max_size=256,
    )
    assert thumb.index.resolution == Vec3D(128, 128, 40)  # not stored: read from 64 nm in img mode
    assert Image.open(out).size == (256, 192)
    assert thumb.value_range == (0.0, 255.0) and not thumb.empty


def test_thumbnail_at_an_unstored_resolution_finds_the_data(demo_dir: Path, tmp_path: Path) -> None:
    thumb = show_mod.write_thumbnail(
        f"file://{demo_dir}/img", 2000, str(tmp_path / "r.png"), resolution="128,128,40"
    )
    # nearest stored resolution is 64 nm, where the largest group of chunks is the layer-set region
    assert thumb.index == VolumetricIndex.from_coords(
        (384, 384, 2000), (1024, 1024, 2001), (128, 128, 40)
    )
    assert not thumb.empty and Image.open(tmp_path / "r.png").size == (640, 640)


def test_thumbnail_of_an_empty_section_says_so(demo_dir: Path, tmp_path: Path) -> None:
    thumb = show_mod.write_thumbnail(
        f"file://{demo_dir}/img_norm",
        10,
        str(tmp_path / "e.png"),
        resolution=(64, 64, 40),
        bbox=(0, 0, 64, 32),
    )
    assert thumb.empty and Image.open(tmp_path / "e.png").size == (64, 32)


def test_thumbnail_bad_input(demo_dir: Path, tmp_path: Path) -> None:
    path = f"file://{demo_dir}/img"
    with pytest.raises(ValueError, match="resolution"):
        show_mod.write_thumbnail(path, 2000, str(tmp_path / "x.png"), resolution="64,64")
    with pytest.raises(ValueError, match="bbox"):
        show_mod.write_thumbnail(
            path, 2000, str(tmp_path / "x.png"), resolution="64,64,40", bbox="5,5,1,1"
        )
    with pytest.raises(ValueError, match="z"):
        show_mod.write_thumbnail(path, 2000.5, str(tmp_path / "x.png"))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="backend"):
        show_mod.write_thumbnail(path, 2000, str(tmp_path / "x.png"), backend="zarr")


def test_to_uint8() -> None:
    u8 = np.arange(256, dtype=np.uint8).reshape(16, 16)
    assert show_mod.to_uint8(u8)[0] is u8
    values = np.linspace(-3, 3, 1000, dtype=np.float32).reshape(40, 25)
    scaled, (lo, hi) = show_mod.to_uint8(values, percentiles=(0, 100))
    assert (lo, hi) == pytest.approx((-3, 3)) and scaled.min() == 0 and scaled.max() == 255
    assert not show_mod.to_uint8(np.zeros((4, 4), dtype=np.float32))[0].any()


def test_neuroglancer_links() -> None:
    state = ng_state(
        show_mod.neuroglancer_link("gs://bucket/vol/img", position=(1, 2, 3), resolution=(8, 8, 40))
    )
    assert state["layers"] == [
        {"type": "image", "source": "precomputed://gs://bucket/vol/img", "name": "img"}
    ]
    assert state["dimensions"]["x"] == [8e-9, "m"] and state["position"] == [1.0, 2.0, 3.0]
    state = ng_state(
        show_mod.neuroglancer_link("file:///data/demo/img_norm", serve_url="http://localhost:9000/")
    )
    assert state["layers"][0]["source"] == "precomputed://http://localhost:9000/img_norm"
    state = ng_state(show_mod.neuroglancer_link("https://host/a/b"))
    assert state["layers"][0]["source"] == "precomputed://https://host/a/b"
    with pytest.raises(ValueError, match="served_dir"):
        show_mod.neuroglancer_link("file:///data/demo/img_norm", served_dir="/elsewhere")


def test_cors_server_serves_the_volume(demo_dir: Path) -> None:
    server = make_server(str(demo_dir / "img_norm"), port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/img_norm/info"
        request = urllib.request.Request(url, headers={"Origin": "https://neuroglancer-demo.appspot.com"})
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.headers["Access-Control-Allow-Origin"] == "https://neuroglancer-demo.appspot.com"
            assert json.loads(response.read())["data_type"] == "float32"
    finally:
        server.shutdown()
        server.server_close()
    with pytest.raises(NotADirectoryError):
        make_server(str(demo_dir / "nope"), port=0)
    with pytest.raises(FileNotFoundError, match="no precomputed 'info'"):
        make_server(str(demo_dir), port=0)  # the folder around the volumes


def test_show_command(demo_dir: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "cli.png"
    result = runner.invoke(
        show,
        [
            f"file://{demo_dir}/img_norm",
            "--z",
            "2000",
            "--resolution",
            "64,64,40",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert f"Wrote {out}" in result.output and out.is_file()
    link = next(line for line in result.output.splitlines() if line.startswith("Neuroglancer: "))
    assert (
        ng_state(link.split(": ", 1)[1])["layers"][0]["source"]
        == "precomputed://http://127.0.0.1:8000/img_norm"
    )
    assert f"python -m zetta_utils.demo.serve {demo_dir}/img_norm)" in result.output
    bad = runner.invoke(show, [f"file://{demo_dir}/img_norm", "--z", "2000", "--resolution", "x"])
    assert bad.exit_code != 0 and "resolution" in bad.output


def test_commands_are_registered_on_zetta() -> None:
    from zetta_utils.cli.main import cli

    assert cli.commands["demo-data"] is demo_data and cli.commands["show"] is show


def test_demo_data_command(home: Path) -> None:
    runner = CliRunner()
    listed = runner.invoke(demo_data, ["--list"])
    assert (
        listed.exit_code == 0
        and "layer_set" in listed.output
        and "[768:2048, 768:2048, 2000:2100]" in listed.output
    )
    # the test HOME's demo holds the test regions: asking for them again writes nothing
    again = runner.invoke(demo_data, ["--region", "guide_64nm", "--region", "subchunkable"])
    assert again.exit_code == 0, again.output
    assert (
        "already in" in again.output
        and "file://~/.zetta_utils/demo/fafb_v15/img_norm" in again.output
    )
    unknown = runner.invoke(demo_data, ["--region", "nope"])
    assert unknown.exit_code != 0 and "unknown region" in unknown.output
