"""What ``build_ts_layer`` and ``build_cv_layer`` share: their arguments, split between the info
file (``info_*``, ``on_info_exists``) and the layer (resolutions, processors), and the steps
"make sure the info is right, open a backend, wrap it in a layer"."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from .backend import VolumetricBackend
from .layer import VolumetricLayer, build_volumetric_layer
from .precomputed import RemoteFileIO, prepare_info

_LAYER_ARGS = (
    "default_desired_resolution",
    "index_resolution",
    "data_resolution",
    "interpolation_mode",
    "readonly",
    "allow_slice_rounding",
    "index_procs",
    "read_procs",
    "write_procs",
    "mask_value_thr",
)


def build_precomputed_layer(
    args: Mapping[str, Any],
    make_backend: Callable[[dict[str, Any]], VolumetricBackend],
    io: RemoteFileIO | None = None,
) -> VolumetricLayer:
    """``args``: a builder's arguments (its ``locals()``); ``make_backend(info)`` opens the
    volume once its info is in place."""
    info_args = {k: v for k, v in args.items() if k.startswith("info_")}
    alias = args.get("inherit_all_params")  # the name of one of the original's versions
    if alias is not None:
        if info_args["info_inherit_all_params"] and not alias:
            raise ValueError(
                "inherit_all_params=False contradicts info_inherit_all_params=True (they are one "
                "argument: give one of them)"
            )
        info_args["info_inherit_all_params"] = bool(alias)
    info = prepare_info(
        args["path"],
        readonly=args["readonly"],
        on_info_exists=args["on_info_exists"],
        io=io,
        **info_args,
    )
    return build_volumetric_layer(make_backend(info), **{k: args[k] for k in _LAYER_ARGS})
