"""The registry of buildable callables: names (``"@type"`` values) to functions and classes."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

import attrs
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

DEFAULT_VERSION = "0.4"
"""The version an unversioned spec is built with (real specs say ``"@version": "0.4"``)."""

F = TypeVar("F", bound=Callable[..., Any])


@attrs.frozen
class RegistryEntry:
    """One registration: a callable, valid for the spec versions its specifier admits."""

    name: str
    fn: Callable[..., Any]
    versions: SpecifierSet = attrs.field(factory=SpecifierSet)
    allow_partial: bool = True

    def admits(self, version: Version) -> bool:
        return not str(self.versions) or version in self.versions


_ENTRIES: dict[str, list[RegistryEntry]] = {}
"""Name -> registrations, as registered so far (modules register when they are imported)."""


class _Registry(Mapping[str, list[RegistryEntry]]):
    """A read-only view of every registration: the first read imports all registering modules
    (``zetta_utils.load_all_modules``), so ``builder.REGISTRY`` lists every type right after
    ``from zetta_utils import builder`` without the builder importing anything at import time."""

    def __init__(self) -> None:
        self._state = "unloaded"  # -> "loading" -> "loaded"

    def _ensure_loaded(self) -> None:
        if self._state != "unloaded":
            return  # loaded, or being loaded: a module reading the registry while it registers
        self._state = "loading"
        try:
            import zetta_utils

            zetta_utils.load_all_modules()
        except BaseException:
            self._state = "unloaded"
            raise
        self._state = "loaded"

    def __getitem__(self, name: str) -> list[RegistryEntry]:
        self._ensure_loaded()
        return _ENTRIES[name]

    def __iter__(self) -> Iterator[str]:
        self._ensure_loaded()
        return iter(list(_ENTRIES))

    def __len__(self) -> int:
        self._ensure_loaded()
        return len(_ENTRIES)

    def __contains__(self, name: object) -> bool:
        self._ensure_loaded()
        return name in _ENTRIES

    def __repr__(self) -> str:
        return f"<builder registry: {len(self)} types>"


REGISTRY: Mapping[str, list[RegistryEntry]] = _Registry()
"""Name -> registrations of every buildable type (read-only; register with ``register``)."""


def _parse_version(version: str | int | float) -> Version:
    try:
        return Version(str(version))
    except InvalidVersion as e:
        raise ValueError(f"'@version' must be a version such as \"0.4\", got {version!r}") from e


def _same_callable(a: Callable[..., Any], b: Callable[..., Any]) -> bool:
    # Re-running a module (a notebook cell, a doctest) registers a fresh object with the same
    # qualified name; treat that as a replacement rather than a conflict.
    return getattr(a, "__module__", None) == getattr(b, "__module__", None) and getattr(
        a, "__qualname__", None
    ) == getattr(b, "__qualname__", None)


def register(
    name: str, versions: str | None = None, allow_partial: bool = True
) -> Callable[[F], F]:
    """Decorator that makes ``fn`` buildable as ``{"@type": name, ...}``.

    ``versions`` is a PEP 440 specifier (``">=0.4"``, ``"<0.4"``) limiting the spec versions this
    registration serves; two registrations of one name must not both be unversioned.
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"builder.register: name must be a non-empty string, got {name!r}")
    try:
        spec = SpecifierSet(versions or "")
    except InvalidSpecifier as e:
        raise ValueError(f"builder.register({name!r}): invalid versions {versions!r}") from e

    def decorator(fn: F) -> F:
        if not callable(fn):
            raise TypeError(f"builder.register({name!r}) needs a callable, got {fn!r}")
        entries = _ENTRIES.setdefault(name, [])
        for i, existing in enumerate(entries):
            if str(existing.versions) != str(spec):
                continue
            if existing.fn is fn or _same_callable(existing.fn, fn):
                entries[i] = RegistryEntry(name, fn, spec, allow_partial)
                return fn
            raise RuntimeError(
                f"builder: '{name}' (versions {str(spec) or 'any'}) is already registered to "
                f"{_describe(existing.fn)}; cannot register {_describe(fn)} under the same name"
            )
        entries.append(RegistryEntry(name, fn, spec, allow_partial))
        return fn

    return decorator


def unregister(name: str, fn: Callable[..., Any] | None = None) -> None:
    """Remove registrations of ``name`` (all of them, or those of ``fn``)."""
    entries = _ENTRIES.get(name, [])
    kept = [e for e in entries if fn is not None and e.fn is not fn]
    if kept:
        _ENTRIES[name] = kept
    else:
        _ENTRIES.pop(name, None)


def get_matching_entry(name: str, version: str | int | float | None = None) -> RegistryEntry:
    """The registration of ``name`` serving ``version``; KeyError when there is none."""
    entries = _ENTRIES.get(name)
    if not entries:
        raise KeyError(name)
    ver = _parse_version(DEFAULT_VERSION if version is None else version)
    matching = [e for e in entries if e.admits(ver)]
    if not matching:
        available = ", ".join(str(e.versions) or "any" for e in entries)
        raise KeyError(f"'{name}' has no registration for version {ver} (available: {available})")
    # A version-ranged registration is more specific than an unversioned one.
    matching.sort(key=lambda e: 0 if str(e.versions) else 1)
    return matching[0]


def _describe(fn: Callable[..., Any]) -> str:
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"


class UnsupportedTypeError(NotImplementedError):
    """A spec names a type the original registers that this project deliberately replaces."""


def register_unsupported(
    name: str, params: Sequence[str], replacement: str, versions: str | None = None
) -> None:
    """Register ``name`` (a type of the original's) so that ``show-registry`` lists it with the
    original's argument names and building it raises ``UnsupportedTypeError`` saying what
    replaces it here."""

    def refuse(**kwargs: Any) -> Any:
        raise UnsupportedTypeError(f"'{name}' is not supported here: {replacement}")

    refuse.__name__ = refuse.__qualname__ = f"unsupported:{name}"
    refuse.__doc__ = f"Not supported here: {replacement}"
    refuse.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [inspect.Parameter(p, inspect.Parameter.KEYWORD_ONLY, default=None) for p in params]
    )
    register(name, versions=versions, allow_partial=True)(refuse)
