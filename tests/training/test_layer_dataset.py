"""LayerDataset over real precomputed volumes on disk."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.utils.data

from zetta_utils import builder
from zetta_utils.geometry import BBox3D, Vec3D
from zetta_utils.layer.volumetric.layer import VolumetricLayer
from zetta_utils.layer.volumetric.layer_set import build_layer_set
from zetta_utils.layer.volumetric.tensorstore import build_ts_layer
from zetta_utils.training import LayerDataset, VolumetricStridedIndexer


def make_volume(path: Path, dtype: str, data: np.ndarray) -> VolumetricLayer:
    layer = build_ts_layer(
        path=f"file://{path}",
        info_type="image",
        info_data_type=dtype,
        info_num_channels=1,
        info_encoding="raw",
        info_chunk_size=(16, 16, 1),
        info_scales=[(8, 8, 40)],
        info_voxel_offset=(0, 0, 0),
        info_dataset_size=data.shape[1:],
    )
    layer[(8, 8, 40), 0 : data.shape[1], 0 : data.shape[2], 0 : data.shape[3]] = data
    return layer


@pytest.fixture
def volumes(tmp_path: Path) -> tuple[VolumetricLayer, VolumetricLayer, np.ndarray]:
    values = np.arange(64 * 48 * 3, dtype=np.float32).reshape(1, 64, 48, 3)
    img = make_volume(tmp_path / "img", "float32", values)
    mask = make_volume(tmp_path / "mask", "uint8", (values.astype(np.int64) % 2).astype(np.uint8))
    return img, mask, values


def indexer(mode: str = "shrink", stride: int = 16) -> VolumetricStridedIndexer:
    bbox = BBox3D.from_coords((0, 0, 0), (64, 48, 3), (8, 8, 40))
    return VolumetricStridedIndexer(
        bbox=bbox,
        resolution=(8, 8, 40),
        chunk_size=(32, 32, 1),
        stride=(stride, stride, 1),
        mode=mode,  # type: ignore[arg-type]
    )


def test_samples_are_layer_reads(
    volumes: tuple[VolumetricLayer, VolumetricLayer, np.ndarray],
) -> None:
    img, _, values = volumes
    ds = LayerDataset(layer=img, sample_indexer=indexer())
    assert isinstance(ds, torch.utils.data.Dataset)
    assert len(ds) == 3 * 2 * 3
    for i in range(len(ds)):
        idx = ds.sample_indexer(i)
        (x0, y0, z0), (x1, y1, z1) = idx.start, idx.stop
        np.testing.assert_array_equal(ds[i].numpy(), values[:, x0:x1, y0:y1, z0:z1])
    assert torch.equal(ds[-1], ds[len(ds) - 1])
    with pytest.raises(IndexError):
        ds[len(ds)]


def test_layer_set_samples_are_dicts(
    volumes: tuple[VolumetricLayer, VolumetricLayer, np.ndarray],
) -> None:
    img, mask, _ = volumes
    ds = LayerDataset(build_layer_set(layers={"img": img, "mask": mask}), indexer())
    sample = ds[5]
    assert sorted(sample) == ["img", "mask"]
    assert sample["img"].dtype == torch.float32 and sample["mask"].dtype == torch.uint8
    np.testing.assert_array_equal(
        sample["mask"].numpy(), (sample["img"].numpy().astype(np.int64) % 2)
    )


@pytest.mark.slow
def test_dataloader_with_worker_processes(
    volumes: tuple[VolumetricLayer, VolumetricLayer, np.ndarray],
) -> None:
    img, _, _ = volumes
    ds = LayerDataset(img, indexer())
    # TensorStore cannot be used in a forked child once the parent has used it: spawn workers.
    loader = torch.utils.data.DataLoader(
        ds, batch_size=4, num_workers=1, shuffle=False, multiprocessing_context="spawn"
    )
    batches = list(loader)
    assert [tuple(b.shape) for b in batches] == [(4, 1, 32, 32, 1)] * 4 + [(2, 1, 32, 32, 1)]
    torch.testing.assert_close(torch.cat(batches), torch.stack([ds[i] for i in range(len(ds))]))
    copy = pickle.loads(pickle.dumps(ds))
    assert torch.equal(copy[7], ds[7])


def test_expand_samples_read_zeros_past_the_end(
    volumes: tuple[VolumetricLayer, VolumetricLayer, np.ndarray],
) -> None:
    img, _, values = volumes
    assert len(LayerDataset(img, indexer("shrink", stride=24))) == 2 * 1 * 3
    ds = LayerDataset(img, indexer("expand", stride=24))
    assert len(ds) == 3 * 2 * 3
    last = ds[len(ds) - 1]
    idx = ds.sample_indexer(len(ds) - 1)
    assert (idx.start, idx.stop) == (Vec3D(48, 24, 2), Vec3D(80, 56, 3))  # past the 64 x 48 voxels
    np.testing.assert_array_equal(last.numpy()[:, :16, :24], values[:, 48:64, 24:48, 2:3])
    assert not last.numpy()[:, 16:].any() and not last.numpy()[:, :, 24:].any()


def test_built_from_a_spec(
    volumes: tuple[VolumetricLayer, VolumetricLayer, np.ndarray], tmp_path: Path
) -> None:
    ds = builder.build(
        {
            "@type": "LayerDataset",
            "layer": {"@type": "build_ts_layer", "path": f"file://{tmp_path / 'img'}"},
            "sample_indexer": {
                "@type": "VolumetricStridedIndexer",
                "bbox": {
                    "@type": "BBox3D.from_coords",
                    "start_coord": [0, 0, 0],
                    "end_coord": [64, 48, 3],
                    "resolution": [8, 8, 40],
                },
                "resolution": [8, 8, 40],
                "chunk_size": [32, 32, 1],
                "stride": [16, 16, 1],
            },
        }
    )
    assert isinstance(ds, LayerDataset) and len(ds) == 18
    assert ds[0].shape == (1, 32, 32, 1)
    assert ds.sample_indexer(0).resolution == Vec3D(8, 8, 40)
    assert "samples=18" in repr(ds)


def test_bad_arguments(volumes: tuple[VolumetricLayer, VolumetricLayer, np.ndarray]) -> None:
    img, _, _ = volumes
    with pytest.raises(TypeError, match="layer"):
        LayerDataset(layer=42, sample_indexer=indexer())
    with pytest.raises(TypeError, match="sample_indexer"):
        LayerDataset(layer=img, sample_indexer=[1, 2, 3])  # type: ignore[arg-type]
