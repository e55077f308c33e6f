"""The arguments of ``build_subchunkable_apply_flow`` and ``build_postpad_subchunkable_apply_flow``,
declared once: each one's name, type, default and the rule it obeys.

The builders' signatures (what ``inspect.signature``, the builder, ``zetta show-registry`` and
mypy see) are made from these declarations, and ``attrs`` runs the rules, in the order declared,
when the arguments are given, before anything is read or written. A rule checks one argument
(knowing the number of levels, for the arguments given per level) and returns its normalised
form (e.g. one (x, y, z) per level), kept in :attr:`Arguments.checked`. What relates several
arguments is checked by the plan's stages (:mod:`.subchunkable_plan`), in the order a run needs
them; an argument declared without a rule is checked there.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, ClassVar, ParamSpec, TypeVar

import attrs

from zetta_utils.geometry import BBox3D, Vec3D
from zetta_utils.layer.volumetric.layer import VolumetricLayer

from .chunk_grid import Int3
from .reduction import BLEND_MODES

__all__ = ["Arguments", "PostpadArgs", "SubchunkableArgs", "Vec3Like", "taking"]

Vec3Like = Sequence[int] | Vec3D[int]


# --- the rules: each checks one value and returns its normalised form -------------------------
_PLAIN_SEQUENCES = (tuple, list)
_PLAIN_NUMBERS = (int, float)


def is_vec3(value: Any) -> bool:
    # the usual case first, without the ABC checks (building a flow checks a dozen of these)
    if type(value) in _PLAIN_SEQUENCES and len(value) == 3:
        if all(type(v) in _PLAIN_NUMBERS for v in value):
            return True
    if isinstance(value, Vec3D):
        return True
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or len(value) != 3:
        return False
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)


def fmt(v: Sequence[Any]) -> str:
    return "(" + ", ".join(str(x) for x in v) + ")"


def int3(value: Any, name: str, minimum: int = 0) -> Int3:
    if not is_vec3(value):
        raise ValueError(f"`{name}` must be three integers (x, y, z), got {value!r}")
    out = []
    for v in value:
        if type(v) is not int:
            if float(v) != int(v):
                raise ValueError(f"`{name}` must be three integers (x, y, z), got {value!r}")
            v = int(v)
        out.append(v)
    if any(v < minimum for v in out):
        raise ValueError(f"`{name}` must be three integers >= {minimum}, got {tuple(out)}")
    return (out[0], out[1], out[2])


def per_level(value: Any, name: str, num_levels: int, minimum: int = 0) -> tuple[Int3, ...]:
    """One 3-vector (or one integer, for x, y and z) for all levels, or one per level."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = (value, value, value)
    if is_vec3(value):
        vec = int3(value, name, minimum)
        return tuple(vec for _ in range(num_levels))
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise ValueError(
            f"`{name}` must be three integers (for every level) or a list of {num_levels} of "
            f"them (one per level), got {value!r}"
        )
    if len(value) != num_levels:
        raise ValueError(
            f"`{name}` has {len(value)} entries but there are {num_levels} levels (the length "
            f"of `processing_chunk_sizes`); give one per level, largest first, or a single "
            "(x, y, z) for all"
        )
    return tuple(int3(v, f"{name}[{i}]", minimum) for i, v in enumerate(value))


def level_sizes(value: Any, name: str, what: str) -> tuple[Int3, ...]:
    """One (x, y, z) size >= 1 per level, largest first (a single one: one level)."""
    if is_vec3(value):
        value = [value]
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or not value:
        raise ValueError(
            f"`{name}` must be a list of (x, y, z) {what}, one per level, largest first; "
            f"got {value!r}"
        )
    return tuple(int3(c, f"{name}[{i}]", 1) for i, c in enumerate(value))


