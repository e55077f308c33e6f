"""Info-file handling for Neuroglancer Precomputed volumes (the guide's import path).

Both backends share the implementation in ``zetta_utils.layer.volumetric.precomputed``.
"""

from zetta_utils.layer.volumetric.precomputed import *  # noqa: F403
