"""Before a flow runs: does ``fn`` (or ``op``) take the arguments ``op_kwargs`` gives it?

A function whose parameters do not match ``op_kwargs`` would otherwise fail in its first task,
after the flow has started. The check reads the signature only (``inspect.signature``; a callable
without one, such as some C functions, is not checked) and raises
:class:`~zetta_utils.builder.building.ArgumentError`, which the builder reports at ``op_kwargs``
(or at the one offending key) in the spec.

How the flows call what they are given:

* ``fn(**op_kwargs)`` (layers replaced by their data);
* ``op(idx, dst, **op_kwargs)``; a ``VolumetricCallableOperation`` given as ``op`` calls its
  ``fn`` as above;
* with ``task_stack_size`` > 1, an ``op`` other than that also gets
  ``op.read(idx, use_semaphore=False, **op_kwargs)`` and
  ``op.write(idx, dst, data, use_semaphore=False, **op_kwargs)``.

A ``"@mode": "partial"`` spec shows the signature of what it builds less the arguments the spec
gives (see ``BuilderPartial.__signature__``), so it is checked like any function.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from zetta_utils.builder.building import ArgumentError

from .volumetric_callable_operation import VolumetricCallableOperation

__all__ = ["check_fn_arguments", "describe_callable", "signature_mismatch"]

_P = inspect.Parameter


def describe_callable(fn: Any) -> str:
    """A short name for ``fn`` in messages: a spec's lambda by its text, a function by its
    qualified name, an object by its class."""
    lambda_str = getattr(fn, "__zetta_lambda_str__", None)
    if isinstance(lambda_str, str):
        return repr(lambda_str)
    spec = getattr(fn, "spec", None)
    if isinstance(spec, dict) and "@type" in spec:  # a BuilderPartial
        return f"'{spec['@type']}' (partial)"
    name = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None)
    if isinstance(name, str) and (
        inspect.isfunction(fn) or inspect.isclass(fn) or inspect.ismethod(fn)
    ):
        module = getattr(fn, "__module__", None)
        return (
            f"'{module}.{name}'"
            if module and module not in ("builtins", "__main__")
            else f"'{name}'"
        )
    return f"a {type(fn).__name__} object"


def _signature(fn: Any) -> inspect.Signature | None:
    try:
        return inspect.signature(fn)
    except (TypeError, ValueError):
        return None


def _quoted(names: Iterable[str]) -> str:
    return ", ".join(f"'{n}'" for n in names)


def signature_mismatch(
    sig: inspect.Signature, positional: Sequence[str], keywords: Iterable[str]
) -> tuple[list[str], list[str], list[str]]:
    """What calling ``sig`` with the positional arguments ``positional`` (their names, for
    messages) and the keyword arguments ``keywords`` gets wrong: (extra keywords, missing
    parameters, other problems as sentences). All empty: the call binds."""
    params = list(sig.parameters.values())
    accepts_any_keyword = any(p.kind is _P.VAR_KEYWORD for p in params)
    positional_slots = [
        p for p in params if p.kind in (_P.POSITIONAL_ONLY, _P.POSITIONAL_OR_KEYWORD)
    ]
    takes_var_positional = any(p.kind is _P.VAR_POSITIONAL for p in params)
    problems: list[str] = []
    if len(positional) > len(positional_slots) and not takes_var_positional:
        problems.append(
            f"it is called with {len(positional)} positional argument(s) ({', '.join(positional)}) "
            f"but takes {len(positional_slots)}"
        )
    filled = {p.name for p in positional_slots[: len(positional)]}
    keyword_names = {
        p.name for p in params if p.kind in (_P.POSITIONAL_OR_KEYWORD, _P.KEYWORD_ONLY)
    }
    given = list(keywords)
    extra: list[str] = []
    for key in given:
        if key in filled:
            problems.append(f"'{key}' is already its positional argument; op_kwargs gives it again")
        elif key not in keyword_names and not accepts_any_keyword:
            extra.append(key)
    missing = [
        p.name
        for p in params
        if p.default is _P.empty
        and p.kind in (_P.POSITIONAL_ONLY, _P.POSITIONAL_OR_KEYWORD, _P.KEYWORD_ONLY)
        and p.name not in filled
        and (p.kind is _P.POSITIONAL_ONLY or p.name not in given)
    ]
    positional_only_given = [
        p.name
        for p in params
        if p.kind is _P.POSITIONAL_ONLY and p.name in given and p.name not in filled
    ]
    if positional_only_given:
        problems.append(
            f"it takes {_quoted(positional_only_given)} only by position, never by name"
        )
    return extra, missing, problems


def _check_call(
    fn: Any,
    what: str,
    positional: Sequence[str],
    op_kwargs: Mapping[str, Any],
    extra_keywords: Sequence[str] = (),
) -> None:
    sig = _signature(fn)
    if sig is None:
        return
    extra, missing, problems = signature_mismatch(sig, positional, [*op_kwargs, *extra_keywords])
    if not (extra or missing or problems):
        return
    call = f"{what}({', '.join([*positional, '**op_kwargs'])})"
    parts: list[str] = []
    for key in extra:
        unmet = [m for m in missing if m not in op_kwargs]
        # one name given that it does not take, one it needs and lacks: surely that one
        close = (
            unmet
            if len(extra) == 1 and len(unmet) == 1
            else difflib.get_close_matches(key, unmet or list(sig.parameters), n=1)
        )
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        giver = "op_kwargs gives" if key in op_kwargs else "the flow passes"
        parts.append(f"{giver} '{key}', which it does not take{hint}")
    if missing:
        parts.append(f"it needs {_quoted(missing)}, which op_kwargs does not give")
    parts.extend(problems)
    accepted = [
        p.name
        for p in sig.parameters.values()
        if p.kind in (_P.POSITIONAL_OR_KEYWORD, _P.KEYWORD_ONLY)
    ]
    parts.append(f"its parameters: {', '.join(accepted) or 'none by name'}")
    blamed = (
        f"op_kwargs.{extra[0]}"
        if len(extra) == 1 and not missing and not problems and extra[0] in op_kwargs
        else "op_kwargs"
    )
    head = f"`{what}` {describe_callable(fn)} cannot be called as {call}"
    raise ArgumentError(blamed, f"{head}: {'; '.join(parts)}")


def check_fn_arguments(
    fn: Callable[..., Any] | None, op: Any, op_kwargs: Mapping[str, Any], stacked: bool = False
) -> None:
    """Raise ``ArgumentError`` unless ``fn`` (or ``op``) can be called with ``op_kwargs`` the way
    the flows call it (see the module docstring); ``stacked``: with ``task_stack_size`` > 1."""
    if fn is not None:
        _check_call(fn, "fn", (), op_kwargs)
        return
    if op is None:
        return
    if isinstance(op, VolumetricCallableOperation):
        _check_call(op.fn, "fn", (), op_kwargs)
        return
    _check_call(op, "op", ("idx", "dst"), op_kwargs)
    if stacked:
        for method, positional in (("read", ("idx",)), ("write", ("idx", "dst", "data"))):
            bound = getattr(op, method, None)
            if callable(bound):
                _check_call(bound, f"op.{method}", positional, op_kwargs, ("use_semaphore",))
