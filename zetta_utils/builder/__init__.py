"""The builder: specs (dicts with ``"@type"``) to objects.

>>> from zetta_utils import builder
>>> @builder.register("double")
... def double(x: int) -> int:
...     return 2 * x
>>> builder.build({"@type": "double", "x": 21})
42
"""

from . import built_in
from .building import (
    BuilderError,
    BuilderPartial,
    build,
    register_coercion,
    register_spec_file_loader,
)
from .registry import (
    DEFAULT_VERSION,
    REGISTRY,
    RegistryEntry,
    UnsupportedTypeError,
    get_matching_entry,
    register,
    register_unsupported,
    unregister,
)

__all__ = [
    "DEFAULT_VERSION",
    "REGISTRY",
    "BuilderError",
    "BuilderPartial",
    "RegistryEntry",
    "UnsupportedTypeError",
    "build",
    "built_in",
    "get_matching_entry",
    "register",
    "register_coercion",
    "register_spec_file_loader",
    "register_unsupported",
    "unregister",
]
