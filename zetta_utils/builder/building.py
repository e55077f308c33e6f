"""Building objects from specs: dicts whose ``"@type"`` names a registered callable."""

from __future__ import annotations

import collections.abc
import difflib
import inspect
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Union

from .registry import REGISTRY, RegistryEntry, get_matching_entry

TYPE_KEY = "@type"
MODE_KEY = "@mode"
VERSION_KEY = "@version"
SPECIAL_KEYS = (TYPE_KEY, MODE_KEY, VERSION_KEY)
MODES = ("regular", "partial")


class BuilderError(Exception):
    """A spec could not be built. ``spec_path`` locates the failing part, e.g.
    ``target.op_kwargs.src``; the message says what was expected.

    An error raised by a registered callable while it builds keeps its type: it reaches the
    caller of ``build`` as an instance of both ``BuilderError`` and the original exception's
    class (see :func:`error_keeping_type`), so ``pytest.raises(ValueError)`` around
    ``builder.build(spec)`` works; the original is its ``__cause__``."""

    details: str = ""
    """More than the message says (a full signature), shown by ``zetta --debug``."""

    def __init__(self, spec_path: str, message: str):
        self.spec_path = spec_path
        self.reason = message
        self._message = f"at `{spec_path or '<root>'}`: {message}"
        # Not super(): in the subclasses made by error_keeping_type the next class is the
        # original's, whose constructor may want other arguments.
        Exception.__init__(self, self._message)

    def __str__(self) -> str:
        # Some bases format their args (KeyError quotes them); the message is already final.
        return self._message

    def __reduce__(self) -> tuple[Any, ...]:
        # Subclasses made by error_keeping_type are not importable by name: rebuild them.
        return (_rebuild_error, (_ORIGINAL_TYPES.get(type(self)), self.spec_path, self.reason))


_TYPE_KEEPING_CLASSES: dict[type[BaseException], type[BuilderError]] = {}
_ORIGINAL_TYPES: dict[type[BuilderError], type[BaseException]] = {}


def _type_keeping_class(original: type[BaseException]) -> type[BuilderError] | None:
    """``BuilderError`` subclassing ``original`` too (one class per original type), or None
    where the two cannot be combined (instance layouts that conflict)."""
    if issubclass(original, BuilderError) or not issubclass(original, Exception):
        return None
    cls = _TYPE_KEEPING_CLASSES.get(original)
    if cls is None:
        try:
            cls = type(
                f"Builder{original.__name__}",
                (BuilderError, original),
                {
                    "__module__": __name__,
                    "__doc__": f"A BuilderError that is a {original.__name__}.",
                },
            )
        except TypeError:
            return None
        _TYPE_KEEPING_CLASSES[original] = cls
        _ORIGINAL_TYPES[cls] = original
    return cls


def error_keeping_type(original: BaseException, spec_path: str, message: str) -> BuilderError:
    """A ``BuilderError`` at ``spec_path`` that is also an instance of ``type(original)``, so
    callers catching the original type still catch it; a plain ``BuilderError`` where that
    type cannot be combined (its constructor needs other arguments)."""
    cls = _type_keeping_class(type(original))
    if cls is not None:
        try:
            error = cls.__new__(cls, message)
        except Exception:  # a base whose __new__ wants other arguments
            return BuilderError(spec_path, message)
        # The original's attributes (e.g. an ExecutionError's failures) stay readable.
        error.__dict__.update(getattr(original, "__dict__", {}))
        BuilderError.__init__(error, spec_path, message)
        return error
    return BuilderError(spec_path, message)


class ArgumentError(TypeError):
    """Raised by a registered callable to blame one of its own arguments: the builder reports it
    at that argument's place in the spec (``argument`` is relative to the callable's spec, e.g.
    ``"op_kwargs.src"``). Outside the builder it is a plain ``TypeError``."""

    def __init__(self, argument: str, message: str):
        super().__init__(message)
        self.argument = argument

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.argument, str(self)))


