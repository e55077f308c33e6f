"""VolumetricLayerSet: one index over layers stored at different resolutions."""

from __future__ import annotations

import pickle
from typing import Any

import numpy as np
import pytest
import torch

from zetta_utils import builder
from zetta_utils.geometry import BBox3D, Vec3D
from zetta_utils.layer.volumetric import VolumetricIndex
from zetta_utils.layer.volumetric.layer import VolumetricLayer
from zetta_utils.layer.volumetric.layer_set import (
    VolumetricLayerSet,
    build_layer_set,
    build_volumetric_layer_set,
)
from zetta_utils.layer.volumetric.memory import build_mem_layer

R4 = Vec3D(4, 4, 40)
R8 = Vec3D(8, 8, 40)
BBOX = BBox3D.from_coords((0, 0, 0), (8, 8, 2), R4)
RNG = np.random.default_rng(1)


def make_layers() -> dict[str, VolumetricLayer]:
    img = build_mem_layer(bbox=BBOX, resolutions=[R4], name="mem://img", interpolation_mode="img")
    mask = build_mem_layer(
        bbox=BBOX, resolutions=[R8], name="mem://mask", dtype="uint8", interpolation_mode="mask"
    )
    return {"img": img, "mask": mask}


class AddKey:
    """A set-level data processor: adds the sum of the tensors."""

    def __call__(self, data: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {**data, "sum": data["img"] + data["mask"]}


def test_reads_a_dict_of_same_shaped_tensors_from_different_resolutions() -> None:
    layers = make_layers()
    img_data = RNG.normal(size=(1, 8, 8, 2)).astype(np.float32)
    layers["img"][R4, 0:8, 0:8, 0:2] = img_data
    layers["mask"][R8, 0:4, 0:4, 0:2] = (
        np.eye(4, dtype=np.uint8).reshape(1, 4, 4, 1).repeat(2, axis=3)
    )
    layer_set = build_layer_set(layers=layers)
    assert isinstance(layer_set, VolumetricLayerSet)

    at8 = layer_set[R8, 0:4, 0:4, 0:2]
    assert set(at8) == {"img", "mask"}
    assert at8["img"].shape == at8["mask"].shape == (1, 4, 4, 2)
    expected_img = img_data.reshape(1, 4, 2, 4, 2, 2).mean(axis=(2, 4))
    np.testing.assert_allclose(at8["img"].numpy(), expected_img, rtol=1e-5, atol=1e-6)

    idx = VolumetricIndex.from_coords((0, 0, 0), (8, 8, 2), R4)
    at4 = layer_set[idx]
    assert at4["img"].shape == at4["mask"].shape == (1, 8, 8, 2)
    np.testing.assert_array_equal(at4["img"].numpy(), img_data)
    np.testing.assert_array_equal(
        at4["mask"].numpy()[0, :, :, 0], np.eye(4).repeat(2, 0).repeat(2, 1)
    )


def test_set_processors_see_the_dict_and_members_keep_their_own() -> None:
    layers = make_layers()
    layers["img"] = layers["img"].with_procs(read_procs=[lambda d: d + 1])
    layer_set = build_volumetric_layer_set(layers, read_procs=[AddKey()])
    out = layer_set[R4, 0:2, 0:2, 0:1]
    assert set(out) == {"img", "mask", "sum"}
    assert (out["img"] == 1).all() and (out["sum"] == 1).all()


def test_writes_take_a_dict_subset_and_reject_unknown_keys() -> None:
    layers = make_layers()
    layer_set = build_layer_set(layers=layers)
    ones = np.ones((1, 4, 4, 1), dtype=np.float32)
    layer_set[R4, 0:4, 0:4, 0:1] = {"img": ones}
    assert (layers["img"][R4, 0:4, 0:4, 0:1] == 1).all()
    assert not layers["mask"][R8, 0:4, 0:4, 0:2].any()

    with pytest.raises(KeyError, match=r"'seg'.*not in the layer set.*'img', 'mask'"):
        layer_set[R4, 0:4, 0:4, 0:1] = {"img": ones * 2, "seg": ones}
    assert (layers["img"][R4, 0:4, 0:4, 0:1] == 1).all()  # nothing written
    with pytest.raises(TypeError, match="dict of layer name"):
        layer_set[R4, 0:4, 0:4, 0:1] = ones
    with pytest.raises(ValueError, match=r"data\['img'\].*shape"):
        layer_set[R4, 0:4, 0:4, 0:1] = {"img": np.ones((1, 2, 2, 1), dtype=np.float32)}


def test_readonly_propagates_to_members() -> None:
    layers = make_layers()
    ro = build_layer_set(layers=layers, readonly=True)
    assert ro.readonly and all(layer.readonly for layer in ro.layers.values())
    assert not layers["img"].readonly  # the originals are untouched
    with pytest.raises(PermissionError, match="read-only"):
        ro[R4, 0:4, 0:4, 0:1] = {"img": np.ones((1, 4, 4, 1), dtype=np.float32)}
    with pytest.raises(PermissionError, match=r"mem://img.*read-only"):
        ro.layers["img"][R4, 0:4, 0:4, 0:1] = np.ones((1, 4, 4, 1), dtype=np.float32)


def test_a_readonly_member_blocks_the_whole_write() -> None:
    layers = make_layers()
    layers["mask"] = layers["mask"].with_changes(readonly=True)
    layer_set = build_layer_set(layers=layers)
    with pytest.raises(PermissionError, match=r"'mask' \(mem://mask\)"):
        layer_set[R8, 0:4, 0:4, 0:1] = {
            "img": np.ones((1, 4, 4, 1), dtype=np.float32),
            "mask": np.ones((1, 4, 4, 1), dtype=np.uint8),
        }
    assert not layers["img"][R4, 0:8, 0:8, 0:2].any()


def test_resolutions_default_to_the_members_common_ones() -> None:
    bbox = BBox3D.from_coords((0, 0, 0), (8, 8, 1), R4)
    a = build_mem_layer(
        bbox=bbox,
        resolutions=[R4],
        index_resolution=R4,
        default_desired_resolution=R8,
        interpolation_mode="img",
    )
    b = build_mem_layer(
        bbox=bbox,
        resolutions=[R8],
        index_resolution=R4,
        default_desired_resolution=R4,
        interpolation_mode="img",
    )
    layer_set = build_layer_set(layers={"a": a, "b": b})
    assert layer_set.frontend.index_resolution == R4
    assert layer_set.frontend.default_desired_resolution is None  # members disagree
    with pytest.raises(ValueError, match="default_desired_resolution"):
        layer_set[0:8, 0:8, 0:1]
    fixed = layer_set.with_changes(default_desired_resolution=R8)
    assert {k: tuple(v.shape) for k, v in fixed[0:8, 0:8, 0:1].items()} == {
        "a": (1, 4, 4, 1),
        "b": (1, 4, 4, 1),
    }


def test_build_errors() -> None:
    with pytest.raises(TypeError, match=r"layers\['x'\].*VolumetricLayer"):
        build_layer_set(layers={"x": 5})  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="at least one"):
        build_layer_set(layers={})
    with pytest.raises(TypeError, match="unknown argument"):
        build_layer_set(layers=make_layers()).with_changes(data_resolution=R4)