def blend_modes(value: Any, num_levels: int) -> tuple[str, ...]:
    if isinstance(value, str):
        modes: tuple[str, ...] = tuple(value for _ in range(num_levels))
    elif isinstance(value, Sequence):
        if len(value) != num_levels:
            raise ValueError(
                f"`processing_blend_modes` has {len(value)} entries but there are {num_levels} "
                "levels; give one per level, largest first, or a single mode for all"
            )
        modes = tuple(value)
    else:
        raise ValueError(
            f"`processing_blend_modes` must be a mode or a list of modes, got {value!r}"
        )
    for i, mode in enumerate(modes):
        if mode not in BLEND_MODES:
            raise ValueError(
                f"`processing_blend_modes[{i}]` must be one of {', '.join(BLEND_MODES)}, "
                f"got {mode!r}"
            )
        if mode == "defer" and i > 0:
            raise ValueError(
                f'`processing_blend_modes[{i}]` is "defer", which only the top level (index 0) '
                "may use"
            )
    return modes


def _layer_or_none(value: Any, name: str, args: Arguments) -> Any:
    if value is not None and not isinstance(value, VolumetricLayer):
        raise TypeError(
            f"`{name}` must be a volumetric layer (build_ts_layer, build_cv_layer) or None, "
            f"got {type(value).__name__}"
        )
    return value


def _resolution(value: Any, name: str, args: Arguments) -> Vec3D[float]:
    try:
        res = Vec3D(*value)
    except (TypeError, ValueError) as e:
        raise ValueError(f"`{name}` must be three positive numbers, got {value!r}") from e
    if not all(r > 0 for r in res):
        raise ValueError(f"`{name}` must be three positive numbers, got {tuple(res)}")
    return res


def _chunk_sizes(value: Any, name: str, args: Arguments) -> tuple[Int3, ...]:
    return level_sizes(value, name, "chunk sizes")


def _input_sizes(value: Any, name: str, args: Arguments) -> tuple[Int3, ...]:
    return level_sizes(value, name, "input sizes")


def _xyz(value: Any, name: str, args: Arguments) -> Int3:
    return int3(value, name)


def _xyz_per_level(value: Any, name: str, args: Arguments) -> tuple[Int3, ...]:
    return per_level(value, name, args.levels)


def _modes(value: Any, name: str, args: Arguments) -> tuple[str, ...]:
    return blend_modes(value, args.levels)


def _one_mode(value: Any, name: str, args: Arguments) -> str:
    if not isinstance(value, str):
        raise ValueError(f"`{name}` must be one blend mode for all levels, got {value!r}")
    return value


def _flag(value: Any, name: str, args: Arguments) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"`{name}` must be True or False, got {value!r}")
    return value


def _worker_type(value: Any, name: str, args: Arguments) -> str | None:
    if value is not None and (not isinstance(value, str) or not value):
        raise ValueError(f"`{name}` must be a non-empty string or None, got {value!r}")
    return value


def _stack_size(value: Any, name: str, args: Arguments) -> int:
    stack = 1 if value is None else value
    if isinstance(stack, bool) or not isinstance(stack, int) or stack < 1:
        raise ValueError(f"`{name}` must be an integer >= 1, got {value!r}")
    return stack


def _cache_level(value: Any, name: str, args: Arguments) -> int:
    top = args.levels - 1
    level = top if value is None else value
    if isinstance(level, bool) or not isinstance(level, int):
        raise ValueError(
            f"`{name}` must be a level number from 0 (the smallest) to {top} (the largest), "
            f"got {value!r}"
        )
    # as in the original, a number past either end means the nearest level
    return min(max(level, 0), top)


def _task_name(value: Any, name: str, args: Arguments) -> str | None:
    if value is not None and not isinstance(value, str):
        raise TypeError(f"`{name}` must be a string, got {value!r}")
    return value


def _no_tighten_bounds(value: Any, name: str, args: Arguments) -> bool:
    if value:
        raise ValueError(
            "`dst_tighten_bounds` is no longer supported (the original dropped it too): give "
            "`dst` the bounds of the run when building it instead, e.g. `info_bbox: #BBOX` (or "
            "`info_voxel_offset` and `info_dataset_size`) in its build_cv_layer / "
            "build_ts_layer spec"
        )
    return False


# --- the declaration -------------------------------------------------------------------------
RuleFn = Callable[[Any, str, "Arguments"], Any]
Validator = Callable[["Arguments", "attrs.Attribute[Any]", Any], None]