def _rebuild_error(
    original: type[BaseException] | None, spec_path: str, reason: str
) -> BuilderError:
    if original is None:
        return BuilderError(spec_path, reason)
    cls = _type_keeping_class(original)
    return (cls or BuilderError)(spec_path, reason)


def _join_relative(path: str, relative: str) -> str:
    """``path`` extended by a dotted ``relative`` path (``"op_kwargs.src"``)."""
    for key in relative.split(".") if relative else ():
        path = _join(path, key)
    return path


def _join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else str(key)


_SPEC_FILE_LOADERS: list[Callable[[str], Any]] = []


def register_spec_file_loader(load: Callable[[str], Any]) -> None:
    """What ``build(path=...)`` reads spec files with: ``zetta_utils.parsing`` registers its
    ``load_spec_file`` on import (the builder, at the bottom of the package, imports none of it)."""
    _SPEC_FILE_LOADERS[:] = [load]


def _load_spec_file(path: str) -> Any:
    if not _SPEC_FILE_LOADERS:
        import zetta_utils  # its load_all_modules imports zetta_utils.parsing, which registers

        zetta_utils.load_all_modules()
    return _SPEC_FILE_LOADERS[0](path)


def build(spec: Any = None, path: str | None = None) -> Any:
    """Build ``spec`` (a dict, or a list of them), or the spec in the file at ``path``
    (CUE, JSON or YAML). Exactly one of the two must be given."""
    if (spec is None) == (path is None):
        raise ValueError("builder.build: give exactly one of `spec` and `path`")
    if path is not None:
        spec = _load_spec_file(path)
    if not isinstance(spec, (dict, list, tuple)):
        raise BuilderError(
            "",
            "expected a spec (a dict with '@type', or a list), "
            f"got {type(spec).__name__}: {spec!r}",
        )
    return _build(spec, "", None, ())


def _build(obj: Any, path: str, version: Any, stack: tuple[int, ...]) -> Any:
    if isinstance(obj, (dict, list, tuple)):
        if id(obj) in stack:
            raise BuilderError(path, "the spec contains a cycle (a container that includes itself)")
        stack = (*stack, id(obj))
    if isinstance(obj, dict):
        for key in obj:
            if not isinstance(key, str):
                raise BuilderError(path, f"spec keys must be strings, got {key!r}")
        version = obj.get(VERSION_KEY, version)
        if TYPE_KEY in obj:
            return _build_typed(obj, path, version, stack)
        _check_special_keys(obj, path)
        if MODE_KEY in obj:
            raise BuilderError(path, f"'{MODE_KEY}' given without '{TYPE_KEY}'")
        return {
            k: _build(v, _join(path, k), version, stack) for k, v in obj.items() if k != VERSION_KEY
        }
    if isinstance(obj, list):
        return [_build(v, _join(path, i), version, stack) for i, v in enumerate(obj)]
    if isinstance(obj, tuple):
        return tuple(_build(v, _join(path, i), version, stack) for i, v in enumerate(obj))
    return obj


def _check_special_keys(spec: dict[str, Any], path: str) -> None:
    for key in spec:
        if key.startswith("@") and key not in SPECIAL_KEYS:
            raise BuilderError(
                path, f"unknown special key '{key}' (known: {', '.join(SPECIAL_KEYS)})"
            )


def _lookup(name: Any, path: str, version: Any) -> RegistryEntry:
    if not isinstance(name, str):
        raise BuilderError(
            path, f"'{TYPE_KEY}' must be a string naming a registered type, got {name!r}"
        )
    try:
        return get_matching_entry(name, version)
    except KeyError:
        pass
    except ValueError as e:
        raise BuilderError(path, str(e)) from None
    # Registration happens on module import; import everything once and look again.
    import zetta_utils

    zetta_utils.load_all_modules()
    try:
        return get_matching_entry(name, version)
    except KeyError as e:
        if name in REGISTRY:
            raise BuilderError(path, str(e.args[0])) from None
        close = difflib.get_close_matches(name, list(REGISTRY), n=5, cutoff=0.6)
        hint = f"; closest registered names: {', '.join(close)}" if close else ""
        raise BuilderError(
            path, f"unknown '{TYPE_KEY}' {name!r}{hint} (`zetta show-registry` lists them all)"
        ) from None


