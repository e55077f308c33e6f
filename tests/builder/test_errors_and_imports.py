"""Errors raised while building keep their type; the imports users of the original write work."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

from zetta_utils import builder
from zetta_utils.builder import BuilderError

ENV = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}


class _StrictError(Exception):
    def __new__(cls, text: str, code: int) -> _StrictError:
        return super().__new__(cls, text, code)

    def __init__(self, text: str, code: int) -> None:
        super().__init__(text, code)
        self.code = code


@builder.register("tests_errors.raises")
def _raises(kind: str, text: str = "x is wrong") -> None:
    errors: dict[str, type[Exception]] = {
        "value": ValueError,
        "type": TypeError,
        "key": KeyError,
        "runtime": RuntimeError,
        "file": FileNotFoundError,
    }
    if kind == "unicode":  # a type whose constructor needs five arguments
        raise UnicodeDecodeError("utf-8", b"\xff", 0, 1, text)
    if kind == "strict":
        raise _StrictError(text, 7)
    raise errors[kind](text)


@builder.register("tests_errors.Pair")
def _pair(a: object = None, b: object = None) -> tuple[object, object]:
    return (a, b)


@pytest.mark.parametrize(
    ("kind", "error_type"),
    [
        ("value", ValueError),
        ("type", TypeError),
        ("key", KeyError),
        ("runtime", RuntimeError),
        ("file", FileNotFoundError),
    ],
)
def test_error_reaches_the_caller_with_its_type_and_spec_path(
    kind: str, error_type: type[Exception]
) -> None:
    spec = {"@type": "tests_errors.Pair", "b": [{"@type": "tests_errors.raises", "kind": kind}]}
    with pytest.raises(error_type, match="x is wrong") as info:
        builder.build(spec)
    err = info.value
    assert isinstance(err, BuilderError)
    assert err.spec_path == "b[0]"
    assert str(err).startswith("at `b[0]`: building 'tests_errors.raises' failed")
    assert type(err.__cause__) is error_type


def test_type_kept_error_pickles_with_its_type() -> None:
    with pytest.raises(ValueError) as info:
        builder.build({"@type": "tests_errors.raises", "kind": "value"})
    again = pickle.loads(pickle.dumps(info.value))
    assert isinstance(again, ValueError) and isinstance(again, BuilderError)
    assert str(again) == str(info.value)


def test_constructor_arguments_do_not_matter_and_attributes_stay() -> None:
    with pytest.raises(UnicodeDecodeError, match="x is wrong"):
        builder.build({"@type": "tests_errors.raises", "kind": "unicode"})
    with pytest.raises(BuilderError, match="x is wrong") as info:
        builder.build({"@type": "tests_errors.raises", "kind": "strict"})
    # __new__ wants two arguments: a plain BuilderError, caused by the original
    assert not isinstance(info.value, _StrictError)
    assert isinstance(info.value.__cause__, _StrictError)


def test_bad_arguments_are_a_type_error() -> None:
    with pytest.raises(TypeError, match="has no argument 'knd'; did you mean 'kind'"):
        builder.build({"@type": "tests_errors.raises", "knd": "value"})


def test_cli_keeps_its_one_line_error(tmp_path: Path) -> None:
    spec = {"@type": "BBox3D.from_coords", "start_coord": [0, 0], "end_coord": [1, 1, 1]}
    (tmp_path / "bad.json").write_text(json.dumps(spec))
    r = subprocess.run(
        [sys.executable, "-m", "zetta_utils.cli.main", "run", str(tmp_path / "bad.json")],
        capture_output=True,
        text=True,
        env=ENV,
    )
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr
    assert r.stderr.startswith("Error: at `<root>`: building 'BBox3D.from_coords' failed")


def _python(code: str, tmp_path: Path) -> str:
    r = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=ENV, cwd=tmp_path
    )
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_registry_lists_every_type_right_after_importing_the_builder(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from zetta_utils import builder\n"
        "print('torch' in sys.modules, 'zetta_utils.geometry' in sys.modules)\n"
        "names = set(builder.REGISTRY)\n"
        "print('build_cv_layer' in names, 'mazepa.execute' in names,\n"
        "      'BBox3D.from_coords' in builder.REGISTRY)\n"
        "print(len(builder.REGISTRY) == len(names) > 30)\n"
    )
    lines = _python(code, tmp_path).split("\n")
    assert lines[0] == "False False"  # importing the builder imports nothing above it
    assert lines[1] == "True True True"
    assert lines[2] == "True"


def test_load_all_modules_and_parsing_cue(tmp_path: Path) -> None:
    (tmp_path / "spec.cue").write_text('#X: 2\nvalue: #X * 3\nname: "a\\(#X)"\n')
    code = (
        "import sys, zetta_utils\n"
        "from zetta_utils import parsing\n"
        "print('zetta_utils.parsing.cue' in sys.modules)\n"
        "print(parsing.cue.load('spec.cue'))\n"
        "zetta_utils.load_all_modules()\n"
        "from zetta_utils import builder\n"
        "print('mazepa.execute_locally' in builder.REGISTRY)\n"
    )
    lines = _python(code, tmp_path).split("\n")
    assert lines[0] == "False"  # the CUE evaluator is imported on first use only
    assert lines[1] == "{'value': 6, 'name': 'a2'}"
    assert lines[2] == "True"
    with pytest.raises(AttributeError, match="no attribute 'cuee'"):
        from zetta_utils import parsing

        _ = parsing.cuee
