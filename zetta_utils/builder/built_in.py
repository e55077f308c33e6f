"""Types every spec can use without importing anything: ``lambda``."""

from __future__ import annotations

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


@register("lambda")
def efficient_parse_lambda_str(lambda_str: str, name: str | None = None) -> Callable[..., Any]:
    """Build a function from ``lambda_str`` (``"lambda src: src"``); ``np`` and ``torch`` are in
    scope. The string must be a single lambda expression."""
    if not isinstance(lambda_str, str):
        raise TypeError(f"`lambda_str` must be a string, got {type(lambda_str).__name__}")
    if not lambda_str.lstrip().startswith("lambda"):
        raise ValueError(f"`lambda_str` must start with 'lambda', got {lambda_str!r}")
    try:
        code = compile(lambda_str.strip(), f"<lambda_str {name or ''}>".replace(" >", ">"), "eval")
    except SyntaxError as e:
        raise ValueError(
            f"`lambda_str` is not a valid lambda expression: {e.msg}: {lambda_str!r}"
        ) from None
    fn = eval(code, _lambda_globals(lambda_str))
    if not callable(fn):
        raise ValueError(f"`lambda_str` must evaluate to a function, got {fn!r}")
    if name:
        fn.__name__ = name
        fn.__qualname__ = name
    return fn


@register("invoke_lambda_str", allow_partial=False)
def invoke_lambda_str(*args: Any, lambda_str: str, **kwargs: Any) -> Any:
    """Evaluate ``lambda_str`` and call it with the other arguments (the original's helper
    behind ``lambda``)."""
    return efficient_parse_lambda_str(lambda_str)(*args, **kwargs)
