"""``VolumetricLayerSet``: several volumetric layers read and written with one index.

``layer_set[idx]`` returns ``{name: tensor}``, every tensor at the index's resolution (each layer
resamples from whatever it stores), so layers stored at different resolutions come back with the
same spatial shape. ``layer_set[idx] = {name: tensor, ...}`` writes the named layers; a subset
of the names is fine, an unknown name is an error, and nothing is written unless every named
layer is writable.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Union

import attrs
import numpy as np
import torch

from zetta_utils import builder
from zetta_utils.geometry import Vec3D
from zetta_utils.layer.layer_base import Layer
from zetta_utils.layer.protocols import DataProcessor, IndexProcessor, JointIndexDataProcessor

from .frontend import (
    UserVolumetricIndex,
    default_desired_resolution_converter,
    index_resolution_converter,
    parse_volumetric_index,
    to_write_tensor,
)
from .index import VolumetricIndex
from .layer import VolumetricLayer

SetData = dict[str, Any]
"""``{layer name: CXYZ tensor}`` (a nested set gives a nested dict)."""
VolumetricSetDataProcessor = (
    DataProcessor[SetData] | JointIndexDataProcessor[SetData, VolumetricIndex]
)
SetMember = Union[VolumetricLayer, "VolumetricLayerSet"]


def _to_layers(value: Mapping[str, Any]) -> dict[str, SetMember]:
    if not isinstance(value, Mapping):
        raise TypeError(
            f"`layers` must be a dict of name -> volumetric layer, got {type(value).__name__}"
        )
    if not value:
        raise ValueError("`layers` must hold at least one layer")
    for key, layer in value.items():
        if not isinstance(key, str):
            raise TypeError(f"`layers` keys must be strings, got {key!r}")
        if not isinstance(layer, (VolumetricLayer, VolumetricLayerSet)):
            raise TypeError(
                f"`layers[{key!r}]` must be a VolumetricLayer or VolumetricLayerSet, "
                f"got {type(layer).__name__}: {layer!r}"
            )
    return dict(value)


@attrs.frozen
class VolumetricSetBackend:
    """Reads and writes each member layer through its own processors and resolution handling."""

    layers: dict[str, SetMember] = attrs.field(converter=_to_layers)

    @property
    def name(self) -> str:
        return "layer set {" + ", ".join(f"{k}: {v.name}" for k, v in self.layers.items()) + "}"

    def read(self, idx: VolumetricIndex) -> SetData:
        return {key: layer.read_with_procs(idx) for key, layer in self.layers.items()}

    def write(self, idx: VolumetricIndex, data: SetData) -> None:
        if not isinstance(data, Mapping):
            raise TypeError(
                "data written to a layer set must be a dict of layer name -> tensor, got "
                f"{type(data).__name__}"
            )
        unknown = sorted(set(data) - set(self.layers))
        if unknown:
            raise KeyError(
                f"cannot write {', '.join(map(repr, unknown))}: not in the layer set "
                f"(layers: {', '.join(map(repr, self.layers))})"
            )
        readonly = [k for k in data if self.layers[k].readonly]
        if readonly:
            raise PermissionError(
                "cannot write to "
                + ", ".join(f"{k!r} ({self.layers[k].name})" for k in readonly)
                + ": read-only layer(s) (readonly=True); nothing was written"
            )
        for key, value in data.items():
            self.layers[key].write_with_procs(idx, value)


@attrs.frozen
class VolumetricSetFrontend:
    """Index conversion for layer sets (as for a single layer; see
    :mod:`zetta_utils.layer.volumetric.frontend`); written data is a dict of tensors."""

    index_resolution: Vec3D[float] | None = attrs.field(
        default=None, converter=index_resolution_converter
    )
    default_desired_resolution: Vec3D[float] | None = attrs.field(
        default=None, converter=default_desired_resolution_converter
    )
    allow_slice_rounding: bool = False

    def convert_idx(self, idx_user: UserVolumetricIndex) -> VolumetricIndex:
        return parse_volumetric_index(
            idx_user,
            self.index_resolution,
            self.default_desired_resolution,
            self.allow_slice_rounding,
        )

    def convert_write(
        self, idx_user: UserVolumetricIndex, data_user: Mapping[str, torch.Tensor | np.ndarray]
    ) -> tuple[VolumetricIndex, SetData]:
        idx = self.convert_idx(idx_user)
        if not isinstance(data_user, Mapping):
            raise TypeError(
                "data written to a layer set must be a dict of layer name -> tensor, got "
                f"{type(data_user).__name__}"
            )
        return idx, {k: to_write_tensor(v, idx, f"data[{k!r}]") for k, v in data_user.items()}


_FRONTEND_FIELDS = frozenset(attrs.fields_dict(VolumetricSetFrontend))


@attrs.frozen(kw_only=True)
class VolumetricLayerSet(Layer[VolumetricIndex, SetData]):
    """Volumetric layers indexed together; see the module docstring. Build one with
    :func:`build_volumetric_layer_set` (or ``build_layer_set``)."""

    backend: VolumetricSetBackend
    frontend: VolumetricSetFrontend = attrs.field(factory=VolumetricSetFrontend)

    @property
    def layers(self) -> dict[str, SetMember]:
        return self.backend.layers

    def __getitem__(self, idx_user: UserVolumetricIndex) -> SetData:
        return self.read_with_procs(self.frontend.convert_idx(idx_user))

    def __setitem__(
        self, idx_user: UserVolumetricIndex, data_user: Mapping[str, torch.Tensor | np.ndarray]
    ) -> None:
        self._check_writable()
        idx, data = self.frontend.convert_write(idx_user, data_user)
        self.write_with_procs(idx, data)

    def with_changes(self, **kwargs: Any) -> VolumetricLayerSet:
        """This set with fields replaced: ``layers``, ``readonly``, processor lists, or frontend
        settings (``index_resolution``, ``default_desired_resolution``,
        ``allow_slice_rounding``)."""
        layer_fields = set(attrs.fields_dict(type(self))) | {"layers"}
        unknown = sorted(set(kwargs) - layer_fields - _FRONTEND_FIELDS)
        if unknown:
            raise TypeError(
                f"with_changes: unknown argument(s) {', '.join(unknown)}; expected some of "
                f"{', '.join(sorted((layer_fields | _FRONTEND_FIELDS) - {'frontend', 'backend'}))}"
            )
        changes = {k: v for k, v in kwargs.items() if k not in _FRONTEND_FIELDS and k != "layers"}
        frontend_changes = {k: v for k, v in kwargs.items() if k in _FRONTEND_FIELDS}
        if frontend_changes:
            changes["frontend"] = attrs.evolve(self.frontend, **frontend_changes)
        if "layers" in kwargs:
            changes["backend"] = VolumetricSetBackend(kwargs["layers"])
        return attrs.evolve(self, **changes)


def _common_setting(layers: Mapping[str, SetMember], name: str) -> Vec3D[float] | None:
    values = {getattr(layer.frontend, name) for layer in layers.values()}
    return values.pop() if len(values) == 1 else None


@builder.register("build_volumetric_layer_set")
def build_volumetric_layer_set(
    layers: Mapping[str, SetMember],
    readonly: bool = False,
    index_resolution: Vec3D[float] | Sequence[float] | None = None,
    default_desired_resolution: Vec3D[float] | Sequence[float] | None = None,
    allow_slice_rounding: bool = False,
    index_procs: Iterable[IndexProcessor[VolumetricIndex]] = (),
    read_procs: Iterable[VolumetricSetDataProcessor] = (),
    write_procs: Iterable[VolumetricSetDataProcessor] = (),
) -> VolumetricLayerSet:
    """A ``VolumetricLayerSet`` of ``layers`` (name -> ``VolumetricLayer`` or nested set).

    :param readonly: refuse writes; the member layers are made read-only too.
    :param index_resolution: resolution of slice coordinates; default: the members' common
        ``index_resolution`` when they all have the same one.
    :param default_desired_resolution: resolution read when the index names none; default: the
        members' common one when they all have the same one.
    :param allow_slice_rounding: as for a single layer.
    :param index_procs, read_procs, write_procs: processors of the set; they see the index and
        the dict of tensors (each member still applies its own processors).
    """
    members = _to_layers(layers)
    if readonly:
        members = {
            k: v if v.readonly else v.with_changes(readonly=True) for k, v in members.items()
        }
    if index_resolution is None:
        index_resolution = _common_setting(members, "index_resolution")
    if default_desired_resolution is None:
        default_desired_resolution = _common_setting(members, "default_desired_resolution")
    return VolumetricLayerSet(
        backend=VolumetricSetBackend(members),
        frontend=VolumetricSetFrontend(
            index_resolution=index_resolution,
            default_desired_resolution=default_desired_resolution,
            allow_slice_rounding=allow_slice_rounding,
        ),
        readonly=readonly,
        index_procs=index_procs,
        read_procs=read_procs,
        write_procs=write_procs,
    )


build_layer_set = build_volumetric_layer_set
"""The guide's name for :func:`build_volumetric_layer_set` (registered as ``build_layer_set``)."""
builder.register("build_layer_set")(build_layer_set)
