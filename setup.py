"""The compiled parts of zetta_utils, both optional (without a C compiler the package installs
without them and does the same with NumPy): fused blending loops, and the tiled copy of chunks
into the x-fastest order of raw chunk files."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "zetta_utils.mazepa_layer_processing.common._blend",
            ["zetta_utils/mazepa_layer_processing/common/_blend.c"],
            extra_compile_args=["-O3", "-std=c11", "-fno-math-errno", "-ffp-contract=off"],
            optional=True,
        ),
        Extension(
            "zetta_utils.layer.volumetric._chunk_copy",
            ["zetta_utils/layer/volumetric/_chunk_copy.c"],
            extra_compile_args=["-O3", "-std=c11"],
            optional=True,
        ),
    ]
)