def checks(rule: RuleFn) -> Validator:
    """The attrs validator of an argument that obeys ``rule``: runs ``rule(value, name, args)``
    and keeps what it returns, the argument's normalised form, in ``args.checked``."""

    def validate(inst: Arguments, attribute: attrs.Attribute[Any], value: Any) -> None:
        inst.checked[attribute.name] = rule(value, attribute.name, inst)

    return validate


class Arguments:
    """What both declarations share: the checked (normalised) values, and the number of levels."""

    checked: dict[str, Any]
    LEVELS_FROM: ClassVar[str]

    @property
    def levels(self) -> int:
        """The number of levels: the length of the (already checked) per-level sizes."""
        return len(self.checked[self.LEVELS_FROM])


@attrs.frozen
class SubchunkableArgs(Arguments):
    """The arguments of ``build_subchunkable_apply_flow``, in the order of its signature (their
    meaning is in its docstring): each one's type (as the signature shows it), default, and the
    rule it obeys (``checks(rule)``; none: a stage of the plan checks it, said above it)."""

    LEVELS_FROM: ClassVar[str] = "processing_chunk_sizes"
    checked: dict[str, Any] = attrs.field(init=False, factory=dict, repr=False, eq=False)

    dst: VolumetricLayer | None = attrs.field(validator=checks(_layer_or_none))
    dst_resolution: Sequence[float] = attrs.field(validator=checks(_resolution))
    processing_chunk_sizes: Sequence[Sequence[int]] = attrs.field(validator=checks(_chunk_sizes))
    processing_gap: Sequence[int] = attrs.field(default=(0, 0, 0), validator=checks(_xyz))
    processing_crop_pads: Sequence[int] | Sequence[Sequence[int]] = attrs.field(
        default=(0, 0, 0), validator=checks(_xyz_per_level)
    )
    processing_blend_pads: Sequence[int] | Sequence[Sequence[int]] = attrs.field(
        default=(0, 0, 0), validator=checks(_xyz_per_level)
    )
    processing_blend_modes: str | Sequence[str] = attrs.field(
        default="quadratic", validator=checks(_modes)
    )
    # checked with skip_intermediaries, where the plan decides how outputs reach dst
    level_intermediaries_dirs: Sequence[str | None] | None = None
    skip_intermediaries: bool = attrs.field(default=False, validator=checks(_flag))
    # checked where the reduction chunks are chosen (unused without a reduction)
    max_reduction_chunk_size: Sequence[int] | None = None
    max_reduction_chunk_sizes: Sequence[int] | Sequence[Sequence[int]] | None = None
    expand_bbox_resolution: bool = attrs.field(default=False, validator=checks(_flag))
    expand_bbox_backend: bool = attrs.field(default=False, validator=checks(_flag))
    expand_bbox_processing: bool = attrs.field(default=True, validator=checks(_flag))
    exact_bbox_output: bool = attrs.field(default=False, validator=checks(_flag))
    shrink_processing_chunk: bool = attrs.field(default=False, validator=checks(_flag))
    auto_divisibility: bool = attrs.field(default=False, validator=checks(_flag))
    allow_cache_up_to_level: int | None = attrs.field(default=None, validator=checks(_cache_level))
    op_worker_type: str | None = attrs.field(default=None, validator=checks(_worker_type))
    reduction_worker_type: str | None = attrs.field(default=None, validator=checks(_worker_type))
    task_stack_size: int | None = attrs.field(default=None, validator=checks(_stack_size))
    # None: True unless the other one says otherwise (checked together by the builder)
    verbose: bool | None = None
    print_summary: bool | None = None
    generate_ng_link: bool = False
    # the work: checked together (exactly one of fn and op, ...)
    fn: Callable[..., Any] | None = None
    fn_semaphores: Sequence[str] | None = None
    op: Any = None
    op_args: Iterable[Any] = ()
    op_kwargs: Mapping[str, Any] | None = None
    # the region: exactly one way, checked together
    bbox: BBox3D | None = None
    start_coord: Vec3Like | None = None
    end_coord: Vec3Like | None = None
    coord_resolution: Sequence[float] | None = None
    auto_bbox: bool = attrs.field(default=False, validator=checks(_flag))
    roi_crop_pad: Sequence[int] = attrs.field(default=(0, 0, 0), validator=checks(_xyz))
    task_name: str | None = attrs.field(default=None, validator=checks(_task_name))
    keep_intermediaries: bool = attrs.field(default=False, validator=checks(_flag))
    dst_tighten_bounds: bool = attrs.field(default=False, validator=checks(_no_tighten_bounds))


