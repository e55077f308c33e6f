"""The compiled part of zetta_utils: fused blending loops (optional: without a C compiler the
package installs without them and blends with NumPy)."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "zetta_utils.mazepa_layer_processing.common._blend",
            ["zetta_utils/mazepa_layer_processing/common/_blend.c"],
            extra_compile_args=["-O3", "-std=c11", "-fno-math-errno", "-ffp-contract=off"],
            optional=True,
        )
    ]
)
