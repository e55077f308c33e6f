"""CUE spec files to data.

``load`` evaluates a CUE file (or CUE source text) the way ``cue export --out json``
does and returns the resulting data (usually a dict). It uses the ``cue`` binary when one
is available (named by ``ZETTA_CUE_BINARY`` or found on ``PATH``); otherwise a built-in
evaluator written in Python handles the configuration subset of CUE: comments, JSON
superset literals, byte strings, definitions, hidden fields, lexical references (also to
fields declared later and to optional fields), unification, defaults and disjunctions,
arithmetic, interpolation, comprehensions, ``let``, embedding, optional fields, closed
definitions, bounds and the pure functions of CUE v0.4's standard packages (``strings``,
``strconv``, ``list``, ``math``, ``path``, ``struct``, ``regexp``, ``encoding/json``, ...;
see ``_packages``). Constructs outside that subset are reported as errors naming the
construct and its position, never silently evaluated differently.
"""

from __future__ import annotations

import gc
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from ._errors import CueError

__all__ = ["CueError", "evaluate", "find_cue_binary", "load"]

_RECURSION_LIMIT = 20000


def find_cue_binary() -> str | None:
    """The ``cue`` executable to use: ``ZETTA_CUE_BINARY`` if set, else ``cue`` on PATH."""
    named = os.environ.get("ZETTA_CUE_BINARY")
    if named:
        found = shutil.which(named)
        if found is None:
            raise CueError(f"ZETTA_CUE_BINARY={named!r} is not an executable file")
        return found
    return shutil.which("cue")


def _looks_like_path(s: str) -> bool:
    if "\n" in s:
        return False
    if os.path.isfile(os.path.expanduser(s)):
        return True
    return s.endswith(".cue") and not any(ch in s for ch in ':{}[]"() \t')


def _source(path_or_text: str | os.PathLike[str]) -> tuple[str, str, Path | None]:
    """(text, display name, path) of the input: a path (``os.PathLike``, or a string
    naming an existing file, or a ``.cue`` file name) or CUE source text."""
    if isinstance(path_or_text, os.PathLike) or (
        isinstance(path_or_text, str) and _looks_like_path(path_or_text)
    ):
        p = Path(os.path.expanduser(os.fspath(path_or_text)))
        try:
            text = p.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise CueError(f"CUE file not found: {p}") from None
        except (OSError, UnicodeDecodeError) as e:
            raise CueError(f"cannot read CUE file {p}: {e}") from None
        return text, str(p), p
    if not isinstance(path_or_text, str):
        raise TypeError(
            f"load() expects a path or CUE source text, got {type(path_or_text).__name__}"
        )
    return path_or_text, "<input>", None


def evaluate(text: str, filename: str = "<input>") -> Any:
    """Evaluate CUE source text with the built-in evaluator and export it to data."""
    from ._eval import Evaluator, Vertex
    from ._export import export
    from ._parser import parse
    from ._resolve import resolve

    old_limit = sys.getrecursionlimit()
    if old_limit < _RECURSION_LIMIT:
        sys.setrecursionlimit(_RECURSION_LIMIT)
    # The value graph is made of many small, cyclic objects: pausing the cyclic garbage
    # collector while building it roughly halves the time; they are collected later.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        f = parse(text, filename)
        resolve(f)
        ev = Evaluator()
        root = Vertex(None, None)
        root.conjuncts.append((f.struct, None, None, False))
        return export(ev, root, filename)
    except RecursionError:
        raise CueError(
            f"{filename}:1:1: evaluation nested too deeply for the built-in evaluator "
            "(very deep values or long reference chains, or a structural cycle)"
        ) from None
    finally:
        if gc_was_enabled:
            gc.enable()
        if old_limit < _RECURSION_LIMIT:
            sys.setrecursionlimit(old_limit)


def _load_with_binary(binary: str, text: str, path: Path | None) -> Any:
    tmp: str | None = None
    try:
        if path is None:
            fd, tmp = tempfile.mkstemp(suffix=".cue", prefix="zetta_cue_")
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
            target = tmp
        else:
            target = str(path)
        proc = subprocess.run(
            [binary, "export", "--out", "json", target],
            capture_output=True,
            text=True,
            check=False,
        )
    finally:
        if tmp is not None:
            os.unlink(tmp)
    if proc.returncode != 0:
        msg = proc.stderr.strip() or proc.stdout.strip() or f"exit status {proc.returncode}"
        raise CueError(f"cue export failed for {path or '<input>'}:\n{msg}")
    try:
        return json.loads(proc.stdout)
    except json.JSONDecodeError as e:
        raise CueError(f"cue export produced invalid JSON: {e}") from None


def load(path_or_text: str | os.PathLike[str], *, engine: str = "auto") -> Any:
    """Evaluate a CUE file (or CUE source text) and return its data, exactly as
    ``cue export --out json`` would (a dict for run specs).

    ``engine`` is "auto" (the ``cue`` binary if available, else the built-in evaluator),
    "builtin" or "binary". Raises :class:`CueError` (a ``ValueError``) whose message
    contains ``file:line:column`` of each problem.
    """
    if engine not in ("auto", "builtin", "binary"):
        raise ValueError(f"engine must be 'auto', 'builtin' or 'binary', got {engine!r}")
    text, name, path = _source(path_or_text)
    if engine != "builtin":
        binary = find_cue_binary()
        if binary is not None:
            return _load_with_binary(binary, text, path)
        if engine == "binary":
            raise CueError("no cue binary found (set ZETTA_CUE_BINARY or put `cue` on PATH)")
    return evaluate(text, name)
