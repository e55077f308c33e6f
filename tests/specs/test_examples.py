"""Every spec in specs/examples (the guide's CUE examples on the demo volume) runs with
`zetta run`, and what it makes is right."""

from __future__ import annotations

import functools
import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from zetta_utils import builder
from zetta_utils.geometry import Vec3D
from zetta_utils.layer.volumetric import VolumetricIndex
from zetta_utils.layer.volumetric.tensorstore import build_ts_layer

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "specs" / "examples"
SUBCHUNKABLE = sorted(p.name for p in EXAMPLES.glob("subchunkable_*.cue"))
LAYER_SET = ["layer_set.cue", "layer_set_vars.cue", "layer_set_template.cue", "layer_set.json"]
BBOX_16NM = VolumetricIndex.from_coords((29696, 16384, 2000), (30720, 17408, 2010), (16, 16, 40))

pytestmark = pytest.mark.slow


@functools.cache
def _registered(name: str) -> bool:
    """Whether `zetta run` (a fresh process) finds ``name``: the module registering it must be
    among those the builder loads, not just imported by some test in this process."""
    code = (
        "import sys, zetta_utils; from zetta_utils import builder; zetta_utils.load_all_modules(); "
        "print(sys.argv[1] in builder.REGISTRY)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, name], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip() == "True"


def zetta_run(
    spec: Path, home: Path, extra_env: dict[str, str] | None = None, args: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HOME": str(home), "PYTHONPATH": str(ROOT), **(extra_env or {})}
    env.pop("AWS_SESSION_TOKEN", None)
    return subprocess.run(
        [sys.executable, "-m", "zetta_utils.cli.main", "-v", "run", *args, str(spec)],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=600,
    )


def test_every_example_is_tested() -> None:
    names = sorted(p.name for p in EXAMPLES.iterdir() if p.name != "hello.json")
    assert names == sorted(SUBCHUNKABLE + LAYER_SET)
    assert len(SUBCHUNKABLE) == 6


# The copy example runs in test_readme_quick_start, the remote one with an SQS server.
LOCAL = [n for n in SUBCHUNKABLE if n not in ("subchunkable_remote.cue", "subchunkable_copy.cue")]


# Chunk files of the output at 16 nm (1024 x 1024 x 1 voxels): the region's, and neighbours that
# the run must leave alone (some inside a 2048-wide reduction chunk around the region).
SCALE = "16_16_40"
REGION_FILES = {f"29696-30720_16384-17408_{z}-{z + 1}" for z in range(2000, 2010)}
NEIGHBOURS = [
    ((28672, 16384, 2000)),
    ((28672, 16384, 2009)),
    ((30720, 16384, 2000)),
    ((29696, 15360, 2003)),
    ((29696, 17408, 2000)),
    ((28672, 17408, 2009)),
    ((29696, 16384, 1999)),
]
OLD_NS = 10**18
FileState = tuple[int, int, str]


def _state(path: Path) -> FileState:
    st = path.stat()
    return (st.st_ino, st.st_mtime_ns, hashlib.sha256(path.read_bytes()).hexdigest())


def prefill_neighbours(home: Path) -> dict[str, FileState]:
    """~/zetta_utils_temp as the examples make it (the demo's info), with noise in the chunks
    next to the region (their files aged), as left by another run; returns their states."""
    dst = build_ts_layer(
        path="file://~/zetta_utils_temp/",
        info_reference_path="file://~/.zetta_utils/demo/fafb_v15/img_norm",
    )
    rng = np.random.default_rng(0)
    for start in NEIGHBOURS:
        idx = VolumetricIndex.from_coords(start, Vec3D(*start) + Vec3D(1024, 1024, 1), (16, 16, 40))
        dst[idx] = torch.from_numpy(rng.normal(size=(1, 1024, 1024, 1)).astype(np.float32))
    scale = home / "zetta_utils_temp" / SCALE
    states = {}
    for path in scale.iterdir():
        os.utime(path, ns=(OLD_NS, OLD_NS))
        states[path.name] = _state(path)
    assert len(states) == len(NEIGHBOURS)
    return states


def check_only_region_written(home: Path, before: dict[str, FileState], output: str) -> None:
    """The run wrote the region's 10 chunk files, and no other: the neighbours keep their inode,
    mtime and bytes. The summary printed before the run announced the bytes written."""
    scale = home / "zetta_utils_temp" / SCALE
    names = {p.name for p in scale.iterdir()}
    assert names == REGION_FILES | set(before), sorted(names - REGION_FILES - set(before))
    for name, state in before.items():
        assert _state(scale / name) == state, f"{name} (outside the region) was rewritten"
    written = sum((scale / name).stat().st_size for name in REGION_FILES)
    assert written == 40 * 2**20
    assert "40.0 MiB to dst (10 chunk files)" in output, output


def check_copy(home: Path) -> None:
    """~/zetta_utils_temp holds the demo's subchunkable region, and only that."""
    assert (home / "zetta_utils_temp" / "info").is_file()
    src = build_ts_layer(path="file://~/.zetta_utils/demo/fafb_v15/img_norm")
    dst = build_ts_layer(path="file://~/zetta_utils_temp/")
    expected = src[BBOX_16NM].numpy()
    got = dst[BBOX_16NM].numpy()
    assert np.abs(expected).max() > 1  # the demo has data there
    # Identity with crop or blend: weights sum to one, so the copy is exact up to rounding.
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)
    after = VolumetricIndex.from_coords((29696, 16384, 2010), (30720, 17408, 2011), (16, 16, 40))
    assert not dst[after].numpy().any()
    assert dst.backend.get_chunk_size(Vec3D(16, 16, 40)) == Vec3D(1024, 1024, 1)


def with_reduction_chunks(spec: Path, tmp_path: Path) -> Path:
    """``spec`` with ``max_reduction_chunk_sizes: [2048, 2048, 1]`` (reduction chunks larger than
    the region in x and y, not aligned to it)."""
    text = spec.read_text()
    anchor = "   level_intermediaries_dirs:"
    assert anchor in text and "max_reduction_chunk_sizes" not in text
    out = tmp_path / f"{spec.stem}_reduction_2048.cue"
    out.write_text(
        text.replace(anchor, "   max_reduction_chunk_sizes: [2048, 2048, 1]\n" + anchor, 1)
    )
    return out


@pytest.mark.parametrize("name", [*LOCAL, "subchunkable_blend_linear.cue+reduction_2048"])
def test_subchunkable_example_copies_the_demo(name: str, home: Path, tmp_path: Path) -> None:
    """Each example copies the region, writes its 10 chunk files and no other (neighbours
    written by someone else keep their files untouched)."""
    if not _registered("build_subchunkable_apply_flow"):
        pytest.skip("build_subchunkable_apply_flow is not registered yet")
    spec = EXAMPLES / name.split("+")[0]
    if name.endswith("+reduction_2048"):
        spec = with_reduction_chunks(spec, tmp_path)
    before = prefill_neighbours(home)
    result = zetta_run(spec, home)
    assert result.returncode == 0, result.stdout + result.stderr
    check_copy(home)
    check_only_region_written(home, before, result.stdout + result.stderr)


def test_subchunkable_example_runs_in_two_processes(home: Path) -> None:
    """`zetta run -p 2`: the fork server starts (and imports) while the spec is read."""
    if not _registered("build_subchunkable_apply_flow"):
        pytest.skip("build_subchunkable_apply_flow is not registered yet")
    before = prefill_neighbours(home)
    result = zetta_run(EXAMPLES / "subchunkable_blend.cue", home, args=("-p", "2"))
    assert result.returncode == 0, result.stdout + result.stderr
    check_copy(home)
    check_only_region_written(home, before, result.stdout + result.stderr)


def test_remote_example_runs_with_local_test_workers(
    home: Path, sqs_endpoint: str, tmp_path: Path
) -> None:
    """`local_test: true`: SQS queues (a local SQS server here) and local worker processes."""
    if not _registered("mazepa.execute_on_gcp_with_sqs"):
        pytest.skip(
            "pending: 'mazepa.execute_on_gcp_with_sqs' is not found by `zetta run` until "
            "zetta_utils.mazepa_addons is in zetta_utils._REGISTERING_MODULES"
        )
    env = {
        "ZETTA_SQS_ENDPOINT": sqs_endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "ZETTA_RUN_RECORDS": str(tmp_path / "runs"),
    }
    before = prefill_neighbours(home)
    result = zetta_run(EXAMPLES / "subchunkable_remote.cue", home, env)
    assert result.returncode == 0, result.stdout + result.stderr
    check_copy(home)
    check_only_region_written(home, before, result.stdout + result.stderr)


def test_readme_quick_start(home: Path, tmp_path: Path) -> None:
    """The README's commands after set-up: the demo is there (`zetta demo-data` finds it), run
    the copy example, then `zetta show` its output."""
    if not _registered("build_subchunkable_apply_flow"):
        pytest.skip("build_subchunkable_apply_flow is not registered yet")
    env = {**os.environ, "HOME": str(home), "PYTHONPATH": str(ROOT)}

    def zetta(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "zetta_utils.cli.main", *args],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path,
            timeout=600,
        )

    demo = zetta("demo-data", "--region", "subchunkable")
    assert demo.returncode == 0, demo.stderr
    assert "already in" in demo.stdout
    result = zetta_run(EXAMPLES / "subchunkable_copy.cue", home)
    assert result.returncode == 0, result.stdout + result.stderr
    check_copy(home)
    check_only_region_written(
        home, {}, result.stdout + result.stderr
    )  # a new volume: no other file
    shown = zetta("show", "file://~/zetta_utils_temp", "--z", "2000", "--out", "copy.png")
    assert shown.returncode == 0, shown.stderr
    assert "Wrote copy.png (1024x1024 px)" in shown.stdout and "at (16,16,40) nm" in shown.stdout
    assert "Neuroglancer: https://neuroglancer-demo.appspot.com/#!" in shown.stdout
    image = np.asarray(Image.open(tmp_path / "copy.png"))
    assert image.shape == (1024, 1024) and image.std() > 20