def test_nested_sets_and_with_changes_layers() -> None:
    layers = make_layers()
    inner = build_layer_set(layers={"img": layers["img"]})
    outer = build_layer_set(layers={"inner": inner, "mask": layers["mask"]})
    out = outer[R8, 0:4, 0:4, 0:1]
    assert set(out) == {"inner", "mask"} and set(out["inner"]) == {"img"}
    swapped = outer.with_changes(layers={"only": layers["mask"]})
    assert set(swapped[R8, 0:4, 0:4, 0:1]) == {"only"}


def test_layer_set_pickles_and_builds_from_a_spec() -> None:
    bbox_spec = {
        "@type": "BBox3D.from_coords",
        "start_coord": [0, 0, 0],
        "end_coord": [8, 8, 2],
        "resolution": [4, 4, 40],
    }
    spec: dict[str, Any] = {
        "@type": "build_layer_set",
        "layers": {
            "img": {
                "@type": "build_mem_layer",
                "bbox": bbox_spec,
                "resolutions": [[4, 4, 40]],
                "interpolation_mode": "img",
            },
            "mask": {
                "@type": "build_mem_layer",
                "bbox": bbox_spec,
                "resolutions": [[8, 8, 40]],
                "interpolation_mode": "mask",
            },
        },
        "default_desired_resolution": [8, 8, 40],
        "index_resolution": [4, 4, 40],
    }
    layer_set = builder.build(spec)
    assert isinstance(layer_set, VolumetricLayerSet)
    assert layer_set.frontend.default_desired_resolution == R8
    assert {k: tuple(v.shape) for k, v in layer_set[0:8, 0:8, 0:2].items()} == {
        "img": (1, 4, 4, 2),
        "mask": (1, 4, 4, 2),
    }
    same = builder.build({**spec, "@type": "build_volumetric_layer_set"})
    assert isinstance(same, VolumetricLayerSet)
    copy = pickle.loads(pickle.dumps(layer_set))
    assert set(copy[0:8, 0:8, 0:2]) == {"img", "mask"}