def _build_typed(spec: dict[str, Any], path: str, version: Any, stack: tuple[int, ...]) -> Any:
    entry = _lookup(spec[TYPE_KEY], path, version)
    mode = spec.get(MODE_KEY, "regular")
    if mode not in MODES:
        raise BuilderError(
            path, f"'{MODE_KEY}' must be one of {', '.join(map(repr, MODES))}, got {mode!r}"
        )
    _check_special_keys(spec, path)
    if mode == "partial":
        if not entry.allow_partial:
            raise BuilderError(path, f"'{entry.name}' cannot be built in partial mode")
        return BuilderPartial(spec=spec, path=path, version=version)
    kwargs = {
        k: _build(v, _join(path, k), version, stack)
        for k, v in spec.items()
        if k not in SPECIAL_KEYS
    }
    return call_entry(entry, (), kwargs, path)


def call_entry(
    entry: RegistryEntry, args: tuple[Any, ...], kwargs: dict[str, Any], path: str
) -> Any:
    """Call a registered callable with built arguments, coercing lists to ``Vec3D`` where the
    signature asks for one, and turning argument and runtime errors into ``BuilderError``s."""
    fn = entry.fn
    sig = _signature(fn)
    if sig is not None:
        kwargs = {k: coerce_to_annotation(v, _annotation(fn, k)) for k, v in kwargs.items()}
        try:
            sig.bind(*args, **kwargs)
        except TypeError as e:
            # Calling with bad arguments is a TypeError, as calling the function would be.
            raise _bad_arguments(entry, sig, kwargs, e, path) from None
    try:
        return fn(*args, **kwargs)
    except BuilderError:
        raise
    except ArgumentError as e:
        raise error_keeping_type(e, _join_relative(path, e.argument), str(e)) from e
    except Exception as e:
        message = f"building '{entry.name}' failed: {type(e).__name__}: {e}"
        raise error_keeping_type(e, path, message) from e


def _bad_arguments(
    entry: RegistryEntry,
    sig: inspect.Signature,
    kwargs: Mapping[str, Any],
    error: TypeError,
    path: str,
) -> BuilderError:
    """A short error for arguments ``sig`` does not bind: the unknown names with the closest
    parameter names, or the missing ones; the full signature goes to ``details`` (``--debug``
    shows it, as does ``zetta show-registry NAME``)."""
    params = sig.parameters
    P = inspect.Parameter
    accepts_any = any(p.kind is P.VAR_KEYWORD for p in params.values())
    names = [n for n, p in params.items() if p.kind in (P.POSITIONAL_OR_KEYWORD, P.KEYWORD_ONLY)]
    unknown = [] if accepts_any else [k for k in kwargs if k not in params]
    show_all = f"`zetta show-registry {entry.name}` lists all its arguments"
    if unknown:
        suggestions = [difflib.get_close_matches(key, names, n=3, cutoff=0.5) for key in unknown]
        if len(unknown) == 1:
            (key,), (close,) = unknown, suggestions
            message = f"'{entry.name}' has no argument '{key}'"
            if close:
                message += f"; did you mean '{close[0]}'?"
            listing = f"close: {', '.join(close)}; {show_all}" if len(close) > 1 else show_all
            message += f" ({listing})"
        else:
            named = [
                f"'{key}'" + (f" (did you mean '{close[0]}'?)" if close else "")
                for key, close in zip(unknown, suggestions, strict=True)
            ]
            message = (
                f"'{entry.name}' has no arguments {', '.join(named[:-1])} "
                f"and {named[-1]} ({show_all})"
            )
        where = _join(path, unknown[0]) if len(unknown) == 1 else path
    else:
        missing = [
            n
            for n, p in params.items()
            if p.default is P.empty
            and p.kind in (P.POSITIONAL_OR_KEYWORD, P.KEYWORD_ONLY)
            and n not in kwargs
        ]
        where = path
        if missing and not any(p.kind is P.POSITIONAL_ONLY for p in params.values()):
            quoted = ", ".join(f"'{n}'" for n in missing)
            message = f"'{entry.name}' needs {quoted}, which the spec does not give ({show_all})"
        else:
            message = f"bad arguments for '{entry.name}': {error} ({show_all})"
    built = error_keeping_type(error, where, message)
    built.details = f"signature: {entry.name}{sig}"
    return built


