"""Spec files to dicts: CUE (``.cue``), JSON (``.json``) and YAML (``.yaml``/``.yml``)."""

from __future__ import annotations

import importlib
import json
import os
from pathlib import Path
from typing import Any

from zetta_utils import builder


class SpecFileError(ValueError):
    """A spec file could not be read or parsed; the message names the file (and position)."""


def load_spec_file(path: str | os.PathLike[str]) -> Any:
    """Parse the spec file at ``path`` by its extension (``.cue``, ``.json``,
    ``.yaml``/``.yml``)."""
    p = Path(os.path.expanduser(str(path)))
    if not p.is_file():
        raise SpecFileError(f"spec file not found: {path}")
    suffix = p.suffix.lower()
    if suffix == ".cue":
        # The CUE evaluator is only imported for CUE files.
        cue = importlib.import_module("zetta_utils.parsing.cue")
        return cue.load(p)
    text = p.read_text(encoding="utf-8")
    if suffix == ".json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as e:
            raise SpecFileError(f"{p}:{e.lineno}:{e.colno}: invalid JSON: {e.msg}") from None
    if suffix in (".yaml", ".yml"):
        import yaml

        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            where = f"{p}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(p)
            raise SpecFileError(f"{where}: invalid YAML: {getattr(e, 'problem', e)}") from None
    raise SpecFileError(
        f"unknown spec file type {suffix!r} for {path}: expected .cue, .json, .yaml or .yml"
    )


__all__ = ["SpecFileError", "cue", "load_spec_file"]

# ``builder.build(path=...)`` reads files with it (registration goes up-to-down: the builder is
# below this package and never imports it).
builder.register_spec_file_loader(load_spec_file)


def __getattr__(name: str) -> Any:
    # ``from zetta_utils import parsing; parsing.cue.load(p)`` works as with the original, while
    # the CUE evaluator is imported only by code that uses it.
    if name == "cue":
        return importlib.import_module("zetta_utils.parsing.cue")
    raise AttributeError(f"module 'zetta_utils.parsing' has no attribute {name!r}")
