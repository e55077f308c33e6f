"""Tensor operations of the original that this project does not include, registered so that a
spec naming one gets a message saying so (instead of an unknown-type error)."""

from __future__ import annotations

from zetta_utils import builder

_NO_AUGMENTATIONS = (
    "training augmentations (random fields and noise) are not part of this project; generate the "
    "data in a `lambda` or a registered function of your own"
)

builder.register_unsupported(
    "get_affine_field",
    ("size", "trans_x_px", "trans_y_px", "rot_deg", "shear_x_deg", "shear_y_deg", "scale"),
    "displacement fields (torchfields) belong to alignment, which this project does not include",
)
builder.register_unsupported(
    "rand_perlin_2d", ("shape", "res", "fade", "device"), _NO_AUGMENTATIONS
)
builder.register_unsupported(
    "rand_perlin_2d_octaves",
    ("shape", "res", "octaves", "persistence", "device"),
    _NO_AUGMENTATIONS,
)
builder.register_unsupported(
    "apply_clahe",
    ("data", "clip_limit", "tile_grid_size"),
    "CLAHE needs OpenCV, which this project does not depend on; apply it in a function of your own",
)