_SIGNATURES: dict[Any, inspect.Signature | None] = {}
_HINTS: dict[Any, dict[str, Any]] = {}


def _signature(fn: Callable[..., Any]) -> inspect.Signature | None:
    key = fn
    if key not in _SIGNATURES:
        try:
            _SIGNATURES[key] = inspect.signature(fn)
        except (TypeError, ValueError):
            _SIGNATURES[key] = None
    return _SIGNATURES[key]


def _annotation(fn: Callable[..., Any], name: str) -> Any:
    if fn not in _HINTS:
        target: Any = fn.__init__ if inspect.isclass(fn) else fn
        try:
            _HINTS[fn] = typing.get_type_hints(target)
        except Exception:  # unresolvable forward references: no coercion, no crash
            _HINTS[fn] = {}
    return _HINTS[fn].get(name)


_COERCIONS: list[tuple[type, Callable[[Any], Any]]] = []


def register_coercion(cls: type, convert: Callable[[Any], Any]) -> None:
    """Have ``build`` pass a spec value through ``convert`` where a parameter's annotation asks
    for ``cls`` (also inside unions and sequences); ``convert`` returns the value itself when it
    does not apply. The module defining ``cls`` registers it (geometry: ``[x, y, z]`` to
    ``Vec3D``), so the builder imports none of them."""
    _COERCIONS.append((cls, convert))


def _coercion_for(annotation: Any) -> Callable[[Any], Any] | None:
    origin = typing.get_origin(annotation)
    for cls, convert in _COERCIONS:
        if annotation is cls or origin is cls:
            return convert
    return None


def coerce_to_annotation(value: Any, annotation: Any) -> Any:
    """Turn a spec value into what ``annotation`` asks for, by the coercions registered with
    :func:`register_coercion` (e.g. ``[x, y, z]`` into ``Vec3D(x, y, z)``), also inside unions and
    sequences; everything else is returned unchanged."""
    if annotation is None:
        return value
    convert = _coercion_for(annotation)
    if convert is not None:
        return convert(value)
    origin = typing.get_origin(annotation)
    if origin in (Union, types.UnionType):
        arms = typing.get_args(annotation)
        for arm in arms:
            arm_convert = _coercion_for(arm)
            if arm_convert is not None:
                coerced = arm_convert(value)
                if coerced is not value:
                    return coerced
        for arm in arms:
            coerced = coerce_to_annotation(value, arm)
            if coerced is not value:
                return coerced
        return value
    if origin in (list, collections.abc.Sequence, collections.abc.Iterable) and isinstance(
        value, (list, tuple)
    ):
        (item,) = typing.get_args(annotation) or (None,)
        coerced_items = [coerce_to_annotation(v, item) for v in value]
        if any(c is not v for c, v in zip(coerced_items, value, strict=True)):
            return type(value)(coerced_items)
        return value
    if origin is tuple and isinstance(value, (list, tuple)):
        args = typing.get_args(annotation)
        if len(args) == 2 and args[1] is Ellipsis:
            coerced_items = [coerce_to_annotation(v, args[0]) for v in value]
            if any(c is not v for c, v in zip(coerced_items, value, strict=True)):
                return tuple(coerced_items)
        return value
    if origin in (dict, collections.abc.Mapping) and isinstance(value, dict):
        args = typing.get_args(annotation)
        if len(args) == 2:
            return {k: coerce_to_annotation(v, args[1]) for k, v in value.items()}
    return value


