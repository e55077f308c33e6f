"""What a one-level flow's task keeps between chunks (issue 24, flow (a)): the operation's "no
crop, no resolution change" shortcut, the destination whose writes are clipped to the dataset,
and that nothing of it outlives a changed operation or destination."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs
import numpy as np
import torch

from zetta_utils.geometry import Vec3D
from zetta_utils.layer.volumetric import VolumetricIndex
from zetta_utils.mazepa_layer_processing.common.chunk_grid import Box
from zetta_utils.mazepa_layer_processing.common.layer_wrappers import ClipWritesBackend
from zetta_utils.mazepa_layer_processing.common.volumetric_callable_operation import (
    VolumetricCallableOperation,
)

from .helpers import RES, make_volume_at, random_array, read_array, write_array


def test_an_operation_with_a_crop_pad_added_reads_and_crops_it(tmp_path: Path) -> None:
    src = make_volume_at(str(tmp_path / "src"), size=(64, 64, 2))
    dst = make_volume_at(str(tmp_path / "dst"), size=(64, 64, 2))
    data = random_array((1, 64, 64, 2), "uint8", seed=1)
    write_array(src, data)
    shapes: list[tuple[int, ...]] = []

    def fn(src: torch.Tensor) -> torch.Tensor:
        shapes.append(tuple(src.shape))
        return src

    op = VolumetricCallableOperation(fn)
    idx = VolumetricIndex.from_coords((16, 16, 0), (32, 32, 1), RES)
    op(idx, dst, src=src)  # plain: read at the index itself
    padded = op.with_added_crop_pad((4, 4, 0))
    padded(VolumetricIndex.from_coords((32, 16, 0), (48, 32, 1), RES), dst, src=src)
    op(VolumetricIndex.from_coords((16, 32, 0), (32, 48, 1), RES), dst, src=src)
    assert shapes == [(1, 16, 16, 1), (1, 24, 24, 1), (1, 16, 16, 1)]
    got = read_array(dst, (16, 16, 0), (48, 48, 1))
    np.testing.assert_array_equal(got[:, :32, :16], data[:, 16:48, 16:32, :1])
    np.testing.assert_array_equal(got[:, :16, 16:], data[:, 16:32, 32:48, :1])


def test_an_operation_changing_resolution_reads_at_its_input_resolution(tmp_path: Path) -> None:
    src = make_volume_at(str(tmp_path / "src"), size=(64, 64, 1))
    seen: list[tuple[int, ...]] = []

    def fn(src: torch.Tensor) -> torch.Tensor:
        seen.append(tuple(src.shape))
        return src[:, ::2, ::2]

    op = VolumetricCallableOperation(fn, res_change_mult=(2, 2, 1))
    for _ in range(2):
        op(VolumetricIndex.from_coords((0, 0, 0), (16, 16, 1), (8, 8, 40)), None, src=src)
    assert seen == [(1, 32, 32, 1), (1, 32, 32, 1)]


def test_clipped_writes_inside_across_and_outside_the_bounds(tmp_path: Path) -> None:
    layer = make_volume_at(str(tmp_path / "v"), size=(64, 64, 2))
    clipped = attrs.evolve(
        layer, backend=ClipWritesBackend(layer.backend, Vec3D(*RES), Box((0, 0, 0), (48, 64, 2)))
    )
    block = random_array((1, 16, 16, 1), "uint8", seed=2)
    expected = np.zeros((1, 64, 64, 2), dtype=np.uint8)
    for x, y in ((0, 0), (32, 16), (48, 0), (32, 48), (0, 48)):
        clipped[VolumetricIndex.from_coords((x, y, 0), (x + 16, y + 16, 1), RES)] = (
            torch.from_numpy(block.copy())
        )
        if x < 48:
            expected[:, x : x + 16, y : y + 16, :1] = block
    # a region across the clip box's end: only its part inside is written
    across = random_array((1, 32, 16, 1), "uint8", seed=3)
    clipped[VolumetricIndex.from_coords((32, 32, 1), (64, 48, 2), RES)] = torch.from_numpy(across)
    expected[:, 32:48, 32:48, 1:2] = across[:, :16]
    np.testing.assert_array_equal(read_array(layer, (0, 0, 0), (64, 64, 2)), expected)


def test_a_plans_clipped_destination_is_its_own(tmp_path: Path) -> None:
    from zetta_utils.mazepa_layer_processing.common.volumetric_apply_flow import (
        SubchunkablePlan,
    )

    first = make_volume_at(str(tmp_path / "a"), size=(64, 64, 1))
    second = make_volume_at(str(tmp_path / "b"), size=(64, 64, 1))
    fields: dict[str, Any] = {f.name: None for f in attrs.fields(SubchunkablePlan) if f.init}
    fields.update(
        op=None, op_args=(), op_kwargs={}, op_name="op", dst=first, dst_resolution=Vec3D(*RES),
        input_resolution=Vec3D(*RES), region=Box((0, 0, 0), (64, 64, 1)), roi_crop_pad=(0, 0, 0),
        chunk_sizes=((16, 16, 1),), crop_pads=((0, 0, 0),), blend_pads=((0, 0, 0),),
        blend_modes=("linear",), gap=(0, 0, 0), top_mode="skip",
        dst_bounds=Box((0, 0, 0), (48, 64, 1)), num_channels=1, dtype=torch.uint8,
        plan_id="p", keep_intermediaries=False, task_stack_size=1, bottom_stack=1,
    )  # fmt: skip
    plan = SubchunkablePlan(**fields)
    dst = plan.clipped_dst()
    assert plan.clipped_dst() is dst and dst.backend.inner is first.backend
    other = attrs.evolve(plan, dst=second)
    assert other.clipped_dst().backend.inner is second.backend
    unclipped = attrs.evolve(plan, dst_bounds=None)
    assert unclipped.clipped_dst() is first
    assert plan.top_grid is plan.top_grid and plan.top_grid.counts == (4, 4, 1)
    assert attrs.evolve(plan, chunk_sizes=((32, 32, 1),)).top_grid.counts == (2, 2, 1)
