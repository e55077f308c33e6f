"""Deterministic ids for tasks and flows.

An id is a digest of *what* is computed: the operation's qualified name and its arguments, hashed
structurally (values, not object identities or memory addresses), so the same spec gives the same
ids in every run and every process. Checkpoints rely on that.

Hashing rules, in order: plain values by value; lists, tuples, dicts (key order ignored) and sets by
their contents; functions by module and qualified name, plus code, defaults and closure for lambdas
and nested functions (a ``lambda_str`` from a spec has no importable name); attrs classes and
dataclasses by their fields; NumPy arrays and torch tensors by dtype, shape and bytes; other objects
by their pickled state (``__getstate__`` / ``__dict__`` / ``__reduce_ex__``). An object with a
``mazepa_id_components()`` method is hashed by what that method returns instead.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import hashlib
import re
import struct
import types
import uuid
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import attrs

__all__ = [
    "generate_invocation_id",
    "get_unique_id",
    "hash_object",
    "object_digest",
    "sanitize_prefix",
]

_DIGEST_SIZE = 16
_PREFIX_RE = re.compile(r"[^A-Za-z0-9_.\-]+")
_warned_types: set[str] = set()
_FUNCTION_CACHE_SIZE = 1024
# id(function) -> (function, digest); the function is kept so that its id is not reused.
_FUNCTION_DIGESTS: dict[int, tuple[Any, bytes]] = {}


def sanitize_prefix(name: str) -> str:
    """``name`` with anything but letters, digits, ``_``, ``.`` and ``-`` replaced by ``_``."""
    return _PREFIX_RE.sub("_", name).strip("_") or "x"


def get_unique_id(prefix: str | None = None) -> str:
    """A random id (not reproducible): for things that must never collide, e.g. run ids."""
    suffix = uuid.uuid4().hex
    return f"{sanitize_prefix(prefix)}-{suffix}" if prefix else suffix


def object_digest(obj: Any) -> bytes:
    """The structural digest of ``obj`` (16 bytes)."""
    h = hashlib.blake2b(digest_size=_DIGEST_SIZE)
    _Feeder(h.update).feed(obj)
    return h.digest()


def hash_object(obj: Any) -> str:
    """The structural digest of ``obj`` as 32 hex characters."""
    return object_digest(obj).hex()


def generate_invocation_id(
    fn: Callable[..., Any],
    args: tuple[Any, ...] | list[Any],
    kwargs: Mapping[str, Any],
    prefix: str | None = None,
) -> str:
    """The id of calling ``fn(*args, **kwargs)``: ``"<prefix>-<32 hex>"``.

    The same function and equal arguments give the same id, in any process; keyword argument order
    does not matter.
    """
    h = _fed_with(fn)
    feeder = _Feeder(h.update)
    feeder.feed(tuple(args))
    feeder.feed_mapping(kwargs)
    digest = h.hexdigest()
    if prefix is None:
        prefix = getattr(fn, "__name__", None) or type(fn).__name__
    return f"{sanitize_prefix(prefix)}-{digest}"


_PREFIX_CACHE_SIZE = 1024
# what identifies an operation (see _prefix_key) -> the hash state after feeding it: the tasks of
# one operation differ only in their arguments
_PREFIXES: dict[Any, Any] = {}


def _fed_with(fn: Any) -> Any:
    """A new hash state holding ``fn``'s encoding (computed once per operation where its
    encoding cannot change, see :func:`_prefix_key`)."""
    key = _prefix_key(fn)
    if key is not None:
        state = _PREFIXES.get(key)
        if state is not None:
            return state.copy()
    h = hashlib.blake2b(digest_size=_DIGEST_SIZE)
    _Feeder(h.update).feed(fn)
    if key is not None:
        if len(_PREFIXES) >= _PREFIX_CACHE_SIZE:
            _PREFIXES.clear()
        _PREFIXES[key] = h.copy()
    return h


def _fixed_part(value: Any) -> bool:
    """Whether ``value`` encodes the same whenever it compares equal: a string, a class, a
    function without a closure (functions compare by identity; their code and defaults are
    taken as fixed, as :meth:`_Feeder._feed_function` does). Numbers are not (``1 == 1.0 ==
    True`` encode differently), nor anything mutable."""
    t = type(value)
    return t is str or t is type or (t is types.FunctionType and not value.__closure__)


def _prefix_key(fn: Any) -> Any:
    """A key equal for two operations only where they encode the same, or None (not cached)."""
    if type(fn) is types.FunctionType:
        return ("function", fn) if not fn.__closure__ else None
    custom = getattr(fn, "mazepa_id_components", None)
    if custom is None or not callable(custom) or isinstance(fn, type):
        return None
    components = custom()
    if type(components) is tuple:
        for c in components:
            t = type(c)
            if not (t is str or t is type or (t is types.FunctionType and not c.__closure__)):
                return None
        return (type(fn), components)
    return (type(fn), components) if _fixed_part(components) else None


_INT_STRUCT = struct.Struct("<q")
_LEN_8 = _INT_STRUCT.pack(8)
"""The length prefix of an 8-byte payload (a sequence's or a mapping's length)."""
_EMPTY_MAPPING = b"d" + _INT_STRUCT.pack(8) + _INT_STRUCT.pack(0)
"""What ``feed_mapping({})`` writes: the tag of a mapping and its length, 0."""
_FLOAT_STRUCT = struct.Struct("<d")
# Hashed by name (see ``_Feeder._feed_named``): checked at once, as one isinstance call.
_NAMED_KINDS = (
    enum.Enum,
    type,
    types.FunctionType,
    types.MethodType,
    types.BuiltinFunctionType,
    types.BuiltinMethodType,
    functools.partial,
    types.CodeType,
    types.ModuleType,
)


class _Feeder:
    """Writes a tagged, unambiguous byte encoding of an object graph into ``update``."""

    __slots__ = ("_stack", "update")

    def __init__(self, update: Callable[[bytes], Any]):
        self.update = update
        self._stack: dict[int, int] = {}

    def _tag(self, tag: bytes, payload: bytes = b"") -> None:
        self.update(tag + _INT_STRUCT.pack(len(payload)) + payload)

    def _name(self, obj: Any) -> None:
        module = getattr(obj, "__module__", None) or ""
        qualname = getattr(obj, "__qualname__", None) or getattr(obj, "__name__", "") or ""
        self._tag(b"N", f"{module}:{qualname}".encode())

    def feed(self, obj: Any) -> None:
        t = type(obj)
        # Fast paths for the common leaves.
        if t is str:
            self._tag(b"s", obj.encode("utf-8", "surrogatepass"))
            return
        if t is int:
            if -(2**63) <= obj < 2**63:
                self.update(b"i" + _INT_STRUCT.pack(obj))
            else:
                self._tag(b"I", str(obj).encode())
            return
        if t is float:
            self.update(b"f" + _FLOAT_STRUCT.pack(obj))
            return
        if obj is None:
            self.update(b"0")
            return
        if t is bool:
            self.update(b"T" if obj else b"F")
            return
        if t is bytes or t is bytearray:
            self._tag(b"b", bytes(obj))
            return

        key = id(obj)
        if key in self._stack:
            # A cycle: refer back to the depth at which the object is being hashed.
            self.update(b"@" + _INT_STRUCT.pack(len(self._stack) - self._stack[key]))
            return
        self._stack[key] = len(self._stack)
        try:
            # plain tuples and lists (task arguments, chunk keys) go straight to their items:
            # what _feed_compound does with them, without asking for mazepa_id_components
            if t is tuple:
                self._feed_sequence(b"t", obj)
            elif t is list:
                self._feed_sequence(b"l", obj)
            else:
                self._feed_compound(obj, t)
        finally:
            del self._stack[key]

    def feed_mapping(self, mapping: Mapping[Any, Any]) -> None:
        if not mapping:
            self.update(_EMPTY_MAPPING)
            return
        if all(type(k) is str for k in mapping):
            self._tag(b"d", _INT_STRUCT.pack(len(mapping)))
            for k in sorted(mapping):
                self.feed(k)
                self.feed(mapping[k])
            return
        # Keys of mixed or unorderable types: order entries by their own digests.
        entries = sorted((object_digest(k), k) for k in mapping)
        self._tag(b"D", _INT_STRUCT.pack(len(entries)))
        for digest, k in entries:
            self.update(digest)
            self.feed(mapping[k])

    def _feed_sequence(self, tag: bytes, items: Any) -> None:
        # (self._tag(tag, _INT_STRUCT.pack(len(items))), inline: the payload is 8 bytes)
        self.update(tag + _LEN_8 + _INT_STRUCT.pack(len(items)))
        for item in items:
            if type(item) is int and -(2**63) <= item < 2**63:
                self.update(b"i" + _INT_STRUCT.pack(item))  # feed(item), inline (chunk keys)
            else:
                self.feed(item)

    def _feed_compound(self, obj: Any, t: type) -> None:
        custom = getattr(obj, "mazepa_id_components", None)
        if custom is not None and callable(custom) and not isinstance(obj, type):
            self._name(t)
            self.feed(custom())
            return
        # Fast paths for the common containers.
        if t is tuple:
            self._feed_sequence(b"t", obj)
            return
        if t is list:
            self._feed_sequence(b"l", obj)
            return
        if t is dict:
            self.feed_mapping(obj)
            return
        if t is set or t is frozenset:
            digests = sorted(object_digest(item) for item in obj)
            self._tag(b"S", b"".join(digests))
            return
        if isinstance(obj, _NAMED_KINDS):
            self._feed_named(obj, t)
            return
        if not self._feed_structured(obj, t):
            self._feed_generic(obj, t)

    def _feed_named(self, obj: Any, t: type) -> None:
        """Enum members, classes, functions, methods, partials, code and modules: by their names
        (and, where a name is not enough, their code, owner or arguments)."""
        if isinstance(obj, enum.Enum):
            self._name(t)
            self._tag(b"e", obj.name.encode())
        elif isinstance(obj, type):
            self._name(obj)
        elif isinstance(obj, types.FunctionType):
            self._feed_function(obj)
        elif isinstance(obj, types.MethodType):
            self._tag(b"m")
            self.feed(obj.__self__)
            self.feed(obj.__func__)
        elif isinstance(obj, (types.BuiltinFunctionType, types.BuiltinMethodType)):
            owner = getattr(obj, "__self__", None)
            self._name(obj)
            if owner is not None and not isinstance(owner, types.ModuleType):
                self.feed(owner)
        elif isinstance(obj, functools.partial):
            self._tag(b"p")
            self.feed(obj.func)
            self.feed(tuple(obj.args))
            self.feed_mapping(obj.keywords)
        elif isinstance(obj, types.CodeType):
            self._feed_code(obj)
        else:  # a module
            self._tag(b"M", obj.__name__.encode())

    def _feed_structured(self, obj: Any, t: type) -> bool:
        """Container subclasses, arrays, tensors, attrs classes and dataclasses: by their type's
        name and contents. False for anything else."""
        if isinstance(obj, (tuple, list)):  # subclasses, e.g. named tuples
            self._name(t)
            self._feed_sequence(b"t", tuple(obj))
            return True
        if isinstance(obj, Mapping) and not attrs.has(t):
            self._name(t)
            self.feed_mapping(obj)
            return True
        module = t.__module__
        if module == "numpy" and hasattr(obj, "tobytes") and hasattr(obj, "dtype"):
            self._feed_array(obj)
            return True
        if module.startswith("torch") and hasattr(obj, "detach") and hasattr(obj, "dtype"):
            self._feed_tensor(obj)
            return True
        if attrs.has(t):
            self._name(t)
            fields = attrs.fields(t)
            self._tag(b"a", _INT_STRUCT.pack(len(fields)))
            for f in fields:
                self._tag(b"k", f.name.encode())
                self.feed(getattr(obj, f.name, None))
            return True
        if dataclasses.is_dataclass(obj):
            self._name(t)
            dfields = dataclasses.fields(obj)
            self._tag(b"c", _INT_STRUCT.pack(len(dfields)))
            for df in dfields:
                self._tag(b"k", df.name.encode())
                self.feed(getattr(obj, df.name, None))
            return True
        return False

    def _feed_function(self, fn: types.FunctionType) -> None:
        self._name(fn)
        qualname = fn.__qualname__
        if fn.__module__ not in (None, "__main__") and "<" not in qualname:
            # A module-level function is identified by its importable name.
            return
        closure = fn.__closure__
        if not closure:
            # Code and defaults of a function object do not change in practice: hash them once
            # (a spec's lambda is in every task of a run). Closures may hold changing state.
            cached = _FUNCTION_DIGESTS.get(id(fn))
            if cached is None or cached[0] is not fn:
                h = hashlib.blake2b(digest_size=_DIGEST_SIZE)
                sub = _Feeder(h.update)
                sub._feed_code(fn.__code__)
                sub.feed(fn.__defaults__)
                sub.feed(fn.__kwdefaults__)
                if len(_FUNCTION_DIGESTS) >= _FUNCTION_CACHE_SIZE:
                    _FUNCTION_DIGESTS.clear()
                cached = _FUNCTION_DIGESTS[id(fn)] = (fn, h.digest())
            self._tag(b"F", cached[1])
            return
        self._feed_code(fn.__code__)
        self.feed(fn.__defaults__)
        self.feed(fn.__kwdefaults__)
        if closure:
            cells: list[Any] = []
            for cell in closure:
                try:
                    cells.append(cell.cell_contents)
                except ValueError:  # an empty cell
                    cells.append(_EmptyCell)
            self.feed(tuple(cells))

    def _feed_code(self, code: types.CodeType) -> None:
        self._tag(b"C", code.co_code)
        self.feed(code.co_names)
        self.feed(code.co_varnames)
        self._tag(b"q", _INT_STRUCT.pack(len(code.co_consts)))
        for const in code.co_consts:
            self.feed(const)

    def _feed_array(self, arr: Any) -> None:
        import numpy as np

        a = np.ascontiguousarray(arr)
        self._tag(b"A", f"{a.dtype.str}|{a.shape}".encode())
        if a.dtype.hasobject:
            self.feed(a.tolist())
        else:
            self._tag(b"B", a.tobytes())

    def _feed_tensor(self, tensor: Any) -> None:
        t = tensor.detach().cpu()
        self._tag(b"X", f"{t.dtype}|{tuple(t.shape)}".encode())
        try:
            arr = t.contiguous().numpy()
        except (TypeError, RuntimeError):  # e.g. bfloat16 has no NumPy dtype
            arr = t.float().contiguous().numpy()
        self._tag(b"B", arr.tobytes())

    def _feed_generic(self, obj: Any, t: type) -> None:
        self._name(t)
        getstate = getattr(t, "__getstate__", None)
        if getstate is not None and getstate is not getattr(object, "__getstate__", None):
            try:
                state = obj.__getstate__()
            except Exception:
                state = _NoState
            if state is not _NoState:
                if state is not None and not (
                    isinstance(state, dict) and state is getattr(obj, "__dict__", None)
                ):
                    self._tag(b"g")
                    self.feed(state)
                    return
        d = getattr(obj, "__dict__", None)
        slots = _slot_values(obj, t)
        if isinstance(d, dict) and (d or slots or not _has_reduce(t)):
            self._tag(b"o")
            self.feed_mapping(d)
            if slots:
                self.feed_mapping(slots)
            return
        if slots:
            self._tag(b"o")
            self.feed_mapping(slots)
            return
        try:
            reduced = obj.__reduce_ex__(4)
        except Exception:
            reduced = None
        if isinstance(reduced, tuple) and len(reduced) >= 2:
            self._tag(b"r")
            self.feed(reduced[1])
            if len(reduced) > 2:
                self.feed(reduced[2])
            return
        text = repr(obj)
        if " at 0x" not in text:
            self._tag(b"R", text.encode())
            return
        name = f"{t.__module__}.{t.__qualname__}"
        if name not in _warned_types:
            _warned_types.add(name)
            warnings.warn(
                f"mazepa ids: cannot hash objects of type {name} by value; ids of tasks using them "
                "are not reproducible across runs (checkpoints will not recognise them). Give the "
                "type a `mazepa_id_components()` method returning hashable values.",
                RuntimeWarning,
                stacklevel=4,
            )
        self._tag(b"U", uuid.uuid4().bytes)


class _EmptyCellType:
    def __repr__(self) -> str:
        return "<empty cell>"


_EmptyCell = _EmptyCellType()
_NoState = object()


def _slot_values(obj: Any, t: type) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for klass in t.__mro__:
        for name in klass.__dict__.get("__slots__", ()):
            if name in ("__dict__", "__weakref__"):
                continue
            if hasattr(obj, name):
                values[name] = getattr(obj, name)
    return values


def _has_reduce(t: type) -> bool:
    return t.__reduce_ex__ is not object.__reduce_ex__ or t.__reduce__ is not object.__reduce__
