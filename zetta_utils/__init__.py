"""zetta_utils: chunkwise processing of petascale 3D image volumes.

Importing the package is cheap: heavy modules (torch, storage backends) are imported by the
subpackages that need them. Each subpackage registers its user-facing callables with the builder
when it is imported; :func:`load_all_modules` imports every one of them, and the builder calls it
by itself the first time a spec names a type it does not know yet.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

# Modules whose import registers builder types, in dependency order.
_REGISTERING_MODULES: tuple[str, ...] = (
    "zetta_utils.geometry",
    "zetta_utils.parsing",
    "zetta_utils.builder.built_in",
    "zetta_utils.tensor_ops",
    "zetta_utils.layer",
    "zetta_utils.layer.volumetric",
    "zetta_utils.layer.volumetric.cloudvol",
    "zetta_utils.layer.volumetric.tensorstore",
    "zetta_utils.mazepa",
    "zetta_utils.mazepa_layer_processing",
    "zetta_utils.mazepa_layer_processing.common.original_names",
    "zetta_utils.mazepa_layer_processing.common.interpolate_flow",
    "zetta_utils.message_queues",
    "zetta_utils.cloud_management",
    "zetta_utils.mazepa_addons",
    "zetta_utils.training",
)


def load_all_modules() -> None:
    """Import every subpackage that registers builder types.

    Subpackages that are not part of this installation are skipped; an import error *inside* an
    existing module is raised, since it would otherwise hide registrations silently.
    """
    for name in _REGISTERING_MODULES:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name is not None and (name == e.name or name.startswith(e.name + ".")):
                continue
            raise