def partial_signature(sig: inspect.Signature, given: Iterable[str]) -> inspect.Signature:
    """What remains of ``sig`` once the arguments named ``given`` are bound by name (as
    ``functools.partial`` shows it): those become keyword-only with a default, and so do the
    positional-or-keyword parameters after the first of them; call-time arguments may still
    override them."""
    bound = set(given)
    params = list(sig.parameters.values())
    P = inspect.Parameter
    first = next(
        (i for i, p in enumerate(params) if p.kind is P.POSITIONAL_OR_KEYWORD and p.name in bound),
        None,
    )
    head: list[inspect.Parameter] = []
    moved: list[inspect.Parameter] = []
    tail: list[inspect.Parameter] = []
    for i, p in enumerate(params):
        default = (
            "<from the spec>" if p.name in bound and p.kind is not P.POSITIONAL_ONLY else p.default
        )
        if p.kind is P.POSITIONAL_OR_KEYWORD and first is not None and i >= first:
            moved.append(p.replace(kind=P.KEYWORD_ONLY, default=default))
        elif p.kind in (P.POSITIONAL_ONLY, P.POSITIONAL_OR_KEYWORD, P.VAR_POSITIONAL):
            head.append(p)
        else:
            tail.append(p if p.kind is P.VAR_KEYWORD else p.replace(default=default))
    return sig.replace(parameters=[*head, *moved, *tail])


class _PartialSignature:
    """``BuilderPartial.__signature__``: ``inspect.signature(partial)`` is the registered
    callable's, less what the spec gives (None where it cannot be told)."""

    def __get__(
        self, obj: BuilderPartial | None, owner: type | None = None
    ) -> inspect.Signature | None:
        if obj is None:
            return None
        try:
            entry = get_matching_entry(obj.spec[TYPE_KEY], obj.version)
        except (KeyError, ValueError):
            return None  # unknown yet: calling it reports that
        sig = _signature(entry.fn)
        if sig is None:
            return None
        return partial_signature(sig, (k for k in obj.spec if k not in SPECIAL_KEYS))


class BuilderPartial:
    """A ``"@mode": "partial"`` spec: callable, building its nested specs once, on first call,
    and merging call-time arguments over the spec's. Picklable (it carries the spec, not the
    built objects), so it travels to worker processes."""

    def __init__(self, spec: dict[str, Any], path: str = "", version: Any = None):
        self.spec = {k: v for k, v in spec.items() if k != MODE_KEY}
        self.path = path
        self.version = version
        self._built: tuple[RegistryEntry, dict[str, Any]] | None = None

    __signature__ = _PartialSignature()

    def _get_built(self) -> tuple[RegistryEntry, dict[str, Any]]:
        if self._built is None:
            entry = _lookup(self.spec[TYPE_KEY], self.path, self.version)
            kwargs = {
                k: _build(v, _join(self.path, k), self.version, ())
                for k, v in self.spec.items()
                if k not in SPECIAL_KEYS
            }
            self._built = (entry, kwargs)
        return self._built

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        entry, built_kwargs = self._get_built()
        return call_entry(entry, args, {**built_kwargs, **kwargs}, self.path)

    def __getstate__(self) -> dict[str, Any]:
        return {"spec": self.spec, "path": self.path, "version": self.version}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["spec"], state["path"], state["version"])  # type: ignore[misc]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, BuilderPartial) and self.spec == other.spec

    def __hash__(self) -> int:
        return hash(repr(self.spec))

    def __repr__(self) -> str:
        return f"BuilderPartial(spec={self.spec!r})"
