"""The built-in demo volume: a local, procedurally generated stand-in for the FAFB v15 images
that the quick start guide reads, and tools to look at volumes without a viewer.

    >>> from zetta_utils.demo import write_demo_volume            # doctest: +SKIP
    >>> write_demo_volume()  # ~/.zetta_utils/demo/fafb_v15/{img,img_norm}  # doctest: +SKIP

The same from the command line: ``zetta demo-data [DIR]``; look at a section with
``zetta show LAYER --z N --out section.png``.

Importing this package is cheap: the names below (and torch, TensorStore) are loaded on first
use.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "DEFAULT_DEMO_DIR": "volume",
    "DEMO_REGIONS": "volume",
    "DemoRegion": "volume",
    "DemoVolume": "volume",
    "IMG_MEAN": "volume",
    "IMG_STD": "volume",
    "LAYER_NAMES": "volume",
    "REGION_NAMES": "volume",
    "demo_layer_path": "volume",
    "write_demo_volume": "volume",
    "TissueParams": "tissue",
    "render_section": "tissue",
    "Thumbnail": "show",
    "neuroglancer_link": "show",
    "write_thumbnail": "show",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'zetta_utils.demo' has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
