"""Operations on volumetric chunks, and the default one: a tensor function.

An *operation* (``op``) is any object called as ``op(idx, dst, *op_args, **op_kwargs)`` that
computes the chunk ``idx`` (a ``VolumetricIndex``) and writes it with ``dst[idx] = result``.
Optional methods the flows use when present:

* ``with_added_crop_pad(crop_pad) -> op``: the same operation reading ``crop_pad`` more voxels
  on each side and cropping them off its output (needed for a bottom-level crop);
* ``get_input_resolution(dst_resolution) -> resolution``: the resolution it reads its inputs at
  (default: ``dst_resolution``), used to read inputs once per upper-level chunk;
* ``get_operation_name() -> str``: the name shown in progress displays.

:class:`VolumetricCallableOperation` wraps a function on tensors: layers among the keyword
arguments are read at the chunk's index padded by ``crop_pad``, everything else is passed as it
is, the result is cropped by ``crop_pad`` and written to ``dst`` (with ``dst`` None, the function
runs for its side effects and its result is ignored).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import attrs
import numpy as np
import torch

from zetta_utils import builder, mazepa
from zetta_utils.geometry import Vec3D
from zetta_utils.layer.volumetric import VolumetricIndex
from zetta_utils.layer.volumetric.layer import VolumetricLayer
from zetta_utils.layer.volumetric.layer_set import VolumetricLayerSet
from zetta_utils.tensor_ops import to_torch

from .reduction import describe


@runtime_checkable
class VolumetricOpProtocol(Protocol):
    """What ``op`` must be: see the module docstring."""

    def __call__(self, idx: VolumetricIndex, dst: Any, *args: Any, **kwargs: Any) -> Any: ...


def _to_crop_pad(value: Any) -> Vec3D[int]:
    pad = Vec3D(*value) if not isinstance(value, Vec3D) else value
    if not all(isinstance(v, int) and v >= 0 for v in pad):
        raise ValueError(f"crop_pad: expected three non-negative integers, got {tuple(pad)}")
    return pad


def _to_res_change_mult(value: Any) -> Vec3D[float]:
    mult = value if isinstance(value, Vec3D) else Vec3D(*value)
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 for v in mult):
        raise ValueError(f"res_change_mult: expected three positive numbers, got {tuple(mult)}")
    return mult


def _to_semaphores(value: Sequence[str] | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = [value]
    names = tuple(value)
    for name in names:
        if name not in mazepa.SEMAPHORE_TYPES:
            raise ValueError(
                f"fn_semaphores: unknown semaphore {name!r}; expected some of "
                f"{', '.join(mazepa.SEMAPHORE_TYPES)}"
            )
    return names


def is_layer(value: Any) -> bool:
    """Whether ``value`` is read at the chunk's index (a volumetric layer or layer set)."""
    return isinstance(value, (VolumetricLayer, VolumetricLayerSet))


def crop_output(data: torch.Tensor, crop_pad: Sequence[int]) -> torch.Tensor:
    """``data`` (CXYZ) without ``crop_pad`` voxels on each side of x, y, z (a view)."""
    cx, cy, cz = crop_pad
    return data[
        :,
        cx : data.shape[1] - cx,
        cy : data.shape[2] - cy,
        cz : data.shape[3] - cz,
    ]