@pytest.mark.parametrize("name", LAYER_SET)
def test_layer_set_example_builds_the_dataset(name: str, home: Path) -> None:
    dataset = builder.build(path=str(EXAMPLES / name))
    assert type(dataset).__name__ == "LayerDataset"
    assert len(dataset) == 28 * 28 * 100
    img = build_ts_layer(path="file://~/.zetta_utils/demo/fafb_v15/img")
    img_norm = build_ts_layer(path="file://~/.zetta_utils/demo/fafb_v15/img_norm")
    for i, start in (
        (0, (1000, 1000, 2000)),
        (len(dataset) - 1, (1864, 1864, 2099)),
        (785, (1032, 1000, 2001)),
    ):
        sample = dataset[i]
        idx = VolumetricIndex.from_coords(start, Vec3D(*start) + Vec3D(128, 128, 1), (64, 64, 40))
        assert sorted(sample) == ["img", "img_norm"]
        np.testing.assert_array_equal(sample["img"].numpy(), img[idx].numpy())
        np.testing.assert_array_equal(sample["img_norm"].numpy(), img_norm[idx].numpy())
        assert sample["img"].numpy().std() > 10  # the demo holds data for every sample


def test_layer_set_example_runs_with_zetta_run(home: Path) -> None:
    result = zetta_run(EXAMPLES / "layer_set.cue", home)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "spec built: LayerDataset(" in result.stderr