@attrs.frozen
class _PostpadSizes(Arguments):
    """The arguments of ``build_postpad_subchunkable_apply_flow`` of its own."""

    dst: VolumetricLayer = attrs.field(validator=checks(_layer_or_none))
    processing_input_sizes: Sequence[Sequence[int]] = attrs.field(validator=checks(_input_sizes))
    processing_crop: Sequence[int] = attrs.field(default=(0, 0, 0), validator=checks(_xyz))
    processing_blend: Sequence[int] = attrs.field(default=(0, 0, 0), validator=checks(_xyz))
    processing_blend_mode: str = attrs.field(default="quadratic", validator=checks(_one_mode))


def _combined(name: str, order: Sequence[str], *sources: type) -> type:
    """An attrs class of the fields named ``order``, each declared by the first of ``sources``
    that has it (so a field's type, default and rule are written once)."""
    by_name: dict[str, attrs.Attribute[Any]] = {}
    for source in reversed(sources):
        by_name.update(attrs.fields_dict(source))
    fields = {
        n: attrs.field(
            default=a.default, validator=a.validator, type=a.type, init=a.init,
            repr=a.repr, eq=a.eq,
        )
        for n, a in ((n, by_name[n]) for n in ("checked", *order))
    }
    cls = attrs.make_class(name, fields, bases=(Arguments,), frozen=True)
    cls.__annotations__ = {n: by_name[n].type for n in fields}
    cls.__module__ = __name__
    return cls


# ``build_postpad_subchunkable_apply_flow``'s arguments: its own sizes, the others as declared
# by ``SubchunkableArgs``.
PostpadArgs: Any = _combined(
    "PostpadArgs",
    (
        "dst", "dst_resolution", "processing_input_sizes", "processing_crop",
        "processing_blend", "processing_blend_mode", "level_intermediaries_dirs",
        "max_reduction_chunk_size", "max_reduction_chunk_sizes", "expand_bbox_processing",
        "expand_bbox_resolution", "allow_cache_up_to_level", "op_worker_type",
        "reduction_worker_type", "task_stack_size", "verbose", "print_summary",
        "generate_ng_link", "fn", "fn_semaphores", "op", "op_args", "op_kwargs", "bbox",
        "start_coord", "end_coord", "coord_resolution", "auto_bbox", "task_name",
        "keep_intermediaries", "dst_tighten_bounds",
    ),
    _PostpadSizes,
    SubchunkableArgs,
)
PostpadArgs.LEVELS_FROM = "processing_input_sizes"


# --- from the declaration to a public function -----------------------------------------------
P = ParamSpec("P")
A = TypeVar("A")
R = TypeVar("R")


def taking(declared: Callable[P, A]) -> Callable[[Callable[[A], R]], Callable[P, R]]:
    """Make ``impl(args)`` a function of the arguments ``declared`` (an attrs class) declares:
    its signature (``inspect.signature``, the builder's checks and coercions, mypy) is theirs,
    its name and docstring are ``impl``'s."""
    params = [
        inspect.Parameter(
            a.name,
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
            default=inspect.Parameter.empty if a.default is attrs.NOTHING else a.default,
            annotation=a.type,
        )
        for a in attrs.fields(typing.cast(type, declared))
        if a.init
    ]
    hints = typing.get_type_hints(declared)

    def decorate(impl: Callable[[A], R]) -> Callable[P, R]:
        def call(*args: P.args, **kwargs: P.kwargs) -> R:
            return impl(declared(*args, **kwargs))

        returns = impl.__annotations__.get("return", inspect.Signature.empty)
        call.__signature__ = inspect.Signature(params, return_annotation=returns)  # type: ignore[attr-defined]
        call.__annotations__ = {
            **{p.name: hints[p.name] for p in params},
            "return": typing.get_type_hints(impl).get("return", Any),
        }
        for attr in ("__module__", "__name__", "__qualname__", "__doc__"):
            setattr(call, attr, getattr(impl, attr))
        return call

    return decorate