@builder.register("VolumetricCallableOperation")
@mazepa.taskable_operation_cls
@attrs.frozen
class VolumetricCallableOperation(mazepa.OperationBase):
    """Runs ``fn`` on one chunk: ``fn(*op_args, **kwargs)`` with layers in the kwargs read at the
    chunk padded by ``crop_pad``; the output (CXYZ, the padded shape) is cropped by ``crop_pad``
    and written to ``dst`` at the chunk.

    :param fn: a function of tensors returning a CXYZ tensor (or NumPy array).
    :param crop_pad: voxels (of ``dst``) of context read on each side and cropped off the output.
    :param res_change_mult: the layers are read at ``dst_resolution / res_change_mult`` (the same
        region, padding included); ``fn`` returns the output at ``dst_resolution``. ``[2, 2, 1]``:
        ``fn`` gets twice as many voxels in x and y as it returns (a downsampling function).
    :param fn_semaphores: ``mazepa.semaphore`` types held while ``fn`` runs (``read``, ``write``,
        ``cuda``, ``cpu``).
    :param operation_name: the name shown in progress displays (default: ``fn``'s name).
    """

    fn: Callable[..., Any]
    crop_pad: Vec3D[int] = attrs.field(default=Vec3D(0, 0, 0), converter=_to_crop_pad)
    res_change_mult: Vec3D[float] = attrs.field(
        default=Vec3D(1, 1, 1), converter=_to_res_change_mult
    )
    fn_semaphores: tuple[str, ...] | None = attrs.field(default=None, converter=_to_semaphores)
    operation_name: str | None = None

    def get_operation_name(self) -> str:
        if self.operation_name:
            return self.operation_name
        name = getattr(self.fn, "__name__", None) or type(self.fn).__name__
        return "lambda" if name == "<lambda>" else name

    def __attrs_post_init__(self) -> None:
        input_pad = self.crop_pad * self.res_change_mult
        if not all(float(p).is_integer() for p in input_pad):
            raise ValueError(
                f"crop_pad {tuple(self.crop_pad)} with res_change_mult "
                f"{tuple(self.res_change_mult)} is {tuple(input_pad)} voxels of input, not a "
                "whole number"
            )

    @property
    def changes_resolution(self) -> bool:
        return tuple(self.res_change_mult) != (1, 1, 1)

    def get_input_resolution(self, dst_resolution: Vec3D[float]) -> Vec3D[float]:
        return dst_resolution / self.res_change_mult if self.changes_resolution else dst_resolution

    def with_added_crop_pad(self, crop_pad: Sequence[int]) -> VolumetricCallableOperation:
        return attrs.evolve(self, crop_pad=self.crop_pad + Vec3D(*crop_pad))

    def call_fn(self, args: Sequence[Any], inputs: Mapping[str, Any]) -> Any:
        """``fn(*args, **inputs)`` holding ``fn_semaphores``; whatever it returns."""
        if not self.fn_semaphores:
            return self.fn(*args, **inputs)
        with contextlib.ExitStack() as stack:
            for name in self.fn_semaphores:
                stack.enter_context(mazepa.semaphore(name))
            return self.fn(*args, **inputs)

    def compute_padded(
        self, expected: Sequence[int], args: Sequence[Any], inputs: Mapping[str, Any]
    ) -> torch.Tensor:
        """``fn``'s output for inputs already read at the chunk padded by ``crop_pad`` (spatial
        shape ``expected``), not yet cropped."""
        result = self.call_fn(args, inputs)
        if isinstance(result, np.ndarray):
            result = to_torch(result)
        if (
            not (type(result) is torch.Tensor or isinstance(result, torch.Tensor))
            or result.ndim != 4
            or result.shape[1:] != (expected if type(expected) is tuple else tuple(expected))
        ):
            chunk = tuple(e - 2 * c for e, c in zip(expected, self.crop_pad, strict=True))
            raise ValueError(
                f"{self.get_operation_name()}: expected a CXYZ tensor of spatial shape "
                f"{tuple(expected)} (the chunk {chunk} padded by crop_pad {tuple(self.crop_pad)}), "
                f"got {describe(result)}"
            )
        return result

    def compute_stacked(
        self, expected: Sequence[int], count: int, args: Sequence[Any], inputs: Mapping[str, Any]
    ) -> torch.Tensor:
        """``fn``'s output for ``count`` chunks at once (``task_stack_size``, as the original's
        stacked operations): the layers in ``inputs`` hold the chunks' data stacked along a new
        first dim (N, C, X, Y, Z), and so must the output; not yet cropped."""
        result = self.call_fn(args, inputs)
        if isinstance(result, np.ndarray):
            result = to_torch(result)
        if (
            not isinstance(result, torch.Tensor)
            or result.ndim != 5
            or result.shape[0] != count
            or tuple(result.shape[2:]) != tuple(expected)
        ):
            raise ValueError(
                f"{self.get_operation_name()}: with task_stack_size, the function gets {count} "
                f"chunks stacked (N, C, X, Y, Z) and must return them stacked: expected a tensor "
                f"of shape "
                f"({count}, C, {', '.join(str(e) for e in expected)}), got {describe(result)}"
            )
        return result

    def compute(
        self, expected: Sequence[int], args: Sequence[Any], inputs: Mapping[str, Any]
    ) -> torch.Tensor:
        """:meth:`compute_padded`, cropped by ``crop_pad``."""
        result = self.compute_padded(expected, args, inputs)
        return (
            result if self._plain or not any(self.crop_pad) else crop_output(result, self.crop_pad)
        )

    @functools.cached_property
    def _plain(self) -> bool:
        """No crop pad, no resolution change: a chunk's inputs are read at its own index."""
        return not any(self.crop_pad) and not self.changes_resolution

    def __call__(self, idx: VolumetricIndex, dst: Any, *args: Any, **kwargs: Any) -> None:
        """Compute the chunk ``idx`` and write it to ``dst``; with ``dst`` None, ``fn`` is run
        for what it does (printing, writing by itself) and may return anything: nothing is
        written."""
        if self._plain:
            padded = read_idx = idx
        else:
            padded = idx.padded(self.crop_pad) if any(self.crop_pad) else idx
            read_idx = (
                padded.with_resolution(self.get_input_resolution(idx.resolution))
                if self.changes_resolution
                else padded
            )
        inputs = {k: (v[read_idx] if is_layer(v) else v) for k, v in kwargs.items()}
        if dst is None:
            self.call_fn(args, inputs)
            return
        (x0, y0, z0), (x1, y1, z1) = padded.voxel_box
        dst[idx] = self.compute((x1 - x0, y1 - y0, z1 - z0), args, inputs)


def op_name_of(op: Any) -> str:
    getter = getattr(op, "get_operation_name", None)
    if callable(getter):
        return str(getter())
    return type(op).__name__
