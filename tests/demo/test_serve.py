"""``python -m zetta_utils.demo.serve``: serves exactly the volume asked for, on 127.0.0.1, where
``zetta show``'s Neuroglancer link reads it, and refuses everything else. Real HTTP requests to a
real server; the volume is written by TensorStore."""

from __future__ import annotations

import http.client
import json
import os
import re
import socket
import subprocess
import sys
import threading
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from zetta_utils.cli.demo import show
from zetta_utils.demo import show as show_mod
from zetta_utils.demo.serve import VolumeServer, make_server
from zetta_utils.layer.volumetric import VolumetricIndex
from zetta_utils.layer.volumetric.tensorstore import build_ts_layer

NG_ORIGIN = "https://neuroglancer-demo.appspot.com"


def _write_volume(path: Path) -> None:
    layer = build_ts_layer(
        f"file://{path}",
        info_type="image",
        info_data_type="uint8",
        info_num_channels=1,
        info_scales=[[4, 4, 40]],
        info_chunk_size=[16, 16, 1],
        info_dataset_size=[32, 32, 1],
        info_voxel_offset=[0, 0, 0],
        info_encoding="raw",
    )
    data = np.arange(32 * 32, dtype=np.uint32).reshape(1, 32, 32, 1).astype(np.uint8)
    layer[VolumetricIndex.from_coords((0, 0, 0), (32, 32, 1), (4, 4, 40))] = torch.from_numpy(data)


@pytest.fixture
def volume(tmp_path: Path) -> Path:
    """``tmp/home/zetta_utils_temp`` (a volume) beside ``tmp/home/.aws/credentials`` (a secret),
    with a link inside the volume pointing out of it."""
    home = tmp_path / "home"
    vol = home / "zetta_utils_temp"
    _write_volume(vol)
    (home / ".aws").mkdir()
    (home / ".aws" / "credentials").write_text("aws_secret_access_key = SECRET")
    (vol / "escape").symlink_to(home / ".aws" / "credentials")
    return vol


def _get(
    port: int, path: str, host: str = "127.0.0.1", origin: str | None = None
) -> tuple[int, bytes, dict[str, str]]:
    """A GET with ``path`` sent exactly as written (no client-side normalisation)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.putrequest("GET", path, skip_host=True)
        conn.putheader("Host", f"{host}:{port}")
        if origin is not None:
            conn.putheader("Origin", origin)
        conn.endheaders()
        response = conn.getresponse()
        return response.status, response.read(), dict(response.getheaders())
    finally:
        conn.close()


@pytest.fixture
def server(volume: Path) -> Iterator[VolumeServer]:
    srv = make_server(str(volume), port=0)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def test_the_links_volume_url_serves_its_info_and_chunks(
    volume: Path, server: VolumeServer
) -> None:
    port = server.server_port
    link = show_mod.neuroglancer_link(f"file://{volume}", serve_url=f"http://127.0.0.1:{port}")
    state = json.loads(urllib.parse.unquote(link.split("#!", 1)[1]))
    source = state["layers"][0]["source"]
    assert source == f"precomputed://http://127.0.0.1:{port}/zetta_utils_temp"
    base = urllib.parse.urlsplit(source[len("precomputed://") :]).path
    status, body, headers = _get(port, f"{base}/info", origin=NG_ORIGIN)
    assert status == 200 and json.loads(body) == json.loads((volume / "info").read_text())
    assert headers["Access-Control-Allow-Origin"] == NG_ORIGIN
    status, body, _ = _get(port, f"{base}/4_4_40/16-32_0-16_0-1")
    assert status == 200 and body == (volume / "4_4_40" / "16-32_0-16_0-1").read_bytes()


@pytest.mark.parametrize(
    "path",
    [
        "/.aws/credentials",
        "/zetta_utils_temp/../.aws/credentials",
        "/zetta_utils_temp/%2e%2e/.aws/credentials",
        "/zetta_utils_temp/..%2f.aws%2fcredentials",
        "/zetta_utils_temp/4_4_40/../../.aws/credentials",
        "/zetta_utils_temp//..//.aws/credentials",
        "/zetta_utils_temp/escape",
        "/zetta_utils_temp/",
        "/zetta_utils_temp",
        "/",
        "/other/info",
    ],
)
def test_anything_outside_the_volume_is_refused(server: VolumeServer, path: str) -> None:
    status, body, _ = _get(server.server_port, path)
    assert status == 404 and b"SECRET" not in body


def test_only_local_names_and_the_neuroglancer_origin_are_answered(server: VolumeServer) -> None:
    port = server.server_port
    assert _get(port, "/zetta_utils_temp/info", host="localhost")[0] == 200
    status, body, _ = _get(port, "/zetta_utils_temp/info", host="evil.example")
    assert status == 403 and b"data_type" not in body
    _, _, headers = _get(port, "/zetta_utils_temp/info", origin="https://evil.example")
    assert "Access-Control-Allow-Origin" not in headers
    assert server.server_address[0] == "127.0.0.1"


def test_not_a_volume_is_a_clear_error(volume: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no precomputed 'info' file"):
        make_server(str(volume.parent), port=0)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_the_command_zetta_show_prints_serves_its_link(
    volume: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As the README goes: `zetta show file://~/zetta_utils_temp`, then the serve command it
    prints, then the link's volume URL."""
    home = volume.parent
    monkeypatch.setenv("HOME", str(home))
    port = _free_port()
    result = CliRunner().invoke(
        show,
        [
            "file://~/zetta_utils_temp",
            "--z",
            "0",
            "--out",
            str(home / "t.png"),
            "--port",
            str(port),
        ],
    )
    assert result.exit_code == 0, result.output
    command = re.search(r"python -m zetta_utils\.demo\.serve [^)]*", result.output)
    assert (
        command is not None
        and command.group(0) == f"python -m zetta_utils.demo.serve ~/zetta_utils_temp --port {port}"
    )
    link = next(line for line in result.output.splitlines() if line.startswith("Neuroglancer: "))
    source = json.loads(urllib.parse.unquote(link.split("#!", 1)[1]))["layers"][0]["source"]
    argv = [sys.executable, *command.group(0).split()[1:]]
    argv[-3] = os.path.expanduser(argv[-3])  # what the shell does with ~
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # printed once it listens
        assert "serving" in line, line + proc.stdout.read()
        base = urllib.parse.urlsplit(source[len("precomputed://") :])
        assert base.port == port
        status, body, _ = _get(port, f"{base.path}/info")
        assert status == 200 and json.loads(body)["data_type"] == "uint8"
        assert _get(port, "/.aws/credentials")[0] == 404
    finally:
        proc.terminate()
        proc.wait(10)
