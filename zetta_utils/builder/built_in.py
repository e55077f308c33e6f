"""Types every spec can use without importing anything: ``lambda``."""

from __future__ import annotations

import linecache
from collections.abc import Callable
from typing import Any

from .registry import register


def _lambda_globals(lambda_str: str) -> dict[str, Any]:
    import numpy as np

    namespace: dict[str, Any] = {"np": np, "numpy": np}
    if "torch" in lambda_str:  # importing torch costs ~2 s: only when the lambda uses it
        import torch

        namespace["torch"] = torch
    return namespace


def _one_line(text: str, limit: int = 160) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


@register("lambda")
def efficient_parse_lambda_str(lambda_str: str, name: str | None = None) -> Callable[..., Any]:
    """Build a function from ``lambda_str`` (``"lambda src: src"``); ``np`` and ``torch`` are in
    scope. The string must be a single lambda expression."""
    if not isinstance(lambda_str, str):
        raise TypeError(f"`lambda_str` must be a string, got {type(lambda_str).__name__}")
    if not lambda_str.lstrip().startswith("lambda"):
        raise ValueError(f"`lambda_str` must start with 'lambda', got {lambda_str!r}")
    source = lambda_str.strip()
    # The file name carries the text, so a traceback from any process shows which lambda it was;
    # in this process linecache also has it, so tracebacks show the line itself.
    filename = "<lambda_str" + (f" {name}" if name else "") + ": " + _one_line(source) + ">"
    linecache.cache[filename] = (
        len(source),
        None,
        [line + "\n" for line in source.split("\n")],
        filename,
    )
    try:
        code = compile(source, filename, "eval")
    except SyntaxError as e:
        raise ValueError(
            f"`lambda_str` is not a valid lambda expression: {e.msg}: {lambda_str!r}"
        ) from None
    fn = eval(code, _lambda_globals(lambda_str))
    if not callable(fn):
        raise ValueError(f"`lambda_str` must evaluate to a function, got {fn!r}")
    try:
        fn.__zetta_lambda_str__ = source  # for messages (fn_check)
    except AttributeError:  # (the string was not a plain lambda)
        pass
    if name:
        fn.__name__ = name
        fn.__qualname__ = name
    return fn


@register("invoke_lambda_str", allow_partial=False)
def invoke_lambda_str(*args: Any, lambda_str: str, **kwargs: Any) -> Any:
    """Evaluate ``lambda_str`` and call it with the other arguments (the original's helper
    behind ``lambda``)."""
    return efficient_parse_lambda_str(lambda_str)(*args, **kwargs)
